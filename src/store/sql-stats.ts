import fs from 'node:fs';
import type SQLite from 'better-sqlite3';

// A development aid: with CHORUS_SQL_STATS=FILE set, each process sums the time spent in each statement
// (multi-row VALUES and IN lists folded, so one shape is one line) and rewrites FILE.<pid> every 2
// seconds, slowest first (one file per process: several may share a PostgreSQL database). On SQLite the time is the statement's own, COMMIT included; on PostgreSQL it is Kysely's
// measure of the round trip. This is how the engine's hot statements were found (bench/README.md).

interface Tally {
  count: number;
  ms: number;
}

const SQLITE_STATEMENT_METHODS = ['run', 'all', 'get', 'iterate'] as const;

export class SqlStats {
  private readonly tallies = new Map<string, Tally>();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly file: string) {
    this.timer = setInterval(() => this.write(), 2_000);
    this.timer.unref();
  }

  static fromEnv(env: NodeJS.ProcessEnv = process.env): SqlStats | null {
    return env.CHORUS_SQL_STATS ? new SqlStats(`${env.CHORUS_SQL_STATS}.${process.pid}`) : null;
  }

  record(text: string, ms: number): void {
    const key = shapeOf(text);
    const t = this.tallies.get(key);
    if (t) {
      t.count++;
      t.ms += ms;
    } else this.tallies.set(key, { count: 1, ms });
  }

  /** Times every call of a prepared better-sqlite3 statement. */
  wrap(text: string, stmt: SQLite.Statement): void {
    const target = stmt as unknown as Record<string, (...args: unknown[]) => unknown>;
    for (const method of SQLITE_STATEMENT_METHODS) {
      const original = target[method].bind(stmt);
      target[method] = (...args: unknown[]) => {
        const started = performance.now();
        try {
          return original(...args);
        } finally {
          this.record(text, performance.now() - started);
        }
      };
    }
  }

  write(): void {
    const lines = [...this.tallies]
      .sort((a, b) => b[1].ms - a[1].ms)
      .map(([sql, t]) => `${t.ms.toFixed(0).padStart(9)} ms ${String(t.count).padStart(9)} × ${(t.ms / t.count).toFixed(3).padStart(8)} ms  ${sql}`);
    fs.writeFileSync(this.file, `${'total ms'.padStart(12)} ${'calls'.padStart(9)}   ${'each'.padStart(8)}     statement\n${lines.join('\n')}\n`);
  }

  close(): void {
    clearInterval(this.timer);
    this.write();
  }
}

/** One line per statement shape: bound lists of any length look alike. */
export function shapeOf(text: string): string {
  return text
    .replace(/\((?:\?|\$\d+)(?:, (?:\?|\$\d+))*\)(?:, \((?:\?|\$\d+)(?:, (?:\?|\$\d+))*\))+/g, '(…rows…)')
    .replace(/(?:\?|\$\d+)(?:, (?:\?|\$\d+))+/g, '…')
    .replace(/\$\d+/g, '?')
    .replace(/\s+/g, ' ')
    .slice(0, 400);
}
