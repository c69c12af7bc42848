import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { startCheckpointer } from '../src/store/checkpointer.js';
import { openStore } from '../src/store/db.js';

// SQLite's checkpoints run in a worker thread: committed pages reach the database file while the
// server's own connection never checkpoints (its automatic limit is far above what this test writes).

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chorus-test-checkpointer-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('background checkpoints on SQLite', () => {
  it('copies committed pages into the database file, and closing stops the worker', async () => {
    const file = path.join(dir, 'chorus.db');
    const store = await openStore({ dialect: 'sqlite', file, synchronous: 'FULL' });
    await sql`create table filler (id integer primary key, body text not null)`.execute(store.db);
    const before = fs.statSync(file).size;
    for (let i = 0; i < 20; i++) {
      await sql`insert into filler (body) select printf('%.2000c', 'x') from (select 1 from sqlite_schema limit 1) join (with recursive n(k) as (select 1 union all select k + 1 from n where k < 50) select k from n)`.execute(store.db);
    }
    const wal = fs.statSync(`${file}-wal`).size;
    expect(wal).toBeGreaterThan(1_000_000);
    let size = before;
    for (let i = 0; i < 100 && size < 1_000_000; i++) {
      await new Promise((r) => setTimeout(r, 100));
      size = fs.statSync(file).size;
    }
    expect(size).toBeGreaterThan(1_000_000);
    await store.close();
    // Closed cleanly: the last connection removed its WAL.
    expect(fs.existsSync(`${file}-wal`)).toBe(false);
  });

  it('hands checkpoints back when its worker cannot run', async () => {
    const message = await new Promise<string>((resolve) => {
      startCheckpointer(path.join(dir, 'missing', 'chorus.db'), 'FULL', resolve);
    });
    expect(message).toMatch(/directory does not exist|unable to open|cannot open/i);
  });
});
