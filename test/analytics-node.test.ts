import { Analytics } from '@segment/analytics-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIALECTS } from './support/dialects.js';
import { admin, startTestServer, WRITE_KEY, type TestServer } from './support/server.js';

// The real Segment Node SDK, unchanged, pointed at Chorus: its batches must be accepted and its
// calls must end up on one unified profile.

const T0 = Date.parse('2026-03-01T10:00:00.000Z');
const at = (i: number) => new Date(T0 + i * 1000);

for (const d of DIALECTS) {
  describe.skipIf(!d.available)(`@segment/analytics-node against Chorus (${d.name})`, () => {
    let server: TestServer;
    beforeAll(async () => {
      server = await startTestServer(d);
    });
    afterAll(async () => {
      await server?.close();
    });

    it('identify, track and alias calls become one merged profile with the whole timeline', async () => {
      const userId = 'sdk-user-1';
      const anonWeb = 'anon-web-1';
      const anonMobile = 'anon-mobile-1';
      const email = 'Sdk.User@Example.com';

      const analytics = new Analytics({
        writeKey: WRITE_KEY,
        host: server.url,
        path: '/v1/batch',
        flushAt: 5,
        flushInterval: 100,
        maxRetries: 0,
        httpRequestTimeout: 15_000,
      });
      const errors: unknown[] = [];
      const statuses: number[] = [];
      const requests: string[] = [];
      analytics.on('error', (err) => errors.push(err));
      analytics.on('http_request', (r) => requests.push(r.url));
      analytics.on('http_response', (r) => statuses.push(r.status));

      // Calls in the order a real customer produces them, each a second apart so "newest first" is exact.
      const calls: { type: string; event?: string }[] = [];
      analytics.track({ anonymousId: anonWeb, event: 'Pricing Viewed', properties: { plan: 'pro' }, timestamp: at(0) });
      calls.push({ type: 'track', event: 'Pricing Viewed' });
      analytics.page({ anonymousId: anonWeb, name: 'Signup', properties: { path: '/signup' }, timestamp: at(1) });
      calls.push({ type: 'page' });
      analytics.identify({
        userId,
        anonymousId: anonWeb,
        traits: { email, name: 'Sdk User', plan: 'pro' },
        timestamp: at(2),
      });
      calls.push({ type: 'identify' });
      analytics.track({ userId, event: 'Order Completed', properties: { total: 42.5, currency: 'EUR' }, timestamp: at(3) });
      calls.push({ type: 'track', event: 'Order Completed' });
      // Another device, before login there.
      analytics.track({ anonymousId: anonMobile, event: 'App Opened', timestamp: at(4) });
      calls.push({ type: 'track', event: 'App Opened' });
      analytics.alias({ previousId: anonMobile, userId, timestamp: at(5) });
      calls.push({ type: 'alias' });
      analytics.track({ userId, event: 'Order Shipped', properties: { carrier: 'dhl' }, timestamp: at(6) });
      calls.push({ type: 'track', event: 'Order Shipped' });

      await analytics.closeAndFlush({ timeout: 30_000 });

      expect(errors).toEqual([]);
      expect(requests.length).toBeGreaterThanOrEqual(2); // flushAt 5 with 7 calls: at least two batches
      expect(requests.every((u) => u === `${server.url}/v1/batch`)).toBe(true);
      expect(statuses.length).toBe(requests.length);
      expect(statuses.every((s) => s === 200)).toBe(true);

      const byUser = await admin(server.url, 'GET', `/v1/profiles/user_id:${userId}`);
      expect(byUser.status).toBe(200);
      const profile = byUser.body;
      expect(profile.id).toMatch(/^prf_/);
      expect(profile.identifiers).toEqual(
        expect.arrayContaining([
          { kind: 'user_id', value: userId },
          { kind: 'anonymous_id', value: anonWeb },
          { kind: 'anonymous_id', value: anonMobile },
          { kind: 'email', value: email.toLowerCase() },
        ]),
      );
      expect(profile.traits).toMatchObject({ name: 'Sdk User', plan: 'pro' });
      // The anonymous mobile activity joined this profile through the alias. When the SDK sent the
      // device's calls and the alias in one batch, the device profile never existed on its own, so
      // mergedProfileIds may be empty: the identifiers above are what prove the merge.

      // Every identifier resolves to the same, single profile.
      for (const ref of [`anonymous_id:${anonWeb}`, `anonymous_id:${anonMobile}`, `email:${email}`, profile.id, ...profile.mergedProfileIds]) {
        const res = await admin(server.url, 'GET', `/v1/profiles/${encodeURIComponent(ref)}`);
        expect(res.status, ref).toBe(200);
        expect(res.body.id, ref).toBe(profile.id);
      }

      const timeline = await admin(server.url, 'GET', `/v1/profiles/${profile.id}/events?limit=100`);
      expect(timeline.status).toBe(200);
      expect(timeline.body.nextCursor).toBeNull();
      const events = timeline.body.data as {
        id: string;
        type: string;
        event?: string;
        timestamp: string;
        originalTimestamp: string | null;
        messageId: string;
        profileId: string;
      }[];
      expect(events).toHaveLength(calls.length);
      // Newest first.
      expect(events.map((e) => ({ type: e.type, ...(e.event !== undefined && e.type === 'track' ? { event: e.event } : {}) }))).toEqual(
        [...calls].reverse(),
      );
      // The client's own times are kept; `timestamp` is Segment's clock-skew-corrected time, in the same order.
      expect(events.map((e) => e.originalTimestamp)).toEqual(calls.map((_, i) => at(i).toISOString()).reverse());
      const times = events.map((e) => Date.parse(e.timestamp));
      for (let i = 1; i < times.length; i++) expect(times[i - 1]).toBeGreaterThan(times[i]);
      expect(new Set(events.map((e) => e.messageId)).size).toBe(calls.length);
      expect(events.every((e) => e.profileId === profile.id)).toBe(true);

      // The same timeline is reachable through any identifier, and pages cleanly.
      const page1 = await admin(server.url, 'GET', `/v1/profiles/user_id:${userId}/events?limit=4`);
      expect(page1.status).toBe(200);
      expect(page1.body.data).toHaveLength(4);
      expect(page1.body.nextCursor).toEqual(expect.any(String));
      const page2 = await admin(server.url, 'GET', `/v1/profiles/user_id:${userId}/events?limit=4&cursor=${page1.body.nextCursor}`);
      expect(page2.status).toBe(200);
      expect([...page1.body.data, ...page2.body.data].map((e: { id: string }) => e.id)).toEqual(events.map((e) => e.id));
      expect(page2.body.nextCursor).toBeNull();
    });

    it('a flush that is retried by the SDK (same messageIds) is stored once', async () => {
      // Replay: send the very same batch twice, as an SDK does after a timeout it thinks failed.
      const bodies: string[] = [];
      const analytics = new Analytics({ writeKey: WRITE_KEY, host: server.url, flushAt: 3, flushInterval: 100, maxRetries: 0 });
      const errors: unknown[] = [];
      analytics.on('error', (err) => errors.push(err));
      analytics.on('http_request', (r) => bodies.push(r.body));
      for (let i = 0; i < 3; i++) analytics.track({ userId: 'sdk-replay', event: `E${i}`, timestamp: at(10 + i) });
      await analytics.closeAndFlush({ timeout: 30_000 });
      expect(errors).toEqual([]);
      expect(bodies).toHaveLength(1);

      const replay = await fetch(`${server.url}/v1/batch`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Basic ${Buffer.from(`${WRITE_KEY}:`).toString('base64')}` },
        body: bodies[0],
      });
      expect(replay.status).toBe(200);

      const timeline = await admin(server.url, 'GET', '/v1/profiles/user_id:sdk-replay/events');
      expect(timeline.status).toBe(200);
      expect(timeline.body.data.map((e: { event: string }) => e.event)).toEqual(['E2', 'E1', 'E0']);
    });
  });
}
