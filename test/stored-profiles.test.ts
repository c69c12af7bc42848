import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IncomingEvent } from '../src/core/types.js';
import { loadProfiles } from '../src/engine/run-store.js';
import { migrate, openStore, type Store } from '../src/store/db.js';
import { ingestEvents, type StoredProfile } from '../src/store/ingest.js';
import { DIALECTS } from './support/dialects.js';

// Ingestion hands the engine the batch's profiles as it stored them, instead of the engine reading them
// back. Property: whatever the batch (new customers, anonymous visitors who identify, traits, phones, user
// ids arriving later), that map equals what a read inside the same transaction returns.

type Call = { kind: 'identify' | 'track' | 'anonymous'; customer: number; phone: boolean; plan: string };

let seq = 0;
function toEvent(c: Call): IncomingEvent {
  const t = new Date(Date.UTC(2026, 0, 5, 9, 0, 0, ++seq)).toISOString();
  const base = { messageId: `m_${seq}`, userId: null, anonymousId: null, previousId: null, groupId: null, event: null, properties: {}, traits: {}, context: {}, timestamp: t, originalTimestamp: null, sentAt: null, receivedAt: t, raw: {} };
  if (c.kind === 'anonymous') return { ...base, type: 'track', anonymousId: `anon_${c.customer}`, event: 'Viewed' };
  if (c.kind === 'track') return { ...base, type: 'track', userId: `user_${c.customer}`, event: 'Logged In' };
  const traits: Record<string, unknown> = { email: `c${c.customer}@example.com`, plan: c.plan };
  if (c.phone) traits.phone = `+1415555${String(1000 + c.customer).slice(-4)}`;
  return { ...base, type: 'identify', userId: `user_${c.customer}`, anonymousId: `anon_${c.customer}`, traits };
}

const call = fc.record({
  kind: fc.constantFrom<Call['kind']>('identify', 'track', 'anonymous'),
  customer: fc.integer({ min: 0, max: 30 }),
  phone: fc.boolean(),
  plan: fc.constantFrom('free', 'pro'),
});

for (const dialect of DIALECTS) {
  describe.skipIf(!dialect.available)(`profiles handed from ingestion to the engine on ${dialect.name}`, () => {
    let store: Store;
    beforeAll(async () => {
      store = await openStore(dialect.fresh().config);
      await migrate(store);
    });
    afterAll(async () => store?.close());

    it('equal what the database returns for every profile of the batch (property)', async () => {
      let handed = 0;
      await fc.assert(
        fc.asyncProperty(fc.array(call, { minLength: 1, maxLength: 12 }), async (calls) => {
          await ingestEvents(store, 'ws_stored', calls.map(toEvent), async (trx, workspaceId, plan, profiles) => {
            if (!profiles) return; // merges: the engine reads them itself
            const ids = [...new Set(plan.events.map((e) => e.profileId))];
            const read = await loadProfiles(trx, workspaceId, ids);
            const pick = (m: ReadonlyMap<string, StoredProfile>) => ids.map((id) => m.get(id));
            expect(pick(profiles)).toEqual(pick(read));
            handed++;
          });
        }),
        { numRuns: 60 },
      );
      // Most batches have no merge, so the map is handed over.
      expect(handed).toBeGreaterThan(10);
    });
  });
}
