import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIALECTS } from './support/dialects.js';
import {
  advance,
  advanceTo,
  clockNow,
  DAY,
  email,
  HOUR,
  identify,
  iso,
  messagesOf,
  ok,
  plus,
  profile,
  publishJourney,
  runsIn,
  settledMessages,
  summary,
  track,
  VIRTUAL_ENV,
} from './support/journeys.js';
import { admin, ingest, startTestServer, type TestServer } from './support/server.js';

// The journey engine through the API, with small journeys built here, on SQLite and PostgreSQL. One
// server (and one virtual clock) per dialect: every test uses its own journey, trigger event and
// customers, and computes its times from the clock when it starts.

type Spec = Record<string, unknown>;

/** `[step, channel, status]` sorted by step: for messages created in the same instant. */
const bySteps = (list: Parameters<typeof summary>[0]) => summary(list).sort((a, b) => String(a[0]).localeCompare(String(b[0])));

function journey(key: string, trigger: string, steps: Record<string, unknown>, extra: Spec = {}): Spec {
  return { key, name: key, trigger: { event: trigger }, steps, ...extra };
}

for (const d of DIALECTS) {
  describe.skipIf(!d.available)(`journey engine (${d.name})`, () => {
    let s: TestServer;
    let url: string;
    let seq = 0;

    beforeAll(async () => {
      s = await startTestServer(d, VIRTUAL_ENV);
      url = s.url;
    });
    afterAll(async () => s?.close());

    /** A new identified customer (email, and phone/timezone/… when given); returns the profile ref and the call identity. */
    async function person(tag: string, traits: Record<string, unknown> = {}): Promise<{ ref: string; who: { userId: string } }> {
      const userId = `${tag}-${d.name}-${++seq}`;
      await identify(url, { userId }, { email: `${userId}@example.com`, ...traits });
      return { ref: `user_id:${userId}`, who: { userId } };
    }

    // ------------------------------------------------------------------ entry

    it('entry once: a customer enters one time ever', async () => {
      await publishJourney(url, journey('e_once', 'Once Trigger', { hi: email('Once') }));
      const c = await person('once');
      await track(url, c.who, 'Once Trigger');
      await track(url, c.who, 'Once Trigger');
      await advance(url, 'P2D');
      await track(url, c.who, 'Once Trigger');
      expect(await runsIn(url, c.ref, 'e_once')).toHaveLength(1);
      expect(summary(await settledMessages(url, c.ref, 1))).toEqual([['hi', 'email', 'sent']]);
    });

    it('entry cooldown P1D: enters again only once the cooldown has passed since the last entry', async () => {
      await publishJourney(url, journey('e_cool', 'Cool Trigger', { hi: email('Cool') }, { entry: { mode: 'cooldown', cooldown: 'P1D' } }));
      const c = await person('cool');
      const t0 = await clockNow(url);
      await track(url, c.who, 'Cool Trigger');
      await track(url, c.who, 'Cool Trigger');
      await advance(url, 'PT23H');
      await track(url, c.who, 'Cool Trigger');
      expect(await runsIn(url, c.ref, 'e_cool')).toHaveLength(1);
      const t1 = await advance(url, 'PT1H');
      await track(url, c.who, 'Cool Trigger');
      const runs = await runsIn(url, c.ref, 'e_cool');
      expect(runs.map((r) => r.enteredAt).sort()).toEqual([iso(t0), iso(t1)]);
      const list = await settledMessages(url, c.ref, 2);
      expect(list.map((m) => m.createdAt)).toEqual([iso(t0), iso(t1)]);
    });

    it('entry per_key on properties.order_id: one run per order', async () => {
      await publishJourney(
        url,
        journey(
          'e_order',
          'Order Placed',
          { receipt: { send: { channel: 'email', category: 'transactional', content: { email: { subject: 'Order {{ event.properties.order_id }}', text: 'Thanks' } } } } },
          { entry: { mode: 'per_key', key: 'properties.order_id' } },
        ),
      );
      const c = await person('order');
      await track(url, c.who, 'Order Placed', { order_id: 'A-1' });
      await track(url, c.who, 'Order Placed', { order_id: 'A-1' });
      await track(url, c.who, 'Order Placed', { order_id: 'B-2' });
      await track(url, c.who, 'Order Placed', {}); // no key: no run
      expect(await runsIn(url, c.ref, 'e_order')).toHaveLength(2);
      const list = await settledMessages(url, c.ref, 2);
      expect(list.map((m) => m.content?.subject).sort()).toEqual(['Order A-1', 'Order B-2']);
    });

    it('entry rules hold within one /v1/batch: once enters once, per_key once per key', async () => {
      await publishJourney(url, journey('e_batch_once', 'Batch Once', { hi: email('Once') }));
      await publishJourney(
        url,
        journey('e_batch_key', 'Batch Key', { hi: email('Key {{ event.properties.k }}') }, { entry: { mode: 'per_key', key: 'properties.k' } }),
      );
      const c = await person('batch-entry');
      const call = (event: string, properties: Record<string, unknown> = {}) => ({ type: 'track', userId: c.who.userId, event, properties });
      // The second trigger of a customer in one batch comes after the engine has written the first run.
      await ok(ingest(url, 'batch', { batch: [call('Batch Once'), call('Batch Once'), call('Batch Key', { k: 'a' }), call('Batch Key', { k: 'a' }), call('Batch Key', { k: 'b' })] }));
      await ok(ingest(url, 'batch', { batch: [call('Batch Once'), call('Batch Key', { k: 'b' })] }));
      expect(await runsIn(url, c.ref, 'e_batch_once')).toHaveLength(1);
      expect(await runsIn(url, c.ref, 'e_batch_key')).toHaveLength(2);
      const list = await settledMessages(url, c.ref, 3);
      expect(list.map((m) => m.content?.subject).sort()).toEqual(['Key a', 'Key b', 'Once']);
    });

    it('trigger where and audience decide who enters', async () => {
      await publishJourney(
        url,
        journey('e_cond', 'Plan Chosen', { hi: email('Plan {{ event.properties.plan }}') }, {
          trigger: { event: 'Plan Chosen', where: { property: 'plan', op: 'ne', value: 'enterprise' } },
          audience: { not: { trait: 'employee', op: 'eq', value: true } },
        }),
      );
      const pro = await person('cond-pro');
      const ent = await person('cond-ent');
      const emp = await person('cond-emp', { employee: true });
      await track(url, pro.who, 'Plan Chosen', { plan: 'pro' });
      await track(url, ent.who, 'Plan Chosen', { plan: 'enterprise' });
      await track(url, emp.who, 'Plan Chosen', { plan: 'pro' });
      expect(await runsIn(url, pro.ref, 'e_cond')).toHaveLength(1);
      expect(await runsIn(url, ent.ref, 'e_cond')).toHaveLength(0);
      expect(await runsIn(url, emp.ref, 'e_cond')).toHaveLength(0);
      expect((await settledMessages(url, pro.ref, 1)).map((m) => m.content?.subject)).toEqual(['Plan pro']);
      expect(await messagesOf(url, ent.ref)).toEqual([]);
      expect(await messagesOf(url, emp.ref)).toEqual([]);
    });

    // ------------------------------------------------------------------ holdout, exits, goals

    it('holdout 100: sends are recorded as suppressed (holdout) and the goal is still tracked', async () => {
      await publishJourney(
        url,
        journey('e_hold', 'Hold Trigger', { first: email('First'), pause: { wait: { duration: 'PT1H' } }, second: email('Second') }, {
          holdout: 100,
          goal: { event: 'Hold Goal', within: 'P7D' },
        }),
      );
      const c = await person('hold');
      await track(url, c.who, 'Hold Trigger');
      await advance(url, 'PT1H');
      const list = await settledMessages(url, c.ref, 2);
      expect(summary(list)).toEqual([
        ['first', null, 'suppressed'],
        ['second', null, 'suppressed'],
      ]);
      for (const m of list) {
        expect(m.reason).toMatch(/holdout/);
        expect(m.sentAt).toBeNull();
        expect(m.content).toBeNull();
      }
      const [run] = await runsIn(url, c.ref, 'e_hold');
      expect(run.holdout).toBe(true);
      expect(run.steps[0]).toMatchObject({ step: '$entry', outcome: 'entered (holdout)' });
      const goal = await clockNow(url);
      await track(url, c.who, 'Hold Goal');
      const [after] = await runsIn(url, c.ref, 'e_hold');
      expect(after).toMatchObject({ status: 'converted', convertedAt: iso(goal), holdout: true });
      expect(summary(await messagesOf(url, c.ref))).toEqual(summary(list));
    });

    it('exit_when: the exit event ends the run at once; nothing more is sent', async () => {
      await publishJourney(
        url,
        journey('e_exit', 'Exit Trigger', { first: email('First'), pause: { wait: { duration: 'P1D' } }, second: email('Second') }, {
          exit_when: [{ event: 'Exit Now' }],
        }),
      );
      const c = await person('exit');
      await track(url, c.who, 'Exit Trigger');
      await settledMessages(url, c.ref, 1);
      const at = await clockNow(url);
      await track(url, c.who, 'Exit Now');
      const [run] = await runsIn(url, c.ref, 'e_exit');
      expect(run).toMatchObject({ status: 'exited', endedAt: iso(at), currentSteps: [] });
      expect(run.endReason).toMatch(/Exit Now/);
      await advance(url, 'P3D');
      expect(summary(await messagesOf(url, c.ref))).toEqual([['first', 'email', 'sent']]);
    });

    it('exit_when with a message condition: asks about this run\'s messages (it used to fail the ingestion)', async () => {
      await publishJourney(
        url,
        journey('e_exit_msg', 'Exit Msg Trigger', { first: email('First'), pause: { wait: { duration: 'P1D' } }, second: email('Second') }, {
          exit_when: [{ event: 'Exit If Sent', where: { message: 'first', status: 'sent' } }],
        }),
      );
      const c = await person('exitmsg');
      await track(url, c.who, 'Exit Msg Trigger');
      await settledMessages(url, c.ref, 1);
      await track(url, c.who, 'Exit If Sent');
      const [run] = await runsIn(url, c.ref, 'e_exit_msg');
      expect(run).toMatchObject({ status: 'exited' });
      await advance(url, 'P3D');
      expect(summary(await messagesOf(url, c.ref))).toEqual([['first', 'email', 'sent']]);
    });

    it('exit rules are the run\'s version\'s: a run ends on its own version\'s exit event, not on a later version\'s', async () => {
      const steps = { pause: { wait: { duration: 'P1D' } }, later: email('Later') };
      expect(await publishJourney(url, journey('e_exit_ver', 'Exit Ver Trigger', steps, { exit_when: [{ event: 'Quit One' }] }))).toBe(1);
      const v1 = await person('exitver1');
      await track(url, v1.who, 'Exit Ver Trigger');
      expect(await publishJourney(url, journey('e_exit_ver', 'Exit Ver Trigger', steps, { exit_when: [{ event: 'Quit Two' }] }))).toBe(2);
      const v2 = await person('exitver2');
      await track(url, v2.who, 'Exit Ver Trigger');
      await track(url, v1.who, 'Quit Two');
      await track(url, v2.who, 'Quit One');
      expect((await runsIn(url, v1.ref, 'e_exit_ver'))[0]).toMatchObject({ journey: { version: 1 }, status: 'waiting' });
      expect((await runsIn(url, v2.ref, 'e_exit_ver'))[0]).toMatchObject({ journey: { version: 2 }, status: 'waiting' });
      const at = await clockNow(url);
      await track(url, v1.who, 'Quit One');
      await track(url, v2.who, 'Quit Two');
      expect((await runsIn(url, v1.ref, 'e_exit_ver'))[0]).toMatchObject({ status: 'exited', endedAt: iso(at) });
      expect((await runsIn(url, v2.ref, 'e_exit_ver'))[0]).toMatchObject({ status: 'exited', endedAt: iso(at) });
      // No listener rows are kept per run for exit rules: they are looked up by the version.
      const listeners = await s.server.store.db.selectFrom('waits').select('id').where('kind', '=', 'exit').execute();
      expect(listeners).toEqual([]);
    });

    it('an exit event ends a completed run that still tracks its goal; once the goal window has closed the run stays completed', async () => {
      await publishJourney(
        url,
        journey('e_exit_done', 'Exit Done Trigger', { hi: email('Hi') }, { goal: { event: 'Exit Done Goal', within: 'P2D' }, exit_when: [{ event: 'Exit Done Leave' }] }),
      );
      const tracking = await person('exitdone1');
      const closed = await person('exitdone2');
      await track(url, closed.who, 'Exit Done Trigger');
      await advance(url, 'P3D');
      await track(url, tracking.who, 'Exit Done Trigger');
      expect((await runsIn(url, tracking.ref, 'e_exit_done'))[0]).toMatchObject({ status: 'completed' });
      const at = await clockNow(url);
      await track(url, tracking.who, 'Exit Done Leave');
      await track(url, closed.who, 'Exit Done Leave');
      expect((await runsIn(url, tracking.ref, 'e_exit_done'))[0]).toMatchObject({ status: 'exited', endedAt: iso(at) });
      const [over] = await runsIn(url, closed.ref, 'e_exit_done');
      expect(over.status).toBe('completed');
      expect(over.endReason).toBe('every path ended');
      // Its goal is over too: the goal event no longer converts it.
      await track(url, closed.who, 'Exit Done Goal');
      expect((await runsIn(url, closed.ref, 'e_exit_done'))[0]).toMatchObject({ status: 'completed', convertedAt: null });
    });

    it('goal with on_reach continue: marked converted and the run goes on', async () => {
      await publishJourney(
        url,
        journey('e_cont', 'Cont Trigger', { pause: { wait: { duration: 'P1D' } }, later: email('Later') }, {
          goal: { event: 'Cont Goal', within: 'P7D', on_reach: 'continue' },
        }),
      );
      const c = await person('cont');
      const t0 = await clockNow(url);
      await track(url, c.who, 'Cont Trigger');
      const goalAt = await advance(url, 'PT2H');
      await track(url, c.who, 'Cont Goal');
      const [mid] = await runsIn(url, c.ref, 'e_cont');
      expect(mid).toMatchObject({ status: 'waiting', convertedAt: iso(goalAt), endedAt: null });
      await advanceTo(url, plus(t0, DAY));
      const list = await settledMessages(url, c.ref, 1);
      expect(summary(list)).toEqual([['later', 'email', 'sent']]);
      expect(list[0].createdAt).toBe(iso(plus(t0, DAY)));
      const [end] = await runsIn(url, c.ref, 'e_cont');
      expect(end).toMatchObject({ status: 'converted', convertedAt: iso(goalAt), endedAt: iso(plus(t0, DAY)) });
    });

    // ------------------------------------------------------------------ waits

    it('wait until "10:00" is the next 10:00 in the customer\'s time zone (default UTC)', async () => {
      await publishJourney(url, journey('e_tz', 'TZ Trigger', { morning: { wait: { until: '10:00' } }, hi: email('Good morning') }));
      const ny = await person('tz-ny', { timezone: 'America/New_York' });
      const utc = await person('tz-utc');
      const now = await clockNow(url);
      // January: New York is UTC−5, so 10:00 there is 15:00Z.
      expect(now.getTime()).toBeLessThan(Date.parse('2026-03-01T00:00:00Z'));
      const next = (hourUtc: number) => {
        const day = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate(), hourUtc));
        return day.getTime() > now.getTime() ? day : plus(day, DAY);
      };
      await track(url, ny.who, 'TZ Trigger');
      await track(url, utc.who, 'TZ Trigger');
      const [nyRun] = await runsIn(url, ny.ref, 'e_tz');
      const [utcRun] = await runsIn(url, utc.ref, 'e_tz');
      expect(nyRun.currentSteps).toEqual([{ step: 'morning', kind: 'wait', event: null, until: iso(next(15)) }]);
      expect(new Date(nyRun.currentSteps[0].until!).getUTCHours()).toBe(15);
      expect(utcRun.currentSteps[0].until).toBe(iso(next(10)));
      await advanceTo(url, plus(next(15), DAY));
      expect((await settledMessages(url, ny.ref, 1)).map((m) => m.createdAt)).toEqual([iso(next(15))]);
      expect((await settledMessages(url, utc.ref, 1)).map((m) => m.createdAt)).toEqual([iso(next(10))]);
    });

    it('wait_for: proceeds at once when the event already happened since entry; otherwise on the event or the timeout', async () => {
      await publishJourney(
        url,
        journey('e_wf', 'WF Trigger', {
          pause: { wait: { duration: 'PT1H' } },
          listen: { wait_for: { event: 'WF Event', timeout: 'P1D', since_entry: true, on_event: 'got', on_timeout: 'missed' } },
          got: email('Got it', 'Hello', { next: 'end' }),
          missed: email('Missed it'),
        }),
      );
      const early = await person('wf-early');
      const late = await person('wf-late');
      const never = await person('wf-never');
      const before = await person('wf-before');
      const t0 = await clockNow(url);
      // `before` did it before entering: that doesn't count.
      await track(url, before.who, 'WF Event');
      await advance(url, 'PT1M');
      const t1 = await clockNow(url);
      for (const c of [early, late, never, before]) await track(url, c.who, 'WF Trigger');
      await track(url, early.who, 'WF Event'); // after entry, before the wait_for step
      await advanceTo(url, plus(t1, HOUR));
      const earlyList = await settledMessages(url, early.ref, 1);
      expect(summary(earlyList)).toEqual([['got', 'email', 'sent']]);
      expect(earlyList[0].createdAt).toBe(iso(plus(t1, HOUR)));
      const [earlyRun] = await runsIn(url, early.ref, 'e_wf');
      expect(earlyRun.steps.map((x) => [x.step, x.outcome])).toContainEqual(['listen', 'event_already_happened']);
      expect(earlyRun.status).toBe('completed');

      const lateAt = await advanceTo(url, plus(t1, 3 * HOUR));
      await track(url, late.who, 'WF Event');
      expect((await settledMessages(url, late.ref, 1)).map((m) => [m.step, m.createdAt])).toEqual([['got', iso(lateAt)]]);

      await advanceTo(url, plus(t1, 2 * DAY));
      expect((await settledMessages(url, never.ref, 1)).map((m) => [m.step, m.createdAt])).toEqual([['missed', iso(plus(t1, HOUR + DAY))]]);
      expect((await settledMessages(url, before.ref, 1)).map((m) => m.step)).toEqual(['missed']);
      const [neverRun] = await runsIn(url, never.ref, 'e_wf');
      expect(neverRun.steps.map((x) => [x.step, x.outcome, x.at])).toContainEqual(['listen', 'timed_out', iso(plus(t1, HOUR + DAY))]);
      expect(t0.getTime()).toBeLessThan(t1.getTime());
    });

    // ------------------------------------------------------------------ branch, split, update_profile

    it('branch on a trait', async () => {
      await publishJourney(
        url,
        journey('e_branch', 'Branch Trigger', {
          check: { branch: { cases: [{ when: { trait: 'plan', op: 'eq', value: 'pro' }, next: 'pro_msg' }], default: 'basic_msg' } },
          pro_msg: email('Pro', 'Hello', { next: 'end' }),
          basic_msg: email('Basic'),
        }),
      );
      const pro = await person('br-pro', { plan: 'pro' });
      const free = await person('br-free', { plan: 'free' });
      await track(url, pro.who, 'Branch Trigger');
      await track(url, free.who, 'Branch Trigger');
      expect(summary(await settledMessages(url, pro.ref, 1))).toEqual([['pro_msg', 'email', 'sent']]);
      expect(summary(await settledMessages(url, free.ref, 1))).toEqual([['basic_msg', 'email', 'sent']]);
      const [run] = await runsIn(url, pro.ref, 'e_branch');
      expect(run.steps.map((x) => [x.step, x.outcome])).toContainEqual(['check', 'case 0']);
    });

    it('parallel paths that loop back into a wait keep one timer there (they used to double it every lap)', async () => {
      await publishJourney(
        url,
        journey('e_loop_fork', 'Loop Fork', {
          ping: email('Ping', 'Hello', { next: 'tick' }),
          // Both paths of every lap come back to `tick`: one directly, one through `again`.
          tick: { wait: { duration: 'PT1H' }, next: ['again', 'tick'] },
          again: { branch: { cases: [{ when: { trait: 'plan', op: 'eq', value: 'never' }, next: 'end' }], default: 'tick' } },
        }),
      );
      const p = await person('loop-fork');
      await track(url, p.who, 'Loop Fork');
      await advance(url, 'PT12H');
      const [run] = await runsIn(url, p.ref, 'e_loop_fork');
      expect(run.status).toBe('waiting');
      expect(run.currentSteps.map((c) => [c.step, c.kind])).toEqual([['tick', 'wait']]);
      // Twelve laps: each fired the one timer once.
      expect(run.steps.filter((x) => x.step === 'tick' && x.outcome === 'resumed')).toHaveLength(12);
    });

    it('split 50/50 is sticky per customer and uses both paths', async () => {
      await publishJourney(
        url,
        journey(
          'e_split',
          'Split Trigger',
          {
            ab: { split: { paths: [{ percent: 50, next: 'a' }, { percent: 50, next: 'b' }] } },
            a: { update_profile: { traits: { split_arm: 'a' } }, next: 'end' },
            b: { update_profile: { traits: { split_arm: 'b' } } },
          },
          { entry: { mode: 'per_key', key: 'properties.n' } },
        ),
      );
      const pathOf = async (ref: string) => (await runsIn(url, ref, 'e_split')).map((r) => r.steps.find((x) => x.step === 'ab')?.outcome);
      // The same customer, five times: the same path every time.
      const one = await person('split-one');
      for (let n = 1; n <= 5; n++) await track(url, one.who, 'Split Trigger', { n });
      const paths = await pathOf(one.ref);
      expect(paths).toHaveLength(5);
      expect(new Set(paths).size).toBe(1);
      expect(['path 0', 'path 1']).toContain(paths[0]);
      expect((await profile(url, one.ref)).traits.split_arm).toBe(paths[0] === 'path 0' ? 'a' : 'b');

      const seen = new Set<string | undefined>();
      for (let i = 0; i < 40; i++) {
        const c = await person(`split-${i}`);
        await track(url, c.who, 'Split Trigger', { n: 1 });
        await track(url, c.who, 'Split Trigger', { n: 2 });
        const p = await pathOf(c.ref);
        expect(p).toHaveLength(2);
        expect(p[0]).toBe(p[1]);
        seen.add(p[0]);
      }
      expect([...seen].sort()).toEqual(['path 0', 'path 1']);
    });

    it('update_profile sets traits (templates rendered, null deletes), visible on the profile', async () => {
      await publishJourney(
        url,
        journey('e_update', 'Update Trigger', {
          set: { update_profile: { traits: { onboarding_stage: 'nudged', source_journey: '{{ journey.key }} v{{ journey.version }}', temp: null, score: 3 } } },
        }),
      );
      const c = await person('update', { temp: 'x', keep: 'y' });
      await track(url, c.who, 'Update Trigger');
      const p = await profile(url, c.ref);
      expect(p.traits).toMatchObject({ onboarding_stage: 'nudged', source_journey: 'e_update v1', score: 3, keep: 'y' });
      expect(p.traits).not.toHaveProperty('temp');
      const [run] = await runsIn(url, c.ref, 'e_update');
      expect(run.status).toBe('completed');
    });

    it('update_profile after a wait (a timer batch) changes the profile, and a later identify still wins over it', async () => {
      await publishJourney(
        url,
        journey('e_update_later', 'Update Later Trigger', { pause: { wait: { duration: 'P1D' } }, set: { update_profile: { traits: { stage: 'day 1', keep: null } } } }),
      );
      const c = await person('updatelater', { keep: 'x', plan: 'free' });
      await track(url, c.who, 'Update Later Trigger');
      await advance(url, 'P1D');
      const p = await profile(url, c.ref);
      expect(p.traits).toMatchObject({ stage: 'day 1', plan: 'free' });
      expect(p.traits).not.toHaveProperty('keep');
      expect((await runsIn(url, c.ref, 'e_update_later'))[0].status).toBe('completed');
      await advance(url, 'PT1M');
      await identify(url, c.who, { stage: 'activated' });
      expect((await profile(url, c.ref)).traits).toMatchObject({ stage: 'activated', plan: 'free' });
    });

    // ------------------------------------------------------------------ sends

    it('a template with a missing variable fails that send, naming the variable; the run continues', async () => {
      await publishJourney(
        url,
        journey('e_missing', 'Missing Trigger', {
          broken: email('Hi {{ profile.traits.nickname }}'),
          after: email('After {{ profile.traits.nickname | default: "friend" }}'),
        }),
      );
      const c = await person('missing');
      await track(url, c.who, 'Missing Trigger');
      const list = await settledMessages(url, c.ref, 2);
      // Both were created in the same instant; the ledger doesn't order them, so compare by step.
      expect(bySteps(list)).toEqual([
        ['after', 'email', 'sent'],
        ['broken', 'email', 'failed'],
      ]);
      const broken = list.find((m) => m.step === 'broken')!;
      expect(broken.reason).toMatch(/nickname/);
      expect(broken.sentAt).toBeNull();
      expect(broken.content).toBeNull();
      expect(list.find((m) => m.step === 'after')!.content?.subject).toBe('After friend');
      const [run] = await runsIn(url, c.ref, 'e_missing');
      expect(run.status).toBe('completed');
    });

    it('a send to an unreachable channel is suppressed with a reason; the run continues', async () => {
      await publishJourney(
        url,
        journey('e_unreach', 'Unreach Trigger', {
          text: { send: { channel: 'sms', category: 'transactional', content: { sms: { text: 'Hi' } } } },
          after: email('After'),
        }),
      );
      const c = await person('unreach'); // email only: no phone
      await track(url, c.who, 'Unreach Trigger');
      const list = await settledMessages(url, c.ref, 2);
      expect(bySteps(list)).toEqual([
        ['after', 'email', 'sent'],
        ['text', null, 'suppressed'],
      ]);
      const text = list.find((m) => m.step === 'text')!;
      expect(text.reason).toMatch(/no phone number/);
      expect(text.sentAt).toBeNull();
    });

    it('a channel list [push, sms] falls to sms when there is no push token', async () => {
      await publishJourney(
        url,
        journey('e_fallback', 'Fallback Trigger', {
          nudge: { send: { channel: ['push', 'sms'], category: 'transactional', content: { push: { title: 'T', body: 'B' }, sms: { text: 'Text for {{ profile.phone }}' } } } },
        }),
      );
      const c = await person('fallback', { phone: '+14155550777' });
      await track(url, c.who, 'Fallback Trigger');
      const [m] = await settledMessages(url, c.ref, 1);
      expect(m).toMatchObject({ step: 'nudge', channel: 'sms', status: 'sent', to: '+14155550777', provider: 'sandbox' });
      expect(m.content?.text).toBe('Text for +14155550777');
      expect(m.reason).toMatch(/push/);
      expect(m.reason).toMatch(/no push token/);
    });

    it('a journey message to the sandbox is sent in its own step: its "if it fails" hop is cancelled, its "not opened" hop waits', async () => {
      await publishJourney(
        url,
        journey('e_hops', 'Hops Trigger', {
          hello: {
            send: {
              channel: 'email',
              category: 'transactional',
              content: { email: { subject: 'Hi', text: 'Hello' }, sms: { text: 'Hello by text' } },
              fallback: [{ channel: 'sms', when: 'failed' }],
            },
          },
          again: {
            send: {
              channel: 'email',
              category: 'transactional',
              content: { email: { subject: 'Again', text: 'Hello again' }, sms: { text: 'Again by text' } },
              fallback: [{ channel: 'sms', when: 'not_opened', after: 'PT1H' }],
            },
          },
        }),
      );
      const c = await person('hops', { phone: '+14155550778' });
      const t0 = await clockNow(url);
      await track(url, c.who, 'Hops Trigger');
      // Nothing is left for the outbox: both emails are already sent when the ingest answers.
      const list = await messagesOf(url, c.ref);
      const rows = list.map((m) => [m.step, m.channel, m.status, m.reason]).sort((a, b) => `${a[0]}${a[1]}`.localeCompare(`${b[0]}${b[1]}`));
      expect(rows).toEqual([
        ['again', 'email', 'sent', expect.stringMatching(/email/)],
        ['again', 'sms', 'held', expect.stringMatching(/^fallback to sms if .* is not opened by /)],
        ['hello', 'email', 'sent', expect.stringMatching(/email/)],
        ['hello', 'sms', 'cancelled', 'the message it escalates from was sent'],
      ]);
      for (const m of list.filter((x) => x.status === 'sent')) expect(m).toMatchObject({ provider: 'sandbox', sentAt: iso(t0), createdAt: iso(t0) });
      // Unopened after an hour: the SMS goes out.
      await advance(url, 'PT2H');
      const later = await settledMessages(url, c.ref, 4);
      expect(later.find((m) => m.step === 'again' && m.channel === 'sms')).toMatchObject({ status: 'sent', to: '+14155550778', provider: 'sandbox' });
    });

    // ------------------------------------------------------------------ lifecycle

    it('pause holds timers (and entries) until resumed; resumed waits fire on the next advance', async () => {
      await publishJourney(url, journey('e_pause', 'Pause Trigger', { pause: { wait: { duration: 'P1D' } }, hi: email('Back') }));
      const c = await person('pause');
      const late = await person('pause-late');
      await track(url, c.who, 'Pause Trigger');
      expect((await admin(url, 'POST', '/v1/journeys/e_pause/pause')).body.status).toBe('paused');
      await advance(url, 'P2D');
      await track(url, late.who, 'Pause Trigger'); // no new entries while paused
      expect(await messagesOf(url, c.ref)).toEqual([]);
      const [held] = await runsIn(url, c.ref, 'e_pause');
      expect(held).toMatchObject({ status: 'waiting', currentSteps: [{ step: 'pause', kind: 'wait' }] });
      expect(await runsIn(url, late.ref, 'e_pause')).toEqual([]);

      expect((await admin(url, 'POST', '/v1/journeys/e_pause/resume')).body.status).toBe('active');
      const resumedAt = await clockNow(url);
      await advance(url, 'PT1M');
      const list = await settledMessages(url, c.ref, 1);
      expect(summary(list)).toEqual([['hi', 'email', 'sent']]);
      expect(list[0].createdAt).toBe(iso(resumedAt));
      expect((await runsIn(url, c.ref, 'e_pause'))[0].status).toBe('completed');
    });

    it('a run finishes on the version it started on; new entrants get the latest version', async () => {
      const spec = (subject: string) => journey('e_version', 'Version Trigger', { pause: { wait: { duration: 'P1D' } }, hi: email(subject) });
      expect(await publishJourney(url, spec('Subject one'))).toBe(1);
      const a = await person('ver-a');
      const b = await person('ver-b');
      await track(url, a.who, 'Version Trigger');
      expect(await publishJourney(url, spec('Subject two'))).toBe(2);
      await track(url, b.who, 'Version Trigger');
      await advance(url, 'P1D');
      const [ma] = await settledMessages(url, a.ref, 1);
      const [mb] = await settledMessages(url, b.ref, 1);
      expect(ma).toMatchObject({ journey: { key: 'e_version', version: 1 }, content: { subject: 'Subject one' } });
      expect(mb).toMatchObject({ journey: { key: 'e_version', version: 2 }, content: { subject: 'Subject two' } });
      expect((await runsIn(url, a.ref, 'e_version'))[0].journey.version).toBe(1);
      expect((await runsIn(url, b.ref, 'e_version'))[0].journey.version).toBe(2);
    });

    it('archive stops new entries for good and lets runs finish', async () => {
      await publishJourney(url, journey('e_archive', 'Archive Trigger', { pause: { wait: { duration: 'P1D' } }, hi: email('Still here') }));
      const c = await person('archive');
      const late = await person('archive-late');
      await track(url, c.who, 'Archive Trigger');
      expect((await admin(url, 'POST', '/v1/journeys/e_archive/archive')).body.status).toBe('archived');
      await track(url, late.who, 'Archive Trigger');
      expect(await runsIn(url, late.ref, 'e_archive')).toEqual([]);
      await advance(url, 'P1D');
      expect(summary(await settledMessages(url, c.ref, 1))).toEqual([['hi', 'email', 'sent']]);
      expect((await runsIn(url, c.ref, 'e_archive'))[0].status).toBe('completed');
    });

    it('an exit event while the journey is paused still ends the run (nothing is sent after resume)', async () => {
      await publishJourney(
        url,
        journey('e_pause_exit', 'Pause Exit Trigger', { pause: { wait: { duration: 'P1D' } }, hi: email('Should not arrive') }, {
          exit_when: [{ event: 'Pause Exit Quit' }],
        }),
      );
      const c = await person('pause-exit');
      await track(url, c.who, 'Pause Exit Trigger');
      await ok(admin(url, 'POST', '/v1/journeys/e_pause_exit/pause'));
      const quitAt = await clockNow(url);
      await track(url, c.who, 'Pause Exit Quit');
      await ok(admin(url, 'POST', '/v1/journeys/e_pause_exit/resume'));
      await advance(url, 'P2D');
      const [run] = await runsIn(url, c.ref, 'e_pause_exit');
      expect(run).toMatchObject({ status: 'exited', endedAt: iso(quitAt) });
      expect(await messagesOf(url, c.ref)).toEqual([]);
    });

    it('a goal reached while the journey is paused still converts the run (nothing is sent after resume)', async () => {
      await publishJourney(
        url,
        journey('e_pause_goal', 'Pause Goal Trigger', { pause: { wait: { duration: 'P1D' } }, hi: email('Should not arrive') }, {
          goal: { event: 'Pause Goal Done', within: 'P7D' },
        }),
      );
      const c = await person('pause-goal');
      await track(url, c.who, 'Pause Goal Trigger');
      await ok(admin(url, 'POST', '/v1/journeys/e_pause_goal/pause'));
      const doneAt = await clockNow(url);
      await track(url, c.who, 'Pause Goal Done');
      await ok(admin(url, 'POST', '/v1/journeys/e_pause_goal/resume'));
      await advance(url, 'P2D');
      const [run] = await runsIn(url, c.ref, 'e_pause_goal');
      expect(run).toMatchObject({ status: 'converted', convertedAt: iso(doneAt) });
      expect(await messagesOf(url, c.ref)).toEqual([]);
    });

    it('a goal or exit event in the same /v1/batch as the trigger is seen by the new run', async () => {
      // Segment clients batch by default: "Signed Up" and "Activated" sent together arrive in one batch.
      await publishJourney(
        url,
        journey('e_batch', 'Batch Trigger', { pause: { wait: { duration: 'P1D' } }, hi: email('Should not arrive') }, {
          goal: { event: 'Batch Done', within: 'P7D' },
          exit_when: [{ event: 'Batch Quit' }],
        }),
      );
      const goal = await person('batch-goal');
      const quit = await person('batch-quit');
      const at = await clockNow(url);
      const batch = (userId: string, second: string) =>
        ok(ingest(url, 'batch', { batch: [{ type: 'track', userId, event: 'Batch Trigger' }, { type: 'track', userId, event: second }] }));
      await batch(goal.who.userId, 'Batch Done');
      await batch(quit.who.userId, 'Batch Quit');
      expect((await runsIn(url, goal.ref, 'e_batch'))[0]).toMatchObject({ status: 'converted', convertedAt: iso(at) });
      expect((await runsIn(url, quit.ref, 'e_batch'))[0]).toMatchObject({ status: 'exited', endedAt: iso(at) });
      await advance(url, 'P2D');
      expect(await messagesOf(url, goal.ref)).toEqual([]);
      expect(await messagesOf(url, quit.ref)).toEqual([]);
    });

    // ------------------------------------------------------------------ merges

    async function mergeCase(tag: string, anonymousFirst: boolean) {
      const userId = `${tag}-user-${d.name}`;
      const anonymousId = `${tag}-anon-${d.name}`;
      const t0 = await clockNow(url);
      await identify(url, { userId }, { email: `${userId}@example.com` });
      const enterUser = () => track(url, { userId }, 'Merge Trigger');
      const enterAnon = async () => {
        await identify(url, { anonymousId }, { email: `${anonymousId}@example.com` });
        await track(url, { anonymousId }, 'Merge Trigger');
      };
      await (anonymousFirst ? enterAnon() : enterUser());
      await advance(url, 'PT1H');
      await (anonymousFirst ? enterUser() : enterAnon());
      expect(await runsIn(url, `anonymous_id:${anonymousId}`, 'e_merge')).toHaveLength(1);
      expect(await runsIn(url, `user_id:${userId}`, 'e_merge')).toHaveLength(1);
      const firstRunId = (await runsIn(url, anonymousFirst ? `anonymous_id:${anonymousId}` : `user_id:${userId}`, 'e_merge'))[0].id;
      await advance(url, 'PT1H');
      await identify(url, { userId, anonymousId }, {});

      const runs = await runsIn(url, `user_id:${userId}`, 'e_merge');
      expect((await profile(url, `anonymous_id:${anonymousId}`)).id).toBe((await profile(url, `user_id:${userId}`)).id);
      expect(runs).toHaveLength(2);
      const open = runs.filter((r) => r.status === 'waiting' || r.status === 'active');
      expect(open).toHaveLength(1);
      expect(open[0].id).toBe(firstRunId);
      expect(open[0].enteredAt).toBe(iso(t0));
      const other = runs.find((r) => r.id !== firstRunId)!;
      expect(other.status).toBe('exited');
      expect(other.endReason).toMatch(/merged/);
      expect(other.currentSteps).toEqual([]);

      await advance(url, 'P1D');
      const list = await settledMessages(url, `user_id:${userId}`, 1);
      expect(summary(list)).toEqual([['hi', 'email', 'sent']]);
      expect(list[0].runId).toBe(firstRunId);
    }

    it('profile merge: one run per journey remains, the earlier-entered one (user entered first)', async () => {
      await publishJourney(url, journey('e_merge', 'Merge Trigger', { pause: { wait: { duration: 'P1D' } }, hi: email('Merged') }));
      await mergeCase('mrg1', false);
    });

    it('profile merge: one run per journey remains, the earlier-entered one (anonymous entered first)', async () => {
      await publishJourney(url, journey('e_merge', 'Merge Trigger', { pause: { wait: { duration: 'P1D' } }, hi: email('Merged') }));
      await mergeCase('mrg2', true);
    });

    it('sanity: messages list by profile and message by id agree', async () => {
      const c = await person('sanity');
      await publishJourney(url, journey('e_sanity', 'Sanity Trigger', { hi: email('Sane') }));
      await track(url, c.who, 'Sanity Trigger');
      const [m] = await settledMessages(url, c.ref, 1);
      const one = await ok(admin(url, 'GET', `/v1/messages/${m.id}`));
      expect(one).toMatchObject(m);
    });

    describe('clock advance and the background outbox', () => {
      // The background delivery loop (here polling every 10 ms) runs alongside POST /v1/clock/advance. Advance
      // must still deliver every message at its own virtual time, and finish delivering before answering.
      let fast: TestServer;
      beforeAll(async () => {
        fast = await startTestServer(d, { ...VIRTUAL_ENV, CHORUS_POLL_MS: '10' });
      });
      afterAll(async () => fast?.close());

      it('delivers every message at the time it was created, before advance answers', async () => {
        const u = fast.url;
        await publishJourney(u, journey('e_hourly', 'Hourly Trigger', { tick: email('Tick'), hourly: { wait: { duration: 'PT1H' }, next: 'tick' } }));
        const refs: string[] = [];
        for (let i = 0; i < 2; i++) {
          const userId = `hourly-${i}`;
          await identify(u, { userId }, { email: `${userId}@example.com` });
          await track(u, { userId }, 'Hourly Trigger');
          refs.push(`user_id:${userId}`);
        }
        for (const ref of refs) await settledMessages(u, ref, 1);
        const t0 = await clockNow(u);
        const inFlight: string[] = [];
        for (let k = 0; k < 6; k++) {
          await advance(u, 'PT12H');
          for (const ref of refs) for (const m of await messagesOf(u, ref)) if (m.status !== 'sent') inFlight.push(`${m.createdAt} ${m.status}`);
        }
        expect(inFlight).toEqual([]);
        for (const ref of refs) {
          const list = await messagesOf(u, ref);
          expect(list).toHaveLength(73);
          expect(list.map((m) => m.createdAt)).toEqual(list.map((_, i) => iso(plus(t0, i * HOUR))));
          expect(list.filter((m) => m.sentAt !== m.createdAt).map((m) => `${m.createdAt} sent ${m.sentAt}`)).toEqual([]);
        }
      });
    });
  });
}
