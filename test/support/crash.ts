import { spawnServer, type ChildServer } from './server.js';

// Crash harness: one `chorus start` child process at a time that a test can SIGKILL at any moment and
// that comes back on the same database (a new port each time), plus a request helper that tells a
// refused or reset connection (the server died) from an answer.

/** A small seeded PRNG (mulberry32), so a run's kill delays can be replayed with CHORUS_CRASH_SEED. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export interface KillRecord {
  n: number;
  phase: string;
  /** Wall milliseconds the victim had been listening. */
  uptimeMs: number;
  /** Requests the test had in flight to the victim at the moment of the kill. */
  inFlight: number;
  /** What the test saw in the database while no server ran (what the dead process left behind). */
  note?: string;
}

/**
 * The server under test. `current` always resolves to the live process (or the one being started);
 * `kill` SIGKILLs it and starts the next one with the same environment.
 */
export class CrashableServer {
  private current: Promise<ChildServer>;
  private startedAt = Date.now();
  private inFlight = 0;
  readonly kills: KillRecord[] = [];
  /** Output of every process that was killed, for failure messages. */
  readonly logs: string[] = [];

  constructor(private readonly env: Record<string, string>) {
    this.current = this.spawn();
  }

  private async spawn(): Promise<ChildServer> {
    const s = await spawnServer(this.env);
    this.startedAt = Date.now();
    return s;
  }

  server(): Promise<ChildServer> {
    return this.current;
  }

  /** SIGKILL the live process (no shutdown hook runs), wait for it to be gone, and start another. */
  async kill(phase: string, whileDown?: () => Promise<string>): Promise<KillRecord> {
    const victim = await this.current;
    const record: KillRecord = { n: this.kills.length + 1, phase, uptimeMs: Date.now() - this.startedAt, inFlight: this.inFlight };
    const next = (async () => {
      await victim.stop('SIGKILL');
      this.logs.push(victim.output.join('\n'));
      if (whileDown) record.note = await whileDown();
      return this.spawn();
    })();
    // Requests issued from now on (and the retries of those the kill breaks) go to the next process.
    this.current = next;
    await next;
    this.kills.push(record);
    return record;
  }

  /** Error-level log lines (pino level >= 50) of every process so far, for failure messages. */
  async errors(): Promise<string> {
    const live = await this.current.catch(() => null);
    const all = [...this.logs, ...(live ? [live.output.join('\n')] : [])].join('\n').split('\n');
    return all.filter((l) => /"level":(5|6)0/.test(l) || /^\s*at |Error/.test(l)).slice(-40).join('\n');
  }

  async stop(): Promise<void> {
    const s = await this.current.catch(() => null);
    if (s) await s.stop('SIGTERM');
  }

  /**
   * Sends one request to the live server, retrying on the next process whenever the connection fails
   * (refused, reset, or the server died mid-request) or the server answers 503 (closing). Any other
   * answer is returned: the caller decides whether it is a success.
   */
  async request(method: string, pathname: string, auth: string, body?: unknown, timeoutMs = 120_000): Promise<{ status: number; body: any; attempts: number }> {
    for (let attempts = 1; ; attempts++) {
      const s = await this.current;
      this.inFlight++;
      try {
        const res = await fetch(s.url + pathname, {
          method,
          headers: { authorization: auth, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
          body: body !== undefined ? JSON.stringify(body) : undefined,
          signal: AbortSignal.timeout(timeoutMs),
        });
        const text = await res.text();
        if (res.status === 503) continue;
        let parsed: unknown = text;
        try {
          parsed = JSON.parse(text);
        } catch {
          // not JSON
        }
        return { status: res.status, body: parsed, attempts };
      } catch (err) {
        if ((err as Error).name === 'TimeoutError') throw new Error(`${method} ${pathname} hung for ${timeoutMs} ms`);
        // undici reports a refused or reset connection as TypeError("fetch failed"); anything else is a bug here.
        if (!(err instanceof TypeError) || attempts >= 500) throw err;
        if (s.process.exitCode !== null || s.process.signalCode !== null) {
          // Dead. `kill` replaces `current` in the same tick as it signals, so a dead `current` was not our doing.
          if ((await this.current) === s) {
            throw new Error(`the server exited by itself (${s.process.exitCode ?? s.process.signalCode}):\n${s.output.slice(-30).join('\n')}`);
          }
        } else {
          // Refused or reset by a process that is about to die: the next one will be in `current`.
          await sleep(20);
        }
      } finally {
        this.inFlight--;
      }
    }
  }
}
