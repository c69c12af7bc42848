import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { DatabaseConfig } from '../../src/config.js';
import { redact } from '../../src/store/db.js';

// Where a bench runs: a fresh SQLite directory or a fresh PostgreSQL schema, the environment that points a
// `chorus start` child at it, the same as a config for the bench's own store, and how to remove it.

export type DialectName = 'sqlite' | 'postgres';

export interface Target {
  env: Record<string, string>;
  config: DatabaseConfig;
  where: string;
  cleanup(): Promise<void>;
}

export interface TargetOptions {
  /** Name prefix of the SQLite temporary directory, e.g. `chorus-bench-gate-`. */
  prefix: string;
  sqliteSynchronous: 'FULL' | 'NORMAL';
  /** Pool size of the bench's own PostgreSQL connections. */
  poolSize: number;
  pgUrl: string;
  keep: boolean;
  /** Added to the description of a PostgreSQL target. */
  note?: string;
}

async function pgProblem(url: string): Promise<string | null> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('select 1');
    return null;
  } catch (err) {
    return (err as Error).message || String(err);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** A fresh database for one dialect, or why PostgreSQL can't be used. */
export async function prepareTarget(dialect: DialectName, opts: TargetOptions): Promise<Target | string> {
  if (dialect === 'sqlite') {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), opts.prefix));
    const file = path.join(dir, 'chorus.db');
    return {
      env: { CHORUS_DATA_DIR: dir, CHORUS_SQLITE_SYNCHRONOUS: opts.sqliteSynchronous },
      config: { dialect: 'sqlite', file, synchronous: opts.sqliteSynchronous },
      where: `${file} (synchronous=${opts.sqliteSynchronous})`,
      cleanup: async () => {
        if (opts.keep) console.log(`kept ${dir}`);
        else fs.rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  const problem = await pgProblem(opts.pgUrl);
  if (problem !== null) return `PostgreSQL at ${redact(opts.pgUrl)} is unreachable (${problem}); set TEST_DATABASE_URL to run it`;
  const schema = `bench_${randomBytes(5).toString('hex')}`;
  return {
    env: { DATABASE_URL: opts.pgUrl, CHORUS_PG_SCHEMA: schema },
    config: { dialect: 'postgres', url: opts.pgUrl, schema, poolSize: opts.poolSize },
    where: `${redact(opts.pgUrl)} schema ${schema}${opts.note ? ` ${opts.note}` : ''}`,
    cleanup: async () => {
      if (opts.keep) {
        console.log(`kept schema ${schema}`);
        return;
      }
      const client = new pg.Client({ connectionString: opts.pgUrl });
      await client.connect();
      try {
        await client.query(`drop schema if exists "${schema}" cascade`);
      } finally {
        await client.end();
      }
    },
  };
}
