import fc from 'fast-check';
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import type { DatabaseConfig } from '../src/config.js';
import { openStore, transact } from '../src/store/db.js';
import { bucketed, nameFor, prepared } from '../src/store/prepared.js';
import { postgres } from './support/dialects.js';

// Which statement texts run as named prepared statements on PostgreSQL, and the IN-list padding that
// makes the hot reads' texts repeat.

describe('bucketed', () => {
  it('pads to the next power of two up to 512 with the last value: the same set, one of ten lengths (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.string(), { minLength: 1, maxLength: 600 }), (values) => {
        const out = bucketed(values);
        expect(new Set(out)).toEqual(new Set(values));
        expect(out.slice(0, values.length)).toEqual(values);
        if (values.length <= 512) expect([1, 2, 4, 8, 16, 32, 64, 128, 256, 512]).toContain(out.length);
        else expect(out).toEqual(values);
      }),
    );
  });

  it('leaves an empty list empty', () => {
    expect(bucketed([])).toEqual([]);
  });
});

describe('statement names', () => {
  it('names a registered text at once, another on its third run, and never a long one', () => {
    const registered = prepared(`select 1 where ${'x'.repeat(10)} = $1 -- registered`);
    expect(nameFor(registered)).toMatch(/^chorus_\d+$/);
    const text = 'select 2 where $1 = $1 -- repeated';
    expect(nameFor(text)).toBeUndefined();
    expect(nameFor(text)).toBeUndefined();
    const name = nameFor(text);
    expect(name).toMatch(/^chorus_\d+$/);
    expect(nameFor(text)).toBe(name);
    const long = `select 3 where $1 = $1 -- ${'y'.repeat(20_000)}`;
    for (let i = 0; i < 5; i++) expect(nameFor(long)).toBeUndefined();
  });
});

describe.skipIf(!postgres.available)('stale prepared statements (PostgreSQL)', () => {
  it('a table migrated by another process under a prepared select *: the transaction is retried and the statement prepared again', async () => {
    // One connection, so the statement is prepared where it will go stale.
    const config = { ...(postgres.fresh().config as Extract<DatabaseConfig, { dialect: 'postgres' }>), poolSize: 1 };
    const store = await openStore(config);
    const other = await openStore({ ...config, preparedStatements: false });
    try {
      await sql`create table plan_t (id text primary key, a text)`.execute(store.db);
      await sql`insert into plan_t (id, a) values ('x', 'one')`.execute(store.db);
      const read = () => sql<Record<string, unknown>>`select * from plan_t where id = ${'x'}`.execute(store.db);
      for (let i = 0; i < 4; i++) expect((await read()).rows).toEqual([{ id: 'x', a: 'one' }]);
      const statements = await sql<{ n: number }>`select count(*)::int as n from pg_prepared_statements where statement like 'select * from plan_t%'`.execute(store.db);
      expect(statements.rows[0].n).toBe(1);

      await sql`alter table plan_t add column b text default 'two'`.execute(other.db);
      // In a transaction: the first attempt fails on the stale plan, the retry prepares it again.
      const inTransaction = await transact(store, (trx) => sql<Record<string, unknown>>`select * from plan_t where id = ${'x'}`.execute(trx));
      expect(inTransaction.rows).toEqual([{ id: 'x', a: 'one', b: 'two' }]);
      expect((await read()).rows).toEqual([{ id: 'x', a: 'one', b: 'two' }]);
    } finally {
      await other.close();
      await store.close();
    }
  });
});
