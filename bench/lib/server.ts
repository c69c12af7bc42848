import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import path from 'node:path';

// Runs `chorus start` as a child process (so its memory is its own) and watches its resident memory.
// The server runs from dist/, as `npm start` runs it (compiled once per bench process): under tsx's
// loader it measured ~3% slower, and that is not what users run.

const ROOT = path.resolve(import.meta.dirname, '../..');

let built = false;

function buildOnce(): void {
  if (built) return;
  process.stderr.write('compiling the server into dist/ (tsc -p tsconfig.build.json)\n');
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
  built = true;
}

export interface ChildServer {
  url: string;
  pid: number;
  process: ChildProcess;
  /** The last lines the server wrote (stdout and stderr), for error messages. */
  output(): string;
  stop(): Promise<number | null>;
}

export interface SpawnOptions {
  env: Record<string, string>;
  /** Directory for a V8 CPU profile of the server (written when it exits). */
  cpuProfDir?: string;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/**
 * Starts the server and waits until GET /readyz answers 200. With LOG_LEVEL=warn the server never
 * logs "chorus is listening", so the port is chosen here and readiness is polled.
 */
export async function spawnServer(opts: SpawnOptions): Promise<ChildServer> {
  const port = await freePort();
  const env: Record<string, string | undefined> = { ...process.env };
  // Only what the caller chooses selects the database.
  for (const name of ['DATABASE_URL', 'CHORUS_PG_SCHEMA', 'CHORUS_DATA_DIR', 'CHORUS_SQLITE_SYNCHRONOUS', 'CHORUS_PG_POOL_SIZE']) delete env[name];
  Object.assign(env, { PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn' }, opts.env);
  // The same young-generation size as `npm start` and bin/chorus.js.
  const nodeArgs = ['--max-semi-space-size=128'];
  if (opts.cpuProfDir) nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${opts.cpuProfDir}`);
  buildOnce();
  const child = spawn(process.execPath, [...nodeArgs, path.join(ROOT, 'dist/cli/main.js'), 'start'], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let tail = '';
  const keep = (d: Buffer) => {
    tail = (tail + d.toString()).slice(-8000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let exitCode: number | null | undefined;
  void exited.then((code) => (exitCode = code ?? -1));

  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (exitCode !== undefined) throw new Error(`server exited with ${exitCode} before it was ready:\n${tail}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`server was not ready after 60 s:\n${tail}`);
    }
    try {
      const res = await fetch(`${url}/readyz`);
      await res.arrayBuffer();
      if (res.status === 200) break;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }

  return {
    url,
    pid: child.pid!,
    process: child,
    output: () => tail,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/** Resident memory of a process in bytes, from /proc (Linux): current (VmRSS) and peak (VmHWM). */
export function procMemory(pid: number): { rss: number; peak: number } | null {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
    const rss = kb('VmRSS');
    return Number.isFinite(rss) ? { rss, peak: kb('VmHWM') } : null;
  } catch {
    return null;
  }
}

/** CPU time (user + system) a process has used so far, in seconds, from /proc (Linux); null elsewhere. */
export function procCpuSeconds(pid: number): number | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after "(comm)": state is field 3, utime 14, stime 15 (clock ticks, 100 per second on Linux).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return null;
  }
}

/**
 * CPU seconds of every `postgres` process on this machine (backends, WAL writer, checkpointer, …),
 * counting the backends that have exited (the postmaster's reaped children), or null when PostgreSQL
 * doesn't run here (or /proc can't be read). Beside the engine's own CPU, as Redis's is beside BullMQ's
 * worker: the database's work is part of what a step costs.
 */
export function postgresCpuSeconds(): number | null {
  try {
    let ticks = 0;
    let found = false;
    for (const entry of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      let stat: string;
      try {
        stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      } catch {
        continue; // exited meanwhile
      }
      if (stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')) !== 'postgres') continue;
      found = true;
      // utime, stime, cutime, cstime: fields 14–17.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]);
    }
    return found ? ticks / 100 : null;
  } catch {
    return null;
  }
}

/** Resident memory from the server's own /metrics (prom-client's default process metrics). */
export async function metricsMemory(url: string): Promise<number | null> {
  try {
    const text = await (await fetch(`${url}/metrics`)).text();
    const m = /^chorus_process_resident_memory_bytes (\d+(?:\.\d+)?(?:e\+\d+)?)$/m.exec(text);
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** Samples a server's resident memory every `everyMs` and remembers the peak. */
export class RssSampler {
  peak = 0;
  last = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly useProc: boolean;

  constructor(
    private readonly server: ChildServer,
    private readonly everyMs = 100,
  ) {
    this.useProc = procMemory(server.pid) !== null;
  }

  start(): void {
    this.timer = setInterval(() => void this.sample(), this.everyMs);
    this.timer.unref();
  }

  async sample(): Promise<void> {
    if (this.useProc) {
      const m = procMemory(this.server.pid);
      if (!m) return;
      this.last = m.rss;
      this.peak = Math.max(this.peak, m.rss, Number.isFinite(m.peak) ? m.peak : 0);
      return;
    }
    const rss = await metricsMemory(this.server.url);
    if (rss !== null) {
      this.last = rss;
      this.peak = Math.max(this.peak, rss);
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.sample();
  }

  get source(): string {
    return this.useProc ? '/proc/<pid>/status VmRSS/VmHWM' : '/metrics process_resident_memory_bytes';
  }
}
