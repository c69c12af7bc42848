import fc from 'fast-check';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { openStore, type Store } from '../src/store/db.js';
import { DIALECTS } from './support/dialects.js';
import { admin, ingest, startTestServer, type TestServer } from './support/server.js';

// Any sequence of identify, alias and track calls over a few people's ids, while a journey runs, leaves one
// customer, one line (DESIGN invariant 3) and runs that follow their customers through merges (property,
// both databases): every identifier, event and run is on a live profile, and a journey entered once has
// at most one open run per customer.

const START = '2026-04-06T09:00:00.000Z';
const JOURNEY = {
  key: 'merge-fuzz',
  name: 'Merge fuzz',
  trigger: { event: 'Go' },
  steps: {
    hello: { send: { channel: 'email', content: { email: { subject: 'Hi', text: 'Hello' } } } },
    pause: { wait: { duration: 'P1D' } },
    again: { send: { channel: 'email', content: { email: { subject: 'Again', text: 'Hello again' } } } },
  },
};

const user = fc.constantFrom('u1', 'u2');
const anon = fc.constantFrom('a1', 'a2', 'a3');
const email = fc.constantFrom('p1@example.com', 'p2@example.com');
// Tracks come from one side (an anonymous visitor or a known user), so both sides enter the journey
// before an identify or alias links them: then their runs must merge.
const callOf = fc.oneof(
  { arbitrary: fc.record({ type: fc.constant('track'), anonymousId: anon, event: fc.constantFrom('Go', 'Go', 'Viewed') }), weight: 3 },
  { arbitrary: fc.record({ type: fc.constant('track'), userId: user, event: fc.constantFrom('Go', 'Go', 'Viewed') }), weight: 3 },
  { arbitrary: fc.record({ type: fc.constant('identify'), userId: user, anonymousId: anon, traits: fc.record({ email }, { requiredKeys: [] }) }, { requiredKeys: ['type'] }), weight: 3 },
  { arbitrary: fc.record({ type: fc.constant('identify'), anonymousId: anon, traits: fc.record({ email }) }), weight: 1 },
  { arbitrary: fc.record({ type: fc.constant('alias'), userId: user, previousId: fc.oneof(user, anon) }), weight: 2 },
);
type Call = typeof callOf extends fc.Arbitrary<infer C> ? C : never;

for (const dialect of DIALECTS) {
  describe.skipIf(!dialect.available)(`merges while a journey runs on ${dialect.name}`, () => {
    let srv: TestServer;
    let store: Store;
    beforeAll(async () => {
      srv = await startTestServer(dialect, { CHORUS_VIRTUAL_CLOCK: START });
      store = await openStore(loadConfig(srv.env).database);
      await admin(srv.url, 'POST', '/v1/journeys', JOURNEY);
      await admin(srv.url, 'POST', '/v1/journeys/merge-fuzz/publish');
    });
    afterAll(async () => {
      await store?.close();
      await srv?.close();
    });

    it('keeps identifiers, events and runs on live profiles, one open run per customer', async () => {
      let round = 0;
      await fc.assert(
        fc.asyncProperty(fc.array(callOf, { minLength: 2, maxLength: 10 }), fc.boolean(), async (calls, batch) => {
          // Each round is its own workspace-wide world: ids get a round suffix so rounds don't mix.
          const r = ++round;
          const tag = (v: unknown) => (typeof v === 'string' ? (v.includes('@') ? v.replace('@', `+${r}@`) : `${v}-${r}`) : v);
          const tagged = calls.map((c) => {
            const out: Record<string, unknown> = { ...c };
            for (const k of ['userId', 'anonymousId', 'previousId'] as const) if (k in out) out[k] = tag(out[k]);
            if ('traits' in c && c.traits?.email) out.traits = { email: tag(c.traits.email) };
            return out;
          });
          if (batch) {
            const res = await ingest(srv.url, 'batch', { batch: tagged });
            expect(res.status, JSON.stringify(res.body)).toBeLessThan(500);
          } else {
            for (const c of tagged) {
              const res = await ingest(srv.url, String(c.type), c);
              expect(res.status, JSON.stringify(res.body)).toBeLessThan(500);
            }
          }
          expect((await admin(srv.url, 'POST', '/v1/clock/advance', { by: 'P1D' })).status).toBe(200);

          const orphan = async (table: 'identifiers' | 'events' | 'runs' | 'messages') =>
            Number(
              (
                await sql<{ n: number | string }>`select count(*) as n from ${sql.table(table)} t left join profiles p on p.id = t.profile_id
                where p.id is null or p.merged_into is not null`.execute(store.db)
              ).rows[0].n,
            );
          for (const table of ['identifiers', 'events', 'runs', 'messages'] as const) expect(await orphan(table), table).toBe(0);
          const doubled = await sql<{ profile_id: string; n: number | string }>`
            select profile_id, count(*) as n from runs where status in ('active', 'waiting') group by profile_id having count(*) > 1`.execute(store.db);
          expect(doubled.rows).toEqual([]);
        }),
        {
          numRuns: 60,
          // Always among the draws: a visitor and a known user both in the journey, then linked.
          examples: [false, true].map((batch): [Call[], boolean] => [
            [
              { type: 'track', anonymousId: 'a1', event: 'Go' },
              { type: 'track', userId: 'u1', event: 'Go' },
              { type: 'identify', userId: 'u1', anonymousId: 'a1', traits: {} },
            ],
            batch,
          ]),
        },
      );
      // Customers were merged with runs in flight (the examples do; most draws too).
      const merged = await sql<{ n: number | string }>`select count(*) as n from profiles where merged_into is not null`.execute(store.db);
      expect(Number(merged.rows[0].n)).toBeGreaterThanOrEqual(2);
      const history = await store.db.selectFrom('run_history').select('steps').execute();
      const moved = history.flatMap((h) => JSON.parse(h.steps) as [string][]).filter(([step]) => step === '$merge');
      expect(moved.length).toBeGreaterThan(0);
    });
  });
}
