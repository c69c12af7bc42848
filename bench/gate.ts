// npm run bench:gate -- [--dialect sqlite|postgres|both] [--customers N] [--sends N] [--concurrency C] [--rate R] [--duration S]
//
// The send gate on a real `chorus start` process (a child, so its memory and CPU are its own), on the wall
// clock: gate decisions per second through POST /v1/messages (channel selection, consent, suppression
// rules, quiet hours and frequency caps included) for N customers with a realistic history, and the p50/p99
// latency from POST /v1/messages to the provider call at a steady request rate. Printed beside the same
// database's plain single-row INSERTs/s, measured in the same run. See bench/README.md.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { openStore, type Store } from '../src/store/db.js';
import { closeAgent, request } from './lib/gate-http.js';
import { runBaseline, writeHistory, type BaselineResult, type HistoryResult } from './lib/gate-history.js';
import { BENCH_SETTINGS, identifyCall, sendBody, SUPPORT_TICKET_SHARE, userIdOf, WHATSAPP_INBOUND_SHARE, type SendKind } from './lib/gate-mix.js';
import { mainProfile, summarizeProfile } from './lib/profile.js';
import { Rng } from './lib/random.js';
import { int, mb, percentile, round, table } from './lib/report.js';
import { prepareTarget, type DialectName, type Target } from './lib/target.js';
import { procCpuSeconds, RssSampler, spawnServer, type ChildServer } from './lib/server.js';

const WRITE_KEY = 'wk_bench_write_key_000000000000';
const SECRET_KEY = 'sk_bench_secret_key_00000000000';
const PG_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const RESULTS_DIR = path.resolve(import.meta.dirname, 'results');


interface Options {
  dialects: DialectName[];
  customers: number;
  sends: number;
  warmup: number;
  concurrency: number;
  rate: number;
  duration: number;
  baselineRows: number;
  seed: number;
  sqliteSynchronous: 'FULL' | 'NORMAL';
  cpuProf: boolean;
  keep: boolean;
}

const USAGE = `Usage: npm run bench:gate -- [options]

  --dialect sqlite|postgres|both   database(s) to run on (default both)
  --customers N                    customers, each with a send history (default 100000)
  --sends N                        POST /v1/messages for the throughput phase, after the warm-up (default 20000)
  --warmup N                       sends first, not counted (default min(1000, sends/10))
  --concurrency C                  requests in flight in the throughput phase (default 32)
  --rate R                         requests per second in the latency phase (default 500)
  --duration S                     seconds of the latency phase (default 20)
  --baseline-rows N                single-row INSERTs of the baseline (default 10000)
  --seed S                         seed of customers, history and sends (default 1)
  --sqlite-sync FULL|NORMAL        CHORUS_SQLITE_SYNCHRONOUS of the server and the baseline (default FULL)
  --cpu-prof                       profile the server and print a summary
  --keep                           keep the SQLite directory / PostgreSQL schema afterwards
PostgreSQL: TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test), a fresh schema bench_<random>.
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
      sends: { type: 'string' },
      warmup: { type: 'string' },
      concurrency: { type: 'string' },
      rate: { type: 'string' },
      duration: { type: 'string' },
      'baseline-rows': { type: 'string' },
      seed: { type: 'string' },
      'sqlite-sync': { type: 'string', default: 'FULL' },
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
  if (dialect !== 'sqlite' && dialect !== 'postgres' && dialect !== 'both') throw new Error(`--dialect must be sqlite, postgres or both; got "${dialect}"`);
  const sync = values['sqlite-sync'].toUpperCase();
  if (sync !== 'FULL' && sync !== 'NORMAL') throw new Error(`--sqlite-sync must be FULL or NORMAL; got "${values['sqlite-sync']}"`);
  const sends = positiveInt('sends', values.sends, 20_000);
  return {
    dialects: dialect === 'both' ? ['sqlite', 'postgres'] : [dialect],
    customers: positiveInt('customers', values.customers, 100_000),
    sends,
    warmup: positiveInt('warmup', values.warmup, Math.min(1000, Math.floor(sends / 10)), 0),
    concurrency: positiveInt('concurrency', values.concurrency, 32),
    rate: positiveInt('rate', values.rate, 500),
    duration: positiveInt('duration', values.duration, 20),
    baselineRows: positiveInt('baseline-rows', values['baseline-rows'], 10_000),
    seed: positiveInt('seed', values.seed, 1, 0),
    sqliteSynchronous: sync,
    cpuProf: values['cpu-prof'],
    keep: values.keep,
  };
}

// ---------------------------------------------------------------------------------------------------------
// HTTP

const secretHeaders = { 'content-type': 'application/json', authorization: `Bearer ${SECRET_KEY}` };
const writeHeaders = { 'content-type': 'application/json', authorization: `Basic ${Buffer.from(`${WRITE_KEY}:`).toString('base64')}` };

const post = (url: string, headers: Record<string, string>, body: unknown) => request(url, 'POST', headers, body);

async function putSettings(server: ChildServer): Promise<void> {
  const res = await request(`${server.url}/v1/settings`, 'PUT', secretHeaders, BENCH_SETTINGS);
  if (res.status !== 200) throw new Error(`PUT /v1/settings answered ${res.status}: ${res.text}`);
}

/** Sends Segment calls in /v1/batch requests of `batch`, `concurrency` in flight. */
async function ingestAll(server: ChildServer, calls: (i: number) => Record<string, unknown>, total: number, batch: number, concurrency: number, label: string): Promise<number> {
  const started = performance.now();
  let next = 0;
  let done = 0;
  let report = total / 4;
  const worker = async () => {
    while (next < total && !interrupted) {
      const from = next;
      next = Math.min(total, next + batch);
      const body = { batch: Array.from({ length: next - from }, (_, k) => calls(from + k)), sentAt: new Date().toISOString() };
      const res = await post(`${server.url}/v1/batch`, writeHeaders, body);
      if (res.status !== 200) throw new Error(`POST /v1/batch answered ${res.status}: ${res.text.slice(0, 2000)}`);
      done += body.batch.length;
      if (done >= report && total >= 10_000) {
        log(`  ${label}: ${int(done)} / ${int(total)}`);
        report += total / 4;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return (performance.now() - started) / 1000;
}

interface SendOutcome {
  /** sent (queued, sending or already sent when the answer was read), suppressed, deferred or failed */
  outcome: string;
  rule: string;
  channel: string | null;
  id: string;
}

function outcomeOf(text: string): SendOutcome {
  const m = JSON.parse(text) as { id: string; status: string; channel: string | null; decision: { rule?: string } | null };
  const outcome = ['queued', 'sending', 'sent'].includes(m.status) ? 'sent' : m.status;
  return { outcome, rule: m.decision?.rule ?? '?', channel: m.channel, id: m.id };
}

async function sendOne(server: ChildServer, body: Record<string, unknown>): Promise<SendOutcome> {
  const res = await post(`${server.url}/v1/messages`, secretHeaders, body);
  if (res.status !== 201 && res.status !== 200) throw new Error(`POST /v1/messages answered ${res.status}: ${res.text.slice(0, 2000)}\nbody: ${JSON.stringify(body)}`);
  return outcomeOf(res.text);
}

type Mix = Record<string, number>;
const tally = (mix: Mix, key: string) => (mix[key] = (mix[key] ?? 0) + 1);
const mixKey = (o: SendOutcome) => (o.outcome === 'sent' ? `sent via ${o.channel}` : `${o.outcome} by ${o.rule}`);

// ---------------------------------------------------------------------------------------------------------
// Phases

interface ThroughputResult {
  sends: number;
  seconds: number;
  decisionsPerSecond: number;
  latencyMs: { p50: number; p99: number; max: number };
  mix: Mix;
  byKind: Record<SendKind, Mix>;
  serverCpuSeconds: number | null;
  drainSeconds: number;
}

/** Closed loop: `concurrency` workers send `total` messages as fast as the server answers. */
async function throughput(server: ChildServer, rng: Rng, customers: number, total: number, concurrency: number): Promise<Omit<ThroughputResult, 'drainSeconds'>> {
  const latencies: number[] = [];
  const mix: Mix = {};
  const byKind = {} as Record<SendKind, Mix>;
  let remaining = total;
  const cpu0 = procCpuSeconds(server.pid);
  const started = performance.now();
  let report = total / 4;
  const worker = async () => {
    while (remaining > 0 && !interrupted) {
      remaining--;
      const { kind, body } = sendBody(rng, customers);
      const t0 = performance.now();
      const o = await sendOne(server, body);
      latencies.push(performance.now() - t0);
      tally(mix, mixKey(o));
      tally((byKind[kind] ??= {}), mixKey(o));
      if (latencies.length >= report && total >= 4_000) {
        log(`  ${int(latencies.length)} / ${int(total)} sends, ${int(latencies.length / ((performance.now() - started) / 1000))}/s`);
        report += total / 4;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - started) / 1000;
  const cpu1 = procCpuSeconds(server.pid);
  latencies.sort((a, b) => a - b);
  return {
    sends: latencies.length,
    seconds,
    decisionsPerSecond: latencies.length / seconds,
    latencyMs: { p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99), max: latencies[latencies.length - 1] ?? NaN },
    mix,
    byKind,
    serverCpuSeconds: cpu0 !== null && cpu1 !== null ? cpu1 - cpu0 : null,
  };
}

/** Waits until the outbox has nothing queued or in flight (bounded); returns the seconds it took. */
async function drained(store: Store, limitSeconds = 3_600): Promise<number> {
  const started = performance.now();
  let said = started;
  for (;;) {
    const row = await store.db
      .selectFrom('messages')
      .select((eb) => eb.fn.countAll<number | string>().as('n'))
      .where('status', 'in', ['queued', 'sending'])
      .executeTakeFirstOrThrow();
    if (Number(row.n) === 0) return (performance.now() - started) / 1000;
    if ((performance.now() - started) / 1000 > limitSeconds) throw new Error(`the outbox still holds ${row.n} messages after ${limitSeconds} s`);
    if (performance.now() - said > 15_000) {
      log(`  waiting for the outbox: ${int(Number(row.n))} messages queued or sending`);
      said = performance.now();
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface LatencyResult {
  rate: number;
  duration: number;
  requests: number;
  achievedRate: number;
  /** POST /v1/messages start (bench wall clock) → sandbox provider capture (server wall clock), ms; sent messages only. */
  toProviderMs: { n: number; p50: number; p99: number; max: number; mean: number };
  responseMs: { p50: number; p99: number; max: number };
  /** How late the client fired requests against their schedule (open loop), ms. */
  clientLagMs: { p99: number; max: number };
  /** Requests that got no 2xx answer (refused, reset, timed out), with the first error. */
  errors: number;
  firstError: string | null;
  mix: Mix;
  serverCpuSeconds: number | null;
  drainSeconds: number;
}

/** Open loop: request i starts at t0 + i/rate whatever happened to the earlier ones. */
async function latency(server: ChildServer, store: Store, rng: Rng, customers: number, rate: number, duration: number): Promise<LatencyResult> {
  const total = rate * duration;
  const interval = 1000 / rate;
  const startWall = new Float64Array(total);
  const responses: number[] = [];
  const lags: number[] = [];
  const outcomes: (SendOutcome | undefined)[] = new Array(total);
  const inflight: Promise<void>[] = [];
  let errors = 0;
  let firstError: string | null = null;
  const cpu0 = procCpuSeconds(server.pid);
  const t0 = performance.now() + 20;
  let i = 0;
  const fire = (n: number, lag: number) => {
    const { body } = sendBody(rng, customers);
    lags.push(lag);
    startWall[n] = Date.now();
    const p0 = performance.now();
    inflight.push(
      sendOne(server, body).then(
        (o) => {
          responses.push(performance.now() - p0);
          outcomes[n] = o;
        },
        (err: unknown) => {
          errors++;
          firstError ??= (err as Error).message.slice(0, 500);
        },
      ),
    );
  };
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now();
      while (i < total && t0 + i * interval <= now && !interrupted) {
        fire(i, now - (t0 + i * interval));
        i++;
      }
      if (i >= total || interrupted) return resolve();
      setTimeout(tick, Math.max(0, t0 + i * interval - performance.now()));
    };
    tick();
  });
  const firedSeconds = (performance.now() - t0) / 1000;
  const progress = setInterval(() => log(`  ${int(responses.length + errors)} / ${int(total)} answered`), 15_000);
  await Promise.all(inflight).finally(() => clearInterval(progress));
  const cpu1 = procCpuSeconds(server.pid);
  const drainSeconds = await drained(store);

  const mix: Mix = {};
  const sentIds: string[] = [];
  const startOf = new Map<string, number>();
  outcomes.forEach((o, n) => {
    if (!o) return;
    tally(mix, mixKey(o));
    if (o.outcome === 'sent') {
      sentIds.push(o.id);
      startOf.set(o.id, startWall[n]);
    }
  });
  const toProvider: number[] = [];
  for (let k = 0; k < sentIds.length; k += 1_000) {
    const rows = await store.db.selectFrom('sandbox_messages').select(['message_id', 'captured_at']).where('message_id', 'in', sentIds.slice(k, k + 1_000)).execute();
    for (const r of rows) toProvider.push(r.captured_at - startOf.get(r.message_id)!);
  }
  toProvider.sort((a, b) => a - b);
  responses.sort((a, b) => a - b);
  lags.sort((a, b) => a - b);
  return {
    rate,
    duration,
    requests: total,
    achievedRate: total / firedSeconds,
    toProviderMs: {
      n: toProvider.length,
      p50: percentile(toProvider, 0.5),
      p99: percentile(toProvider, 0.99),
      max: toProvider[toProvider.length - 1] ?? NaN,
      mean: toProvider.reduce((s, x) => s + x, 0) / Math.max(1, toProvider.length),
    },
    responseMs: { p50: percentile(responses, 0.5), p99: percentile(responses, 0.99), max: responses[responses.length - 1] ?? NaN },
    clientLagMs: { p99: percentile(lags, 0.99), max: lags[lags.length - 1] ?? NaN },
    errors,
    firstError,
    mix,
    serverCpuSeconds: cpu0 !== null && cpu1 !== null ? cpu1 - cpu0 : null,
    drainSeconds,
  };
}

// ---------------------------------------------------------------------------------------------------------
// One dialect

function prepare(dialect: DialectName, opts: Options): Promise<Target | string> {
  return prepareTarget(dialect, { prefix: 'chorus-bench-gate-', sqliteSynchronous: opts.sqliteSynchronous, poolSize: 4, pgUrl: PG_URL, keep: opts.keep });
}

interface Result {
  dialect: DialectName;
  finishedAt: string;
  startedAtUtc: string;
  machine: { node: string; cpus: number; cpuModel: string; platform: string };
  options: Omit<Options, 'dialects' | 'keep'>;
  database: string;
  setup: { customers: number; identifySeconds: number; trackEvents: number; history: HistoryResult };
  throughput: ThroughputResult;
  latency: LatencyResult;
  baseline: BaselineResult;
  /** gate decisions/s ÷ baseline single-row inserts/s */
  ratio: number;
  server: { rssPeakMB: number; rssEndMB: number; source: string };
}

const onInterrupt = new Set<() => Promise<unknown>>();
let interrupted = false;
process.once('SIGINT', () => {
  interrupted = true;
  console.error('\ninterrupted: cleaning up');
  void Promise.allSettled([...onInterrupt].map((f) => f())).then(() => process.exit(130));
});

const log = (s: string) => process.stderr.write(`${s}\n`);

async function runDialect(dialect: DialectName, opts: Options): Promise<Result | null> {
  const target = await prepare(dialect, opts);
  if (typeof target === 'string') {
    console.log(`\n[${dialect}] SKIPPED: ${target}\n`);
    return null;
  }
  console.log(`\n[${dialect}] ${target.where}`);
  const profDir = opts.cpuProf ? fs.mkdtempSync(path.join(os.tmpdir(), 'chorus-bench-prof-')) : undefined;
  let server: ChildServer | undefined;
  let store: Store | undefined;
  const undo = async () => {
    await server?.stop();
    await store?.close();
    await target.cleanup();
  };
  onInterrupt.add(undo);
  const startedAtUtc = new Date().toISOString();
  try {
    // The wall clock (no CHORUS_VIRTUAL_CLOCK): the sandbox's captured_at is then wall time, comparable with
    // this process's request start times.
    server = await spawnServer({ env: { ...target.env, CHORUS_WRITE_KEY: WRITE_KEY, CHORUS_SECRET_KEY: SECRET_KEY }, cpuProfDir: profDir });
    const rss = new RssSampler(server);
    rss.start();
    await putSettings(server);

    // Setup: customers, a few events the gate looks at, and the send history.
    log(`[${dialect}] identifying ${int(opts.customers)} customers`);
    const identifySeconds = await ingestAll(server, (n) => identifyCall(n, opts.seed), opts.customers, 500, 4, 'identify');
    const events = new Rng(opts.seed + 17);
    const tracked: Record<string, unknown>[] = [];
    for (let n = 0; n < opts.customers; n++) {
      const at = new Date(Date.now() - events.int(40 * 3_600_000)).toISOString();
      if (events.chance(SUPPORT_TICKET_SHARE)) tracked.push({ type: 'track', userId: userIdOf(n), event: 'Support Ticket Opened', messageId: `st-${opts.seed}-${n}`, timestamp: at });
      if (events.chance(WHATSAPP_INBOUND_SHARE)) tracked.push({ type: 'track', userId: userIdOf(n), event: 'WhatsApp Message Received', messageId: `wa-${opts.seed}-${n}`, timestamp: at });
    }
    await ingestAll(server, (i) => tracked[i], tracked.length, 500, 4, 'events');
    store = await openStore(target.config);
    log(`[${dialect}] writing the send history`);
    const history = await writeHistory(store, opts.seed, Date.now(), log);

    const rng = new Rng(opts.seed + 101);
    if (opts.warmup > 0) {
      log(`[${dialect}] warm-up: ${int(opts.warmup)} sends`);
      await throughput(server, rng, opts.customers, opts.warmup, opts.concurrency);
      await drained(store);
    }
    log(`[${dialect}] throughput: ${int(opts.sends)} sends, ${opts.concurrency} in flight`);
    const tp = await throughput(server, rng, opts.customers, opts.sends, opts.concurrency);
    const tpDrain = await drained(store);
    log(`[${dialect}] latency: ${opts.rate} requests/s for ${opts.duration} s`);
    const lat = await latency(server, store, rng, opts.customers, opts.rate, opts.duration);

    await rss.stop();
    const code = await server.stop();
    if (code !== 0) console.warn(`[${dialect}] server exited with ${code}:\n${server.output()}`);
    if (profDir) {
      const file = mainProfile(profDir);
      if (file) console.log(summarizeProfile(file));
      else console.log(`no CPU profile was written in ${profDir}`);
    }

    // The baseline, with the server stopped so nothing competes: same file / same schema.
    log(`[${dialect}] baseline: ${int(opts.baselineRows)} single-row INSERTs`);
    const baseline = await runBaseline(store, opts.baselineRows, Math.min(500, opts.baselineRows));

    const result: Result = {
      dialect,
      finishedAt: new Date().toISOString(),
      startedAtUtc,
      machine: { node: process.version, cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown', platform: `${os.platform()} ${os.release()}` },
      options: {
        customers: opts.customers,
        sends: opts.sends,
        warmup: opts.warmup,
        concurrency: opts.concurrency,
        rate: opts.rate,
        duration: opts.duration,
        baselineRows: opts.baselineRows,
        seed: opts.seed,
        sqliteSynchronous: opts.sqliteSynchronous,
        cpuProf: opts.cpuProf,
      },
      database: target.where,
      setup: { customers: opts.customers, identifySeconds: round(identifySeconds, 1), trackEvents: tracked.length, history: { ...history, seconds: round(history.seconds, 1) } },
      throughput: {
        ...tp,
        seconds: round(tp.seconds, 3),
        decisionsPerSecond: Math.round(tp.decisionsPerSecond),
        latencyMs: { p50: round(tp.latencyMs.p50, 2), p99: round(tp.latencyMs.p99, 2), max: round(tp.latencyMs.max, 2) },
        serverCpuSeconds: tp.serverCpuSeconds === null ? null : round(tp.serverCpuSeconds, 2),
        drainSeconds: round(tpDrain, 2),
      },
      latency: {
        ...lat,
        achievedRate: round(lat.achievedRate, 1),
        toProviderMs: { n: lat.toProviderMs.n, p50: lat.toProviderMs.p50, p99: lat.toProviderMs.p99, max: lat.toProviderMs.max, mean: round(lat.toProviderMs.mean, 1) },
        responseMs: { p50: round(lat.responseMs.p50, 2), p99: round(lat.responseMs.p99, 2), max: round(lat.responseMs.max, 2) },
        clientLagMs: { p99: round(lat.clientLagMs.p99, 2), max: round(lat.clientLagMs.max, 2) },
        serverCpuSeconds: lat.serverCpuSeconds === null ? null : round(lat.serverCpuSeconds, 2),
        drainSeconds: round(lat.drainSeconds, 2),
      },
      baseline: { ...baseline, seconds: round(baseline.seconds, 3), rowsPerSecond: Math.round(baseline.rowsPerSecond), p50: round(baseline.p50, 3), p99: round(baseline.p99, 3) },
      ratio: round(tp.decisionsPerSecond / baseline.rowsPerSecond, 3),
      server: { rssPeakMB: mb(rss.peak), rssEndMB: mb(rss.last), source: rss.source },
    };
    print(result);
    fs.mkdirSync(RESULTS_DIR, { recursive: true });
    const out = path.join(RESULTS_DIR, `gate-${dialect}.json`);
    fs.writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
    console.log(`wrote ${path.relative(process.cwd(), out)}`);
    return result;
  } finally {
    onInterrupt.delete(undo);
    if (server) await server.stop().catch(() => undefined);
    await store?.close().catch(() => undefined);
    await target.cleanup();
    if (profDir && !opts.keep) fs.rmSync(profDir, { recursive: true, force: true });
  }
}

function mixLines(mix: Mix, total: number): string {
  return Object.entries(mix)
    .sort((a, b) => b[1] - a[1])
    .map(([k, n]) => `${k} ${round((100 * n) / total, 1)}%`)
    .join(' · ');
}

/** The mix, grouped into outcome totals, then the detail wrapped onto extra rows. */
function mixRows(label: string, mix: Mix, total: number): [string, string][] {
  const totals: Mix = {};
  for (const [k, n] of Object.entries(mix)) totals[k.split(' ')[0]] = (totals[k.split(' ')[0]] ?? 0) + n;
  const rows: [string, string][] = [[label, mixLines(totals, total)]];
  const parts = mixLines(mix, total).split(' · ');
  for (let i = 0; i < parts.length; i += 3) rows.push(['', parts.slice(i, i + 3).join(' · ')]);
  return rows;
}

function print(r: Result): void {
  const t = r.throughput;
  const l = r.latency;
  const ms = (n: number) => `${Number.isFinite(n) ? n.toFixed(1) : '?'} ms`;
  console.log(
    '\n' +
      table(`send gate on ${r.dialect}: ${r.database}`, [
        ['customers / history', `${int(r.setup.customers)} customers, ${int(r.setup.history.messages)} prior messages (written directly), ${int(r.setup.trackEvents)} track events`],
        ['run started (wall clock)', `${r.startedAtUtc} (quiet hours depend on it)`],
        ['gate decisions/s', `${int(t.decisionsPerSecond)}  (${int(t.sends)} POST /v1/messages, ${r.options.concurrency} in flight, ${t.seconds.toFixed(1)} s)`],
        ['  response p50 / p99 / max', `${ms(t.latencyMs.p50)} / ${ms(t.latencyMs.p99)} / ${ms(t.latencyMs.max)}`],
        ['  server CPU', t.serverCpuSeconds === null ? '?' : `${t.serverCpuSeconds} s (${round((t.serverCpuSeconds * 1e6) / t.sends, 1)} ms per 1k decisions)`],
        ['  outbox drained after', `${t.drainSeconds} s`],
        ...mixRows('  outcomes', t.mix, t.sends),
        ['POST → provider at fixed rate', `${l.rate} requests/s for ${l.duration} s (achieved ${l.achievedRate}/s, client lag p99 ${ms(l.clientLagMs.p99)}, max ${ms(l.clientLagMs.max)})`],
        ['  to provider p50 / p99 / max', `${ms(l.toProviderMs.p50)} / ${ms(l.toProviderMs.p99)} / ${ms(l.toProviderMs.max)}  (${int(l.toProviderMs.n)} messages that went out)`],
        ['  response p50 / p99 / max', `${ms(l.responseMs.p50)} / ${ms(l.responseMs.p99)} / ${ms(l.responseMs.max)}`],
        ...(l.errors > 0 ? [['  requests without an answer', `${int(l.errors)} (first: ${l.firstError})`] as [string, string]] : []),
        ['  outbox drained after', `${l.drainSeconds} s after the last answer`],
        ...mixRows('  outcomes', l.mix, Math.max(1, l.requests - l.errors)),
        ['  server CPU', l.serverCpuSeconds === null ? '?' : `${l.serverCpuSeconds} s over ${l.duration} s`],
        ['baseline single-row INSERTs/s', `${int(r.baseline.rowsPerSecond)}  (sequential autocommit, ${int(r.baseline.rows)} rows; p50 ${r.baseline.p50} ms, p99 ${r.baseline.p99} ms)`],
        ['ratio decisions / inserts', `${(r.ratio * 100).toFixed(1)}%`],
        ['server RSS peak / end', `${r.server.rssPeakMB} MB / ${r.server.rssEndMB} MB`],
      ]),
  );
}

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  console.log(
    `chorus gate bench: ${int(opts.customers)} customers, ${int(opts.sends)} sends (+${int(opts.warmup)} warm-up) ${opts.concurrency} in flight, ` +
      `${opts.rate}/s for ${opts.duration} s, seed ${opts.seed}; ${os.cpus().length} CPUs, node ${process.version}`,
  );
  const started = performance.now();
  for (const dialect of opts.dialects) await runDialect(dialect, opts);
  closeAgent();
  console.log(`\ntotal ${((performance.now() - started) / 1000).toFixed(0)} s`);
}

main().catch((err: unknown) => {
  console.error(`bench:gate: ${(err as Error).stack ?? String(err)}`);
  process.exit(1);
});
