import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIALECTS } from './support/dialects.js';
import { admin, ingest, startTestServer, type TestServer } from './support/server.js';

// Any gate settings a team might save, with any send through them, answer 2xx or 4xx and the clock
// advances over what they deferred, on both databases (property): caps, quiet hours, suppression rules,
// message types and scoring drawn at random, mostly valid.

const START = '2026-03-02T20:30:00.000Z';
const rarely = <A, B>(valid: fc.Arbitrary<A>, invalid: fc.Arbitrary<B>): fc.Arbitrary<A | B> => fc.oneof({ arbitrary: valid, weight: 30 }, { arbitrary: invalid, weight: 1 });
const channel = fc.constantFrom('email', 'sms', 'whatsapp', 'push', 'in_app');
const category = fc.constantFrom('transactional', 'operational', 'promotional');
const time = rarely(fc.constantFrom('00:00', '08:00', '09:30', '21:00', '23:59'), fc.constant('24:00'));
const window = fc.record({ start: time, end: time });

const settings = fc.record(
  {
    timezone: rarely(fc.constantFrom('UTC', 'Europe/Paris', 'America/New_York', 'Asia/Kolkata', 'Pacific/Chatham'), fc.constant('Mars/Base')),
    caps: fc.array(
      fc.record(
        {
          id: fc.constantFrom('c1', 'c2', 'c3'),
          limit: fc.integer({ min: 0, max: 3 }),
          window: fc.oneof(fc.record({ calendar: fc.constantFrom('day', 'week') }), fc.record({ rolling: rarely(fc.constantFrom('PT1H', 'P1D', 'P7D'), fc.constant('P1M')) })),
          categories: fc.uniqueArray(category, { minLength: 1, maxLength: 3 }),
          channels: fc.uniqueArray(channel, { minLength: 1, maxLength: 3 }),
          tags: fc.uniqueArray(fc.constantFrom('promo', 'news'), { maxLength: 2 }),
          on_exceed: fc.constantFrom('suppress', 'defer'),
        },
        { requiredKeys: ['id', 'limit', 'window'] },
      ),
      { maxLength: 2 },
    ),
    quiet_hours: fc.record(
      {
        window: fc.oneof(window, fc.constant(null)),
        channels: fc.dictionary(channel, fc.oneof(window, fc.constant(null)), { maxKeys: 2 }),
        action: fc.constantFrom('defer', 'drop'),
        bypass: fc.uniqueArray(category, { maxLength: 2 }),
      },
      { requiredKeys: [] },
    ),
    suppression: fc.array(
      fc.record({
        id: fc.constantFrom('s1', 's2'),
        when: fc.oneof(
          fc.record({ trait: fc.constantFrom('plan', 'vip'), op: fc.constantFrom('eq', 'ne'), value: fc.constantFrom('pro', 'free') }),
          fc.record({ event: fc.constantFrom('Ticket Opened', 'Bought'), within: fc.constantFrom('PT48H', 'P7D') }),
          fc.record({ reachable: channel }),
        ),
        reason: fc.constant('fuzz rule'),
      }),
      { maxLength: 2 },
    ),
    message_types: fc.dictionary(fc.constantFrom('alert', 'promo', 'receipt'), fc.record({ prefer: fc.uniqueArray(channel, { maxLength: 3 }), needs: fc.uniqueArray(fc.constantFrom('rich_media', 'buttons', 'long_text'), { maxLength: 2 }) }), { maxKeys: 2 }),
    scoring: fc.record({ engagement: fc.integer({ min: 0, max: 10 }), cost: fc.integer({ min: 0, max: 10 }), prior_strength: fc.integer({ min: 0, max: 50 }) }, { requiredKeys: [] }),
  },
  { requiredKeys: [] },
);

const send = fc.record(
  {
    channel: fc.oneof(fc.constant('auto'), channel, fc.uniqueArray(channel, { minLength: 1, maxLength: 3 })),
    category,
    type: fc.constantFrom('alert', 'promo', 'receipt', 'unknown-type'),
    tags: fc.uniqueArray(fc.constantFrom('promo', 'news'), { maxLength: 2 }),
    priority: fc.constantFrom('low', 'normal', 'high', 'urgent'),
    override_caps: fc.boolean(),
    fallback: fc.array(fc.record({ channel, when: fc.constantFrom('not_delivered', 'not_opened', 'not_clicked', 'failed'), after: fc.constantFrom('PT1H', 'P1D') }, { requiredKeys: ['channel', 'when'] }), { maxLength: 2 }),
  },
  { requiredKeys: [] },
);

const content = {
  email: { subject: 'Hi {{ profile.traits.name | default: "there" }}', text: 'Hello' },
  sms: { text: 'Hello' },
  whatsapp: { text: 'Hello' },
  push: { title: 'Hi', body: 'Hello' },
  in_app: { title: 'Hi', body: 'Hello' },
};

for (const dialect of DIALECTS) {
  describe.skipIf(!dialect.available)(`any gate settings on ${dialect.name}`, () => {
    let srv: TestServer;
    beforeAll(async () => {
      srv = await startTestServer(dialect, { CHORUS_VIRTUAL_CLOCK: START });
    });
    afterAll(async () => srv?.close());

    it('are refused with a 4xx, or applied to sends that answer 2xx or 4xx while the clock runs', async () => {
      let n = 0;
      let applied = 0;
      const lt500 = (label: string, res: { status: number; body: unknown }) => expect(res.status, `${label}: ${JSON.stringify(res.body)}`).toBeLessThan(500);
      await fc.assert(
        fc.asyncProperty(settings, fc.array(send, { minLength: 1, maxLength: 3 }), fc.constantFrom('pro', 'free'), async (s, sends, plan) => {
          const user = `g-${++n}`;
          const put = await admin(srv.url, 'PUT', '/v1/settings', s);
          lt500('settings', put);
          if (put.status < 300) applied++;
          lt500('identify', await ingest(srv.url, 'identify', { userId: user, traits: { plan, email: `${user}@example.com`, phone: '+14155552671', whatsapp: true, fcm_token: `tok-${user}`, in_app: true, timezone: 'Europe/Paris' } }));
          for (const [i, body] of sends.entries()) {
            lt500(`send ${i}`, await admin(srv.url, 'POST', '/v1/send', { ...body, to: `user_id:${user}`, content, idempotencyKey: `${user}-${i}` }));
          }
          lt500('advance', await admin(srv.url, 'POST', '/v1/clock/advance', { by: 'PT13H' }));
          const messages = await admin(srv.url, 'GET', `/v1/messages?profile=user_id:${user}`);
          lt500('messages', messages);
          const first = (messages.body as { messages?: { id: string }[] }).messages?.[0];
          if (first) lt500('opened', await admin(srv.url, 'POST', `/v1/messages/${first.id}/engagement`, { type: 'opened' }));
          lt500('advance', await admin(srv.url, 'POST', '/v1/clock/advance', { by: 'P2D' }));
        }),
        { numRuns: 60 },
      );
      expect(applied).toBeGreaterThan(15);
    });
  });
}
