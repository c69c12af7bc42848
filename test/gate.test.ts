import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIALECTS } from './support/dialects.js';
import { admin, ingest, startTestServer, type TestServer } from './support/server.js';

// The send gate through the send API, on SQLite and PostgreSQL, with a virtual clock.
// Monday 2026-0105 15:00 UTC is 10:00 in New York: inside everyone's sending hours.

const START = '2026-01-05T15:00:00.000Z';

const content = {
  email: { subject: 'Hi {{ profile.traits.first_name | default: "there" }}', text: 'Order {{ data.order | default: "-" }}' },
  sms: { text: 'Hi from Example' },
  push: { title: 'Hi', body: 'Open the app' },
  whatsapp: { template: 'hello', language: 'en', parameters: [] },
};

for (const dialect of DIALECTS) {
  describe.skipIf(!dialect.available)(`send gate on ${dialect.name}`, () => {
    let s: TestServer;
    let url: string;
    let n = 0;
    const customer = async (traits: Record<string, unknown> = {}) => {
      const id = `gate-${++n}`;
      await ingest(url, 'identify', {
        userId: id,
        traits: { email: `${id}@example.com`, phone: '+14155552671'.replace('2671', String(2600 + n)), timezone: 'America/New_York', first_name: 'Ann', ...traits },
      });
      return `user_id:${id}`;
    };
    const send = (to: string, extra: Record<string, unknown>) => admin(url, 'POST', '/v1/messages', { to, content, ...extra });
    const settings = (doc: unknown) => admin(url, 'PUT', '/v1/settings', doc);

    beforeAll(async () => {
      s = await startTestServer(dialect, { CHORUS_VIRTUAL_CLOCK: START });
      url = s.url;
    });
    afterAll(async () => s?.close());

    it('sends on the chosen channel and records the decision with its rule', async () => {
      const to = await customer();
      const res = await send(to, { channel: ['push', 'sms', 'email'], category: 'operational', data: { order: 'A1' } });
      expect(res.status).toBe(201);
      expect(res.body.status).toBe('queued');
      expect(res.body.channel).toBe('sms');
      expect(res.body.decision.outcome).toBe('send');
      expect(res.body.decision.rule).toBe('fallback');
      expect(res.body.decision.trace.candidates.map((c: { channel: string; outcome: string }) => `${c.channel}:${c.outcome}`)).toEqual(['push:ruled_out', 'sms:chosen', 'email:not_tried']);
      const again = await admin(url, 'GET', `/v1/messages/${res.body.id}`);
      expect(again.body.decision.reason).toContain('push: no push token');
    });

    it('the same idempotency key returns the same message, never a second one', async () => {
      const to = await customer();
      const a = await send(to, { channel: 'email', idempotencyKey: 'order-42' });
      const b = await send(to, { channel: 'email', idempotencyKey: 'order-42' });
      expect(a.status).toBe(201);
      expect(b.status).toBe(200);
      expect(b.body.id).toBe(a.body.id);
      const list = await admin(url, 'GET', `/v1/messages?profile=${to}`);
      expect(list.body.data).toHaveLength(1);
    });

    it('auto ranks channels by the documented score and shows every component', async () => {
      const to = await customer({ preferred_channel: 'email' });
      await settings({ message_types: { alert: { prefer: ['sms', 'push'] } } });
      const alert = await send(to, { channel: 'auto', type: 'alert', category: 'transactional' });
      expect(alert.body.channel).toBe('sms');
      const scored = alert.body.decision.trace.candidates.filter((c: { score?: unknown }) => c.score);
      expect(scored.length).toBeGreaterThan(1);
      expect(Object.keys(scored[0].score.components).sort()).toEqual(['capability', 'cost', 'engagement', 'preference', 'type_rule']);
      const plain = await send(to, { channel: 'auto', category: 'transactional' });
      expect(plain.body.channel).toBe('email'); // no type rule: the stated preference decides
      await settings({});
    });

    it('consent: an unsubscribe blocks marketing, not transactional; a hard opt-out blocks both', async () => {
      const to = await customer();
      await admin(url, 'PATCH', `/v1/profiles/${to}`, { consent: { channels: { email: 'unsubscribed' } } });
      const promo = await send(to, { channel: 'email', category: 'promotional' });
      expect(promo.body.status).toBe('suppressed');
      expect(promo.body.decision.rule).toBe('consent');
      const receipt = await send(to, { channel: 'email', category: 'transactional' });
      expect(receipt.body.status).toBe('queued');
    });

    it('a hard opt-out (SMS STOP) and a bounce bind even transactional messages', async () => {
      const to = await customer();
      const sms = await send(to, { channel: 'sms', category: 'transactional' });
      await admin(url, 'POST', `/v1/messages/${sms.body.id}/engagement`, { type: 'stopped' });
      const blocked = await send(to, { channel: 'sms', category: 'transactional' });
      expect(blocked.body.status).toBe('suppressed');
      expect(blocked.body.decision.rule).toBe('consent');
      expect(blocked.body.reason).toContain('hard opt-out');
      const mail = await send(to, { channel: 'email', category: 'transactional' });
      await admin(url, 'POST', `/v1/messages/${mail.body.id}/engagement`, { type: 'bounced' });
      const bounced = await send(to, { channel: ['email', 'push'], category: 'transactional' });
      expect(bounced.body.status).toBe('suppressed');
      expect(bounced.body.reason).toContain('undeliverable');
    });

    it('caps: at most N promotional messages per calendar day across channels, exactly', async () => {
      await settings({ caps: [{ id: 'promo-day', limit: 2, window: { calendar: 'day' }, categories: ['promotional'] }] });
      const to = await customer();
      const results = [];
      for (const channel of ['email', 'sms', 'email', 'sms']) results.push((await send(to, { channel, category: 'promotional' })).body);
      expect(results.map((m) => m.status)).toEqual(['queued', 'queued', 'suppressed', 'suppressed']);
      expect(results[2].decision.rule).toBe('cap:promo-day');
      // Transactional messages are exempt.
      expect((await send(to, { channel: 'email', category: 'transactional' })).body.status).toBe('queued');
      // An explicit override is allowed and recorded.
      const forced = await send(to, { channel: 'email', category: 'promotional', override_caps: true });
      expect(forced.body.status).toBe('queued');
      expect(forced.body.overrideCaps).toBe(true);
      await settings({});
    });

    it('caps with on_exceed defer: the message goes out when the window reopens', async () => {
      await settings({ caps: [{ id: 'sms-day', limit: 1, window: { calendar: 'day' }, channels: ['sms'], on_exceed: 'defer' }] });
      const to = await customer();
      expect((await send(to, { channel: 'sms', category: 'promotional' })).body.status).toBe('queued');
      const second = await send(to, { channel: 'sms', category: 'promotional' });
      expect(second.body.status).toBe('deferred');
      // The next calendar day in New York starts at 05:00 UTC.
      expect(second.body.notBefore).toBe('2026-01-06T05:00:00.000Z');
      await admin(url, 'POST', '/v1/clock/advance', { to: '2026-01-06T13:00:00.000Z' });
      const later = await admin(url, 'GET', `/v1/messages/${second.body.id}`);
      expect(later.body.status).toBe('sent');
      expect(later.body.sentAt).toBe('2026-01-06T13:00:00.000Z');
      await settings({});
    });

    it('suppression rule: promotions skip customers with an open support ticket (48 h, not closed since)', async () => {
      await settings({
        suppression: [
          {
            id: 'open-ticket',
            categories: ['promotional'],
            reason: 'the customer has an open support ticket',
            when: {
              all: [
                { event: 'Support Ticket Opened', within: 'PT48H' },
                { event: 'Support Ticket Closed', since_event: 'Support Ticket Opened', count: { op: 'eq', value: 0 } },
              ],
            },
          },
        ],
      });
      const to = await customer();
      const userId = to.split(':')[1];
      await ingest(url, 'track', { userId, event: 'Support Ticket Opened' });
      const blocked = await send(to, { channel: 'email', category: 'promotional' });
      expect(blocked.body.status).toBe('suppressed');
      expect(blocked.body.decision.rule).toBe('suppression:open-ticket');
      expect((await send(to, { channel: 'email', category: 'transactional' })).body.status).toBe('queued');
      await ingest(url, 'track', { userId, event: 'Support Ticket Closed' });
      expect((await send(to, { channel: 'email', category: 'promotional' })).body.status).toBe('queued');
      await settings({});
    });

    it('quiet hours: deferred to the end of the night in the customer time zone; urgent and transactional bypass', async () => {
      // Move to 14:00 UTC, which is 23:00 in Tokyo: night there.
      const now = (await admin(url, 'GET', '/v1/clock')).body.now as string;
      const day = now.slice(0, 10);
      const target = `${day}T14:00:00.000Z` > now ? `${day}T14:00:00.000Z` : new Date(Date.parse(`${day}T14:00:00.000Z`) + 86_400_000).toISOString();
      await admin(url, 'POST', '/v1/clock/advance', { to: target });
      const to = await customer({ timezone: 'Asia/Tokyo' });
      const promo = await send(to, { channel: 'email', category: 'promotional' });
      expect(promo.body.status).toBe('deferred');
      expect(promo.body.decision.rule).toBe('quiet_hours');
      // 08:00 the next morning in Tokyo is 23:00 UTC the same day.
      expect(promo.body.notBefore).toBe(`${target.slice(0, 10)}T23:00:00.000Z`);
      expect((await send(to, { channel: 'email', category: 'promotional', priority: 'urgent' })).body.status).toBe('queued');
      expect((await send(to, { channel: 'email', category: 'transactional' })).body.status).toBe('queued');
    });

    it('fallback: push, then SMS if the push is unopened after an hour', async () => {
      await settings({ quiet_hours: { window: null, channels: {} } });
      const to = await customer();
      await admin(url, 'PATCH', `/v1/profiles/${to}`, { contactPoints: { push: { add: [{ provider: 'fcm', token: `tok-${to}` }] } } });
      const first = await send(to, { channel: 'push', category: 'operational', fallback: [{ channel: 'sms', when: 'not_opened', after: 'PT1H' }] });
      expect(first.body.channel).toBe('push');
      await admin(url, 'POST', '/v1/clock/advance', { by: 'PT1H' });
      const list = (await admin(url, 'GET', `/v1/messages?profile=${to}`)).body.data as { id: string; channel: string; status: string; decision: { fallbackOf?: string; fallbackBecause?: string } }[];
      const hop = list.find((m) => m.channel === 'sms');
      expect(hop?.status).toBe('sent');
      expect(hop?.decision.fallbackOf).toBe(first.body.id);
      expect(hop?.decision.fallbackBecause).toContain('not opened');
      await settings({});
    });

    it('fallback: engagement on any channel stops pending hops', async () => {
      await settings({ quiet_hours: { window: null, channels: {} } });
      const to = await customer();
      const first = await send(to, { channel: 'email', category: 'operational', fallback: [{ channel: 'sms', when: 'not_clicked', after: 'PT2H' }] });
      const opened = await admin(url, 'POST', `/v1/messages/${first.body.id}/engagement`, { type: 'clicked' });
      expect(opened.body.status).toBe('clicked');
      await admin(url, 'POST', '/v1/clock/advance', { by: 'PT3H' });
      const list = (await admin(url, 'GET', `/v1/messages?profile=${to}`)).body.data as { channel: string; status: string; reason: string }[];
      const hop = list.find((m) => m.channel === 'sms');
      expect(hop?.status).toBe('cancelled');
      expect(hop?.reason).toContain('engaged');
      // The engagement is also an event on the customer's timeline, for journeys to wait on.
      const events = (await admin(url, 'GET', `/v1/profiles/${to}/events`)).body.data as { event?: string }[];
      expect(events.some((e) => e.event === 'Message Clicked')).toBe(true);
      await settings({});
    });

    it('refuses bad sends and bad settings with the path and the problem', async () => {
      const to = await customer();
      const missing = await send(to, { channel: 'push', content: { email: content.email } });
      expect(missing.status).toBe(400);
      expect(missing.body.fields[0].path).toContain('content');
      const unknown = await admin(url, 'POST', '/v1/messages', { to: 'user_id:nobody-here', channel: 'email', content });
      expect(unknown.status).toBe(404);
      const bad = await settings({ caps: [{ id: 'x', limit: -1, window: { calendar: 'day' } }] });
      expect(bad.status).toBe(400);
      expect(bad.body.fields[0].path).toBe('caps[0].limit');
    });
  });
}
