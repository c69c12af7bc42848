import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { laneOf } from '../src/engine/claims.js';
import type { Clock } from '../src/engine/clock.js';
import { newId } from '../src/lib/ids.js';
import { Runtime } from '../src/engine/runtime.js';
import { migrate, openStore } from '../src/store/db.js';
import { DIALECTS, sqlite } from './support/dialects.js';
import { advance, email, messagesOf, ok, publishJourney, summary, VIRTUAL_ENV } from './support/journeys.js';
import { ingest, startTestServer, type TestServer } from './support/server.js';

// Lanes of due work (CHORUS_ENGINE_LANES): on PostgreSQL several transactions fire timers at once, each
// on the customers whose id hashes to it. Every timer must still fire exactly once, and none may be left
// behind (a customer no lane owns would never get their message). SQLite runs one lane whatever is set.

const CUSTOMERS = 60;

describe('laneOf', () => {
  it('puts every customer in exactly one lane, always the same', () => {
    fc.assert(
      fc.property(fc.string(), fc.integer({ min: 1, max: 16 }), (id, count) => {
        const lane = laneOf(id, count);
        expect(Number.isInteger(lane) && lane >= 0 && lane < count).toBe(true);
        expect(laneOf(id, count)).toBe(lane);
      }),
    );
  });

  it('spreads profile ids made together evenly over the lanes', () => {
    const counts = [0, 0, 0];
    for (let i = 0; i < 30_000; i++) counts[laneOf(newId('prf', 1_767_600_000_000 + Math.floor(i / 100)), 3)]++;
    for (const n of counts) expect(n).toBeGreaterThan(9_000);
  });
});

for (const d of DIALECTS) {
  describe.skipIf(!d.available)(`engine lanes (${d.name})`, () => {
    let s: TestServer;

    beforeAll(async () => {
      // Batches of 4: each lane looks at a window of the 24 earliest due timers, so firing all 60 takes
      // several rounds, and timers beyond a lane's window must still fire.
      s = await startTestServer(d, { ...VIRTUAL_ENV, CHORUS_ENGINE_LANES: '3', CHORUS_ENGINE_BATCH: '4' });
    });
    afterAll(async () => s?.close());

    it('with three lanes, every due timer of every customer fires exactly once', async () => {
      await publishJourney(s.url, {
        key: 'lanes',
        name: 'lanes',
        trigger: { event: 'Lanes Trigger' },
        steps: { first: email('First'), pause: { wait: { duration: 'P1D' } }, second: email('Second') },
      });
      const batch = Array.from({ length: CUSTOMERS }, (_, i) => [
        { type: 'identify', userId: `lane-${d.name}-${i}`, traits: { email: `lane-${i}@example.com` } },
        { type: 'track', userId: `lane-${d.name}-${i}`, event: 'Lanes Trigger' },
      ]).flat();
      await ok(ingest(s.url, 'batch', { batch }));
      await advance(s.url, 'P1D');
      await advance(s.url, 'P1D');
      for (let i = 0; i < CUSTOMERS; i++) {
        const list = await messagesOf(s.url, `user_id:lane-${d.name}-${i}`);
        expect(summary(list), `customer ${i}`).toEqual([
          ['first', 'email', 'sent'],
          ['second', 'email', 'sent'],
        ]);
      }
    });
  });
}

describe('engine lanes on SQLite', () => {
  it('are refused with a reason: SQLite has one writer', async () => {
    const store = await openStore(sqlite.fresh().config);
    try {
      await migrate(store);
      const clock: Clock = { virtual: true, now: () => new Date(Date.UTC(2026, 0, 5, 9)) };
      const runtime = new Runtime(store, clock, { lanes: 4 });
      await expect(runtime.engine.processDue(clock.now(), { index: 1, count: 2 })).rejects.toThrow(/need PostgreSQL/);
      // The runtime itself works one lane on SQLite, whatever it was given.
      expect(await runtime.engine.processDue(clock.now())).toBe(0);
    } finally {
      await store.close();
    }
  });
});
