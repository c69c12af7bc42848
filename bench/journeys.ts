// npm run bench:journeys -- [--dialect sqlite|postgres|both] [--customers N] [--batch B] [--concurrency C]
//
// The whole journey engine on a virtual clock: N customers sign up and enter the onboarding journey
// (examples/journeys/onboarding.yaml) on a real `chorus start` process (a child, so its memory is
// measured alone), then 14 virtual days pass with a realistic mix of logins and activations. Compared
// with BullMQ working the same number of bare no-op jobs on the local Redis. See bench/README.md.

import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { openStore, type Store } from '../src/store/db.js';
import { runBullmqBaseline, type BullmqResult } from './lib/bullmq-baseline.js';
import { activationCall, customer, DAYS, expectedOf, loginCall, signUpCalls, type Customer, type Expected } from './lib/journeys-mix.js';
import { mainProfile, summarizeProfile } from './lib/profile.js';
import { int, mb, round, table } from './lib/report.js';
import { prepareTarget, type DialectName, type Target } from './lib/target.js';
import { postgresCpuSeconds, procCpuSeconds, RssSampler, spawnServer, type ChildServer } from './lib/server.js';

const WRITE_KEY = 'wk_bench_write_key_000000000000';
const SECRET_KEY = 'sk_bench_secret_key_00000000000';
const START = '2026-01-05T09:00:00Z';
const TARGET_RATIO = 1;
const PG_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const REDIS = { host: '127.0.0.1', port: 6379 };
const ROOT = path.resolve(import.meta.dirname, '..');
const JOURNEY_FILE = path.join(ROOT, 'examples/journeys/onboarding.yaml');
const RESULTS_DIR = path.resolve(import.meta.dirname, 'results');
const DEFAULT_CUSTOMERS = { sqlite: 100_000, postgres: 20_000 };


interface Options {
  dialects: DialectName[];
  /** Per dialect; --customers sets both. */
  customers: Record<DialectName, number>;
  batch: number;
  concurrency: number;
  seed: number;
  sqliteSynchronous: 'FULL' | 'NORMAL';
  bullmq: boolean;
  bullmqSample: number;
  bullmqConcurrencies: number[];
  cpuProf: boolean;
  keep: boolean;
}

const USAGE = `Usage: npm run bench:journeys -- [options]

  --dialect sqlite|postgres|both   database(s) to run on (default both)
  --customers N                    customers who sign up (default ${int(DEFAULT_CUSTOMERS.sqlite)} on SQLite, ${int(DEFAULT_CUSTOMERS.postgres)} on PostgreSQL)
  --batch B                        events per /v1/batch request (default 500)
  --concurrency C                  /v1/batch requests in flight (default 4)
  --seed S                         seed of the customer mix (default 1)
  --sqlite-sync FULL|NORMAL        CHORUS_SQLITE_SYNCHRONOUS of the server (default FULL, the server default)
  --bullmq-sample N                jobs per BullMQ concurrency trial (default 20000)
  --bullmq-concurrency 1,10,…      BullMQ concurrencies to try (default 1,10,50,100,200); one value: no trials
  --skip-bullmq                    don't run the BullMQ baseline
  --cpu-prof                       write a V8 CPU profile of the server and print a summary
  --keep                           keep the SQLite directory / PostgreSQL schema afterwards
PostgreSQL: TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test), a fresh schema bench_<random>.
BullMQ: Redis at ${REDIS.host}:${REDIS.port}; skipped with a message when it doesn't answer within 2 s.
`;

function positiveInt(name: string, raw: string | undefined, fallback: number, min = 1): number {
  if (raw === undefined) return fallback;
  const n = Number(raw.replace(/_/g, ''));
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer ≥ ${min}; got "${raw}"`);
  return n;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      dialect: { type: 'string', default: 'both' },
      customers: { type: 'string' },
      batch: { type: 'string' },
      concurrency: { type: 'string' },
      seed: { type: 'string' },
      'sqlite-sync': { type: 'string', default: 'FULL' },
      'bullmq-sample': { type: 'string' },
      'bullmq-concurrency': { type: 'string', default: '1,10,50,100,200' },
      'skip-bullmq': { type: 'boolean', default: false },
      'cpu-prof': { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const dialect = values.dialect;
  if (dialect !== 'sqlite' && dialect !== 'postgres' && dialect !== 'both') {
    throw new Error(`--dialect must be sqlite, postgres or both; got "${dialect}"`);
  }
  const sync = values['sqlite-sync'].toUpperCase();
  if (sync !== 'FULL' && sync !== 'NORMAL') throw new Error(`--sqlite-sync must be FULL or NORMAL; got "${values['sqlite-sync']}"`);
  const batch = positiveInt('batch', values.batch, 500, 2);
  if (batch > 2500) throw new Error('--batch must be at most 2500 (the /v1/batch limit)');
  const concurrencies = values['bullmq-concurrency'].split(',').map((s) => positiveInt('bullmq-concurrency', s.trim(), 1));
  const customers = values.customers === undefined ? undefined : positiveInt('customers', values.customers, 0);
  return {
    dialects: dialect === 'both' ? ['sqlite', 'postgres'] : [dialect],
    customers: { sqlite: customers ?? DEFAULT_CUSTOMERS.sqlite, postgres: customers ?? DEFAULT_CUSTOMERS.postgres },
    batch,
    concurrency: positiveInt('concurrency', values.concurrency, 4),
    seed: positiveInt('seed', values.seed, 1, 0),
    sqliteSynchronous: sync,
    bullmq: !values['skip-bullmq'],
    bullmqSample: positiveInt('bullmq-sample', values['bullmq-sample'], 20_000),
    bullmqConcurrencies: concurrencies,
    cpuProf: values['cpu-prof'],
    keep: values.keep,
  };
}

// ---------------------------------------------------------------------------------------------
// HTTP: node:http without timeouts (advancing a day for 100,000 customers takes minutes)

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

interface Answer {
  status: number;
  text: string;
}

function request(url: string, method: string, headers: Record<string, string>, body?: string, fresh = false): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const h = body === undefined ? headers : { ...headers, 'content-length': String(Buffer.byteLength(body)) };
    const req = http.request(url, { method, headers: h, agent: fresh ? false : agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A keep-alive socket the server closed while idle fails at once; ingestion dedupes by messageId, so one retry is safe. */
async function call(url: string, method: string, headers: Record<string, string>, body?: string, fresh = false): Promise<Answer> {
  try {
    return await request(url, method, headers, body, fresh);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ECONNRESET' && code !== 'EPIPE') throw err;
    return request(url, method, headers, body, true);
  }
}

const writeHeaders = {
  'content-type': 'application/json',
  authorization: `Basic ${Buffer.from(`${WRITE_KEY}:`).toString('base64')}`,
};
const adminHeaders = { authorization: `Bearer ${SECRET_KEY}` };

async function admin(server: ChildServer, method: string, p: string, body?: unknown, contentType = 'application/json'): Promise<unknown> {
  const text = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
  const headers = text === undefined ? adminHeaders : { ...adminHeaders, 'content-type': contentType };
  // Fresh connection: a clock advance can outlast any keep-alive timeout.
  const res = await call(`${server.url}${p}`, method, headers, text, true);
  if (res.status < 200 || res.status > 299) throw new Error(`${method} ${p} answered ${res.status}: ${res.text.slice(0, 4000)}\n${server.output()}`);
  return JSON.parse(res.text) as unknown;
}

/** Sends the calls in /v1/batch requests of `batch`, `concurrency` in flight; returns seconds. */
async function sendCalls(server: ChildServer, calls: Record<string, unknown>[], opts: Options, label: string): Promise<number> {
  const started = performance.now();
  let next = 0;
  let sent = 0;
  let failure: Error | undefined;
  let nextReport = calls.length / 4;
  const worker = async () => {
    while (next < calls.length && failure === undefined && !interrupted) {
      const chunk = calls.slice(next, next + opts.batch);
      next += chunk.length;
      const body = JSON.stringify({ batch: chunk });
      let res: Answer;
      try {
        res = await call(`${server.url}/v1/batch`, 'POST', writeHeaders, body);
      } catch (err) {
        failure ??= new Error(`POST /v1/batch failed: ${(err as Error).message}\n${server.output()}`);
        return;
      }
      if (res.status !== 200) {
        await new Promise((r) => setTimeout(r, 300)); // the server logs a failure after answering
        failure ??= new Error(`POST /v1/batch answered ${res.status}: ${res.text.slice(0, 4000)}\nserver output:\n${server.output()}`);
        return;
      }
      sent += chunk.length;
      if (sent >= nextReport && calls.length >= 20_000) {
        process.stderr.write(`  ${label}: ${int(sent)} / ${int(calls.length)} events\n`);
        nextReport += calls.length / 4;
      }
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, worker));
  if (interrupted) await new Promise(() => undefined); // the SIGINT handler cleans up and exits
  if (failure) throw failure;
  return (performance.now() - started) / 1000;
}

// ---------------------------------------------------------------------------------------------
// One dialect

function prepare(dialect: DialectName, opts: Options): Promise<Target | string> {
  return prepareTarget(dialect, { prefix: 'chorus-bench-journeys-', sqliteSynchronous: opts.sqliteSynchronous, poolSize: 2, pgUrl: PG_URL, keep: opts.keep, note: '(server pool: CHORUS_PG_POOL_SIZE default 10)' });
}

const count = (row: { n: number | string | bigint } | undefined): number => Number(row?.n ?? 0);

async function countRunSteps(store: Store): Promise<number> {
  return count(await store.db.selectFrom('run_history').select((eb) => eb.fn.coalesce(eb.fn.sum<number>('step_count'), eb.lit(0)).as('n')).executeTakeFirst());
}

/** Waits until the outbox holds nothing queued or being sent. */
async function outboxDrained(store: Store, server: ChildServer): Promise<void> {
  for (;;) {
    const n = count(
      await store.db
        .selectFrom('messages')
        .where('status', 'in', ['queued', 'sending'])
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .executeTakeFirst(),
    );
    if (n === 0) return;
    if (server.process.exitCode !== null) throw new Error(`server exited while ${n} messages were queued:\n${server.output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The server's V8 heap and external memory, from its own /metrics (prom-client's default metrics). */
async function serverHeap(server: ChildServer): Promise<Heap | null> {
  try {
    const res = await call(`${server.url}/metrics`, 'GET', {});
    const read = (name: string) => {
      const m = new RegExp(`^chorus_${name} (\\S+)$`, 'm').exec(res.text);
      return m ? mb(Number(m[1])) : null;
    };
    return { heapUsedMB: read('nodejs_heap_size_used_bytes'), heapTotalMB: read('nodejs_heap_size_total_bytes'), externalMB: read('nodejs_external_memory_bytes') };
  } catch {
    return null;
  }
}

interface Heap {
  heapUsedMB: number | null;
  heapTotalMB: number | null;
  externalMB: number | null;
}

interface Phase {
  seconds: number;
  steps: number;
  /** Server CPU seconds (user + system) in the phase. */
  serverCpu: number | null;
}

interface DayLog {
  day: number;
  logins: number;
  activations: number;
  ingestSeconds: number;
  ingestSteps: number;
  advanceSeconds: number;
  advanceSteps: number;
}

interface Counts {
  runs: number;
  runsByStatus: Record<string, number>;
  runSteps: number;
  runStepsByStep: Record<string, number>;
  messages: number;
  messagesByKey: Record<string, number>;
  messagesSent: number;
  /**
   * Messages with a provider message id: each one delivery. A journey message for the sandbox is delivered
   * in the gate's own write, which stores it `sent` with that id (no capture in `sandbox_messages`).
   */
  deliveries: number;
  /** Sandbox captures (deliveries by the outbox) whose message is not a delivered one: must be none. */
  capturesWithoutDelivery: number;
  timersLeft: number;
  events: number;
  liveProfiles: number;
}

interface Result {
  dialect: DialectName;
  finishedAt: string;
  machine: { node: string; cpus: number; cpuModel: string; platform: string };
  options: { customers: number; batch: number; concurrency: number; seed: number; sqliteSynchronous: string | null; cpuProf: boolean };
  database: string;
  journey: string;
  clock: { start: string; days: number };
  mix: { customers: number; logins: number; activations: Record<string, number>; events: number };
  phases: {
    /** Sign-ups ingested (runs entered, welcome queued) and the outbox drained. */
    entry: Phase;
    /** 14 days: each day's logins and activations ingested, then POST /v1/clock/advance {by: P1D}. */
    advance: Phase & { ingestSeconds: number; ingestSteps: number; clockSeconds: number; clockSteps: number };
    total: Phase;
  };
  days: DayLog[];
  rates: {
    customersPerSecond: number;
    stepsPerSecond: number;
    messagesPerSecond: number;
    sentPerSecond: number;
    /** Steps per second while the clock advanced (timers only, no ingestion). */
    clockStepsPerSecond: number;
    /** Steps per second while logins and activations were ingested. */
    eventStepsPerSecond: number;
    /** Server CPU milliseconds per journey step, over the whole run. */
    serverCpuMsPerStep: number | null;
    /** All postgres processes on this machine during the timed phases (PostgreSQL runs only). */
    postgresCpuMsPerStep: number | null;
  };
  counts: Counts;
  server: { rssPeakMB: number; rssEndMB: number; source: string; heapAfterEntry: Heap | null; heapEnd: Heap | null };
  /** 1-minute load average of the machine at the start and the end of the dialect's run (others may share it). */
  loadAverage: { start: number; end: number };
  bullmq: BullmqResult | { skipped: string } | null;
  ratio: number | null;
  target: { ratio: number; met: boolean | null };
  checks: { ok: boolean; mismatches: string[] };
  bench: { rssPeakMB: number };
}

/** What to undo if the run is interrupted (Ctrl-C, SIGTERM): stop the server, remove the database. */
const onInterrupt = new Set<() => Promise<unknown>>();
let interrupted = false;
for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
  process.once(signal, () => {
    interrupted = true;
    console.error(`\n${signal}: cleaning up`);
    void Promise.allSettled([...onInterrupt].map((f) => f())).then(() => process.exit(code));
  });
}

async function countAll(store: Store): Promise<Counts> {
  const db = store.db;
  const runsByStatus: Record<string, number> = {};
  for (const r of await db.selectFrom('runs').select(['status', (eb) => eb.fn.countAll<number>().as('n')]).groupBy('status').execute()) {
    runsByStatus[r.status] = count(r);
  }
  const runStepsByStep: Record<string, number> = {};
  // Read in pages of history rows (a run and transaction each) and tallied here: the steps are JSON.
  for (let after = 0; ; ) {
    const page = await db.selectFrom('run_history').select(['id', 'steps']).where('id', '>', after).orderBy('id').limit(20_000).execute();
    if (page.length === 0) break;
    for (const h of page) {
      for (const [step, , , outcome] of JSON.parse(h.steps) as [string, string, number, string][]) {
        const key = `${step}/${outcome}`;
        runStepsByStep[key] = (runStepsByStep[key] ?? 0) + 1;
      }
    }
    after = Number(page[page.length - 1].id);
  }
  const messagesByKey: Record<string, number> = {};
  for (const r of await db
    .selectFrom('messages')
    .select(['step', 'status', 'channel', (eb) => eb.fn.countAll<number>().as('n')])
    .groupBy(['step', 'status', 'channel'])
    .orderBy('step')
    .execute()) {
    messagesByKey[`${r.step ?? '-'}/${r.status}/${r.channel ?? '-'}`] = count(r);
  }
  const sum = (o: Record<string, number>) => Object.values(o).reduce((a, b) => a + b, 0);
  return {
    runs: sum(runsByStatus),
    runsByStatus,
    runSteps: sum(runStepsByStep),
    runStepsByStep,
    messages: sum(messagesByKey),
    messagesByKey,
    messagesSent: Object.entries(messagesByKey).reduce((s, [k, v]) => s + (k.split('/')[1] === 'sent' ? v : 0), 0),
    deliveries: count(await db.selectFrom('messages').where('provider_message_id', 'is not', null).select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirst()),
    capturesWithoutDelivery: count(
      await db
        .selectFrom('sandbox_messages')
        .leftJoin('messages', 'messages.id', 'sandbox_messages.message_id')
        .where((eb) => eb.or([eb('messages.id', 'is', null), eb('messages.provider_message_id', 'is', null)]))
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .executeTakeFirst(),
    ),
    timersLeft: count(await db.selectFrom('waits').where('due_at', 'is not', null).select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirst()),
    events: count(await db.selectFrom('events').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirst()),
    liveProfiles: count(
      await db.selectFrom('profiles').where('merged_into', 'is', null).select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirst(),
    ),
  };
}

function check(expected: Expected, c: Counts): string[] {
  const bad: string[] = [];
  const eq = (what: string, actual: number, want: number) => {
    if (actual !== want) bad.push(`${what}: ${int(actual)}, expected ${int(want)}`);
  };
  eq('runs', c.runs, expected.customers);
  eq('runs converted', c.runsByStatus.converted ?? 0, expected.runs.converted);
  eq('runs completed', c.runsByStatus.completed ?? 0, expected.runs.completed);
  for (const s of Object.keys(c.runsByStatus)) if (s !== 'converted' && s !== 'completed') eq(`runs ${s}`, c.runsByStatus[s], 0);
  eq('run history steps', c.runSteps, expected.runSteps);
  for (const key of new Set([...Object.keys(expected.messages), ...Object.keys(c.messagesByKey)])) {
    eq(`messages ${key}`, c.messagesByKey[key] ?? 0, expected.messages[key] ?? 0);
  }
  eq('deliveries (messages with a provider message id)', c.deliveries, expected.messagesSent);
  eq('sandbox captures without a delivered message', c.capturesWithoutDelivery, 0);
  eq('timers left', c.timersLeft, 0);
  eq('events stored', c.events, expected.events);
  eq('live profiles', c.liveProfiles, expected.customers);
  return bad;
}

/** The BullMQ concurrency found on the first dialect is reused for the second (no second round of trials). */
let bestConcurrency: number | undefined;

async function runDialect(dialect: DialectName, opts: Options): Promise<Result | null> {
  const n = opts.customers[dialect];
  const target = await prepare(dialect, opts);
  if (typeof target === 'string') {
    console.log(`\n[${dialect}] SKIPPED: ${target}\n`);
    return null;
  }
  console.log(`\n[${dialect}] ${int(n)} customers; ${target.where}`);
  const profDir = opts.cpuProf ? fs.mkdtempSync(path.join(os.tmpdir(), 'chorus-bench-prof-')) : undefined;
  let server: ChildServer | undefined;
  let probe: Store | undefined;
  const undo = async () => {
    await server?.stop();
    await probe?.close();
    await target.cleanup();
  };
  onInterrupt.add(undo);
  try {
    const loadStart = os.loadavg()[0];
    const customers: Customer[] = Array.from({ length: n }, (_, i) => customer(opts.seed, i));
    const expected = expectedOf(customers);

    server = await spawnServer({
      env: { ...target.env, CHORUS_WRITE_KEY: WRITE_KEY, CHORUS_SECRET_KEY: SECRET_KEY, CHORUS_VIRTUAL_CLOCK: START },
      cpuProfDir: profDir,
    });
    const rss = new RssSampler(server);
    rss.start();
    const srv = server;
    const cpu = () => procCpuSeconds(srv.pid);
    const pgCpu = () => (dialect === 'postgres' ? postgresCpuSeconds() : null);
    const cpuDiff = (a: number | null, b: number | null) => (a !== null && b !== null ? round(b - a, 2) : null);

    await admin(server, 'POST', '/v1/journeys', fs.readFileSync(JOURNEY_FILE, 'utf8'), 'application/yaml');
    const published = (await admin(server, 'POST', '/v1/journeys/onboarding/publish')) as { version: number };
    const clock0 = (await admin(server, 'GET', '/v1/clock')) as { now: string };
    console.log(`[${dialect}] journey onboarding v${published.version} published; virtual clock ${clock0.now}`);
    // A second connection to the same database, for counting between phases (SQLite: WAL readers don't block the writer).
    probe = await openStore(target.config);

    // Phase A: entry.
    const cpu0 = cpu();
    const pg0 = pgCpu();
    const t0 = performance.now();
    await sendCalls(server, customers.flatMap(signUpCalls), opts, 'sign-ups');
    await outboxDrained(probe, server);
    const entrySeconds = (performance.now() - t0) / 1000;
    const entrySteps = await countRunSteps(probe);
    const cpu1 = cpu();
    const heapAfterEntry = await serverHeap(server);
    console.log(`[${dialect}] entry: ${int(n)} customers in ${entrySeconds.toFixed(1)} s, ${int(entrySteps)} steps`);

    // Phase B: 14 days.
    const days: DayLog[] = [];
    // The phase's time is the sum of its timed parts: the step counts taken between them are the bench's
    // own queries (a sum over every run history row), with the server idle.
    let timed = 0;
    let steps = entrySteps;
    for (let day = 0; day < DAYS; day++) {
      const logins = customers.filter((c) => c.loginDay === day);
      const activations = customers.filter((c) => c.activationDay === day);
      const d0 = performance.now();
      // Logins first: a customer who activates today has logged in before.
      if (logins.length > 0) await sendCalls(server, logins.map(loginCall), opts, `day ${day} logins`);
      if (activations.length > 0) await sendCalls(server, activations.map(activationCall), opts, `day ${day} activations`);
      const ingestSeconds = (performance.now() - d0) / 1000;
      const afterIngest = logins.length + activations.length > 0 ? await countRunSteps(probe) : steps;
      const d1 = performance.now();
      const moved = (await admin(server, 'POST', '/v1/clock/advance', { by: 'P1D' })) as { now: string };
      const advanceSeconds = (performance.now() - d1) / 1000;
      timed += ingestSeconds + advanceSeconds;
      const afterAdvance = await countRunSteps(probe);
      const log: DayLog = {
        day,
        logins: logins.length,
        activations: activations.length,
        ingestSeconds: round(ingestSeconds, 3),
        ingestSteps: afterIngest - steps,
        advanceSeconds: round(advanceSeconds, 3),
        advanceSteps: afterAdvance - afterIngest,
      };
      steps = afterAdvance;
      days.push(log);
      process.stderr.write(
        `  day ${String(day).padStart(2)}: ${int(log.logins)} logins, ${int(log.activations)} activations (${ingestSeconds.toFixed(1)} s, +${int(log.ingestSteps)} steps); ` +
          `advance to ${moved.now} ${advanceSeconds.toFixed(1)} s, +${int(log.advanceSteps)} steps\n`,
      );
    }
    const t2 = performance.now();
    await outboxDrained(probe, server);
    const advanceSeconds = timed + (performance.now() - t2) / 1000;
    const cpu2 = cpu();
    const pg2 = pgCpu();
    const heapEnd = await serverHeap(server);
    const loadEnd = os.loadavg()[0];
    await probe.close();
    probe = undefined;

    await rss.stop();
    const code = await server.stop();
    if (code !== 0) console.warn(`[${dialect}] server exited with ${code}:\n${server.output()}`);
    if (profDir) {
      const file = mainProfile(profDir);
      if (file) console.log(summarizeProfile(file, 30));
      else console.log(`no CPU profile was written in ${profDir}`);
    }

    const store = await openStore(target.config);
    let counts: Counts;
    try {
      counts = await countAll(store);
    } finally {
      await store.close();
    }
    const mismatches = check(expected, counts);

    let bullmq: Result['bullmq'] = null;
    if (opts.bullmq) {
      console.log(`[${dialect}] BullMQ baseline: ${int(counts.runSteps)} no-op jobs (one per journey step) on ${REDIS.host}:${REDIS.port}`);
      bullmq = await runBullmqBaseline({
        ...REDIS,
        jobs: counts.runSteps,
        sampleJobs: Math.min(opts.bullmqSample, counts.runSteps),
        concurrencies: opts.bullmqConcurrencies,
        concurrency: opts.bullmqConcurrencies.length === 1 ? opts.bullmqConcurrencies[0] : bestConcurrency,
        log: (line) => console.log(line),
      });
      if ('skipped' in bullmq) console.log(`[${dialect}] BullMQ SKIPPED: ${bullmq.skipped}`);
      else bestConcurrency ??= bullmq.process.concurrency;
    }

    const clockSeconds = days.reduce((s, d) => s + d.advanceSeconds, 0);
    const clockSteps = days.reduce((s, d) => s + d.advanceSteps, 0);
    const ingestSeconds = days.reduce((s, d) => s + d.ingestSeconds, 0);
    const ingestSteps = days.reduce((s, d) => s + d.ingestSteps, 0);
    const totalSeconds = entrySeconds + advanceSeconds;
    const serverCpu = cpuDiff(cpu0, cpu2);
    const stepsPerSecond = counts.runSteps / totalSeconds;
    const ratio = bullmq && !('skipped' in bullmq) ? stepsPerSecond / bullmq.process.jobsPerSecond : null;
    const result: Result = {
      dialect,
      finishedAt: new Date().toISOString(),
      machine: { node: process.version, cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown', platform: `${os.platform()} ${os.release()}` },
      options: {
        customers: n,
        batch: opts.batch,
        concurrency: opts.concurrency,
        seed: opts.seed,
        sqliteSynchronous: dialect === 'sqlite' ? opts.sqliteSynchronous : null,
        cpuProf: opts.cpuProf,
      },
      database: target.where,
      journey: path.relative(ROOT, JOURNEY_FILE),
      clock: { start: START, days: DAYS },
      mix: { customers: expected.customers, logins: expected.logins, activations: expected.activations, events: expected.events },
      phases: {
        entry: { seconds: round(entrySeconds, 3), steps: entrySteps, serverCpu: cpuDiff(cpu0, cpu1) },
        advance: {
          seconds: round(advanceSeconds, 3),
          steps: counts.runSteps - entrySteps,
          serverCpu: cpuDiff(cpu1, cpu2),
          ingestSeconds: round(ingestSeconds, 3),
          ingestSteps,
          clockSeconds: round(clockSeconds, 3),
          clockSteps,
        },
        total: { seconds: round(totalSeconds, 3), steps: counts.runSteps, serverCpu },
      },
      days,
      rates: {
        customersPerSecond: Math.round(n / entrySeconds),
        stepsPerSecond: Math.round(stepsPerSecond),
        messagesPerSecond: Math.round(counts.messages / totalSeconds),
        sentPerSecond: Math.round(counts.messagesSent / totalSeconds),
        clockStepsPerSecond: Math.round(clockSteps / Math.max(clockSeconds, 1e-9)),
        eventStepsPerSecond: Math.round(ingestSteps / Math.max(ingestSeconds, 1e-9)),
        serverCpuMsPerStep: serverCpu === null ? null : round((serverCpu * 1000) / counts.runSteps, 3),
        postgresCpuMsPerStep: pg0 === null || pg2 === null ? null : round(((pg2 - pg0) * 1000) / counts.runSteps, 3),
      },
      counts,
      server: { rssPeakMB: mb(rss.peak), rssEndMB: mb(rss.last), source: rss.source, heapAfterEntry, heapEnd },
      loadAverage: { start: round(loadStart, 2), end: round(loadEnd, 2) },
      bullmq,
      ratio: ratio === null ? null : round(ratio, 3),
      target: { ratio: TARGET_RATIO, met: ratio === null ? null : ratio >= TARGET_RATIO },
      checks: { ok: mismatches.length === 0, mismatches },
      bench: { rssPeakMB: mb(process.resourceUsage().maxRSS * 1024) },
    };
    print(result, expected);
    fs.mkdirSync(RESULTS_DIR, { recursive: true });
    const out = path.join(RESULTS_DIR, `journeys-${dialect}.json`);
    fs.writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
    console.log(`wrote ${path.relative(process.cwd(), out)}`);
    return result;
  } finally {
    onInterrupt.delete(undo);
    if (server) await server.stop().catch(() => undefined);
    await probe?.close().catch(() => undefined);
    await target.cleanup();
    if (profDir && !opts.keep) fs.rmSync(profDir, { recursive: true, force: true });
  }
}

function print(r: Result, expected: Expected): void {
  const pct = (x: number) => `${round((100 * x) / r.mix.customers, 1)}%`;
  const p = r.phases;
  const rows: [string, string][] = [
    ['customers', `${int(r.mix.customers)} sign up on day 0; ${pct(r.mix.logins)} log in on day 0–2; activate: ${Object.entries(r.mix.activations).map(([d, x]) => `${d.replace('day', 'day ')} ${pct(x)}`).join(', ')}`],
    ['events ingested', `${int(r.mix.events)} in /v1/batch requests of ≤${r.options.batch}, ${r.options.concurrency} in flight`],
    ['runs', Object.entries(r.counts.runsByStatus).map(([s, x]) => `${s} ${int(x)}`).join(', ')],
    ['journey steps (run history)', int(r.counts.runSteps)],
    ['messages (ledger)', `${int(r.counts.messages)}: ${Object.entries(r.counts.messagesByKey).map(([k, x]) => `${k} ${int(x)}`).join(', ')}`],
    ['entry (sign-ups, drained)', `${p.entry.seconds.toFixed(1)} s, ${int(p.entry.steps)} steps, server CPU ${p.entry.serverCpu ?? '?'} s`],
    [
      'advance (14 days)',
      `${p.advance.seconds.toFixed(1)} s, ${int(p.advance.steps)} steps, server CPU ${p.advance.serverCpu ?? '?'} s ` +
        `(events ${p.advance.ingestSeconds.toFixed(1)} s / ${int(p.advance.ingestSteps)} steps; clock ${p.advance.clockSeconds.toFixed(1)} s / ${int(p.advance.clockSteps)} steps)`,
    ],
    ['customers/s (entry)', int(r.rates.customersPerSecond)],
    ['steps/s (all steps ÷ entry + advance)', int(r.rates.stepsPerSecond)],
    ['  steps/s while the clock advances', int(r.rates.clockStepsPerSecond)],
    ['  steps/s while events are ingested', int(r.rates.eventStepsPerSecond)],
    ['messages/s (ledger rows; sent)', `${int(r.rates.messagesPerSecond)}; ${int(r.rates.sentPerSecond)}`],
    ['server CPU per step', `${r.rates.serverCpuMsPerStep ?? '?'} ms${r.rates.postgresCpuMsPerStep === null ? '' : ` (+ PostgreSQL ${r.rates.postgresCpuMsPerStep} ms: all its processes on this machine)`}`],
    ['server RSS peak / end', `${r.server.rssPeakMB} MB / ${r.server.rssEndMB} MB`],
    ['server V8 heap used / total', heapLine(r.server.heapAfterEntry, 'after entry') + '; ' + heapLine(r.server.heapEnd, 'at the end')],
    ['machine load average (1 min)', `${r.loadAverage.start} at start, ${r.loadAverage.end} at the end, on ${r.machine.cpus} CPUs`],
  ];
  const b = r.bullmq;
  if (b === null) rows.push(['BullMQ', 'not run (--skip-bullmq)']);
  else if ('skipped' in b) rows.push(['BullMQ', `SKIPPED: ${b.skipped}`]);
  else {
    rows.push(['BullMQ add (addBulk ×1000)', `${int(b.add.jobsPerSecond)} jobs/s (${b.add.seconds.toFixed(1)} s)`]);
    rows.push(['BullMQ process (no-op)', `${int(b.process.jobsPerSecond)} jobs/s at concurrency ${b.process.concurrency} (${b.process.seconds.toFixed(1)} s; Redis ${b.redis.version}, ${b.redis.persistence})`]);
    if (b.trials.length > 0) rows.push(['BullMQ trials', b.trials.map((t) => `${t.concurrency}: ${int(t.jobsPerSecond)}`).join(', ')]);
    // CPU per unit of work on both sides: the engine's server process against BullMQ's worker plus Redis.
    const perJob = (sec: number) => `${((sec * 1000) / b.jobs).toFixed(3)} ms`;
    const redis = b.redisCpuSeconds === null ? 'Redis not reported' : `Redis ${perJob(b.redisCpuSeconds)}`;
    const engine = `${r.rates.serverCpuMsPerStep ?? '?'} ms${r.rates.postgresCpuMsPerStep === null ? '' : ` + PostgreSQL ${r.rates.postgresCpuMsPerStep} ms`}`;
    rows.push(['BullMQ CPU per job', `worker ${perJob(b.workerCpuSeconds)} + ${redis} (engine: ${engine} per step)`]);
    const verdict = r.target.met ? 'target met' : 'BELOW the target';
    rows.push(['ratio steps/s ÷ BullMQ jobs/s', `${r.ratio?.toFixed(3)}  (${verdict}: ≥ ${TARGET_RATIO})`]);
  }
  rows.push([
    'checks',
    r.checks.ok
      ? `ok: runs, ${int(expected.runSteps)} steps, ${int(expected.messagesTotal)} messages by step/status/channel, deliveries, events, profiles match the mix`
      : `MISMATCH: ${r.checks.mismatches.join('; ')}`,
  ]);
  rows.push(['bench process RSS peak', `${r.bench.rssPeakMB} MB`]);
  console.log('\n' + table(`journeys on ${r.dialect}: ${r.database}`, rows));
}

function heapLine(h: Heap | null, when: string): string {
  if (!h) return `? ${when}`;
  return `${h.heapUsedMB ?? '?'} / ${h.heapTotalMB ?? '?'} MB ${when} (external ${h.externalMB ?? '?'} MB)`;
}

function summary(results: Result[]): void {
  if (results.length === 0) return;
  const head = ['dialect', 'customers', 'steps', 'messages', 'entry s', 'advance s', 'customers/s', 'steps/s', 'messages/s', 'RSS MB', 'BullMQ jobs/s', 'ratio', 'target'];
  const rows = results.map((r) => {
    const b = r.bullmq && !('skipped' in r.bullmq) ? r.bullmq : null;
    return [
      r.dialect,
      int(r.mix.customers),
      int(r.counts.runSteps),
      int(r.counts.messages),
      r.phases.entry.seconds.toFixed(1),
      r.phases.advance.seconds.toFixed(1),
      int(r.rates.customersPerSecond),
      int(r.rates.stepsPerSecond),
      int(r.rates.messagesPerSecond),
      String(r.server.rssPeakMB),
      b ? `${int(b.process.jobsPerSecond)} (c=${b.process.concurrency})` : 'skipped',
      r.ratio === null ? '-' : r.ratio.toFixed(2),
      r.target.met === null ? '-' : r.target.met ? 'met' : 'NOT met',
    ];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  console.log(`\nsummary\n${line(head)}\n${widths.map((w) => '─'.repeat(w)).join('  ')}\n${rows.map(line).join('\n')}`);
}

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  console.log(
    `chorus journeys bench: ${opts.dialects.map((d) => `${int(opts.customers[d])} customers on ${d}`).join(', ')}; ` +
      `onboarding journey, virtual clock from ${START} through ${DAYS} days; batches of ${opts.batch}, ${opts.concurrency} in flight, ` +
      `seed ${opts.seed}; SQLite synchronous=${opts.sqliteSynchronous}; ${os.cpus().length} CPUs, node ${process.version}`,
  );
  const results: Result[] = [];
  for (const dialect of opts.dialects) {
    const r = await runDialect(dialect, opts);
    if (r) results.push(r);
  }
  summary(results);
  agent.destroy();
  if (results.some((r) => !r.checks.ok)) {
    console.error('\ncorrectness checks FAILED (see MISMATCH above)');
    process.exitCode = 1;
  }
}

main().catch((err: unknown) => {
  console.error(`bench:journeys: ${(err as Error).stack ?? String(err)}`);
  process.exit(1);
});
