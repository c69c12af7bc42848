import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIALECTS } from './support/dialects.js';
import { admin, basic, call, ingest, startTestServer, WRITE_KEY, type TestServer } from './support/server.js';

// Ingestion and the unified profile, end to end over HTTP, on SQLite and on PostgreSQL.

for (const dialect of DIALECTS) {
  describe.skipIf(!dialect.available)(`profiles and ingestion on ${dialect.name}`, () => {
    let s: TestServer;
    let url: string;
    beforeAll(async () => {
      s = await startTestServer(dialect);
      url = s.url;
    });
    afterAll(async () => s?.close());

    it('merges anonymous activity into the identified profile', async () => {
      expect((await ingest(url, 'page', { anonymousId: 'anon-1', name: 'Pricing' })).status).toBe(200);
      expect((await ingest(url, 'track', { anonymousId: 'anon-1', event: 'Product Viewed', properties: { sku: 'A' } })).status).toBe(200);
      expect((await ingest(url, 'identify', { userId: 'u1', traits: { plan: 'pro' } })).status).toBe(200);
      // The identify that links both: anon-1's profile and u1's profile become one.
      const linked = await ingest(url, 'identify', { userId: 'u1', anonymousId: 'anon-1', traits: { email: 'Ann@Example.COM', name: 'Ann' } });
      expect(linked.status).toBe(200);

      const byUser = await admin(url, 'GET', '/v1/profiles/user_id:u1');
      expect(byUser.status).toBe(200);
      const byAnon = await admin(url, 'GET', '/v1/profiles/anonymous_id:anon-1');
      const byEmail = await admin(url, 'GET', `/v1/profiles/${encodeURIComponent('email:ann@example.com')}`);
      expect(byAnon.body.id).toBe(byUser.body.id);
      expect(byEmail.body.id).toBe(byUser.body.id);
      expect(byUser.body.traits).toMatchObject({ plan: 'pro', name: 'Ann' });
      expect(byUser.body.contactPoints.email.address).toBe('ann@example.com');
      const kinds = byUser.body.identifiers.map((i: { kind: string; value: string }) => `${i.kind}:${i.value}`).sort();
      expect(kinds).toEqual(['anonymous_id:anon-1', 'email:ann@example.com', 'user_id:u1']);
      expect(byUser.body.mergedProfileIds).toHaveLength(1);

      // The absorbed profile's id still resolves to the survivor.
      const old = await admin(url, 'GET', `/v1/profiles/${byUser.body.mergedProfileIds[0]}`);
      expect(old.status).toBe(200);
      expect(old.body.id).toBe(byUser.body.id);

      const events = await admin(url, 'GET', '/v1/profiles/user_id:u1/events');
      expect(events.body.data.map((e: { type: string }) => e.type)).toEqual(['identify', 'identify', 'track', 'page']);
    });

    it('keeps the newest trait value whatever order events arrive in', async () => {
      await ingest(url, 'identify', { userId: 'order-1', traits: { plan: 'new' }, timestamp: '2026-03-02T00:00:00Z' });
      await ingest(url, 'identify', { userId: 'order-1', traits: { plan: 'old', seats: 3 }, timestamp: '2026-03-01T00:00:00Z' });
      const p = await admin(url, 'GET', '/v1/profiles/user_id:order-1');
      expect(p.body.traits).toEqual({ plan: 'new', seats: 3 });
    });

    it('never merges two different user_ids, and records the refused link', async () => {
      await ingest(url, 'identify', { userId: 'alice', traits: { email: 'shared@example.com' } });
      await ingest(url, 'identify', { userId: 'bob', traits: { email: 'shared@example.com' } });
      const alice = await admin(url, 'GET', '/v1/profiles/user_id:alice');
      const bob = await admin(url, 'GET', '/v1/profiles/user_id:bob');
      expect(alice.body.id).not.toBe(bob.body.id);
      // The email stays with the profile that had it first.
      const email = await admin(url, 'GET', '/v1/profiles/email:shared@example.com');
      expect(email.body.id).toBe(alice.body.id);
      const exported = await admin(url, 'GET', '/v1/profiles/user_id:bob/export');
      const conflict = exported.body.identityLog.find((l: { kind: string }) => l.kind === 'conflict');
      expect(conflict).toMatchObject({ profileId: bob.body.id, otherProfileId: alice.body.id, identifier: { kind: 'email', value: 'shared@example.com' } });
    });

    it('shared device: a second user on the same anonymousId gets their own profile', async () => {
      await ingest(url, 'identify', { userId: 'first', anonymousId: 'kiosk' });
      await ingest(url, 'identify', { userId: 'second', anonymousId: 'kiosk' });
      const first = await admin(url, 'GET', '/v1/profiles/user_id:first');
      const second = await admin(url, 'GET', '/v1/profiles/user_id:second');
      expect(first.body.id).not.toBe(second.body.id);
      expect((await admin(url, 'GET', '/v1/profiles/anonymous_id:kiosk')).body.id).toBe(first.body.id);
    });

    it('never links profiles through junk identifier values', async () => {
      for (const junk of ['null', 'undefined', 'anonymous', '0', '-1', 'NULL']) {
        await ingest(url, 'identify', { userId: `junk-a-${junk}`, anonymousId: junk });
        await ingest(url, 'identify', { userId: `junk-b-${junk}`, anonymousId: junk });
      }
      await ingest(url, 'identify', { userId: 'junk-a-email', traits: { email: 'null' } });
      await ingest(url, 'identify', { userId: 'junk-b-email', traits: { email: 'null' } });
      const conflicts = await admin(url, 'GET', '/v1/profiles/user_id:junk-b-null/export');
      expect(conflicts.body.identityLog).toEqual([]);
      expect(conflicts.body.profile.identifiers).toEqual([{ kind: 'user_id', value: 'junk-b-null' }]);
      expect((await admin(url, 'GET', '/v1/profiles/anonymous_id:anonymous')).status).toBe(400);
    });

    it('alias links a previous anonymous id to the user', async () => {
      await ingest(url, 'track', { anonymousId: 'pre-login', event: 'Cart Viewed' });
      await ingest(url, 'identify', { userId: 'carol', traits: { name: 'Carol' } });
      expect((await ingest(url, 'alias', { previousId: 'pre-login', userId: 'carol' })).status).toBe(200);
      const p = await admin(url, 'GET', '/v1/profiles/anonymous_id:pre-login');
      expect(p.body.traits.name).toBe('Carol');
      const events = await admin(url, 'GET', '/v1/profiles/user_id:carol/events');
      expect(events.body.data.map((e: { type: string }) => e.type).sort()).toEqual(['alias', 'identify', 'track']);
    });

    it('deduplicates by messageId, within a batch and across retries', async () => {
      const batch = {
        batch: [
          { type: 'track', userId: 'dedupe', event: 'A', messageId: 'm-1' },
          { type: 'track', userId: 'dedupe', event: 'A', messageId: 'm-1' },
          { type: 'track', userId: 'dedupe', event: 'B', messageId: 'm-2' },
        ],
      };
      expect((await ingest(url, 'batch', batch)).status).toBe(200);
      expect((await ingest(url, 'batch', batch)).status).toBe(200);
      expect((await ingest(url, 'track', { userId: 'dedupe', event: 'B', messageId: 'm-2' })).status).toBe(200);
      const events = await admin(url, 'GET', '/v1/profiles/user_id:dedupe/events');
      expect(events.body.data).toHaveLength(2);
    });

    it('corrects client clock skew from sentAt', async () => {
      // The client's clock is one hour fast: it stamped the event 10 s before sending.
      const sentAt = new Date(Date.now() + 3600_000);
      const originalTimestamp = new Date(sentAt.getTime() - 10_000);
      await ingest(url, 'track', { userId: 'skew', event: 'Skewed', timestamp: originalTimestamp.toISOString(), sentAt: sentAt.toISOString() });
      const [event] = (await admin(url, 'GET', '/v1/profiles/user_id:skew/events')).body.data;
      const lag = Date.parse(event.receivedAt) - Date.parse(event.timestamp);
      expect(lag).toBe(10_000);
      expect(event.originalTimestamp).toBe(originalTimestamp.toISOString());
    });

    it('stores nothing from a batch with one bad event, and names each bad event', async () => {
      const res = await ingest(url, 'batch', {
        batch: [
          { type: 'track', userId: 'atomic', event: 'Good' },
          { type: 'track', userId: 'atomic' },
          { type: 'identify', traits: { x: 1 } },
          { type: 'shout', userId: 'atomic' },
        ],
      });
      expect(res.status).toBe(400);
      const paths = res.body.fields.map((f: { path: string }) => f.path);
      expect(paths).toEqual(expect.arrayContaining(['batch[1].event', 'batch[2].userId', 'batch[3].type']));
      expect((await admin(url, 'GET', '/v1/profiles/user_id:atomic')).status).toBe(404);
    });

    it('answers bad input with a 4xx that names the problem, and stays up', async () => {
      const malformed = await call(url, 'POST', '/v1/track', { raw: '{"userId": "x", ', auth: basic(WRITE_KEY) });
      expect(malformed.status).toBe(400);
      expect(malformed.body.error).toBe('invalid_json');
      const wrongType = await ingest(url, 'track', { userId: 'x', event: 'E', properties: [1, 2] });
      expect(wrongType.status).toBe(400);
      expect(wrongType.body.fields[0].path).toBe('properties');
      const big = await ingest(url, 'track', { userId: 'x', event: 'Big', properties: { blob: 'x'.repeat(40_000) } });
      expect(big.status).toBe(413);
      const tooMany = await ingest(url, 'batch', { batch: Array.from({ length: 2501 }, (_, i) => ({ type: 'track', userId: 'x', event: `E${i}` })) });
      expect(tooMany.status).toBe(400);
      expect(tooMany.body.fields[0].path).toBe('batch');
      const hugeBatch = await ingest(url, 'batch', { batch: Array.from({ length: 40 }, () => ({ type: 'track', userId: 'x', event: 'E', properties: { b: 'y'.repeat(20_000) } })) });
      expect(hugeBatch.status).toBe(413);
      expect((await call(url, 'GET', '/healthz')).status).toBe(200);
      expect((await admin(url, 'GET', '/v1/profiles/user_id:x')).status).toBe(404);
    });

    it('accepts the write key in the body, and refuses missing or wrong keys with 401', async () => {
      const inBody = await call(url, 'POST', '/v1/track', { body: { writeKey: WRITE_KEY, userId: 'wk-body', event: 'E' } });
      expect(inBody.status).toBe(200);
      const none = await call(url, 'POST', '/v1/track', { body: { userId: 'wk-none', event: 'E' } });
      expect(none.status).toBe(401);
      const wrong = await call(url, 'POST', '/v1/track', { body: { userId: 'wk-wrong', event: 'E' }, auth: basic('wk_not_a_real_key_000000') });
      expect(wrong.status).toBe(401);
      expect((await call(url, 'GET', '/v1/profiles/user_id:wk-body', { auth: basic(WRITE_KEY) })).status).toBe(401);
      expect((await call(url, 'GET', '/v1/profiles/user_id:wk-body')).status).toBe(401);
    });

    it('paginates the timeline newest first with a cursor', async () => {
      const batch = Array.from({ length: 7 }, (_, i) => ({
        type: 'track', userId: 'pager', event: `Step ${i}`, timestamp: new Date(Date.UTC(2026, 0, 1, 0, i)).toISOString(),
      }));
      await ingest(url, 'batch', { batch });
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const q: string = cursor ? `&cursor=${cursor}` : '';
        const page = await admin(url, 'GET', `/v1/profiles/user_id:pager/events?limit=3${q}`);
        expect(page.status).toBe(200);
        seen.push(...page.body.data.map((e: { event: string }) => e.event));
        cursor = page.body.nextCursor;
      } while (cursor);
      expect(seen).toEqual(['Step 6', 'Step 5', 'Step 4', 'Step 3', 'Step 2', 'Step 1', 'Step 0']);
      expect((await admin(url, 'GET', '/v1/profiles/user_id:pager/events?cursor=garbage')).status).toBe(400);
      expect((await admin(url, 'GET', '/v1/profiles/user_id:pager/events?limit=0')).status).toBe(400);
    });

    it('derives contact points, consent, time zone and preferences from identify traits', async () => {
      await ingest(url, 'identify', {
        userId: 'conv',
        traits: {
          email: 'conv@example.com',
          phone: '+14155552671',
          whatsapp: true,
          timezone: 'America/New_York',
          locale: 'en-US',
          preferred_channel: 'whatsapp',
          sms_consent: 'unsubscribed',
          email_consent: true,
        },
        context: { consent: { categoryPreferences: { newsletter: true, offers: false } } },
      });
      const p = (await admin(url, 'GET', '/v1/profiles/phone:+14155552671')).body;
      expect(p.identifiers.map((i: { kind: string }) => i.kind).sort()).toEqual(['email', 'phone', 'user_id']);
      expect(p.contactPoints.sms.phone).toBe('+14155552671');
      expect(p.contactPoints.whatsapp.phone).toBe('+14155552671');
      expect(p.timezone).toBe('America/New_York');
      expect(p.locale).toBe('en-US');
      expect(p.preferredChannel).toBe('whatsapp');
      expect(p.consent.channels.sms.status).toBe('unsubscribed');
      expect(p.consent.channels.email.status).toBe('subscribed');
      expect(p.consent.topics.newsletter.status).toBe('subscribed');
      expect(p.consent.topics.offers.status).toBe('unsubscribed');
    });

    it('PATCH sets traits, contact points, consent and preferences, and refuses a taken identifier', async () => {
      await ingest(url, 'identify', { userId: 'patch-me' });
      await ingest(url, 'identify', { userId: 'other', traits: { email: 'taken@example.com' } });
      const ok = await admin(url, 'PATCH', '/v1/profiles/user_id:patch-me', {
        traits: { tier: 'gold' },
        contactPoints: { email: 'Patched@Example.com' },
        consent: { channels: { email: 'subscribed' }, topics: { newsletter: 'unsubscribed' } },
        timezone: 'Asia/Tokyo',
        preferredChannel: 'email',
      });
      expect(ok.status).toBe(200);
      expect(ok.body.traits.tier).toBe('gold');
      expect(ok.body.contactPoints.email.address).toBe('patched@example.com');
      expect(ok.body.consent.channels.email).toMatchObject({ status: 'subscribed', source: 'api' });
      expect(ok.body.timezone).toBe('Asia/Tokyo');
      expect((await admin(url, 'GET', '/v1/profiles/email:patched@example.com')).body.id).toBe(ok.body.id);

      const taken = await admin(url, 'PATCH', '/v1/profiles/user_id:patch-me', { contactPoints: { email: 'taken@example.com' } });
      expect(taken.status).toBe(409);
      expect(taken.body.fields[0].path).toBe('contactPoints.email');
      const bad = await admin(url, 'PATCH', '/v1/profiles/user_id:patch-me', { timezone: 'Mars/Olympus', bogus: 1 });
      expect(bad.status).toBe(400);
      expect(bad.body.fields.map((f: { path: string }) => f.path)).toEqual(expect.arrayContaining(['timezone']));
    });

    it('DELETE erases the profile; a later event starts a fresh one', async () => {
      await ingest(url, 'identify', { userId: 'erase-me', anonymousId: 'erase-anon', traits: { email: 'erase@example.com', secret: 's' } });
      await ingest(url, 'track', { userId: 'erase-me', event: 'Something' });
      const before = (await admin(url, 'GET', '/v1/profiles/user_id:erase-me')).body;
      const del = await admin(url, 'DELETE', '/v1/profiles/email:erase@example.com');
      expect(del.status).toBe(200);
      expect(del.body).toMatchObject({ deleted: true, events: 2, identifiers: 3 });
      expect((await admin(url, 'GET', '/v1/profiles/user_id:erase-me')).status).toBe(404);
      expect((await admin(url, 'GET', `/v1/profiles/${before.id}`)).status).toBe(404);
      await ingest(url, 'track', { userId: 'erase-me', event: 'Back' });
      const fresh = (await admin(url, 'GET', '/v1/profiles/user_id:erase-me')).body;
      expect(fresh.id).not.toBe(before.id);
      expect(fresh.traits).toEqual({});
      expect((await admin(url, 'GET', '/v1/profiles/user_id:erase-me/events')).body.data).toHaveLength(1);
    });

    it('exports everything held on a profile', async () => {
      await ingest(url, 'identify', { userId: 'exp', traits: { email: 'exp@example.com' } });
      await ingest(url, 'track', { userId: 'exp', event: 'Exported', properties: { n: 1 } });
      const res = await admin(url, 'GET', '/v1/profiles/user_id:exp/export');
      expect(res.status).toBe(200);
      expect(res.body.profile.traits.email).toBe('exp@example.com');
      expect(res.body.identifiers.map((i: { kind: string }) => i.kind).sort()).toEqual(['email', 'user_id']);
      expect(res.body.events.map((e: { type: string }) => e.type)).toEqual(['identify', 'track']);
      expect(res.body.events[1].properties).toEqual({ n: 1 });
    });

    it('refuses unknown refs clearly', async () => {
      expect((await admin(url, 'GET', '/v1/profiles/shoe_size:42')).status).toBe(400);
      expect((await admin(url, 'GET', '/v1/profiles/prf_doesnotexist')).status).toBe(404);
      expect((await admin(url, 'GET', '/v1/profiles/user_id:nobody')).status).toBe(404);
    });
  });
}
