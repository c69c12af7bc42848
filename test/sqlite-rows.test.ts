import SQLite from 'better-sqlite3';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fastRows, rowBuilder } from '../src/store/sqlite-rows.js';

// Reader statements return rows as arrays made into objects in JavaScript (sqlite-rows.ts): every caller
// must get exactly the rows better-sqlite3 itself would have made.

let db: SQLite.Database;

beforeEach(() => {
  db = new SQLite(':memory:');
  db.exec(`create table t (id text primary key, n integer, r real, b blob, j text, z text)`);
  const insert = db.prepare('insert into t values (?, ?, ?, ?, ?, ?)');
  insert.run('a', 1, 1.5, Buffer.from([0, 1, 2]), '{"k":[1,2]}', null);
  insert.run('b', -(2 ** 53) + 1, -0.25, null, '"é🙂"', 'x');
  insert.run('c', 0, null, Buffer.alloc(0), '', '');
});

afterEach(() => db.close());

/** The same query through a plain statement and a fast one. */
function both(sql: string): { plain: SQLite.Statement; fast: SQLite.Statement } {
  const fast = db.prepare(sql);
  fastRows(fast);
  return { plain: db.prepare(sql), fast };
}

describe('fastRows', () => {
  it('gives all(), get() and iterate() the rows better-sqlite3 makes', () => {
    for (const sql of [
      'select * from t order by id',
      'select id, n + 1 as "n plus one", length(b) as len, j as "quote""d", z from t order by id desc',
      // Duplicate names: the later column wins, as in better-sqlite3's own objects.
      'select id, n as id, r from t order by id',
      'select count(*) as n from t',
      'select * from t where id = ?',
    ]) {
      const { plain, fast } = both(sql);
      const args = sql.includes('?') ? ['b'] : [];
      expect(fast.all(...args)).toEqual(plain.all(...args));
      expect(fast.get(...args)).toEqual(plain.get(...args));
      expect([...fast.iterate(...args)]).toEqual([...plain.iterate(...args)]);
    }
  });

  it('answers undefined from get() when there is no row', () => {
    const { fast } = both('select * from t where id = ?');
    expect(fast.get('nobody')).toBeUndefined();
    expect(fast.all('nobody')).toEqual([]);
  });

  it('leaves statements that write alone', () => {
    const stmt = db.prepare('insert into t (id) values (?)');
    fastRows(stmt);
    expect(stmt.run('d').changes).toBe(1);
    const returning = db.prepare('delete from t where id = ? returning id, n');
    fastRows(returning);
    expect(returning.all('a')).toEqual([{ id: 'a', n: 1 }]);
  });

  it('hands the statement back when another row mode is asked for', () => {
    const { plain, fast } = both('select id, n from t order by id');
    expect(fast.pluck().all()).toEqual(['a', 'b', 'c']);
    expect(fast.pluck(false).raw().all()).toEqual([['a', 1], ['b', -(2 ** 53) + 1], ['c', 0]]);
    expect(fast.raw(false).all()).toEqual(plain.all());
  });

  it('follows a select * whose table gained a column after the statement was prepared', () => {
    const { fast } = both('select * from t where id = ?');
    expect(Object.keys(fast.get('a') as object)).toEqual(['id', 'n', 'r', 'b', 'j', 'z']);
    db.exec('alter table t add column extra text');
    expect(fast.get('a')).toEqual(db.prepare('select * from t where id = ?').get('a'));
    expect(fast.get('a')).toMatchObject({ id: 'a', extra: null });
  });

  it('leaves a statement with a column named __proto__ to better-sqlite3', () => {
    const { plain, fast } = both('select id as "__proto__", n from t order by id');
    const rows = fast.all() as Record<string, unknown>[];
    expect(rows).toEqual(plain.all());
    expect(Object.getPrototypeOf(rows[0])).toBe(Object.prototype);
  });
});

describe('rowBuilder', () => {
  it('makes the object a loop of assignments would, for any column names (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.string({ unit: 'binary' }).filter((s) => s !== '__proto__'), { maxLength: 8 }),
        (names) => {
          const values = names.map((_, i) => i);
          const expected: Record<string, unknown> = {};
          names.forEach((n, i) => (expected[n] = values[i]));
          expect(rowBuilder(names)(values)).toEqual(expected);
        },
      ),
      { numRuns: 300 },
    );
  });
});
