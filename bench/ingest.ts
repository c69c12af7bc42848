// npm run bench:ingest -- [--dialect sqlite|postgres|both] [--events N] [--customers N] [--concurrency C] [--batch B]
//
// Ingestion throughput of a real `chorus start` process (a child, so its memory is measured alone):
// /v1/batch requests of realistic identify/track/page calls, identity resolution included, compared
// with the raw-insert ceiling of the same rows on the same database. See bench/README.md.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { sql } from 'kysely';
import { openStore, redact } from '../src/store/db.js';
import { createCeilingTable, runCeiling, type CeilingResult } from './lib/ceiling.js';
import { EventStream, type StreamCounts } from './lib/events.js';
import { mainProfile, summarizeProfile } from './lib/profile.js';
import { int, mb, percentile, round, table } from './lib/report.js';
import { prepareTarget, type DialectName, type Target } from './lib/target.js';
import { procCpuSeconds, RssSampler, spawnServer, type ChildServer } from './lib/server.js';

const WRITE_KEY = 'wk_bench_write_key_000000000000';
const SECRET_KEY = 'sk_bench_secret_key_00000000000';
const TARGET_RATIO = 0.3;
const PG_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const RESULTS_DIR = path.resolve(import.meta.dirname, 'results');


interface Options {
  dialects: DialectName[];
  events: number;
  customers: number;
  concurrency: number;
  batch: number;
  warmup: number;
  seed: number;
  sqliteSynchronous: 'FULL' | 'NORMAL';
  cpuProf: boolean;
  keep: boolean;
}

const USAGE = `Usage: npm run bench:ingest -- [options]

  --dialect sqlite|postgres|both   database(s) to run on (default both)
  --events N                       events to send, after the warm-up (default 200000)
  --customers N                    distinct customers (default 10000)
  --concurrency C                  requests in flight; also PostgreSQL ceiling transactions (default 8)
  --batch B                        events per /v1/batch request and rows per ceiling INSERT (default 100)
  --warmup N                       events sent first and not counted (default min(2000, events/5))
  --seed S                         seed of the event generator (default 1)
  --sqlite-sync FULL|NORMAL        CHORUS_SQLITE_SYNCHRONOUS for server and ceiling (default FULL, the server default)
  --cpu-prof                       write a V8 CPU profile of the server and print a summary
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
      events: { type: 'string' },
      customers: { type: 'string' },
      concurrency: { type: 'string' },
      batch: { type: 'string' },
      warmup: { type: 'string' },
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
  if (dialect !== 'sqlite' && dialect !== 'postgres' && dialect !== 'both') {
    throw new Error(`--dialect must be sqlite, postgres or both; got "${dialect}"`);
  }
  const sync = values['sqlite-sync'].toUpperCase();
  if (sync !== 'FULL' && sync !== 'NORMAL') throw new Error(`--sqlite-sync must be FULL or NORMAL; got "${values['sqlite-sync']}"`);
  const events = positiveInt('events', values.events, 200_000);
  const batch = positiveInt('batch', values.batch, 100);
  if (batch > 2500) throw new Error('--batch must be at most 2500 (the /v1/batch limit)');
  return {
    dialects: dialect === 'both' ? ['sqlite', 'postgres'] : [dialect],
    events,
    customers: positiveInt('customers', values.customers, 10_000),
    concurrency: positiveInt('concurrency', values.concurrency, 8),
    batch,
    warmup: positiveInt('warmup', values.warmup, Math.min(2000, Math.floor(events / 5)), 0),
    seed: positiveInt('seed', values.seed, 1, 0),
    sqliteSynchronous: sync,
    cpuProf: values['cpu-prof'],
    keep: values.keep,
  };
}

// ---------------------------------------------------------------------------------------------
// Sending

interface SendResult {
  events: number;
  requests: number;
  bytes: number;
  seconds: number;
  latencies: number[];
}

/** Sends `total` events from the stream in /v1/batch requests, `concurrency` in flight. */
async function send(server: ChildServer, stream: EventStream, total: number, opts: Options, label: string): Promise<SendResult> {
  const headers = {
    'content-type': 'application/json',
    authorization: `Basic ${Buffer.from(`${WRITE_KEY}:`).toString('base64')}`,
  };
  const latencies: number[] = [];
  let remaining = total;
  let sent = 0;
  let bytes = 0;
  let failure: Error | undefined;
  let nextReport = total / 4;
  const started = performance.now();

  const worker = async () => {
    while (remaining > 0 && failure === undefined && !interrupted) {
      const size = Math.min(opts.batch, remaining);
      remaining -= size;
      const body = JSON.stringify(stream.batch(size, Date.now()));
      bytes += Buffer.byteLength(body);
      const t0 = performance.now();
      let status: number;
      let text: string;
      try {
        const res = await fetch(`${server.url}/v1/batch`, { method: 'POST', headers, body });
        text = await res.text();
        status = res.status;
      } catch (err) {
        failure ??= new Error(`POST /v1/batch failed: ${(err as Error).message}\n${server.output()}`);
        return;
      }
      const ms = performance.now() - t0;
      if (status !== 200) {
        failure ??= new Error(`POST /v1/batch answered ${status}: ${text.slice(0, 4000)}`);
        return;
      }
      latencies.push(ms);
      sent += size;
      if (sent >= nextReport && total >= 10_000) {
        process.stderr.write(`  ${label}: ${int(sent)} / ${int(total)} events\n`);
        nextReport += total / 4;
      }
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, worker));
  if (interrupted) await new Promise(() => undefined); // the SIGINT handler cleans up and exits
  if (failure) throw failure;
  return { events: sent, requests: latencies.length, bytes, seconds: (performance.now() - started) / 1000, latencies };
}

// ---------------------------------------------------------------------------------------------
// One dialect

function prepare(dialect: DialectName, opts: Options): Promise<Target | string> {
  return prepareTarget(dialect, { prefix: 'chorus-bench-', sqliteSynchronous: opts.sqliteSynchronous, poolSize: opts.concurrency, pgUrl: PG_URL, keep: opts.keep });
}

interface Result {
  dialect: DialectName;
  finishedAt: string;
  machine: { node: string; cpus: number; cpuModel: string; platform: string };
  options: Omit<Options, 'dialects' | 'keep'>;
  database: string;
  ingest: {
    events: number;
    requests: number;
    seconds: number;
    eventsPerSecond: number;
    avgRequestBytes: number;
    latencyMs: { p50: number; p99: number; max: number; mean: number };
    mix: StreamCounts & { total: number };
  };
  server: { rssPeakMB: number; rssEndMB: number; source: string };
  /** CPU seconds: the server during the timed ingest, the bench client generating and sending, the ceiling's own process. */
  cpu: { serverSeconds: number | null; serverMsPer1kEvents: number | null; clientSeconds: number; ceilingSeconds: number; ceilingMsPer1kRows: number };
  ceiling: CeilingResult & { concurrency: number; batch: number };
  ratio: number;
  target: { ratio: number; applies: boolean; met: boolean | null };
  checks: {
    eventsSent: number;
    eventsStored: number;
    distinctCustomers: number;
    liveProfiles: number;
    ceilingRows: number;
    ok: boolean;
  };
  /** This process: peak RSS when the ingest phase ended (generator and client), and over the whole run. */
  bench: { rssPeakIngestMB: number; rssPeakMB: number };
}

/** What to undo if the run is interrupted (Ctrl-C): stop the server, remove the database. */
const onInterrupt = new Set<() => Promise<unknown>>();
let interrupted = false;
process.once('SIGINT', () => {
  interrupted = true;
  console.error('\ninterrupted: cleaning up');
  void Promise.allSettled([...onInterrupt].map((f) => f())).then(() => process.exit(130));
});

async function runDialect(dialect: DialectName, opts: Options): Promise<Result | null> {
  const target = await prepare(dialect, opts);
  if (typeof target === 'string') {
    console.log(`\n[${dialect}] SKIPPED: ${target}\n`);
    return null;
  }
  console.log(`\n[${dialect}] ${target.where}`);
  const profDir = opts.cpuProf ? fs.mkdtempSync(path.join(os.tmpdir(), 'chorus-bench-prof-')) : undefined;
  let server: ChildServer | undefined;
  const undo = async () => {
    await server?.stop();
    await target.cleanup();
  };
  onInterrupt.add(undo);
  try {
    server = await spawnServer({
      env: { ...target.env, CHORUS_WRITE_KEY: WRITE_KEY, CHORUS_SECRET_KEY: SECRET_KEY },
      cpuProfDir: profDir,
    });
    const rss = new RssSampler(server);
    rss.start();
    const stream = new EventStream({ customers: opts.customers, seed: opts.seed });

    if (opts.warmup > 0) await send(server, stream, opts.warmup, opts, 'warm-up');
    const mixBefore = { ...stream.counts };
    const serverCpu0 = procCpuSeconds(server.pid);
    const benchCpu0 = process.cpuUsage();
    const run = await send(server, stream, opts.events, opts, 'ingest');
    const serverCpu1 = procCpuSeconds(server.pid);
    const benchCpu = process.cpuUsage(benchCpu0);
    const benchRssIngest = process.resourceUsage().maxRSS * 1024;
    await rss.stop();
    const serverCpu = serverCpu0 !== null && serverCpu1 !== null ? serverCpu1 - serverCpu0 : null;
    const mix = {
      identify: stream.counts.identify - mixBefore.identify,
      track: stream.counts.track - mixBefore.track,
      page: stream.counts.page - mixBefore.page,
      anonymous: stream.counts.anonymous - mixBefore.anonymous,
      total: run.events,
    };

    // Stop the server so nothing competes with the ceiling run (SQLite: it is the same file).
    const code = await server.stop();
    if (code !== 0) console.warn(`[${dialect}] server exited with ${code}:\n${server.output()}`);
    if (profDir) {
      const file = mainProfile(profDir);
      if (file) console.log(summarizeProfile(file));
      else console.log(`no CPU profile was written in ${profDir}`);
    }

    const store = await openStore(target.config);
    let result: Result;
    try {
      const eventsStored = Number(
        (await store.db.selectFrom('events').select((eb) => eb.fn.countAll<number | string>().as('n')).executeTakeFirstOrThrow()).n,
      );
      const liveProfiles = Number(
        (
          await store.db
            .selectFrom('profiles')
            .where('merged_into', 'is', null)
            .select((eb) => eb.fn.countAll<number | string>().as('n'))
            .executeTakeFirstOrThrow()
        ).n,
      );
      const eventsSent = opts.warmup + run.events;

      const db = await createCeilingTable(store);
      // PostgreSQL: fresh statistics for the source table, so the paging reads don't wander.
      if (store.dialect === 'postgres') await sql`analyze events`.execute(store.db);
      const ceiling = await runCeiling(store, db, {
        warmupRows: opts.warmup,
        rows: run.events,
        batch: opts.batch,
        concurrency: opts.concurrency,
      });
      const ceilingRows = Number(
        (await db.selectFrom('events_ceiling').select((eb) => eb.fn.countAll<number | string>().as('n')).executeTakeFirstOrThrow()).n,
      );

      const sorted = [...run.latencies].sort((a, b) => a - b);
      const eventsPerSecond = run.events / run.seconds;
      const ratio = eventsPerSecond / ceiling.rowsPerSecond;
      const applies = dialect === 'sqlite';
      result = {
        dialect,
        finishedAt: new Date().toISOString(),
        machine: { node: process.version, cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown', platform: `${os.platform()} ${os.release()}` },
        options: {
          events: opts.events,
          customers: opts.customers,
          concurrency: opts.concurrency,
          batch: opts.batch,
          warmup: opts.warmup,
          seed: opts.seed,
          sqliteSynchronous: opts.sqliteSynchronous,
          cpuProf: opts.cpuProf,
        },
        database: target.where,
        ingest: {
          events: run.events,
          requests: run.requests,
          seconds: round(run.seconds, 3),
          eventsPerSecond: Math.round(eventsPerSecond),
          avgRequestBytes: Math.round(run.bytes / Math.max(1, run.requests)),
          latencyMs: {
            p50: round(percentile(sorted, 0.5), 2),
            p99: round(percentile(sorted, 0.99), 2),
            max: round(sorted[sorted.length - 1] ?? NaN, 2),
            mean: round(sorted.reduce((s, x) => s + x, 0) / Math.max(1, sorted.length), 2),
          },
          mix,
        },
        server: { rssPeakMB: mb(rss.peak), rssEndMB: mb(rss.last), source: rss.source },
        cpu: {
          serverSeconds: serverCpu === null ? null : round(serverCpu, 2),
          serverMsPer1kEvents: serverCpu === null ? null : round((serverCpu * 1e6) / run.events, 1),
          clientSeconds: round((benchCpu.user + benchCpu.system) / 1e6, 2),
          ceilingSeconds: round(ceiling.cpuSeconds, 2),
          ceilingMsPer1kRows: round((ceiling.cpuSeconds * 1e6) / ceiling.rows, 1),
        },
        ceiling: {
          ...ceiling,
          seconds: round(ceiling.seconds, 3),
          rowsPerSecond: Math.round(ceiling.rowsPerSecond),
          concurrency: store.dialect === 'sqlite' ? 1 : opts.concurrency,
          batch: opts.batch,
        },
        ratio: round(ratio, 3),
        target: { ratio: TARGET_RATIO, applies, met: applies ? ratio >= TARGET_RATIO : null },
        checks: {
          eventsSent,
          eventsStored,
          distinctCustomers: stream.distinctCustomers,
          liveProfiles,
          ceilingRows,
          ok: eventsStored === eventsSent && liveProfiles === stream.distinctCustomers && ceilingRows === eventsSent,
        },
        bench: { rssPeakIngestMB: mb(benchRssIngest), rssPeakMB: mb(process.resourceUsage().maxRSS * 1024) },
      };
    } finally {
      await store.close();
    }
    print(result);
    fs.mkdirSync(RESULTS_DIR, { recursive: true });
    const out = path.join(RESULTS_DIR, `ingest-${dialect}.json`);
    fs.writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
    console.log(`wrote ${path.relative(process.cwd(), out)}`);
    return result;
  } finally {
    onInterrupt.delete(undo);
    if (server) await server.stop().catch(() => undefined);
    await target.cleanup();
    if (profDir && !opts.keep) fs.rmSync(profDir, { recursive: true, force: true });
  }
}

function print(r: Result): void {
  const pct = (n: number) => `${round((100 * n) / r.ingest.mix.total, 1)}%`;
  const m = r.ingest.mix;
  const verdict = r.target.applies ? (r.target.met ? `meets the ${TARGET_RATIO * 100}% target` : `BELOW the ${TARGET_RATIO * 100}% target`) : 'no target on this dialect';
  const check = (ok: boolean) => (ok ? 'ok' : 'MISMATCH');
  console.log(
    '\n' +
      table(`ingest on ${r.dialect}: ${r.database}`, [
        ['events (after warm-up)', `${int(r.ingest.events)} in ${int(r.ingest.requests)} requests of ≤${r.options.batch}, ${r.options.concurrency} in flight`],
        ['mix', `identify ${pct(m.identify)} · track ${pct(m.track)} · page ${pct(m.page)} (anonymous-only ${pct(m.anonymous)})`],
        ['avg request body', `${int(r.ingest.avgRequestBytes / 1024)} KB`],
        ['seconds', r.ingest.seconds.toFixed(2)],
        ['ingest events/s', int(r.ingest.eventsPerSecond)],
        ['request latency p50', `${r.ingest.latencyMs.p50.toFixed(1)} ms`],
        ['request latency p99', `${r.ingest.latencyMs.p99.toFixed(1)} ms`],
        ['request latency max', `${r.ingest.latencyMs.max.toFixed(1)} ms`],
        [
          'CPU: server / bench client',
          `${r.cpu.serverSeconds ?? '?'} s (${r.cpu.serverMsPer1kEvents ?? '?'} ms per 1k events) / ${r.cpu.clientSeconds} s`,
        ],
        ['server RSS peak / end', `${r.server.rssPeakMB} MB / ${r.server.rssEndMB} MB`],
        ['ceiling rows/s', `${int(r.ceiling.rowsPerSecond)} (${r.ceiling.batch}-row INSERT per transaction, ${r.ceiling.concurrency} concurrent)`],
        [
          'ceiling CPU',
          `${r.cpu.ceilingSeconds} s (${r.cpu.ceilingMsPer1kRows} ms per 1k rows${r.dialect === 'postgres' ? ', client side only' : ''})`,
        ],
        ['ratio ingest / ceiling', `${(r.ratio * 100).toFixed(1)}%  (${verdict})`],
        ['events stored / sent', `${int(r.checks.eventsStored)} / ${int(r.checks.eventsSent)}  ${check(r.checks.eventsStored === r.checks.eventsSent)}`],
        ['live profiles / customers', `${int(r.checks.liveProfiles)} / ${int(r.checks.distinctCustomers)}  ${check(r.checks.liveProfiles === r.checks.distinctCustomers)}`],
        ['ceiling rows', `${int(r.checks.ceilingRows)}  ${check(r.checks.ceilingRows === r.checks.eventsSent)}`],
        ['bench process RSS peak', `${r.bench.rssPeakIngestMB} MB after ingest, ${r.bench.rssPeakMB} MB overall`],
      ]),
  );
}

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  console.log(
    `chorus ingest bench: ${int(opts.events)} events (+${int(opts.warmup)} warm-up), ${int(opts.customers)} customers, ` +
      `batches of ${opts.batch}, ${opts.concurrency} in flight, seed ${opts.seed}; ${os.cpus().length} CPUs, node ${process.version}`,
  );
  let failed = false;
  for (const dialect of opts.dialects) {
    const r = await runDialect(dialect, opts);
    if (r && !r.checks.ok) failed = true;
  }
  if (failed) {
    console.error('\ncorrectness checks FAILED (see MISMATCH above)');
    process.exitCode = 1;
  }
}

main().catch((err: unknown) => {
  console.error(`bench:ingest: ${(err as Error).stack ?? String(err)}`);
  process.exit(1);
});
