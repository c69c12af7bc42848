import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIALECTS } from './support/dialects.js';
import { admin, ingest, startTestServer, type TestServer } from './support/server.js';

// Hard opt-outs set through the admin API, and `replied` engagement, through the HTTP API on SQLite and
// PostgreSQL with a virtual clock (same harness as gate.test.ts).

const START = '2026-01-05T15:00:00.000Z';

const content = {
  email: { subject: 'Hi', text: 'Hello from Example' },
  sms: { text: 'Hi from Example' },
};

interface Message {
  id: string;
  channel: string | null;
  status: string;
  reason: string | null;
  decision: { rule: string; reason: string; fallbackOf?: string; trace: { candidates: { channel: string; score?: { components: Record<string, number>; priorRate: number } }[] } };
}

for (const dialect of DIALECTS) {
  describe.skipIf(!dialect.available)(`hard opt-outs and replies on ${dialect.name}`, () => {
    let s: TestServer;
    let url: string;
    let n = 0;
    const customer = async (traits: Record<string, unknown> = {}) => {
      const id = `optout-${++n}`;
      await ingest(url, 'identify', {
        userId: id,
        traits: { email: `${id}@example.com`, phone: `+1415555${String(2700 + n)}`, timezone: 'America/New_York', sms_consent: true, ...traits },
      });
      return { to: `user_id:${id}`, userId: id };
    };
    const send = (to: string, extra: Record<string, unknown>) => admin(url, 'POST', '/v1/messages', { to, content, ...extra });
    const profile = async (to: string) => (await admin(url, 'GET', `/v1/profiles/${to}`)).body;
    const messages = async (to: string) => (await admin(url, 'GET', `/v1/messages?profile=${to}`)).body.data as Message[];
    const engage = (id: string, type: string) => admin(url, 'POST', `/v1/messages/${id}/engagement`, { type });
    /** The outbox runs on its own; wait for it to hand the message to the (sandbox) provider. */
    const sent = async (id: string) => {
      for (let i = 0; i < 100; i++) {
        const m = (await admin(url, 'GET', `/v1/messages/${id}`)).body as Message;
        if (m.status !== 'queued' && m.status !== 'sending') return m;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`message ${id} was never sent`);
    };
    const hardSms = { consent: { channels: { sms: { status: 'unsubscribed', hard: true, reason: 'asked support to stop texting' } } } };

    beforeAll(async () => {
      s = await startTestServer(dialect, { CHORUS_VIRTUAL_CLOCK: START });
      url = s.url;
      // No quiet hours, so every send here is decided by consent and engagement alone.
      expect((await admin(url, 'PUT', '/v1/settings', { quiet_hours: { window: null, channels: {} } })).status).toBe(200);
    });
    afterAll(async () => s?.close());

    it('a hard opt-out set by PATCH blocks even a transactional SMS, naming the source and the reason', async () => {
      const { to } = await customer();
      expect((await send(to, { channel: 'sms', category: 'transactional' })).body.status).toBe('queued');
      const patched = await admin(url, 'PATCH', `/v1/profiles/${to}`, hardSms);
      expect(patched.status).toBe(200);
      expect(patched.body.consent.channels.sms).toMatchObject({ status: 'unsubscribed', source: 'hard:api', reason: 'asked support to stop texting' });
      const blocked = await send(to, { channel: 'sms', category: 'transactional' });
      expect(blocked.status).toBe(201);
      expect(blocked.body.status).toBe('suppressed');
      expect(blocked.body.decision.rule).toBe('consent');
      expect(blocked.body.reason).toContain('hard opt-out');
      expect(blocked.body.decision.reason).toContain('hard:api: asked support to stop texting');
      // Only the opted-out channel: transactional email still goes.
      expect((await send(to, { channel: 'email', category: 'transactional' })).body.status).toBe('queued');
    });

    it('a later identify with sms_consent true does not clear it; an admin PATCH to subscribed does', async () => {
      const { to, userId } = await customer();
      await admin(url, 'PATCH', `/v1/profiles/${to}`, hardSms);
      // An identify after the opt-out (an hour later on the clock) re-sends the sign-up form's consent.
      await admin(url, 'POST', '/v1/clock/advance', { by: 'PT1H' });
      const again = await ingest(url, 'identify', { userId, traits: { sms_consent: true, email_consent: 'unsubscribed' } });
      expect(again.status).toBe(200);
      let p = await profile(to);
      expect(p.consent.channels.sms).toMatchObject({ status: 'unsubscribed', source: 'hard:api' });
      expect(p.consent.channels.email).toMatchObject({ status: 'unsubscribed', source: 'identify' }); // others still apply
      const still = await send(to, { channel: 'sms', category: 'transactional' });
      expect(still.body.status).toBe('suppressed');
      expect(still.body.reason).toContain('hard opt-out');

      // A soft admin unsubscribe doesn't turn it into a soft one (which would let transactional through).
      await admin(url, 'PATCH', `/v1/profiles/${to}`, { consent: { channels: { sms: 'unsubscribed' } } });
      expect((await profile(to)).consent.channels.sms.source).toBe('hard:api');

      // The recorded re-opt-in (the customer texted START): an explicit admin PATCH to subscribed.
      const reopt = await admin(url, 'PATCH', `/v1/profiles/${to}`, { consent: { channels: { sms: 'subscribed' } } });
      expect(reopt.status).toBe(200);
      expect(reopt.body.consent.channels.sms).toMatchObject({ status: 'subscribed', source: 'api' });
      p = await profile(to);
      expect(p.consent.channels.sms.reason).toBeUndefined();
      const back = await send(to, { channel: 'sms', category: 'promotional' });
      expect(back.body.status).toBe('queued');
      expect(back.body.channel).toBe('sms');
    });

    it('an SMS STOP is just as sticky against identify traits', async () => {
      const { to, userId } = await customer();
      const first = await send(to, { channel: 'sms', category: 'transactional' });
      await engage(first.body.id, 'stopped');
      await ingest(url, 'identify', { userId, traits: { sms_consent: 'subscribed' } });
      expect((await profile(to)).consent.channels.sms).toMatchObject({ status: 'unsubscribed', source: 'hard:stop' });
      expect((await send(to, { channel: 'sms', category: 'transactional' })).body.status).toBe('suppressed');
    });

    it('refuses a bad consent value with a 400 naming the path, and changes nothing', async () => {
      const { to } = await customer();
      const notHard = await admin(url, 'PATCH', `/v1/profiles/${to}`, { consent: { channels: { sms: { status: 'unsubscribed', hard: false } } } });
      expect(notHard.status).toBe(400);
      expect(notHard.body.error).toBe('invalid_request');
      expect(notHard.body.fields[0].path).toBe('consent.channels.sms');
      expect(notHard.body.fields[0].message).toContain('hard');
      const word = await admin(url, 'PATCH', `/v1/profiles/${to}`, { consent: { channels: { whatsapp: 'maybe' } } });
      expect(word.status).toBe(400);
      expect(word.body.fields[0].path).toBe('consent.channels.whatsapp');
      expect(word.body.message).toContain('consent.channels.whatsapp');
      const extra = await admin(url, 'PATCH', `/v1/profiles/${to}`, { consent: { channels: { sms: { status: 'unsubscribed', hard: true, until: 'x' } } } });
      expect(extra.status).toBe(400);
      expect(extra.body.fields.map((f: { path: string }) => f.path).join(' ')).toContain('consent.channels.sms');
      expect((await profile(to)).consent.channels.sms).toMatchObject({ status: 'subscribed', source: 'identify' });
    });

    it('replied: the status moves to replied, a Message Replied event is recorded, and the pending fallback hop stops', async () => {
      const { to } = await customer();
      const first = await send(to, { channel: 'sms', category: 'operational', fallback: [{ channel: 'email', when: 'not_opened', after: 'PT1H' }] });
      expect(first.body.channel).toBe('sms');
      await sent(first.body.id);
      const replied = await engage(first.body.id, 'replied');
      expect(replied.status).toBe(200);
      expect(replied.body.status).toBe('replied');
      // A later, weaker report doesn't move it back.
      expect((await engage(first.body.id, 'delivered')).body.status).toBe('replied');
      expect((await engage(first.body.id, 'clicked')).body.status).toBe('replied');

      await admin(url, 'POST', '/v1/clock/advance', { by: 'PT2H' });
      const hop = (await messages(to)).find((m) => m.channel === 'email' || m.decision?.fallbackOf === first.body.id);
      expect(hop?.status).toBe('cancelled');
      expect(hop?.reason).toContain('engaged');
      expect(hop?.reason).toContain('replied');

      const events = (await admin(url, 'GET', `/v1/profiles/${to}/events`)).body.data as { event?: string; properties?: Record<string, unknown> }[];
      const ev = events.find((e) => e.event === 'Message Replied');
      expect(ev?.properties).toMatchObject({ message_id: first.body.id, channel: 'sms' });
    });

    it('replies raise the channel engagement score component', async () => {
      // Some SMS delivered but not engaged with elsewhere in the workspace, so its rate (the prior) is below 1.
      const other = await customer();
      for (let i = 0; i < 3; i++) {
        const m = await send(other.to, { channel: 'sms', category: 'transactional' });
        await sent(m.body.id);
        await engage(m.body.id, 'delivered');
      }
      // Past the workspace-rate cache (one minute), so the prior reflects those deliveries.
      await admin(url, 'POST', '/v1/clock/advance', { by: 'PT2M' });
      const { to } = await customer();
      const smsScore = async () => {
        const m = await send(to, { channel: 'auto', category: 'transactional' });
        const sms = (m.body as Message).decision.trace.candidates.find((c) => c.channel === 'sms')?.score;
        expect(sms).toBeDefined();
        return sms!;
      };
      const before = await smsScore();
      // No history on the channel yet: the workspace's rate on it.
      expect(before.priorRate).toBeLessThan(1);
      expect(before.components.engagement).toBeCloseTo(before.priorRate, 10);

      const text = await send(to, { channel: 'sms', category: 'transactional' });
      await sent(text.body.id);
      expect((await engage(text.body.id, 'replied')).body.status).toBe('replied');

      const after = await smsScore();
      expect(after.priorRate).toBe(before.priorRate); // same prior (cached): only the customer's history moved
      // One delivered message, replied to: (1 + k·p) / (1 + k) with the default prior strength k = 20.
      expect(after.components.engagement).toBeCloseTo((1 + 20 * after.priorRate) / 21, 10);
      expect(after.components.engagement).toBeGreaterThan(before.components.engagement);
    });

    it('a reply on a WhatsApp message opens the 24-hour window for free-form WhatsApp messages', async () => {
      const { to } = await customer({ whatsapp: '+14155550999' });
      const freeForm = { whatsapp: { text: 'Your order shipped' } };
      const template = { whatsapp: { template: 'order_update', language: 'en', parameters: [] } };
      const closed = await admin(url, 'POST', '/v1/messages', { to, channel: 'whatsapp', category: 'transactional', content: freeForm });
      expect(closed.body.status).toBe('suppressed');
      expect(closed.body.reason).toContain('template');
      const first = await admin(url, 'POST', '/v1/messages', { to, channel: 'whatsapp', category: 'transactional', content: template });
      expect(first.body.status).toBe('queued');
      await sent(first.body.id);
      expect((await engage(first.body.id, 'replied')).body.status).toBe('replied');
      const open = await admin(url, 'POST', '/v1/messages', { to, channel: 'whatsapp', category: 'transactional', content: freeForm });
      expect(open.body.status).toBe('queued');
      // 24 hours later the window has closed again.
      await admin(url, 'POST', '/v1/clock/advance', { by: 'PT25H' });
      const later = await admin(url, 'POST', '/v1/messages', { to, channel: 'whatsapp', category: 'transactional', content: freeForm });
      expect(later.body.status).toBe('suppressed');
    });
  });
}
