import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';

// Vitest global setup: names this run, so every PostgreSQL schema and SQLite directory the tests create
// can be found and removed at the end (other runs sharing the database keep theirs).

export function setup(): void {
  process.env.CHORUS_TEST_RUN ??= `${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
}

export async function teardown(): Promise<void> {
  const run = process.env.CHORUS_TEST_RUN;
  if (!run) return;
  for (const entry of fs.readdirSync(os.tmpdir())) {
    if (entry.startsWith(`chorus-test-${run}-`)) fs.rmSync(path.join(os.tmpdir(), entry), { recursive: true, force: true });
  }
  const client = new pg.Client({ connectionString: process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test', connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    const { rows } = await client.query<{ name: string }>(`select nspname as name from pg_namespace where nspname like $1`, [`t_${run}_%`]);
    for (const { name } of rows) await client.query(`drop schema if exists "${name}" cascade`);
  } catch {
    // No PostgreSQL here: nothing was created in it.
  } finally {
    await client.end().catch(() => undefined);
  }
}
