import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openStore } from '../src/store/db.js';
import { shapeOf } from '../src/store/sql-stats.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chorus-test-sqlstats-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('statement timings (CHORUS_SQL_STATS)', () => {
  it('folds bound lists of any length into one shape, on both placeholder styles', () => {
    expect(shapeOf('insert into "t" ("a", "b") values (?, ?), (?, ?), (?, ?)')).toBe('insert into "t" ("a", "b") values (…rows…)');
    expect(shapeOf('insert into "t" ("a", "b") values ($1, $2), ($3, $4)')).toBe('insert into "t" ("a", "b") values (…rows…)');
    expect(shapeOf('select * from "w" where "id" in ($1, $2, $3) and "k" = $4')).toBe('select * from "w" where "id" in (…) and "k" = ?');
    expect(shapeOf('select * from "w" where "id" in (?, ?)')).toBe(shapeOf('select * from "w" where "id" in (?, ?, ?, ?)'));
  });

  it('writes each statement shape with its calls and time, slowest first, when the store closes', async () => {
    const base = path.join(dir, 'stats.txt');
    process.env.CHORUS_SQL_STATS = base;
    try {
      const store = await openStore({ dialect: 'sqlite', file: path.join(dir, 'chorus.db'), synchronous: 'NORMAL' });
      await store.db.schema.createTable('t').addColumn('a', 'integer').execute();
      for (let i = 0; i < 3; i++) await store.db.insertInto('t' as never).values([{ a: i }, { a: i + 1 }] as never).execute();
      await store.close();
    } finally {
      delete process.env.CHORUS_SQL_STATS;
    }
    const text = fs.readFileSync(`${base}.${process.pid}`, 'utf8');
    expect(text).toMatch(/^\s+\d+ ms\s+3 ×\s+[\d.]+ ms {2}insert into "t" \("a"\) values \(…rows…\)$/m);
  });
});
