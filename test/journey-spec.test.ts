// The journey spec parser (src/core/journey-spec.ts) against docs/journeys.md: the reference journey,
// exact error paths and messages, defaults, `next` resolution, and that no input makes it throw.
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  journeySpecSchema,
  parseJourneySpec,
  parseJourneyText,
  stepOrder,
  successors,
  type JourneySpec,
  type SpecError,
  type StepOf,
} from '../src/core/journey-spec.js';

const ONBOARDING = readFileSync(new URL('../examples/journeys/onboarding.yaml', import.meta.url), 'utf8');

/** A small valid spec; tests change one thing. */
function base(steps: Record<string, unknown> = { hello: { send: sms('hi') } }, extra: Record<string, unknown> = {}) {
  return { key: 'test', name: 'Test', trigger: { event: 'Signed Up' }, steps, ...extra };
}
function sms(text: string) {
  return { channel: 'sms', content: { sms: { text } } };
}

function ok(input: unknown): JourneySpec {
  const r = parseJourneySpec(input);
  if (!r.ok) throw new Error(`expected a valid spec, got:\n${r.errors.map((e) => `${e.path}: ${e.message}`).join('\n')}`);
  return r.spec;
}
function errors(input: unknown): SpecError[] {
  const r = parseJourneySpec(input);
  if (r.ok) throw new Error('expected errors, the spec parsed');
  return r.errors;
}
const lines = (es: SpecError[]) => es.map((e) => (e.path ? `${e.path}: ${e.message}` : e.message));

describe('the reference journey (examples/journeys/onboarding.yaml)', () => {
  it('parses, with the documented structure', () => {
    const r = parseJourneyText(ONBOARDING);
    if (!r.ok) throw new Error(lines(r.errors).join('\n'));
    const spec = r.spec;
    expect(spec.key).toBe('onboarding');
    expect(spec.trigger).toEqual({ event: 'Signed Up' });
    expect(spec.entry).toEqual({ mode: 'once' });
    expect(spec.goal).toEqual({ event: 'Activated', within: 'P14D', on_reach: 'exit' });
    expect(spec.holdout).toBe(0);
    expect(stepOrder(spec)).toEqual([
      'welcome',
      'first_login',
      'in_app_tip',
      'day_3',
      'activated_by_day_3',
      'whatsapp_nudge',
      'day_7',
      'activated_by_day_7',
      'sms_nudge',
    ]);
    const s = spec.steps;
    expect(s.welcome).toMatchObject({ type: 'send', next: ['first_login', 'day_3'] });
    expect((s.welcome as StepOf<'send'>).send).toMatchObject({ channel: 'email', channels: ['email'], category: 'transactional' });
    expect(s.first_login).toMatchObject({ type: 'wait_for', onEvent: ['in_app_tip'], onTimeout: [] });
    expect((s.first_login as StepOf<'wait_for'>).wait_for).toEqual({ event: 'Logged In', timeout: 'P14D', since_entry: true });
    expect(s.in_app_tip).toMatchObject({ type: 'send', next: [] });
    expect(s.day_3).toEqual({ id: 'day_3', type: 'wait', wait: { duration: 'P3D' }, next: ['activated_by_day_3'] });
    expect(s.activated_by_day_3).toEqual({
      id: 'activated_by_day_3',
      type: 'branch',
      branch: { cases: [{ when: { event: 'Activated', since: 'entry' }, next: [] }], default: ['whatsapp_nudge'] },
    });
    expect(s.whatsapp_nudge).toMatchObject({ type: 'send', next: ['day_7'] });
    expect(s.day_7).toMatchObject({ type: 'wait', wait: { duration: 'P4D' }, next: ['activated_by_day_7'] });
    expect(s.sms_nudge).toMatchObject({ type: 'send', next: [] });
    // Every template is a string, and every send has content for the channels it may use.
    for (const id of stepOrder(spec)) {
      const step = spec.steps[id]!;
      if (step.type !== 'send') continue;
      for (const c of step.send.channels) expect(step.send.content[c]).toBeDefined();
    }
  });

  it('also parses as JSON (JSON text through the YAML parser and with format json)', () => {
    const yaml = parseJourneyText(ONBOARDING);
    expect(yaml.ok).toBe(true);
    const json = JSON.stringify(yaml.ok ? toSource(yaml.spec) : null, null, 2);
    const viaYaml = parseJourneyText(json);
    const viaJson = parseJourneyText(json, 'json');
    expect(viaYaml).toEqual(yaml);
    expect(viaJson).toEqual(yaml);
  });

  it('is accepted by the documentation schema', () => {
    const r = parseJourneyText(ONBOARDING);
    expect(r.ok).toBe(true);
    expect(journeySpecSchema.safeParse(r.ok ? toSource(r.spec) : null).success).toBe(true);
  });
});

/** Back from a normalized spec to source form (explicit `next` everywhere), for round trips. */
function toSource(spec: JourneySpec): Record<string, unknown> {
  const ref = (ids: string[]) => (ids.length === 0 ? 'end' : ids.length === 1 ? ids[0] : ids);
  const steps: Record<string, unknown> = {};
  for (const id of stepOrder(spec)) {
    const s = spec.steps[id]!;
    switch (s.type) {
      case 'send': {
        const { channels: _, ...send } = s.send;
        steps[id] = { send, next: ref(s.next) };
        break;
      }
      case 'wait':
        steps[id] = { wait: s.wait, next: ref(s.next) };
        break;
      case 'wait_for':
        steps[id] = { wait_for: { ...s.wait_for, on_event: ref(s.onEvent), on_timeout: ref(s.onTimeout) } };
        break;
      case 'branch':
        steps[id] = { branch: { cases: s.branch.cases.map((c) => ({ when: c.when, next: ref(c.next) })), default: ref(s.branch.default) } };
        break;
      case 'split':
        steps[id] = { split: { paths: s.split.paths.map((p) => ({ percent: p.percent, next: ref(p.next) })) } };
        break;
      case 'update_profile':
        steps[id] = { update_profile: s.update_profile, next: ref(s.next) };
        break;
      case 'exit':
        steps[id] = { exit: s.exit };
        break;
    }
  }
  return { ...spec, steps };
}

describe('errors: exact paths and messages', () => {
  const cases: { name: string; input: unknown; expected: string[] }[] = [
    {
      name: 'a bad duration',
      input: base({ nudge: { wait: { duration: '3 days' } }, hello: { send: sms('hi') } }),
      expected: ['steps.nudge.wait.duration: expected an ISO 8601 duration such as P3D'],
    },
    {
      name: 'a bad local time',
      input: base({ nudge: { wait: { until: '25:00' } }, hello: { send: sms('hi') } }),
      expected: ['steps.nudge.wait.until: expected a local time of day such as 10:00'],
    },
    {
      name: 'wait with both duration and until',
      input: base({ nudge: { wait: { duration: 'P1D', until: '10:00' } }, hello: { send: sms('hi') } }),
      expected: ['steps.nudge.wait: give duration or until, not both'],
    },
    {
      name: 'wait with neither',
      input: base({ nudge: { wait: {} }, hello: { send: sms('hi') } }),
      expected: ['steps.nudge.wait: wait needs duration (e.g. P3D) or until (e.g. "10:00")'],
    },
    {
      name: 'an unknown step in next (string)',
      input: base({ a: { send: sms('a'), next: 'nowhere' }, b: { send: sms('b') } }),
      expected: ['steps.a.next: unknown step "nowhere"; steps are: a, b'],
    },
    {
      name: 'an unknown step in a next list',
      input: base({ a: { send: sms('a'), next: ['b', 'nowhere'] }, b: { send: sms('b') } }),
      expected: ['steps.a.next[1]: unknown step "nowhere"; steps are: a, b'],
    },
    {
      name: 'unknown steps in wait_for, branch and split references',
      input: base({
        w: { wait_for: { event: 'X', timeout: 'P1D', on_event: 'x1', on_timeout: 'x2' } },
        b: { branch: { cases: [{ when: { trait: 'plan', op: 'eq', value: 'pro' }, next: 'x3' }], default: 'x4' } },
        s: { split: { paths: [{ percent: 50, next: 'x5' }, { percent: 50 }] } },
      }),
      expected: [
        'steps.w.wait_for.on_event: unknown step "x1"; steps are: w, b, s',
        'steps.w.wait_for.on_timeout: unknown step "x2"; steps are: w, b, s',
        'steps.b.branch.cases[0].next: unknown step "x3"; steps are: w, b, s',
        'steps.b.branch.default: unknown step "x4"; steps are: w, b, s',
        'steps.s.split.paths[0].next: unknown step "x5"; steps are: w, b, s',
      ],
    },
    {
      name: 'missing content for the fixed channel',
      input: base({ hello: { send: { channel: 'email', content: { sms: { text: 'hi' } } } } }),
      expected: ['steps.hello.send.content.email: missing content for email, which this send may use'],
    },
    {
      name: 'missing content for a listed channel',
      input: base({ hello: { send: { channel: ['push', 'sms'], content: { push: { title: 't', body: 'b' } } } } }),
      expected: ['steps.hello.send.content.sms: missing content for sms, which this send may use'],
    },
    {
      name: 'auto without any content',
      input: base({ hello: { send: { channel: 'auto', content: {} } } }),
      expected: ['steps.hello.send.content: channel auto needs content for at least one channel (email, sms, whatsapp, push, in_app)'],
    },
    {
      name: 'a bad channel, a duplicate channel',
      input: base({
        a: { send: { channel: 'fax', content: { sms: { text: 'x' } } } },
        b: { send: { channel: ['sms', 'sms'], content: { sms: { text: 'x' } } } },
      }),
      expected: [
        'steps.a.send.channel: expected a channel (email, sms, whatsapp, push, in_app), a list of channels, or auto',
        'steps.b.send.channel[1]: sms is listed twice',
      ],
    },
    {
      name: 'content shapes',
      input: base({
        a: {
          send: {
            channel: 'auto',
            content: {
              email: { subject: 'Hi' },
              whatsapp: { template: 'welcome' },
              push: { title: 'T' },
              in_app: { title: 'T', body: 42 },
            },
          },
        },
        b: { send: { channel: 'whatsapp', content: { whatsapp: { text: 'x', template: 'y', language: 'en' } } } },
        c: { send: { channel: 'whatsapp', content: { whatsapp: { text: 'x', parameters: ['a'] } } } },
      }),
      expected: [
        'steps.a.send.content.push.body: required',
        'steps.a.send.content.in_app.body: expected a string, got a number',
        'steps.a.send.content.email: email content needs text or html (or both)',
        'steps.a.send.content.whatsapp.language: required with template, e.g. en',
        'steps.b.send.content.whatsapp: give text or template, not both',
        'steps.c.send.content.whatsapp.parameters: applies only to template messages',
      ],
    },
    {
      name: 'non-string template fields',
      input: base({ a: { send: { channel: 'sms', content: { sms: { text: ['hi'] } } } }, b: { update_profile: { traits: {} } } }),
      expected: ['steps.a.send.content.sms.text: expected a string, got a list', 'steps.b.update_profile.traits: set at least one trait'],
    },
    {
      name: 'unknown keys, at every level',
      input: {
        ...base({ a: { send: { ...sms('x'), urgency: 'high' }, nxt: 'end' } }),
        tigger: {},
        entry: { mode: 'once', limit: 1 },
      },
      expected: [
        'entry.limit: unknown field "limit"',
        'tigger: unknown field "tigger" (did you mean trigger?)',
        'steps.a.nxt: unknown field "nxt" (did you mean next?)',
        'steps.a.send.urgency: unknown field "urgency"',
      ],
    },
    {
      name: 'a step with two types',
      input: base({ a: { send: sms('x'), wait: { duration: 'P1D' } } }),
      expected: ['steps.a: step must have exactly one of send, wait, wait_for, branch, split, update_profile, exit; found send and wait'],
    },
    {
      name: 'a step with no type',
      input: base({ a: { sned: sms('x') } }),
      expected: [
        'steps.a.sned: unknown field "sned" (did you mean send?)',
        'steps.a: step must have exactly one of send, wait, wait_for, branch, split, update_profile, exit',
      ],
    },
    {
      name: 'split percents that do not add up to 100',
      input: base({ s: { split: { paths: [{ percent: 50, next: 'a' }, { percent: 40, next: 'b' }] } }, a: { send: sms('a'), next: 'end' }, b: { send: sms('b') } }),
      expected: ['steps.s.split.paths: percents must add up to 100; they add up to 90'],
    },
    {
      name: 'a split percent that is not positive',
      input: base({ s: { split: { paths: [{ percent: 0 }, { percent: 100 }] } }, a: { send: sms('a') } }),
      expected: ['steps.s.split.paths[0].percent: must be greater than 0'],
    },
    {
      name: 'a cycle without a wait',
      input: base({ a: { send: sms('a') }, b: { update_profile: { traits: { n: 1 } } }, c: { branch: { cases: [{ when: { trait: 'x', op: 'exists' }, next: 'end' }], default: 'a' } } }),
      expected: ['steps.a: cycle without a wait: a → b → c → a; it would loop forever without time passing (add a wait or wait_for step to it)'],
    },
    {
      name: 'a cycle whose waits are shorter than a minute',
      input: base({
        a: { send: sms('a') },
        w: { wait: { duration: 'PT59S' } },
        f: { wait_for: { event: 'Go', timeout: 'PT0.5S', on_event: 'end', on_timeout: 'a' } },
      }),
      expected: [
        "steps.a: cycle with only short waits: a → w → f → a; a wait in a loop must last at least PT1M (a wait_for's timeout too), or every customer in it would go round once per few milliseconds",
      ],
    },
    {
      name: 'a step that continues to itself',
      input: base({ a: { send: sms('a'), next: 'a' } }),
      expected: ['steps.a: cycle without a wait: a → a; it would loop forever without time passing (add a wait or wait_for step to it)'],
    },
    {
      name: 'a bad condition inside a branch (the path goes into the condition)',
      input: base({ check: { branch: { cases: [{ when: { trait: 'plan', op: 'equals', value: 'pro' }, next: 'end' }] } }, a: { send: sms('a') } }),
      expected: [
        'steps.check.branch.cases[0].when.op: expected an operator: eq, ne, gt, gte, lt, lte, in, not_in, contains, not_contains, starts_with, ends_with, exists or not_exists',
      ],
    },
    {
      name: 'a bad condition nested in all/not',
      input: base({ check: { branch: { cases: [{ when: { all: [{ not: { trait: 'a', op: 'eq' } }] }, next: 'end' }] } }, a: { send: sms('a') } }),
      expected: ['steps.check.branch.cases[0].when.all[0].not.value: op eq needs a value'],
    },
    {
      name: 'a condition naming a step that is not a send',
      input: base({
        hello: { send: sms('hi') },
        check: { branch: { cases: [{ when: { message: 'check', status: 'sent' }, next: 'end' }] } },
      }),
      expected: ['steps.check.branch.cases[0].when.message: unknown send step "check"; send steps are: hello'],
    },
    {
      name: 'top-level fields',
      input: { key: 'Onboarding!', trigger: { event: '' }, holdout: 120, steps: {}, goal: { event: 'Activated' } },
      expected: [
        'key: expected lower-case letters, digits, - and _ (at most 64, not starting with - or _), e.g. onboarding',
        'name: required',
        'trigger.event: must not be empty',
        'goal.within: required',
        'holdout: must be between 0 and 100',
        'steps: must have at least one step',
      ],
    },
    {
      name: 'entry modes and their settings',
      input: base(undefined, { entry: { mode: 'cooldown', key: 'properties.order_id' } }),
      expected: [
        'entry.cooldown: required with mode cooldown: how long after the last entry a customer may enter again, e.g. P30D',
        'entry.key: applies only to mode per_key (mode is cooldown)',
      ],
    },
    {
      name: 'per_key without a key; a bad mode elsewhere',
      input: base(undefined, { entry: { mode: 'per_key' } }),
      expected: ['entry.key: required with mode per_key: the event field whose value keys the run, e.g. properties.order_id'],
    },
    {
      name: 'bad entry values',
      input: base(undefined, { entry: { mode: 'sometimes' } }),
      expected: ['entry.mode: expected one of once, cooldown, per_key'],
    },
    {
      name: 'wait_for needs a timeout; reserved and bad step ids; exit has no next',
      input: base({ w: { wait_for: { event: 'Logged In' } }, end: { exit: {} }, '12': { exit: {} }, 'a b': { exit: null }, x: { exit: {}, next: 'w' } }),
      expected: [
        'steps.12: a step id needs a letter, _ or - (all-digit keys lose their order in JSON objects)',
        'steps.w.wait_for.timeout: required',
        'steps.end: "end" is reserved (a next of end ends the path); rename this step',
        'steps.a b: step ids are letters, digits, _ and - (at most 64)',
        'steps.x.next: an exit step ends the run; it has no next',
      ],
    },
    {
      name: 'bad next values',
      input: base({ a: { send: sms('a'), next: [] }, b: { send: sms('b'), next: 3 }, c: { send: sms('c'), next: ['a', 'a'] } }),
      expected: [
        'steps.a.next: must not be empty; use end to end the path',
        'steps.b.next: expected a step id, a list of step ids, or end',
        'steps.c.next[1]: "a" is listed twice',
      ],
    },
    {
      name: 'several problems at once are all reported',
      input: base({ nudge: { wait: { duration: 'soon' } }, hello: { send: { channel: 'sms', content: {} }, next: 'bye' } }, { holdout: -1 }),
      expected: [
        'holdout: must be between 0 and 100',
        'steps.nudge.wait.duration: expected an ISO 8601 duration such as P3D',
        'steps.hello.next: unknown step "bye"; steps are: nudge, hello',
        'steps.hello.send.content.sms: missing content for sms, which this send may use',
      ],
    },
    {
      name: 'not an object',
      input: ['a'],
      expected: ['expected a journey object (key, name, trigger, steps), got a list'],
    },
    {
      name: 'steps not a map',
      input: { key: 'k', name: 'n', trigger: { event: 'e' }, steps: [{ send: sms('x') }] },
      expected: ['steps: expected an ordered map of step id → step, got a list'],
    },
  ];

  it.each(cases)('$name', ({ input, expected }) => {
    expect(lines(errors(input))).toEqual(expected);
  });

  it('waits break cycles: a loop through a wait or wait_for is fine', () => {
    const spec = ok(base({ a: { send: sms('a') }, w: { wait: { duration: 'P1D' }, next: 'a' } }));
    expect(spec.steps.w).toMatchObject({ next: ['a'] });
    ok(base({ a: { send: sms('a') }, w: { wait_for: { event: 'Clicked', timeout: 'P1D', on_timeout: 'a', on_event: 'end' } } }));
    // A minute is enough, and so is a time of day (the next one is at least a day per lap).
    ok(base({ a: { send: sms('a') }, w: { wait: { duration: 'PT1M' }, next: 'a' } }));
    ok(base({ a: { send: sms('a') }, w: { wait: { until: '10:00' }, next: 'a' } }));
    // Short waits outside any cycle are fine.
    ok(base({ a: { send: sms('a') }, w: { wait: { duration: 'PT1S' } }, b: { send: sms('b') } }));
  });

  it('reports a cycle with a wait-free detour even when another loop has a wait', () => {
    const r = errors(
      base({
        a: { send: sms('a') },
        b: { branch: { cases: [{ when: { trait: 't', op: 'exists' }, next: 'a' }], default: 'w' } },
        w: { wait: { duration: 'P1D' }, next: 'a' },
      }),
    );
    expect(lines(r)).toEqual([
      'steps.a: cycle without a wait: a → b → a; it would loop forever without time passing (add a wait or wait_for step to it)',
    ]);
  });
});

describe('text input', () => {
  it('reports YAML syntax errors with line:column and an empty path', () => {
    const r = parseJourneyText('key: onboarding\nname: x\nsteps:\n  a: [1, 2\n');
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors[0]!.path).toBe('');
    expect(r.errors[0]!.message).toMatch(/^\d+:\d+: .+ \(invalid YAML\)$/);
  });

  it('reports duplicate keys with their position', () => {
    const r = parseJourneyText('key: a\nname: b\nkey: c\n');
    expect(r).toEqual({ ok: false, errors: [{ path: '', message: '3:1: Map keys must be unique (invalid YAML)' }] });
  });

  it('reports JSON syntax errors with line:column (format json)', () => {
    const r = parseJourneyText('{\n  "key": "a",\n}', 'json');
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors).toEqual([{ path: '', message: expect.stringMatching(/^3:1: .+ \(invalid JSON\)$/) }]);
  });

  it('accepts JSON text', () => {
    const json = JSON.stringify(base());
    expect(parseJourneyText(json).ok).toBe(true);
    expect(parseJourneyText(json, 'json').ok).toBe(true);
  });

  it('reads YAML 1.2 scalars as the spec means them', () => {
    // 10:00 is a string (not sexagesimal 600), `no` is a string, not false.
    const r = parseJourneyText(
      ['key: k', 'name: n', 'trigger: { event: no }', 'steps:', '  w:', '    wait: { until: 10:00 }', '  a:', '    exit: {}'].join('\n'),
    );
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.spec.trigger.event).toBe('no');
    expect(r.spec.steps.w).toMatchObject({ wait: { until: '10:00' } });
  });

  it('an empty document is not a journey', () => {
    expect(parseJourneyText('')).toEqual({ ok: false, errors: [{ path: '', message: 'expected a journey object (key, name, trigger, steps), got null' }] });
  });
});

describe('defaults', () => {
  it('applies every documented default', () => {
    const spec = ok(
      base({
        hello: { send: sms('hi') },
        w: { wait_for: { event: 'Logged In', timeout: 'P1D' } },
        g: { exit: null },
      }, { goal: { event: 'Activated', within: 'P14D' } }),
    );
    expect(spec).toEqual({
      key: 'test',
      name: 'Test',
      trigger: { event: 'Signed Up' },
      entry: { mode: 'once' },
      goal: { event: 'Activated', within: 'P14D', on_reach: 'exit' },
      exit_when: [],
      holdout: 0,
      data: {},
      steps: {
        hello: {
          id: 'hello',
          type: 'send',
          send: { channel: 'sms', channels: ['sms'], category: 'promotional', priority: 'normal', tags: [], override_caps: false, fallback: [], content: { sms: { text: 'hi' } } },
          next: ['w'],
        },
        w: { id: 'w', type: 'wait_for', wait_for: { event: 'Logged In', timeout: 'P1D', since_entry: true }, onEvent: ['g'], onTimeout: ['g'] },
        g: { id: 'g', type: 'exit', exit: {} },
      },
    });
    expect('audience' in spec).toBe(false);
    expect('where' in spec.trigger).toBe(false);
    expect('description' in spec).toBe(false);
  });

  it('keeps explicit settings', () => {
    const spec = ok(
      base(undefined, {
        description: 'd',
        audience: { not: { trait: 'employee', op: 'eq', value: true } },
        trigger: { event: 'Order Placed', where: { property: 'total', op: 'gte', value: 100 } },
        entry: { mode: 'per_key', key: 'properties.order_id' },
        goal: { event: 'Paid', within: 'P1D', on_reach: 'continue' },
        exit_when: [{ event: 'Unsubscribed' }],
        holdout: 12.5,
        data: { url: 'https://x' },
      }),
    );
    expect(spec.entry).toEqual({ mode: 'per_key', key: 'properties.order_id' });
    expect(spec.goal?.on_reach).toBe('continue');
    expect(spec.trigger.where).toEqual({ property: 'total', op: 'gte', value: 100 });
    expect(spec.audience).toEqual({ not: { trait: 'employee', op: 'eq', value: true } });
    expect(spec.exit_when).toEqual([{ event: 'Unsubscribed' }]);
    expect(spec.holdout).toBe(12.5);
    expect(spec.data).toEqual({ url: 'https://x' });
    expect(ok(base(undefined, { entry: { mode: 'cooldown', cooldown: 'P30D' } })).entry).toEqual({ mode: 'cooldown', cooldown: 'P30D' });
  });

  it('auto sends try the channels in the order their content is written', () => {
    const spec = ok(
      base({
        a: { send: { channel: 'auto', content: { push: { title: 't', body: 'b' }, sms: { text: 's' }, email: { subject: 's', html: '<p>h</p>' } } } },
        b: { send: { channel: ['whatsapp', 'sms'], category: 'operational', topic: 'orders', content: { sms: { text: 's' }, whatsapp: { template: 't', language: 'en' } } } },
      }),
    );
    const a = (spec.steps.a as StepOf<'send'>).send;
    expect(a.channel).toBe('auto');
    expect(a.channels).toEqual(['push', 'sms', 'email']);
    expect(Object.keys(a.content)).toEqual(['push', 'sms', 'email']);
    const b = (spec.steps.b as StepOf<'send'>).send;
    expect(b).toEqual({
      channel: ['whatsapp', 'sms'],
      channels: ['whatsapp', 'sms'],
      category: 'operational',
      topic: 'orders',
      priority: 'normal',
      tags: [],
      override_caps: false,
      fallback: [],
      content: { sms: { text: 's' }, whatsapp: { template: 't', language: 'en', parameters: [] } },
    });
  });
});

describe('next resolution', () => {
  const spec = ok(
    base({
      a: { send: sms('a') }, // implicit: the following step
      b: { send: sms('b'), next: ['c', 'd'] }, // fork
      c: { wait: { duration: 'PT1H' }, next: 'end' }, // end
      d: { update_profile: { traits: { stage: 'x', old: null } }, next: ['f', 'end'] }, // end in a list drops out
      e: { split: { paths: [{ percent: 30, next: 'g' }, { percent: 70 }] } }, // a path without next: the following step
      f: { branch: { cases: [{ when: { reachable: 'sms' }, next: 'g' }] } }, // default: the following step
      g: { wait_for: { event: 'X', timeout: 'P1D', on_event: 'h' } }, // on_timeout: the following step
      h: { wait_for: { event: 'Y', timeout: 'P1D' }, next: 'a' }, // both default to next
      i: { send: sms('i') }, // the last step ends its path
    }),
  );
  const s = spec.steps;

  it('resolves each kind of reference', () => {
    expect(s.a).toMatchObject({ next: ['b'] });
    expect(s.b).toMatchObject({ next: ['c', 'd'] });
    expect(s.c).toMatchObject({ next: [] });
    expect(s.d).toMatchObject({ next: ['f'], update_profile: { traits: { stage: 'x', old: null } } });
    expect(s.e).toMatchObject({ split: { paths: [{ percent: 30, next: ['g'] }, { percent: 70, next: ['f'] }] } });
    expect(s.f).toMatchObject({ branch: { cases: [{ when: { reachable: 'sms' }, next: ['g'] }], default: ['g'] } });
    expect(s.g).toMatchObject({ onEvent: ['h'], onTimeout: ['h'] });
    expect(s.h).toMatchObject({ onEvent: ['a'], onTimeout: ['a'] });
    expect(s.i).toMatchObject({ next: [] });
  });

  it('successors lists every step a step may continue to', () => {
    expect(successors(s.b!)).toEqual(['c', 'd']);
    expect(successors(s.c!)).toEqual([]);
    expect(successors(s.e!)).toEqual(['g', 'f']);
    expect(successors(s.f!)).toEqual(['g']);
  });

  it('keeps map order', () => {
    expect(stepOrder(spec)).toEqual(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i']);
  });
});

describe('robustness', () => {
  it('never throws on arbitrary JSON', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const r = parseJourneySpec(v);
        return r.ok || r.errors.length > 0;
      }),
      { numRuns: 500 },
    );
  });

  it('never throws on arbitrary values', () => {
    fc.assert(
      fc.property(fc.anything({ withNullPrototype: true, withObjectString: true }), (v) => {
        const r = parseJourneySpec(v);
        return r.ok || r.errors.length > 0;
      }),
      { numRuns: 500 },
    );
  });

  it('never throws on a valid spec with random parts replaced', () => {
    const steps = ['send', 'wait', 'wait_for', 'branch', 'split', 'update_profile', 'exit'];
    const fields = fc.dictionary(fc.constantFrom('next', 'channel', 'content', 'duration', 'cases', 'paths', 'when', 'event', ...steps), fc.jsonValue(), {
      maxKeys: 4,
    });
    fc.assert(
      fc.property(fc.dictionary(fc.constantFrom('a', 'b', 'end', 'c-1', '7'), fc.dictionary(fc.constantFrom(...steps, 'next'), fields, { maxKeys: 2 })), (stepMap) => {
        const r = parseJourneySpec(base(stepMap));
        return r.ok || r.errors.every((e) => typeof e.path === 'string' && e.message.length > 0);
      }),
      { numRuns: 500 },
    );
  });

  it('never throws on arbitrary text', () => {
    fc.assert(
      fc.property(fc.string(), (t) => {
        parseJourneyText(t);
        parseJourneyText(t, 'json');
      }),
      { numRuns: 300 },
    );
  });
});
