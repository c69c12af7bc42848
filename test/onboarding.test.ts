import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIALECTS } from './support/dialects.js';
import {
  advanceTo,
  clockNow,
  DAY,
  HOUR,
  identify,
  iso,
  messagesOf,
  ok,
  plus,
  publishJourney,
  runsIn,
  settledMessages,
  summary,
  track,
  VIRTUAL_ENV,
  VIRTUAL_START,
  type Message,
} from './support/journeys.js';
import { admin, startTestServer, type TestServer } from './support/server.js';

// The reference journey (examples/journeys/onboarding.yaml) end to end: posted as YAML over the API,
// driven by ingestion and the virtual clock, checked through the message ledger and the customer's runs.

const YAML = fs.readFileSync(path.resolve(import.meta.dirname, '../examples/journeys/onboarding.yaml'), 'utf8');

for (const d of DIALECTS) {
  describe.skipIf(!d.available)(`onboarding journey (${d.name})`, () => {
    let s: TestServer;
    let url: string;
    let phoneSeq = 100;

    beforeAll(async () => {
      s = await startTestServer(d, VIRTUAL_ENV);
      url = s.url;
      expect(await publishJourney(url, YAML)).toBe(1);
    });
    afterAll(async () => s?.close());

    /** A new, identified customer reachable on every channel; returns their profile ref. */
    async function customer(name: string, firstName: string): Promise<string> {
      const userId = `onb-${name}-${d.name}`;
      await identify(url, { userId }, { email: `${name}@example.com`, phone: `+1415555${String(phoneSeq++).padStart(4, '0')}`, whatsapp: true, first_name: firstName });
      return `user_id:${userId}`;
    }
    const who = (ref: string) => ({ userId: ref.slice('user_id:'.length) });

    const channels = (list: Message[]) => list.map((m) => [m.step, m.channel]);

    it('starts from the configured virtual time', async () => {
      // Guards the exact-time assertions below: the first scenario runs at the configured start.
      expect(iso(await clockNow(url))).toBe(new Date(VIRTUAL_START).toISOString());
    });

    it('activated on day 1: welcome email and in-app message only; the run converts', async () => {
      const ref = await customer('day1', 'Ada');
      const t0 = await clockNow(url);
      await track(url, who(ref), 'Signed Up', { plan: 'pro' });
      const first = await settledMessages(url, ref, 1);
      expect(summary(first)).toEqual([['welcome', 'email', 'sent']]);

      const t1 = await advanceTo(url, plus(t0, DAY));
      await track(url, who(ref), 'Logged In');
      await track(url, who(ref), 'Activated');
      await settledMessages(url, ref, 2);
      await advanceTo(url, plus(t0, 15 * DAY));

      const all = await settledMessages(url, ref, 2);
      expect(summary(all)).toEqual([
        ['welcome', 'email', 'sent'],
        ['in_app_tip', 'in_app', 'sent'],
      ]);
      expect(all.map((m) => m.createdAt)).toEqual([iso(t0), iso(t1)]);

      const runs = await runsIn(url, ref, 'onboarding');
      expect(runs).toHaveLength(1);
      expect(runs[0]).toMatchObject({ status: 'converted', convertedAt: iso(t1), endedAt: iso(t1), currentSteps: [] });
      expect(runs[0].endReason).toMatch(/Activated/);
    });

    it('activated on day 5: WhatsApp on day 3, no SMS; the run converts', async () => {
      const ref = await customer('day5', 'Bo');
      const t0 = await clockNow(url);
      await track(url, who(ref), 'Signed Up');
      await settledMessages(url, ref, 1);
      const login = await advanceTo(url, plus(t0, 2 * HOUR));
      await track(url, who(ref), 'Logged In');
      await settledMessages(url, ref, 2);
      await advanceTo(url, plus(t0, 3 * DAY));
      const day3 = await settledMessages(url, ref, 3);
      expect(channels(day3)).toEqual([
        ['welcome', 'email'],
        ['in_app_tip', 'in_app'],
        ['whatsapp_nudge', 'whatsapp'],
      ]);
      const activated = await advanceTo(url, plus(t0, 5 * DAY));
      await track(url, who(ref), 'Activated');
      await advanceTo(url, plus(t0, 15 * DAY));

      const all = await settledMessages(url, ref, 3);
      expect(summary(all)).toEqual([
        ['welcome', 'email', 'sent'],
        ['in_app_tip', 'in_app', 'sent'],
        ['whatsapp_nudge', 'whatsapp', 'sent'],
      ]);
      expect(all.map((m) => m.createdAt)).toEqual([iso(t0), iso(login), iso(plus(t0, 3 * DAY))]);
      const runs = await runsIn(url, ref, 'onboarding');
      expect(runs).toHaveLength(1);
      expect(runs[0]).toMatchObject({ status: 'converted', convertedAt: iso(activated), currentSteps: [] });
      // The day-7 wait never fired: the goal ended the run on day 5.
      expect(runs[0].steps.filter((x) => x.step === 'day_7' && x.outcome === 'resumed')).toEqual([]);
      expect(runs[0].steps.some((x) => x.step === 'sms_nudge')).toBe(false);
    });

    it('never activated: all four messages, each at its time, with full details', async () => {
      const ref = await customer('never', 'Cleo');
      const t0 = await clockNow(url);
      await track(url, who(ref), 'Signed Up', { plan: 'starter' });
      await settledMessages(url, ref, 1);
      const login = await advanceTo(url, plus(t0, 2 * HOUR));
      await track(url, who(ref), 'Logged In', { platform: 'ios' });
      await settledMessages(url, ref, 2);
      await advanceTo(url, plus(t0, 15 * DAY));

      const all = await settledMessages(url, ref, 4);
      expect(summary(all)).toEqual([
        ['welcome', 'email', 'sent'],
        ['in_app_tip', 'in_app', 'sent'],
        ['whatsapp_nudge', 'whatsapp', 'sent'],
        ['sms_nudge', 'sms', 'sent'],
      ]);
      const times = [t0, login, plus(t0, 3 * DAY), plus(t0, 7 * DAY)].map(iso);
      expect(all.map((m) => m.createdAt)).toEqual(times);
      expect(all.map((m) => m.sentAt)).toEqual(times);

      // One message in full.
      const welcome = await ok(admin(url, 'GET', `/v1/messages/${all[0].id}`));
      expect(welcome).toMatchObject({
        id: all[0].id,
        channel: 'email',
        provider: 'sandbox',
        category: 'transactional',
        status: 'sent',
        to: 'never@example.com',
        journey: { key: 'onboarding', version: 1 },
        step: 'welcome',
        createdAt: times[0],
        sentAt: times[0],
      });
      expect(welcome.content.subject).toBe('Welcome to Example, Cleo!');
      expect(welcome.content.text).toContain('Hi Cleo,');
      expect(welcome.content.text).toContain('https://app.example.com');
      expect(welcome.content.text).toContain('https://example.com/help');

      const inApp = await ok(admin(url, 'GET', `/v1/messages/${all[1].id}`));
      expect(inApp).toMatchObject({ channel: 'in_app', provider: 'sandbox', status: 'sent', step: 'in_app_tip', journey: { key: 'onboarding', version: 1 } });
      expect(inApp.content).toMatchObject({ title: 'Welcome aboard, Cleo', cta: { label: 'Start the tour', url: 'https://app.example.com/tour' } });

      const wa = await ok(admin(url, 'GET', `/v1/messages/${all[2].id}`));
      expect(wa).toMatchObject({ channel: 'whatsapp', provider: 'sandbox', status: 'sent', step: 'whatsapp_nudge' });
      expect(wa.to).toMatch(/^\+1415555\d{4}$/);
      expect(wa.content).toMatchObject({ template: 'onboarding_nudge', language: 'en', parameters: ['Cleo', 'https://app.example.com'] });

      const sms = await ok(admin(url, 'GET', `/v1/messages/${all[3].id}`));
      expect(sms).toMatchObject({ channel: 'sms', provider: 'sandbox', status: 'sent', step: 'sms_nudge', to: wa.to, sentAt: times[3] });
      expect(sms.content.text).toContain('https://app.example.com');

      // The run: every step taken, with its time.
      const runs = await runsIn(url, ref, 'onboarding');
      expect(runs).toHaveLength(1);
      const run = runs[0];
      expect(run).toMatchObject({ status: 'completed', journey: { key: 'onboarding', version: 1 }, enteredAt: times[0], convertedAt: null, currentSteps: [] });
      expect(run.goalDeadline).toBe(iso(plus(t0, 14 * DAY)));
      const taken = run.steps.map((x) => [x.step, x.outcome, x.at]);
      // A send step records its decision (queued or sent: the ledger has the delivery).
      const sendOutcome = expect.stringMatching(/^(queued|sent)$/) as unknown as string;
      const expected: [string, string, string][] = [
        ['$entry', 'entered', times[0]],
        ['welcome', sendOutcome, times[0]],
        ['first_login', 'waiting', times[0]],
        ['day_3', 'waiting', times[0]],
        ['first_login', 'event_received', times[1]],
        ['in_app_tip', sendOutcome, times[1]],
        ['day_3', 'resumed', times[2]],
        ['activated_by_day_3', 'default', times[2]],
        ['whatsapp_nudge', sendOutcome, times[2]],
        ['day_7', 'waiting', times[2]],
        ['day_7', 'resumed', times[3]],
        ['activated_by_day_7', 'default', times[3]],
        ['sms_nudge', sendOutcome, times[3]],
        ['$goal', 'window closed', iso(plus(t0, 14 * DAY))],
      ];
      for (const e of expected) expect(taken).toContainEqual(e);
      // Times never go backwards along the history.
      const ats = run.steps.map((x) => x.at);
      expect([...ats].sort()).toEqual(ats);
    });

    it('logged in before day 3: the in-app message is created at the login time, not before', async () => {
      const ref = await customer('early', 'Dev');
      const t0 = await clockNow(url);
      await track(url, who(ref), 'Signed Up');
      await settledMessages(url, ref, 1);
      await advanceTo(url, plus(t0, 6 * HOUR));
      // Six hours in, no login yet: no in-app message exists.
      const before = await messagesOf(url, ref);
      expect(before.filter((m) => m.channel === 'in_app')).toEqual([]);
      const beforeRun = (await runsIn(url, ref, 'onboarding'))[0];
      expect(beforeRun.status).toBe('waiting');
      expect(beforeRun.currentSteps.map((c) => c.step).sort()).toEqual(['day_3', 'first_login']);
      expect(beforeRun.currentSteps.find((c) => c.step === 'first_login')).toMatchObject({ kind: 'wait_for', event: 'Logged In', until: iso(plus(t0, 14 * DAY)) });

      const login = await clockNow(url);
      await track(url, who(ref), 'Logged In');
      const after = await settledMessages(url, ref, 2);
      const inApp = after.filter((m) => m.channel === 'in_app');
      expect(inApp).toHaveLength(1);
      expect(inApp[0]).toMatchObject({ step: 'in_app_tip', createdAt: iso(login), sentAt: iso(login), status: 'sent' });
      expect(iso(login)).toBe(iso(plus(t0, 6 * HOUR)));

      // Later logins don't send it again; day 3 still nudges on WhatsApp.
      await advanceTo(url, plus(t0, 1 * DAY));
      await track(url, who(ref), 'Logged In');
      await advanceTo(url, plus(t0, 3 * DAY));
      const day3 = await settledMessages(url, ref, 3);
      expect(channels(day3)).toEqual([
        ['welcome', 'email'],
        ['in_app_tip', 'in_app'],
        ['whatsapp_nudge', 'whatsapp'],
      ]);
    });

    it('a login before signing up does not count: the in-app tip waits for a login since entry', async () => {
      const ref = await customer('prelogin', 'Eve');
      const t0 = await clockNow(url);
      await track(url, who(ref), 'Logged In');
      await advanceTo(url, plus(t0, HOUR));
      await track(url, who(ref), 'Signed Up');
      const first = await settledMessages(url, ref, 1);
      expect(channels(first)).toEqual([['welcome', 'email']]);
      const login = await advanceTo(url, plus(t0, 3 * HOUR));
      await track(url, who(ref), 'Logged In');
      const after = await settledMessages(url, ref, 2);
      expect(after.filter((m) => m.channel === 'in_app').map((m) => m.createdAt)).toEqual([iso(login)]);
    });

    it('the same customer signing up twice: one run, one welcome email', async () => {
      const ref = await customer('twice', 'Finn');
      const t0 = await clockNow(url);
      await track(url, who(ref), 'Signed Up');
      await track(url, who(ref), 'Signed Up');
      await settledMessages(url, ref, 1);
      await advanceTo(url, plus(t0, HOUR));
      await track(url, who(ref), 'Signed Up');
      await settledMessages(url, ref, 1);
      const runs = await runsIn(url, ref, 'onboarding');
      expect(runs).toHaveLength(1);
      expect(runs[0].enteredAt).toBe(iso(t0));
      const all = await messagesOf(url, ref);
      expect(all.filter((m) => m.step === 'welcome')).toHaveLength(1);
      expect(all).toHaveLength(1);
    });
  });
}
