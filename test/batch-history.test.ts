import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BatchHistory } from '../src/engine/batch-history.js';
import { historyOf } from '../src/engine/run-store.js';
import { migrate, openStore, transact, type Store } from '../src/store/db.js';
import { DIALECTS } from './support/dialects.js';

// A batch answers history questions from one query per event name. Whatever it is asked, in whatever
// order and with whatever times, its answers must be the database's answers.

const WS = 'ws_history';
const OTHER_WS = 'ws_other';
const PROFILES = ['prf_a', 'prf_b', 'prf_c', 'prf_d'];
const NAMES = ['Activated', 'Logged In', 'Order Completed'];
const T0 = Date.UTC(2026, 0, 1);
const HOUR = 3600_000;

for (const dialect of DIALECTS) {
  describe.skipIf(!dialect.available)(`batch history on ${dialect.name}`, () => {
    let store: Store;
    beforeAll(async () => {
      store = await openStore(dialect.fresh().config);
      await migrate(store);
      let n = 0;
      const rows = [];
      for (const ws of [WS, OTHER_WS]) {
        for (const p of PROFILES) {
          for (let i = 0; i < 12; i++) {
            n++;
            const name = NAMES[(n * 7) % NAMES.length];
            rows.push({
              id: `evt_${n}`,
              workspace_id: ws,
              message_id: `m_${n}`,
              profile_id: p,
              // Every 5th is a page view with a track's name: history counts tracks only.
              type: n % 5 === 0 ? 'page' : 'track',
              name,
              user_id: null,
              anonymous_id: null,
              timestamp: T0 + ((n * 37) % 48) * HOUR,
              received_at: T0,
              payload: JSON.stringify({ properties: { n } }),
            });
          }
        }
      }
      await store.db.insertInto('events').values(rows).execute();
    });
    afterAll(async () => store?.close());

    it('answers every question as the database does', async () => {
      const question = fc.record({
        profile: fc.constantFrom(...PROFILES, 'prf_outside_the_batch'),
        name: fc.constantFrom(...NAMES),
        since: fc.option(fc.integer({ min: -2, max: 50 }), { nil: undefined }),
      });
      await fc.assert(
        fc.asyncProperty(fc.array(question, { minLength: 1, maxLength: 25 }), async (questions) => {
          await transact(store, async (trx) => {
            const batch = new BatchHistory(trx, WS, PROFILES);
            for (const q of questions) {
              const since = q.since === undefined ? undefined : new Date(T0 + q.since * HOUR);
              const got = await batch.of(q.profile)(q.name, since);
              const want = await historyOf(trx, WS, q.profile)(q.name, since);
              const view = (es: { name: string | null; timestamp: string; properties: Record<string, unknown> }[]) =>
                es.map((e) => `${e.name}@${e.timestamp}#${String(e.properties.n)}`).sort();
              expect(view(got)).toEqual(view(want));
              expect(got.map((e) => e.timestamp)).toEqual([...got.map((e) => e.timestamp)].sort());
            }
          });
        }),
        { numRuns: 40 },
      );
    });
  });
}
