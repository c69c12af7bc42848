import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate, openStore, type Store } from '../src/store/db.js';
import { insertRows } from '../src/store/insert-rows.js';
import { DIALECTS } from './support/dialects.js';

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

    it('does nothing for no rows', async () => {
      await expect(insertRows(store.db, 'runs', [])).resolves.toBeUndefined();
    });
  });
}
