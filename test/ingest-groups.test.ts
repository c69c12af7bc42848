import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IncomingEvent } from '../src/core/types.js';
import { migrate, openStore, type Store } from '../src/store/db.js';
import { IngestGroups, splitResult } from '../src/store/ingest-groups.js';
import type { AfterIngest, IngestResult } from '../src/store/ingest.js';
import { DIALECTS } from './support/dialects.js';

// On SQLite, ingestion requests that arrive while a transaction runs are stored together in the next one.
// What each request is told must be what it would have been told had the requests run one after another,
// and one request's failure must stay its own.

let seq = 0;
function track(messageId: string, event = 'Clicked', customer = 1): IncomingEvent {
  const t = new Date(Date.UTC(2026, 0, 5, 9, 0, 0, ++seq)).toISOString();
  return {
    type: 'track', messageId, userId: `user_${customer}`, anonymousId: null, previousId: null, groupId: null, event,
    properties: {}, traits: {}, context: {}, timestamp: t, originalTimestamp: null, sentAt: null, receivedAt: t, raw: {},
  };
}

describe('splitResult', () => {
  it('gives each request what running the requests in order would have given it (property)', () => {
    const id = fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f');
    fc.assert(
      fc.property(fc.array(fc.array(id, { maxLength: 5 }), { minLength: 1, maxLength: 6 }), fc.subarray(['a', 'b', 'c', 'd', 'e', 'f']), (requests, already) => {
        const events = requests.map((ids) => ids.map((m) => track(m)));
        // What one transaction stores for the concatenation: first occurrences not stored before.
        const seen = new Set(already);
        const combined: IngestResult = { stored: 0, duplicates: 0, events: [] };
        for (const e of events.flat()) {
          if (seen.has(e.messageId)) continue;
          seen.add(e.messageId);
          combined.events.push({ messageId: e.messageId, profileId: `prf_${e.messageId}` });
        }
        // The same requests one after another.
        const stored = new Set(already);
        const sequential = events.map((list) => {
          const mine = list.filter((e, i) => !stored.has(e.messageId) && list.findIndex((x) => x.messageId === e.messageId) === i);
          for (const e of mine) stored.add(e.messageId);
          return { stored: mine.length, duplicates: list.length - mine.length, events: mine.map((e) => ({ messageId: e.messageId, profileId: `prf_${e.messageId}` })) };
        });
        expect(splitResult(combined, events)).toEqual(sequential);
      }),
      { numRuns: 500 },
    );
  });
});

for (const dialect of DIALECTS) {
  describe.skipIf(!dialect.available)(`ingestion groups on ${dialect.name}`, () => {
    let store: Store;
    beforeAll(async () => {
      store = await openStore(dialect.fresh().config);
      await migrate(store);
    });
    afterAll(async () => store?.close());

    const storedIds = async (workspaceId: string) =>
      (await store.db.selectFrom('events').select('message_id').where('workspace_id', '=', workspaceId).orderBy('message_id').execute()).map((r) => r.message_id);

    it('concurrent requests: each is answered as if alone and in order, every event is stored once', async () => {
      let transactions = 0;
      const after: AfterIngest = async () => {
        transactions++;
      };
      const groups = new IngestGroups(store, after);
      const ws = `ws_groups_${dialect.name}`;
      const requests = [['g1', 'g2'], ['g2', 'g3'], ['g4'], ['g4', 'g4', 'g5'], ['g1'], ['g6']];
      const results = await Promise.all(requests.map((ids, n) => groups.ingest(ws, ids.map((m) => track(m, 'Clicked', n)))));
      expect(await storedIds(ws)).toEqual(['g1', 'g2', 'g3', 'g4', 'g5', 'g6']);
      expect(results.reduce((n, r) => n + r.stored, 0)).toBe(6);
      if (dialect.name === 'postgres') return; // concurrent transactions: which request stores a shared id first is a race
      // SQLite: answered in arrival order, and in fewer transactions than requests.
      expect(results.map((r) => [r.stored, r.duplicates])).toEqual([
        [2, 0],
        [1, 1],
        [1, 0],
        [1, 2],
        [0, 1],
        [1, 0],
      ]);
      expect(transactions).toBeLessThan(requests.length);
    });

    it("a request that fails inside the transaction fails alone; the others of its group are stored", async () => {
      const after: AfterIngest = async (_trx, _ws, plan) => {
        if (plan.events.some((e) => e.event.event === 'Poison')) throw new Error('poisoned batch');
      };
      const groups = new IngestGroups(store, after);
      const ws = `ws_poison_${dialect.name}`;
      const outcomes = await Promise.allSettled([
        groups.ingest(ws, [track('p1')]),
        groups.ingest(ws, [track('p2'), track('p3', 'Poison')]),
        groups.ingest(ws, [track('p4')]),
      ]);
      expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
      expect((outcomes[1] as PromiseRejectedResult).reason).toBeInstanceOf(Error);
      expect(await storedIds(ws)).toEqual(['p1', 'p4']);
    });
  });
}
