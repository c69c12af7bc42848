import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RunLedger } from '../src/engine/run-ledger.js';
import { migrate, openStore, transact, type Store } from '../src/store/db.js';
import type { RunTable, WaitTable } from '../src/store/schema.js';
import { DIALECTS } from './support/dialects.js';

// The engine's write-behind ledger on a real database: what it reads back before a flush, and what a
// flush leaves in the tables.

const WS = 'ws_ledger';
let seq = 0;

function run(overrides: Partial<RunTable> = {}): RunTable {
  const id = `run_${++seq}`;
  return {
    id,
    workspace_id: WS,
    journey_id: 'jrn_1',
    journey_key: 'onboarding',
    version: 1,
    profile_id: `prf_${seq}`,
    status: 'active',
    entry_key: null,
    holdout: 0,
    entered_at: 1_000 + seq,
    goal_deadline: null,
    converted_at: null,
    ended_at: null,
    end_reason: null,
    trigger: '{}',
    visits: '{}',
    updated_at: 1_000,
    ...overrides,
  };
}

function wait(r: RunTable, kind: string, step: string): WaitTable {
  return { id: `wait_${++seq}`, workspace_id: WS, run_id: r.id, journey_id: r.journey_id, profile_id: r.profile_id, step, kind, event_name: kind === 'wait' ? null : 'Activated', due_at: kind === 'exit' ? null : 5_000, created_at: 1_000 };
}

for (const dialect of DIALECTS) {
  describe.skipIf(!dialect.available)(`run ledger on ${dialect.name}`, () => {
    let store: Store;
    beforeAll(async () => {
      store = await openStore(dialect.fresh().config);
      await migrate(store);
    });
    afterAll(async () => store?.close());

    it('a new run and its waits are visible before the flush and written by it, in multi-row statements', async () => {
      const r = run();
      const timer = wait(r, 'wait', 'nudge');
      const goal = wait(r, 'goal', '$goal');
      await transact(store, async (trx) => {
        const ledger = new RunLedger(trx);
        ledger.putRun(r, true);
        ledger.addWaits([timer, goal]);
        ledger.step(WS, r.id, ['$entry', 'entry', 1_000, 'entered', null]);
        ledger.step(WS, r.id, ['w', 'wait', 1_000, 'waiting', { until: 'x' }]);
        expect(ledger.unwrittenRuns(r.profile_id, r.journey_id).map((x) => x.id)).toEqual([r.id]);
        expect((await ledger.run(r.id))?.status).toBe('active');
        expect(ledger.waitsOf(r.id).map((w) => w.kind).sort()).toEqual(['goal', 'wait']);
        expect(await trx.selectFrom('runs').selectAll().where('id', '=', r.id).execute()).toHaveLength(0);
        await ledger.flush();
        expect(ledger.unwrittenRuns(r.profile_id, r.journey_id)).toEqual([]);
      });
      expect((await store.db.selectFrom('runs').selectAll().where('id', '=', r.id).executeTakeFirstOrThrow()).status).toBe('active');
      expect((await store.db.selectFrom('waits').select('id').where('run_id', '=', r.id).execute()).map((w) => w.id).sort()).toEqual([goal.id, timer.id].sort());
      // One history row for the run's steps of the transaction, in order.
      const history = await store.db.selectFrom('run_history').select(['steps', 'step_count']).where('run_id', '=', r.id).execute();
      expect(history.map((h) => [JSON.parse(h.steps), h.step_count])).toEqual([
        [
          [
            ['$entry', 'entry', 1_000, 'entered', null],
            ['w', 'wait', 1_000, 'waiting', { until: 'x' }],
          ],
          2,
        ],
      ]);
    });

    it('loads runs with all their waits; a wait fires once; ending a run clears its waits; the upsert keeps the rest of the row', async () => {
      const a = run();
      const b = run();
      const waits = [wait(a, 'wait', 'w1'), wait(a, 'exit', '$exit.0'), wait(b, 'wait', 'w2')];
      await store.db.insertInto('runs').values([a, b]).execute();
      await store.db.insertInto('waits').values(waits).execute();

      await transact(store, async (trx) => {
        const ledger = new RunLedger(trx);
        await ledger.load([a.id, b.id, 'run_missing']);
        expect(await ledger.run('run_missing')).toBeUndefined();
        expect(ledger.waitsOf(a.id)).toHaveLength(2);
        // The timer fires: gone from the ledger at once, and a second attempt is refused.
        expect(ledger.deleteWait(a.id, waits[0].id)).toBe(true);
        expect(ledger.deleteWait(a.id, waits[0].id)).toBe(false);
        expect(ledger.hasWait(a.id, waits[0].id)).toBe(false);
        // Run b ends: every wait goes, including one added in this transaction.
        ledger.addWaits([wait(b, 'wait_for', 'w3')]);
        ledger.deleteWaitsOf(b.id);
        expect(ledger.waitsOf(b.id)).toEqual([]);
        expect(ledger.deleteWait(b.id, waits[2].id)).toBe(false);
        ledger.putRun({ ...b, status: 'exited', ended_at: 2_000, end_reason: 'exit event', updated_at: 2_000 });
        ledger.putRun({ ...a, status: 'waiting', visits: '{"w1":1}', updated_at: 2_000 });
        await ledger.flush();
      });

      const rows = await store.db.selectFrom('runs').selectAll().where('id', 'in', [a.id, b.id]).orderBy('id').execute();
      const byId = new Map(rows.map((r) => [r.id, r]));
      expect(byId.get(a.id)).toMatchObject({ status: 'waiting', visits: '{"w1":1}', updated_at: 2_000, trigger: '{}', entered_at: a.entered_at });
      expect(byId.get(b.id)).toMatchObject({ status: 'exited', ended_at: 2_000, end_reason: 'exit event' });
      const left = await store.db.selectFrom('waits').select(['id', 'run_id']).where('run_id', 'in', [a.id, b.id]).execute();
      expect(left).toEqual([{ id: waits[1].id, run_id: a.id }]);
    });

    it('writes batches larger than one statement chunk', async () => {
      const runs = Array.from({ length: 950 }, () => run());
      await transact(store, async (trx) => {
        const ledger = new RunLedger(trx);
        for (const r of runs) {
          ledger.putRun(r, true);
          ledger.addWaits([wait(r, 'wait', 'w')]);
          ledger.step(WS, r.id, ['$entry', 'entry', 1, 'entered', null]);
        }
        await ledger.flush();
      });
      const ids = runs.map((r) => r.id);
      const count = async (table: 'runs' | 'waits' | 'run_history', column: 'id' | 'run_id') => {
        let n = 0;
        for (let i = 0; i < ids.length; i += 400) n += (await store.db.selectFrom(table).select(column).where(column, 'in', ids.slice(i, i + 400)).execute()).length;
        return n;
      };
      expect(await count('runs', 'id')).toBe(950);
      expect(await count('waits', 'run_id')).toBe(950);
      expect(await count('run_history', 'run_id')).toBe(950);
    });
  });
}
