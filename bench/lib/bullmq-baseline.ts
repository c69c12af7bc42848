import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import { Queue, Worker, type ConnectionOptions } from 'bullmq';
// ioredis is BullMQ's own Redis client (a dependency of bullmq), used here only to probe the server.
import { Redis } from 'ioredis';

// The baseline of the journeys bench: BullMQ (the Redis job queue Novu is built on) processing bare
// no-op jobs on a local Redis. Jobs are added in bulk first (addBulk, 1,000 per call), then one Worker
// with a no-op processor works them at the concurrency that gave the best rate on a sample. The rate is
// jobs completed ÷ time from the worker's start to the last 'completed' event. Every queue is fresh and
// obliterated afterwards.

export interface BullmqOptions {
  host: string;
  port: number;
  /** Jobs in the measured run (the journeys bench uses its number of journey steps). */
  jobs: number;
  /** Jobs per concurrency trial. */
  sampleJobs: number;
  /** Concurrencies tried on the sample; the best is used for the measured run. */
  concurrencies: number[];
  /** A fixed concurrency instead of trying (skips the trials). */
  concurrency?: number;
  /** addBulk chunk size. */
  chunk?: number;
  log?: (line: string) => void;
}

export interface BullmqTrial {
  concurrency: number;
  jobs: number;
  seconds: number;
  jobsPerSecond: number;
}

export interface BullmqResult {
  bullmqVersion: string;
  redis: { address: string; version: string; persistence: string };
  jobs: number;
  add: { seconds: number; jobsPerSecond: number; chunk: number };
  process: { concurrency: number; seconds: number; jobsPerSecond: number };
  trials: BullmqTrial[];
  /** This process's CPU seconds while the worker ran (BullMQ's client side; Redis is another process). */
  workerCpuSeconds: number;
  /** Redis's own CPU seconds while the worker ran (INFO cpu), or null if Redis doesn't say. */
  redisCpuSeconds: number | null;
}

/** Redis's CPU seconds so far (user + system, all its threads), from INFO cpu. */
async function redisCpu(host: string, port: number): Promise<number | null> {
  const client = new Redis({ host, port, lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await client.connect();
    const info = await client.info('cpu');
    const user = /used_cpu_user:([\d.]+)/.exec(info)?.[1];
    const sys = /used_cpu_sys:([\d.]+)/.exec(info)?.[1];
    return user !== undefined && sys !== undefined ? Number(user) + Number(sys) : null;
  } catch {
    return null;
  } finally {
    client.disconnect();
  }
}

const require = createRequire(import.meta.url);

function bullmqVersion(): string {
  try {
    return (require('bullmq/package.json') as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** Whether Redis answers PING within 2 s (else why not), with its version and persistence settings. */
export async function probeRedis(host: string, port: number): Promise<{ problem: string } | { version: string; persistence: string }> {
  const client = new Redis({ host, port, lazyConnect: true, connectTimeout: 2000, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
  let lastError: Error | undefined;
  client.on('error', (err: Error) => (lastError = err));
  try {
    await Promise.race([
      client.connect(),
      new Promise((_, reject) => setTimeout(() => reject(new Error('no answer within 2 s')), 2000).unref()),
    ]);
    await client.ping();
    const info = await client.info('server');
    const version = /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown';
    let persistence = 'unknown';
    try {
      const aof = (await client.config('GET', 'appendonly')) as string[];
      const save = (await client.config('GET', 'save')) as string[];
      persistence = `appendonly ${aof[1] ?? '?'}, save "${save[1] ?? '?'}"`;
    } catch {
      // CONFIG may be disabled (managed Redis); persistence stays unknown.
    }
    return { version, persistence };
  } catch (err) {
    return { problem: lastError?.message || (err as Error).message || String(err) };
  } finally {
    client.disconnect();
  }
}

function connection(host: string, port: number): ConnectionOptions {
  // Workers need maxRetriesPerRequest: null (blocking commands).
  return { host, port, maxRetriesPerRequest: null };
}

async function addJobs(queue: Queue, total: number, chunk: number): Promise<number> {
  const started = performance.now();
  for (let i = 0; i < total; i += chunk) {
    const size = Math.min(chunk, total - i);
    await queue.addBulk(
      Array.from({ length: size }, (_, k) => ({
        name: 'step',
        // About what a journey-step job would carry: which run, which step.
        data: { runId: `run_${(i + k).toString(36)}`, step: 'welcome' },
        opts: { removeOnComplete: true, removeOnFail: true },
      })),
    );
  }
  return (performance.now() - started) / 1000;
}

/** Works `total` waiting jobs with a no-op processor; seconds from worker start to the last completion. */
async function work(name: string, conn: ConnectionOptions, total: number, concurrency: number): Promise<number> {
  let done = 0;
  let settle!: (err?: Error) => void;
  const finished = new Promise<void>((resolve, reject) => {
    settle = (err) => (err ? reject(err) : resolve());
  });
  const worker = new Worker(name, async () => undefined, { connection: conn, concurrency, autorun: false });
  worker.on('completed', () => {
    if (++done === total) settle();
  });
  worker.on('failed', (job, err) => settle(new Error(`BullMQ job ${job?.id ?? '?'} failed: ${err.message}`)));
  worker.on('error', (err) => settle(err));
  await worker.waitUntilReady();
  const started = performance.now();
  const running = worker.run();
  try {
    await finished;
    return (performance.now() - started) / 1000;
  } finally {
    await worker.close();
    await running.catch(() => undefined);
  }
}

/** Adds and works `jobs` jobs on a fresh queue, obliterated afterwards. */
async function once(opts: BullmqOptions, jobs: number, concurrency: number): Promise<{ addSeconds: number; seconds: number; cpuSeconds: number; redisCpuSeconds: number | null }> {
  const name = `chorus-bench-${randomBytes(4).toString('hex')}`;
  const conn = connection(opts.host, opts.port);
  const queue = new Queue(name, { connection: conn });
  try {
    await queue.waitUntilReady();
    const addSeconds = await addJobs(queue, jobs, opts.chunk ?? 1000);
    const waiting = await queue.getWaitingCount();
    if (waiting !== jobs) throw new Error(`BullMQ queue ${name} holds ${waiting} waiting jobs after adding ${jobs}`);
    const redis0 = await redisCpu(opts.host, opts.port);
    const cpu0 = process.cpuUsage();
    const seconds = await work(name, conn, jobs, concurrency);
    const cpu = process.cpuUsage(cpu0);
    const redis1 = await redisCpu(opts.host, opts.port);
    return { addSeconds, seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6, redisCpuSeconds: redis0 !== null && redis1 !== null ? redis1 - redis0 : null };
  } finally {
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
  }
}

/** Picks the best concurrency on a sample (unless one is given), then measures `jobs` jobs with it. */
export async function runBullmqBaseline(opts: BullmqOptions): Promise<BullmqResult | { skipped: string }> {
  const log = opts.log ?? (() => undefined);
  const probe = await probeRedis(opts.host, opts.port);
  if ('problem' in probe) return { skipped: `Redis at ${opts.host}:${opts.port} is unreachable (${probe.problem})` };

  const trials: BullmqTrial[] = [];
  let best = opts.concurrency;
  if (best === undefined) {
    // A short untimed run first, so the trials don't pay for JIT warm-up and connection set-up.
    await once(opts, Math.min(5000, opts.sampleJobs), 50);
    for (const concurrency of opts.concurrencies) {
      const r = await once(opts, opts.sampleJobs, concurrency);
      const trial = { concurrency, jobs: opts.sampleJobs, seconds: r.seconds, jobsPerSecond: opts.sampleJobs / r.seconds };
      trials.push(trial);
      log(`  BullMQ trial: concurrency ${String(concurrency).padStart(4)}  ${Math.round(trial.jobsPerSecond).toLocaleString('en-US')} jobs/s`);
    }
    best = trials.reduce((a, b) => (b.jobsPerSecond > a.jobsPerSecond ? b : a)).concurrency;
  }
  log(`  BullMQ: ${opts.jobs.toLocaleString('en-US')} jobs at concurrency ${best}`);
  const r = await once(opts, opts.jobs, best);
  return {
    bullmqVersion: bullmqVersion(),
    redis: { address: `${opts.host}:${opts.port}`, version: probe.version, persistence: probe.persistence },
    jobs: opts.jobs,
    add: { seconds: r.addSeconds, jobsPerSecond: opts.jobs / r.addSeconds, chunk: opts.chunk ?? 1000 },
    process: { concurrency: best, seconds: r.seconds, jobsPerSecond: opts.jobs / r.seconds },
    trials,
    workerCpuSeconds: r.cpuSeconds,
    redisCpuSeconds: r.redisCpuSeconds,
  };
}
