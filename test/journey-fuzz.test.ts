import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIALECTS } from './support/dialects.js';
import { admin, ingest, startTestServer, type TestServer } from './support/server.js';

// Any journey a team might write, valid or not, is either refused with a 4xx or published and run: its
// customers enter, wait, branch, get messages and end on the virtual clock, and no request answers 5xx
// (property, both databases). Templates, conditions, channels and step graphs are drawn at random.

const START = '2026-03-02T09:00:00.000Z';
// Mostly valid pieces, now and then an invalid one: most drawn journeys publish, some are refused.
const rarely = <A, B>(valid: fc.Arbitrary<A>, invalid: fc.Arbitrary<B>): fc.Arbitrary<A | B> => fc.oneof({ arbitrary: valid, weight: 40 }, { arbitrary: invalid, weight: 1 });
const word = rarely(fc.constantFrom('plan', 'name', 'total', 'city', 'address.city', 'tags', 'missing', 'x.y.z'), fc.constantFrom('', '😀'));
const single = fc.oneof(fc.constantFrom('pro', 'free', 'Paris', '', '2026-03-01T00:00:00Z'), fc.integer({ min: -5, max: 200 }), fc.boolean());
const test = rarely(
  fc.oneof(
    fc.record({ op: fc.constantFrom('eq', 'ne'), value: single }),
    fc.record({ op: fc.constantFrom('gt', 'gte', 'lt', 'lte'), value: fc.oneof(fc.integer({ min: -5, max: 200 }), fc.constant('2026-03-01T00:00:00Z')) }),
    fc.record({ op: fc.constantFrom('contains', 'not_contains', 'starts_with', 'ends_with'), value: fc.constantFrom('pro', 'P', 'a', '') }),
    fc.record({ op: fc.constantFrom('in', 'not_in'), value: fc.array(single, { minLength: 1, maxLength: 3 }) }),
    fc.record({ op: fc.constantFrom('exists', 'not_exists') }),
  ),
  fc.record({ op: fc.constantFrom('bogus', 'gt', 'in'), value: fc.oneof(fc.constant([1, 2]), fc.constant(null)) }),
);
const duration = rarely(fc.constantFrom('PT1H', 'P1D', 'P3D', 'P1W', 'P1DT12H'), fc.constantFrom('bad', 'PT0S'));

/** A condition; `inRun`: it may ask about the run's messages and entry (branches, waits, goal, exits). */
const conditionOf = (inRun: boolean): fc.Arbitrary<unknown> =>
  fc.letrec((tie) => ({
    cond: fc.oneof(
      { depthSize: 'small' },
      fc.tuple(word, test).map(([trait, t]) => ({ trait, ...t })),
      fc.tuple(word, test).map(([property, t]) => ({ property, ...t })),
      fc.tuple(fc.constantFrom('timezone', 'locale', 'preferredChannel'), test).map(([profile, t]) => ({ profile, ...t })),
      fc.record(
        {
          event: fc.constantFrom('Go', 'Done', 'Bought'),
          within: duration,
          ...(inRun ? { since: rarely(fc.constant('entry'), fc.constant('never')) } : {}),
          count: fc.record({ op: fc.constantFrom('eq', 'gte', 'lt'), value: fc.integer({ min: 0, max: 3 }) }),
        },
        { requiredKeys: ['event'] },
      ),
      ...(inRun ? [fc.record({ message: fc.constantFrom('s0', 's1', 's2'), status: rarely(fc.constantFrom('sent', 'delivered', 'opened', 'clicked', 'replied'), fc.constant('bogus')) })] : []),
      fc.record({ reachable: rarely(fc.constantFrom('email', 'sms', 'push', 'in_app', 'whatsapp'), fc.constant('fax')) }),
      fc.record({ consent: fc.constantFrom('email', 'sms'), status: fc.constantFrom('subscribed', 'unsubscribed', 'unknown') }),
      fc.record({ all: fc.array(tie('cond'), { minLength: 1, maxLength: 2 }) }),
      fc.record({ any: fc.array(tie('cond'), { minLength: 1, maxLength: 2 }) }),
      fc.record({ not: tie('cond') }),
    ),
  })).cond;
const condition = conditionOf(true);
const outsideRun = rarely(conditionOf(false), conditionOf(true));

const template = rarely(
  fc.constantFrom(
    'Hi {{ profile.traits.name | default: "there" }}',
    '{{ profile.traits.name }}',
    '{{ event.properties.total | times: 2 }}',
    '{% if profile.traits.plan == "pro" %}Pro{% else %}Free{% endif %}',
    '{{ journey.data.url }}/x',
    '{{ profile.traits.tags | first }} {{ profile.traits.tags | size }}',
    '{{ event.timestamp | date: "%Y-%m-%d" }}',
    '{% for t in profile.traits.tags %}{{ t }},{% endfor %}',
    '{{ profile.traits.missing.deeper }}',
    'plain text',
  ),
  fc.oneof(fc.constantFrom('{{ unclosed', '{% if %}', ''), fc.string({ maxLength: 20 })),
);

const next = (ids: string[]) => rarely(fc.oneof(fc.constantFrom(...ids, 'end'), fc.uniqueArray(fc.constantFrom(...ids), { minLength: 1, maxLength: 2 })), fc.constant('nowhere'));

const step = (ids: string[]) =>
  fc.oneof(
    fc.record(
      {
        send: fc.record(
          {
            channel: rarely(fc.oneof(fc.constantFrom('email', 'sms', 'push', 'in_app', 'whatsapp', 'auto'), fc.constant(['sms', 'email'])), fc.constant('fax')),
            category: fc.constantFrom('transactional', 'operational', 'promotional'),
            content: fc.record(
              {
                email: fc.record({ subject: template, text: template }),
                sms: fc.record({ text: template }),
                push: fc.record({ title: template, body: template }),
                in_app: fc.record({ title: template, body: template }),
                whatsapp: fc.record({ template: fc.constantFrom('t1'), language: fc.constantFrom('en'), parameters: fc.array(template, { maxLength: 2 }) }),
              },
              { requiredKeys: ['email', 'sms', 'push', 'in_app', 'whatsapp'] },
            ),
          },
          { requiredKeys: ['content'] },
        ),
        next: next(ids),
      },
      { requiredKeys: ['send'] },
    ),
    fc.record({ wait: fc.oneof(fc.record({ duration }), fc.record({ until: rarely(fc.constantFrom('10:00', '23:59'), fc.constant('25:00')) })), next: next(ids) }, { requiredKeys: ['wait'] }),
    fc.record({
      wait_for: fc.record(
        { event: fc.constantFrom('Done', 'Go'), where: condition, timeout: duration, since_entry: fc.boolean(), on_event: next(ids), on_timeout: next(ids) },
        { requiredKeys: ['event', 'timeout'] },
      ),
    }),
    fc.record({ branch: fc.record({ cases: fc.array(fc.record({ when: condition, next: next(ids) }), { minLength: 1, maxLength: 2 }), default: next(ids) }, { requiredKeys: ['cases'] }) }),
    fc.record({ split: fc.record({ paths: rarely(fc.constantFrom([{ percent: 50, next: ids[2] }, { percent: 50 }], [{ percent: 100 }]), fc.constant([{ percent: 30 }])) }) }),
    fc.record({ update_profile: fc.record({ traits: fc.dictionary(fc.constantFrom('plan', 'name', 'score'), fc.oneof(template, single, fc.constant(null)), { minKeys: 1, maxKeys: 2 }) }) }),
    fc.record({ exit: fc.constantFrom(null, { reason: 'done' }) }),
  );

const journey = (n: number) => {
  const ids = Array.from({ length: 3 }, (_, i) => `s${i}`);
  return fc.record(
    {
      key: fc.constant(`fuzz-${n}`),
      name: fc.constant('Fuzz'),
      trigger: fc.record({ event: fc.constant('Go'), where: outsideRun }, { requiredKeys: ['event'] }),
      audience: outsideRun,
      entry: fc.constantFrom({ mode: 'once' }, { mode: 'cooldown', cooldown: 'PT1H' }, { mode: 'per_key', key: 'properties.order' }),
      goal: fc.record({ event: fc.constant('Bought'), where: condition, within: duration, on_reach: fc.constantFrom('exit', 'continue') }, { requiredKeys: ['event', 'within'] }),
      exit_when: fc.constantFrom([], [{ event: 'Quit' }], [{ event: 'Quit', where: { message: 's0', status: 'sent' } }]),
      holdout: fc.constantFrom(0, 0, 50),
      data: fc.constant({ url: 'https://example.com' }),
      steps: fc.tuple(step(ids), step(ids), step(ids)).map(([a, b, c]) => ({ s0: a, s1: b, s2: c })),
    },
    { requiredKeys: ['key', 'name', 'trigger', 'steps'] },
  );
};

for (const dialect of DIALECTS) {
  describe.skipIf(!dialect.available)(`any journey on ${dialect.name}`, () => {
    let srv: TestServer;
    beforeAll(async () => {
      srv = await startTestServer(dialect, { CHORUS_VIRTUAL_CLOCK: START });
    });
    afterAll(async () => srv?.close());

    it('is refused with a 4xx, or published and run without a 5xx', async () => {
      let n = 0;
      let published = 0;
      const lt500 = (label: string, res: { status: number; body: unknown }) => expect(res.status, `${label}: ${JSON.stringify(res.body)}`).toBeLessThan(500);
      await fc.assert(
        fc.asyncProperty(
          fc.integer().chain(() => journey(++n)),
          fc.record({ plan: fc.constantFrom('pro', 'free'), name: fc.string({ maxLength: 8 }), tags: fc.array(fc.string({ maxLength: 4 }), { maxLength: 2 }), total: fc.integer({ min: 0, max: 300 }) }, { requiredKeys: [] }),
          async (spec, traits) => {
            const created = await admin(srv.url, 'POST', '/v1/journeys', spec);
            lt500('create', created);
            if (created.status >= 300) return;
            const pub = await admin(srv.url, 'POST', `/v1/journeys/${spec.key}/publish`);
            lt500('publish', pub);
            if (pub.status >= 300) return;
            published++;
            const user = `u-${spec.key}`;
            lt500('identify', await ingest(srv.url, 'identify', { userId: user, traits: { ...traits, email: `${user}@example.com`, phone: '+14155552671' } }));
            lt500('go', await ingest(srv.url, 'track', { userId: user, event: 'Go', properties: { total: traits.total ?? 1, order: 'o1' } }));
            lt500('advance', await admin(srv.url, 'POST', '/v1/clock/advance', { by: 'PT2H' }));
            lt500('done', await ingest(srv.url, 'track', { userId: user, event: 'Done', properties: { total: 5 } }));
            lt500('advance', await admin(srv.url, 'POST', '/v1/clock/advance', { by: 'P4D' }));
            lt500('bought', await ingest(srv.url, 'track', { userId: user, event: 'Bought' }));
            lt500('quit', await ingest(srv.url, 'track', { userId: user, event: 'Quit' }));
            lt500('advance', await admin(srv.url, 'POST', '/v1/clock/advance', { by: 'P8D' }));
            lt500('runs', await admin(srv.url, 'GET', `/v1/profiles/user_id:${user}/runs`));
            lt500('messages', await admin(srv.url, 'GET', `/v1/messages?profile=user_id:${user}`));
            lt500('pause', await admin(srv.url, 'POST', `/v1/journeys/${spec.key}/pause`));
          },
        ),
        { numRuns: 120 },
      );
      // Enough of the drawn journeys must be valid for the run to mean something.
      expect(published).toBeGreaterThan(10);
    });
  });
}
