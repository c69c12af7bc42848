import fc from 'fast-check';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate, openStore, type Store } from '../src/store/db.js';
import { insertRows, updateRows, writeAll } from '../src/store/insert-rows.js';
import { DIALECTS } from './support/dialects.js';
import type { DatabaseConfig } from '../src/config.js';

// The hot paths' multi-row INSERT, written as SQL text: the same rows, conflicts and errors as Kysely's.

const row = (id: string, status: string, visits = '{}') => ({
  id,
  workspace_id: 'ws_rows',
  journey_id: 'jny_1',
  journey_key: 'k',
  version: 1,
  profile_id: `prf_${id}`,
  status,
  entry_key: null,
  holdout: 0,
  entered_at: 1,
  goal_deadline: null,
  converted_at: null,
  ended_at: null,
  end_reason: null,
  trigger: '{"name":"it\'s"}',
  visits,
  updated_at: 1,
});

const wellFormed = (s: string) => s.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd');

for (const dialect of DIALECTS) {
  describe.skipIf(!dialect.available)(`insertRows on ${dialect.name}`, () => {
    let store: Store;
    beforeAll(async () => {
      store = await openStore(dialect.fresh().config);
      await migrate(store);
    });
    afterAll(async () => store?.close());

    it('inserts every row, then updates only the named columns on conflict, or keeps the row', async () => {
      await insertRows(store.db, 'runs', [row('run_a', 'active'), row('run_b', 'active')]);
      await insertRows(store.db, 'runs', [{ ...row('run_a', 'completed', '{"x":1}'), journey_key: 'changed' }, row('run_c', 'active')], { column: 'id', update: ['status', 'visits'] });
      await insertRows(store.db, 'runs', [row('run_b', 'exited')], { column: 'id' });
      const runs = await store.db.selectFrom('runs').select(['id', 'status', 'visits', 'journey_key', 'trigger']).where('workspace_id', '=', 'ws_rows').orderBy('id').execute();
      expect(runs).toEqual([
        { id: 'run_a', status: 'completed', visits: '{"x":1}', journey_key: 'k', trigger: '{"name":"it\'s"}' },
        { id: 'run_b', status: 'active', visits: '{}', journey_key: 'k', trigger: '{"name":"it\'s"}' },
        { id: 'run_c', status: 'active', visits: '{}', journey_key: 'k', trigger: '{"name":"it\'s"}' },
      ]);
    });

    it('refuses rows that name different columns', async () => {
      const { visits: _, ...short } = row('run_d', 'active');
      await expect(insertRows(store.db, 'runs', [row('run_e', 'active'), short as ReturnType<typeof row>])).rejects.toThrow(/same 17 columns/);
    });

    it('stores any text, null and number exactly (property; PostgreSQL sends a text per column, or arrays when a value holds its separators)', async () => {
      let n = 0;
      const text = fc.oneof(
        fc.string(),
        fc.string({ unit: 'binary' }),
        fc.constantFrom('', 'NULL', 'null', '{}', '{"a":"b,c"}', 'a\\b', '"q"', ' lead', 'ü€😀', '{a,b}', '\\ud800', '\u2028\u2029', '\t\n\r\b\f', '\u0001', '\u0002', 'a\u0001b\u0002'),
      ).map(wellFormed);
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.record({ reason: fc.option(text, { nil: null }), trigger: text, at: fc.integer({ min: 0, max: 2 ** 53 - 1 }), holdout: fc.integer({ min: 0, max: 1 }) }), { minLength: 1, maxLength: 20 }),
          async (specs) => {
            // PostgreSQL text cannot hold NUL (either way of sending it fails).
            const rows = specs.map((s) => ({ ...row(`run_p${++n}`, 'active'), end_reason: s.reason?.replace(/\u0000/g, '') ?? null, trigger: s.trigger.replace(/\u0000/g, ''), entered_at: s.at, holdout: s.holdout }));
            await insertRows(store.db, 'runs', rows);
            const back = await store.db.selectFrom('runs').select(['id', 'end_reason', 'trigger', 'entered_at', 'holdout']).where('id', 'in', rows.map((r) => r.id)).orderBy('id').execute();
            const want = rows.map((r) => ({ id: r.id, end_reason: r.end_reason, trigger: r.trigger, entered_at: r.entered_at, holdout: r.holdout })).sort((a, b) => (a.id < b.id ? -1 : 1));
            expect(back).toEqual(want);
          },
        ),
        { numRuns: 100 },
      );
    });

    it('stores text with a lone surrogate', async () => {
      await insertRows(store.db, 'runs', [{ ...row('run_lone', 'active'), end_reason: 'a\ud800b', trigger: '\udfff' }, row('run_lone2', 'active')]);
      const back = await store.db.selectFrom('runs').select(['end_reason', 'trigger']).where('id', '=', 'run_lone').executeTakeFirstOrThrow();
      // Stored as UTF-8, the surrogate is replaced (PostgreSQL: one U+FFFD; SQLite: one per byte).
      expect(back.end_reason).toMatch(/^a\ufffd+b$/);
      expect(back.trigger).toMatch(/^\ufffd+$/);
    });

    it('stores hundreds of rows in one call, all or none (SQLite writes them in slices)', async () => {
      const many = Array.from({ length: 150 }, (_, i) => row(`run_many_${String(i).padStart(3, '0')}`, 'active'));
      await insertRows(store.db, 'runs', many);
      const count = async (prefix: string) =>
        Number((await store.db.selectFrom('runs').select((eb) => eb.fn.countAll<number>().as('n')).where('id', 'like', `${prefix}%`).executeTakeFirst())?.n);
      expect(await count('run_many_')).toBe(150);
      // A duplicate id in the last slice fails the call, and nothing of it stays.
      const failing = Array.from({ length: 150 }, (_, i) => row(`run_none_${String(i).padStart(3, '0')}`, 'active'));
      failing[140] = row('run_many_000', 'active');
      await expect(insertRows(store.db, 'runs', failing)).rejects.toThrow();
      expect(await count('run_none_')).toBe(0);
    });

    it.runIf(dialect.name === 'postgres')('writes a run\'s new state in place on PostgreSQL (a HOT update: no new index entries)', async () => {
      await insertRows(store.db, 'runs', Array.from({ length: 50 }, (_, i) => row(`run_hot_${i}`, 'active')));
      const hot = await store.db.transaction().execute(async (trx) => {
        // This backend's counts not yet sent to the statistics system (earlier transactions' included).
        const counts = async () =>
          (
            await sql<{ upd: number; hot: number }>`
              select n_tup_upd::int as upd, n_tup_hot_upd::int as hot from pg_stat_xact_user_tables where relid = 'runs'::regclass`.execute(trx)
          ).rows[0];
        const before = await counts();
        // Every fifth run changes: fillfactor 75 leaves a quarter of each page for new versions.
        const changed = Array.from({ length: 10 }, (_, i) => ({ ...row(`run_hot_${i * 5}`, i % 2 ? 'waiting' : 'completed', '{"step":1}'), updated_at: 2 }));
        await updateRows(trx, 'runs', 'id', ['status', 'visits', 'updated_at'], changed);
        const after = await counts();
        return { upd: after.upd - before.upd, hot: after.hot - before.hot };
      });
      // No index covers status, visits or updated_at (with runs_journey_status, or on full pages: 0).
      expect(hot).toEqual({ upd: 10, hot: 10 });
    });

    it('does nothing for no rows', async () => {
      await expect(insertRows(store.db, 'runs', [])).resolves.toBeUndefined();
      await expect(updateRows(store.db, 'runs', 'id', ['status'], [])).resolves.toBeUndefined();
    });

    it('updates only the named columns of existing rows, any text included', async () => {
      await insertRows(store.db, 'runs', [row('run_up1', 'active'), row('run_up2', 'active'), row('run_up3', 'active')]);
      await updateRows(store.db, 'runs', 'id', ['status', 'visits', 'end_reason'], [
        { ...row('run_up1', 'completed', '{"a":1}'), journey_key: 'ignored', end_reason: 'it\'s "done"' },
        { ...row('run_up2', 'exited'), end_reason: null },
      ]);
      // A lone surrogate; and a separator, which sends that batch the array way.
      await updateRows(store.db, 'runs', 'id', ['status', 'end_reason'], [{ ...row('run_up3', 'converted'), end_reason: 'x\ud800' }]);
      await updateRows(store.db, 'runs', 'id', ['status', 'trigger'], [{ ...row('run_up3', 'converted'), trigger: 'y\u0001z\u0002' }, { ...row('run_up2', 'exited'), trigger: '' }]);
      const back = await store.db.selectFrom('runs').select(['id', 'status', 'visits', 'end_reason', 'journey_key']).where('id', 'like', 'run_up%').orderBy('id').execute();
      expect(back.slice(0, 2)).toEqual([
        { id: 'run_up1', status: 'completed', visits: '{"a":1}', end_reason: 'it\'s "done"', journey_key: 'k' },
        { id: 'run_up2', status: 'exited', visits: '{}', end_reason: null, journey_key: 'k' },
      ]);
      expect(back[2]).toMatchObject({ id: 'run_up3', status: 'converted', journey_key: 'k' });
      expect(back[2].end_reason).toMatch(/^x\ufffd+$/);
      const triggers = await store.db.selectFrom('runs').select(['id', 'trigger']).where('id', 'in', ['run_up2', 'run_up3']).orderBy('id').execute();
      expect(triggers).toEqual([
        { id: 'run_up2', trigger: '' },
        { id: 'run_up3', trigger: 'y\u0001z\u0002' },
      ]);
    });

    it('writeAll: inserts, updates and deletes of disjoint rows together (PostgreSQL: one statement), any text included', async () => {
      await insertRows(store.db, 'runs', [row('run_wa1', 'active'), row('run_wa2', 'active'), row('run_wa3', 'active')]);
      const wait = (id: string, runId: string) => ({ id, workspace_id: 'ws_rows', run_id: runId, journey_id: 'jny_1', profile_id: `prf_${runId}`, step: 's', kind: 'wait', event_name: null, due_at: 5, created_at: 1 });
      await insertRows(store.db, 'waits', [wait('wait_wa1', 'run_wa1'), wait('wait_wa2', 'run_wa2')]);
      await writeAll(store.db, [
        { kind: 'insert', table: 'runs', rows: [row('run_wa4', 'active'), row('run_wa1', 'never')], conflict: { column: 'id', update: ['status'] } },
        { kind: 'update', table: 'runs', key: 'id', columns: ['status', 'end_reason'], rows: [{ ...row('run_wa2', 'exited'), end_reason: 'it\'s "gone" \ud800' }, { ...row('run_wa3', 'completed'), end_reason: null }] },
        { kind: 'delete', table: 'waits', column: 'id', values: ['wait_wa1', 'wait_missing'] },
        { kind: 'insert', table: 'waits', rows: [wait('wait_wa3', 'run_wa4')] },
        { kind: 'insert', table: 'run_history', rows: [] },
      ]);
      const runs = await store.db.selectFrom('runs').select(['id', 'status', 'end_reason']).where('id', 'like', 'run_wa%').orderBy('id').execute();
      expect(runs.map((r) => [r.id, r.status])).toEqual([
        ['run_wa1', 'never'],
        ['run_wa2', 'exited'],
        ['run_wa3', 'completed'],
        ['run_wa4', 'active'],
      ]);
      // The lone surrogate is stored as U+FFFD, like the rest in the one statement.
      expect(runs[1].end_reason).toMatch(/^it's "gone" \ufffd+$/);
      expect(runs[2].end_reason).toBeNull();
      const waits = await store.db.selectFrom('waits').select('id').where('id', 'like', 'wait_wa%').orderBy('id').execute();
      expect(waits.map((w) => w.id)).toEqual(['wait_wa2', 'wait_wa3']);
      await expect(writeAll(store.db, [{ kind: 'delete', table: 'waits', column: 'id', values: [] }])).resolves.toBeUndefined();
    });

    it('writeAll: all or nothing (PostgreSQL: one statement; SQLite: inside the caller\'s transaction)', async () => {
      await insertRows(store.db, 'runs', [row('run_wb1', 'active')]);
      const attempt = store.db.transaction().execute((trx) =>
        writeAll(trx, [
          { kind: 'update', table: 'runs', key: 'id', columns: ['status'], rows: [row('run_wb1', 'exited')] },
          // A duplicate id with no conflict clause fails the statement.
          { kind: 'insert', table: 'runs', rows: [row('run_wb1', 'again')] },
        ]),
      );
      await expect(attempt).rejects.toThrow();
      const back = await store.db.selectFrom('runs').select('status').where('id', '=', 'run_wb1').executeTakeFirstOrThrow();
      expect(back.status).toBe('active');
    });

    it.skipIf(dialect.name !== 'postgres')('PostgreSQL: writes run as named prepared statements at once, reads from their third run, one-off texts never', async () => {
      const prepared = await store.db.transaction().execute(async (trx) => {
        for (const n of [1, 2, 3]) {
          await writeAll(trx, [
            { kind: 'insert', table: 'runs', rows: [row(`run_wp${n}`, 'active')] },
            { kind: 'update', table: 'runs', key: 'id', columns: ['status'], rows: [row('run_wb1', `s${n}`)] },
          ]);
          // A different IN-list length each time: three texts, each run once.
          await trx.selectFrom('runs').select(['id', 'holdout']).where('id', 'in', Array.from({ length: n }, (_, i) => `run_wp${i}`)).execute();
          // The same text three times.
          await trx.selectFrom('runs').select(['id', 'entry_key']).where('id', '=', `run_wp${n}`).execute();
        }
        // Same connection: prepared statements belong to it.
        return (await sql<{ statement: string }>`select statement from pg_prepared_statements where name like 'chorus_%'`.execute(trx)).rows.map((r) => r.statement);
      });
      expect(prepared.some((s) => s.startsWith('with w0 as (insert into "runs"'))).toBe(true);
      expect(prepared).toContain('select "id", "entry_key" from "runs" where "id" = $1');
      expect(prepared.some((s) => s.startsWith('select "id", "holdout"'))).toBe(false);
      const runs = await store.db.selectFrom('runs').select('id').where('id', 'like', 'run_wp%').execute();
      expect(runs).toHaveLength(3);
    });

    it.skipIf(dialect.name !== 'postgres')('PostgreSQL with prepared statements off (CHORUS_PG_PREPARED_STATEMENTS=off): none are named', async () => {
      const plain = await openStore({ ...(dialect.fresh().config as Extract<DatabaseConfig, { dialect: 'postgres' }>), preparedStatements: false });
      try {
        await migrate(plain);
        const prepared = await plain.db.transaction().execute(async (trx) => {
          for (const n of [1, 2, 3]) {
            await writeAll(trx, [
              { kind: 'insert', table: 'runs', rows: [row(`run_np${n}`, 'active')] },
              { kind: 'insert', table: 'run_history', rows: [{ workspace_id: 'ws_rows', run_id: `run_np${n}`, steps: '[]', step_count: 0 }] },
            ]);
            await trx.selectFrom('runs').select(['id', 'entry_key']).where('id', '=', `run_np${n}`).execute();
          }
          return (await sql<{ n: number }>`select count(*)::int as n from pg_prepared_statements`.execute(trx)).rows[0].n;
        });
        expect(prepared).toBe(0);
        expect(await plain.db.selectFrom('runs').select('id').where('id', 'like', 'run_np%').execute()).toHaveLength(3);
      } finally {
        await plain.close();
      }
    });
  });
}
