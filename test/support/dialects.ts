import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { randomBytes } from 'node:crypto';
import type { DatabaseConfig } from '../../src/config.js';

// The same tests run on SQLite and on PostgreSQL. PostgreSQL tests get a fresh schema each; when no
// PostgreSQL is reachable they are skipped with a visible message, unless CHORUS_REQUIRE_PG=1
// (set by .ci/run), which turns the absence into a failure.

export const PG_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const REQUIRED = process.env.CHORUS_REQUIRE_PG === '1';

async function probe(): Promise<string | null> {
  const client = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('select 1');
    return null;
  } catch (err) {
    return (err as Error).message;
  } finally {
    await client.end().catch(() => undefined);
  }
}

const pgProblem = await probe();
if (pgProblem !== null) {
  if (REQUIRED) throw new Error(`PostgreSQL is required (CHORUS_REQUIRE_PG=1) but ${PG_URL} is unreachable: ${pgProblem}`);
  console.warn(`\n*** PostgreSQL suite SKIPPED: ${PG_URL} is unreachable (${pgProblem}). Set TEST_DATABASE_URL to run it. ***\n`);
}
export const postgresAvailable = pgProblem === null;

export interface TestDialect {
  name: 'sqlite' | 'postgres';
  available: boolean;
  /** A fresh, empty database configuration, plus the environment variables that select it. */
  fresh(): { config: DatabaseConfig; env: Record<string, string> };
}

/** Prefixed with the test run's id (test/support/cleanup.ts), which removes them at the end. */
const RUN = process.env.CHORUS_TEST_RUN ?? 'adhoc';

function uniqueName(): string {
  return `t_${RUN}_${Date.now().toString(36)}${randomBytes(4).toString('hex')}`;
}

export const sqlite: TestDialect = {
  name: 'sqlite',
  available: true,
  fresh() {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `chorus-test-${RUN}-`));
    return {
      config: { dialect: 'sqlite', file: path.join(dir, 'chorus.db'), synchronous: 'NORMAL' },
      env: { CHORUS_DATA_DIR: dir, CHORUS_SQLITE_SYNCHRONOUS: 'NORMAL' },
    };
  },
};

export const postgres: TestDialect = {
  name: 'postgres',
  available: postgresAvailable,
  fresh() {
    const schema = uniqueName();
    return {
      config: { dialect: 'postgres', url: PG_URL, schema, poolSize: 10 },
      env: { DATABASE_URL: PG_URL, CHORUS_PG_SCHEMA: schema },
    };
  },
};

export const DIALECTS: TestDialect[] = [sqlite, postgres];
