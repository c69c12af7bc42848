// Pure tests of the condition model (src/core/conditions.ts, evaluated by src/core/condition-eval.ts): the strict schema and its error messages,
// every operator, every leaf kind against an in-memory context, and fast-check properties.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  applyOperator,
  conditionMentionsEvents,
  ConditionEvaluationError,
  evaluate,
  holdsOutsideRun,
  isoTime,
  readPath,
  type ConditionContext,
  type EventLike,
  type SendOutcome,
} from '../src/core/condition-eval.js';
import { conditionSchema, type Condition, type ConditionValue, type Operator, type Scalar } from '../src/core/conditions.js';
import { CHANNELS, emptyProfile, type Channel, type ProfileState } from '../src/core/types.js';

// ---------------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------------

const NOW = new Date('2024-06-10T12:00:00.000Z');
const ENTERED = new Date('2024-06-05T00:00:00.000Z');

function profile(p: Partial<ProfileState> = {}): ProfileState {
  return { ...emptyProfile('p1', '2024-01-01T00:00:00.000Z'), ...p };
}

interface StoredEvent extends EventLike {
  name: string;
}

interface TestContext extends ConditionContext {
  historyCalls: { name: string; since: string | undefined }[];
}

function context(
  opts: {
    profile?: ProfileState;
    event?: EventLike;
    enteredAt?: Date;
    events?: StoredEvent[];
    messages?: Record<string, SendOutcome | null>;
    reachable?: Channel[];
    noMessages?: boolean;
    /** a history provider that ignores `since` (returns everything named `name`) */
    looseHistory?: boolean;
  } = {},
): TestContext {
  const events = opts.events ?? [];
  const historyCalls: TestContext['historyCalls'] = [];
  const ctx: TestContext = {
    now: NOW,
    profile: opts.profile ?? profile(),
    historyCalls,
    async history(name, since) {
      historyCalls.push({ name, since: since?.toISOString() });
      return events.filter(
        (e) => e.name === name && (opts.looseHistory || !since || Date.parse(e.timestamp) >= since.getTime()),
      );
    },
    reachable: (ch) => (opts.reachable ?? []).includes(ch),
  };
  if (opts.event) ctx.event = opts.event;
  if (opts.enteredAt) ctx.enteredAt = opts.enteredAt;
  if (!opts.noMessages) {
    const messages = opts.messages ?? {};
    ctx.messageStatus = async (stepId) => (Object.hasOwn(messages, stepId) ? messages[stepId]! : null);
  }
  return ctx;
}

const ev = (name: string, timestamp: string, properties: Record<string, unknown> = {}): StoredEvent => ({
  name,
  timestamp,
  properties,
});

// ---------------------------------------------------------------------------------------------------
// Schema
// ---------------------------------------------------------------------------------------------------

describe('conditionSchema accepts the documented shapes', () => {
  const valid: Condition[] = [
    { all: [] },
    { any: [] },
    { all: [{ trait: 'plan', op: 'eq', value: 'pro' }, { any: [{ reachable: 'sms' }] }] },
    { not: { trait: 'employee', op: 'eq', value: true } },
    { trait: 'plan', op: 'eq', value: 'pro' },
    { trait: 'address.city', op: 'in', value: ['Paris', 'Lyon'] },
    { trait: 'plan', op: 'not_in', value: [] },
    { trait: 'age', op: 'gte', value: 18 },
    { trait: 'signed_up_at', op: 'lt', value: '2024-01-01T00:00:00Z' },
    { trait: 'tags', op: 'contains', value: 'vip' },
    { trait: 'email', op: 'ends_with', value: '@example.com' },
    { trait: 'name', op: 'starts_with', value: 'A' },
    { trait: 'plan', op: 'exists' },
    { trait: 'plan', op: 'not_exists' },
    { property: 'total', op: 'gte', value: 100 },
    { property: 'plan', op: 'ne', value: 'enterprise' },
    { profile: 'timezone', op: 'exists' },
    { profile: 'locale', op: 'starts_with', value: 'fr' },
    { profile: 'preferredChannel', op: 'eq', value: 'sms' },
    { event: 'Activated' },
    { event: 'Activated', since: 'entry' },
    { event: 'Activated', within: 'P3D', count: { op: 'gte', value: 2 } },
    { event: 'Activated', count: { op: 'eq', value: 0 } },
    { event: 'Order Completed', where: { property: 'total', op: 'gt', value: 50 }, within: 'PT15M' },
    { event: 'Support Ticket Closed', since_event: 'Support Ticket Opened', count: { op: 'eq', value: 0 } },
    { event: 'Activated', since_event: 'Signed Up', within: 'P3D', since: 'entry' },
    { message: 'welcome', status: 'opened' },
    { message: 'day_3-nudge', status: 'clicked' },
    { reachable: 'in_app' },
    { consent: 'email', status: 'subscribed' },
    { topic: 'newsletter', status: 'unsubscribed' },
  ];
  it.each(valid.map((c) => [JSON.stringify(c), c] as const))('%s', (_, c) => {
    const r = conditionSchema.safeParse(c);
    expect(r.error?.issues ?? []).toEqual([]);
    expect(r.data).toEqual(c);
  });
});

describe('conditionSchema rejects with clear messages and paths', () => {
  const cases: [unknown, (string | number)[], string][] = [
    [{ trait: 'plan', op: 'eq' }, ['value'], 'op eq needs a value'],
    [{ trait: 'plan', op: 'in' }, ['value'], 'op in needs a value'],
    [{ trait: 'plan', op: 'exists', value: 1 }, ['value'], 'op exists takes no value'],
    [{ trait: 'plan', op: 'equals', value: 1 }, ['op'], 'expected an operator: eq, ne, gt'],
    [{ trait: 'plan', value: 1 }, ['op'], 'expected an operator'],
    [{ trait: 'plan', op: 'eq', value: 'x', extra: 1 }, [], 'Unrecognized key: "extra"'],
    [{ trait: 'plan', op: 'in', value: 'pro' }, ['value'], 'op in needs a list value'],
    [{ trait: 'plan', op: 'not_in', value: ['a', { b: 1 }] }, ['value', 1], 'expected a string, number or boolean'],
    [{ trait: 'plan', op: 'eq', value: ['a'] }, ['value'], 'not a list (use op in for a list)'],
    [{ trait: 'plan', op: 'eq', value: null }, ['value'], 'use op exists or not_exists'],
    [{ trait: 'plan', op: 'eq', value: { a: 1 } }, ['value'], 'op eq needs a string, number or boolean value'],
    [{ trait: 'plan', op: 'gt', value: true }, ['value'], 'op gt needs a number or a string'],
    [{ trait: 'plan', op: 'starts_with', value: 1 }, ['value'], 'op starts_with needs a string value'],
    [{ trait: '', op: 'exists' }, ['trait'], 'expected a dotted path such as address.city'],
    [{ trait: 'a..b', op: 'exists' }, ['trait'], 'expected a dotted path'],
    [{ trait: 3, op: 'exists' }, ['trait'], 'expected a dotted path'],
    [{ property: 'a.', op: 'exists' }, ['property'], 'expected a dotted path'],
    [{ profile: 'email', op: 'exists' }, ['profile'], 'expected a profile field: timezone, locale or preferredChannel'],
    [{ event: 'X', within: '3 days' }, ['within'], 'expected an ISO 8601 duration such as P3D'],
    [{ event: 'X', within: 'P0D' }, ['within'], 'expected an ISO 8601 duration such as P3D'],
    [{ event: 'X', since: 'start' }, ['since'], 'since can only be entry'],
    [{ event: 'X', count: { op: 'gte', value: 1.5 } }, ['count', 'value'], 'expected a whole number ≥ 0'],
    [{ event: 'X', count: { op: 'gte', value: -1 } }, ['count', 'value'], 'expected a whole number ≥ 0'],
    [{ event: 'X', count: { op: 'gte' } }, ['count', 'value'], 'expected a whole number ≥ 0'],
    [{ event: 'X', count: { op: 'in', value: 1 } }, ['count', 'op'], 'expected a count operator: eq, ne, gt, gte, lt or lte'],
    [{ event: 'X', count: { op: 'eq', value: 1, x: 1 } }, ['count'], 'Unrecognized key'],
    [{ event: '' }, ['event'], 'expected an event name'],
    [{ event: 'X', since_event: '' }, ['since_event'], 'since_event needs an event name'],
    [{ event: 'X', since_event: 3 }, ['since_event'], 'since_event needs an event name'],
    [{ event: 'X', since_event: ['Y'] }, ['since_event'], 'since_event needs an event name'],
    [{ event: 'X', sinceEvent: 'Y' }, [], 'Unrecognized key: "sinceEvent"'],
    [{ event: 'X', where: { foo: 1 } }, ['where'], 'expected a condition with one of all, any, not'],
    [{ event: 'X', where: { property: 'a', op: 'eq' } }, ['where', 'value'], 'op eq needs a value'],
    [{ message: 'welcome' }, ['status'], 'expected a message status: sent, delivered, opened, clicked or replied'],
    [{ message: 'welcome', status: 'failed' }, ['status'], 'expected a message status'],
    [{ message: 'not a step', status: 'sent' }, ['message'], 'expected a send step id'],
    [{ reachable: 'fax' }, ['reachable'], 'expected a channel: email, sms, whatsapp, push or in_app'],
    [{ reachable: 'sms', status: 'subscribed' }, [], 'Unrecognized key: "status"'],
    [{ consent: 'email', status: 'yes' }, ['status'], 'expected a consent status: subscribed, unsubscribed or unknown'],
    [{ consent: 'email' }, ['status'], 'expected a consent status'],
    [{ consent: 'fax', status: 'unknown' }, ['consent'], 'expected a channel'],
    [{ topic: '', status: 'unknown' }, ['topic'], 'expected a topic name'],
    [{ consent: 'email', topic: 'news', status: 'subscribed' }, [], 'give one of consent or topic, not both'],
    [{ trait: 'a', op: 'exists', event: 'X' }, [], 'a condition has exactly one of'],
    [{}, [], 'expected a condition with one of all, any, not, trait, property, profile, event, message, reachable, consent or topic'],
    [{ op: 'eq', value: 1 }, [], 'expected a condition with one of'],
    [[], [], 'expected a condition object'],
    ['plan', [], 'expected a condition object'],
    [null, [], 'expected a condition object'],
    [{ all: 'x' }, ['all'], 'all needs a list of conditions'],
    [{ any: {} }, ['any'], 'any needs a list of conditions'],
    [{ all: [{ trait: 'a', op: 'eq' }] }, ['all', 0, 'value'], 'op eq needs a value'],
    [{ not: { any: [{ reachable: 'sms' }, { trait: 'a', op: 'bogus' }] } }, ['not', 'any', 1, 'op'], 'expected an operator'],
    [{ not: [] }, ['not'], 'expected a condition object'],
  ];
  it.each(cases.map(([c, path, msg]) => [JSON.stringify(c), c, path, msg] as const))('%s', (_, c, path, msg) => {
    const r = conditionSchema.safeParse(c);
    expect(r.success).toBe(false);
    const issues = r.error!.issues.map((i) => ({ path: i.path, message: i.message }));
    expect(issues).toContainEqual({ path, message: expect.stringContaining(msg) });
  });

  it('reports full paths when nested in a spec', () => {
    const spec = z.object({
      steps: z.record(
        z.string(),
        z.object({ branch: z.object({ cases: z.array(z.object({ when: conditionSchema, next: z.string() })) }) }),
      ),
    });
    const r = spec.safeParse({
      steps: { check: { branch: { cases: [{ when: { trait: 'plan', op: 'is', value: 'pro' }, next: 'end' }] } } },
    });
    expect(r.success).toBe(false);
    expect(r.error!.issues).toHaveLength(1);
    expect(r.error!.issues[0]!.path).toEqual(['steps', 'check', 'branch', 'cases', 0, 'when', 'op']);
    expect(z.prettifyError(r.error!)).toContain('steps.check.branch.cases[0].when.op');
  });

  it('parses inside an async parse too', async () => {
    await expect(conditionSchema.parseAsync({ event: 'X', within: 'P3D' })).resolves.toEqual({
      event: 'X',
      within: 'P3D',
    });
  });
});

// ---------------------------------------------------------------------------------------------------
// Operators
// ---------------------------------------------------------------------------------------------------

describe('applyOperator', () => {
  const rows: [Operator, unknown, ConditionValue | undefined, boolean][] = [
    // eq / ne
    ['eq', 5, 5, true],
    ['eq', 5, 6, false],
    ['eq', 5, '5', true], // number vs numeric string: loose
    ['eq', '5', 5, true],
    ['eq', '5.0', 5, true],
    ['eq', ' 5 ', 5, true],
    ['eq', '', 0, false], // empty string is not numeric
    ['eq', 'five', 5, false],
    ['eq', 'abc', 'abc', true],
    ['eq', 'abc', 'ABC', false], // case-sensitive
    ['eq', '2024-01-01T00:00:00Z', '2024-01-01T00:00:00.000+00:00', true], // same instant
    ['eq', '2024-01-01T01:00:00+01:00', '2024-01-01T00:00:00Z', true],
    ['eq', '2024-01-01', '2024-01-01T00:00:00Z', true], // date only = midnight UTC
    ['eq', true, true, true],
    ['eq', true, 'true', false],
    ['eq', 1, true, false],
    ['eq', { a: 1 }, 'x', false],
    ['eq', [1], 1, false],
    ['eq', undefined, 1, false],
    ['eq', null, 1, false],
    ['ne', 5, 5, false],
    ['ne', 5, 6, true],
    ['ne', '5', 5, false],
    ['ne', undefined, 1, true], // missing passes ne
    ['ne', null, 'x', true],
    // ordering
    ['gt', 10, 5, true],
    ['gt', 5, 5, false],
    ['gte', 5, 5, true],
    ['lt', 4, 5, true],
    ['lte', 5, 5, true],
    ['lte', 6, 5, false],
    ['gt', '10', 5, true], // numeric string field vs number
    ['gt', 10, '5', true],
    ['gt', 'abc', 5, false], // incomparable
    ['lt', 'abc', 5, false],
    ['gt', 'b', 'a', true], // two strings: lexicographic
    ['lt', 'apple', 'banana', true],
    ['gt', '10', '9', false], // lexicographic, not numeric
    ['gt', '2024-01-02T00:00:00Z', '2024-01-01T23:00:00-05:00', false], // as times: 00:00Z < 04:00Z
    ['lt', '2024-01-02T00:00:00Z', '2024-01-01T23:00:00-05:00', true],
    ['gte', '2024-06-01T00:00:00.000Z', '2024-06-01', true],
    ['gt', true, 0, false],
    ['gt', { a: 1 }, 0, false],
    ['gt', [5], 1, false],
    ['gt', undefined, 0, false],
    ['lte', undefined, 0, false],
    // in / not_in
    ['in', 2, [1, 2], true],
    ['in', '2', [1, 2], true],
    ['in', 3, [1, 2], false],
    ['in', 'pro', ['free', 'pro'], true],
    ['in', 'x', [], false],
    ['in', undefined, [1], false],
    ['not_in', 3, [1, 2], true],
    ['not_in', 2, [1, 2], false],
    ['not_in', 'x', [], true],
    ['not_in', undefined, [1], true], // missing passes not_in
    // contains / not_contains
    ['contains', 'hello world', 'lo w', true],
    ['contains', 'hello', 'x', false],
    ['contains', 'hello', 'HELLO', false],
    ['contains', 'order 42', 42, true],
    ['contains', ['a', 'b'], 'a', true],
    ['contains', [1, 2], '2', true],
    ['contains', ['a'], 'b', false],
    ['contains', [{ a: 1 }], 'a', false],
    ['contains', 5, '5', false],
    ['contains', undefined, 'a', false],
    ['not_contains', 'hello', 'x', true],
    ['not_contains', 'hello', 'ell', false],
    ['not_contains', ['a'], 'a', false],
    ['not_contains', undefined, 'a', true], // missing passes not_contains
    // starts_with / ends_with
    ['starts_with', 'hello', 'he', true],
    ['starts_with', 'hello', 'lo', false],
    ['starts_with', 'hello', '', true],
    ['starts_with', 5, '5', false],
    ['starts_with', ['he'], 'he', false],
    ['starts_with', undefined, 'h', false],
    ['ends_with', 'hello', 'lo', true],
    ['ends_with', 'a@example.com', '@example.com', true],
    ['ends_with', 'hello', 'he', false],
    ['ends_with', undefined, 'o', false],
    // exists / not_exists
    ['exists', 0, undefined, true],
    ['exists', '', undefined, true],
    ['exists', false, undefined, true],
    ['exists', [], undefined, true],
    ['exists', {}, undefined, true],
    ['exists', undefined, undefined, false],
    ['exists', null, undefined, false], // null counts as missing
    ['not_exists', undefined, undefined, true],
    ['not_exists', null, undefined, true],
    ['not_exists', 0, undefined, false],
  ];
  it.each(rows.map(([op, a, v, want]) => [op, JSON.stringify(a) ?? 'undefined', JSON.stringify(v), want, a, v] as const))(
    '%s: %s vs %s → %s',
    (op, _a, _v, want, a, v) => {
      expect(applyOperator(op, a, v)).toBe(want);
    },
  );

  it('isoTime reads dates and date-times, and nothing else', () => {
    expect(isoTime('2024-01-01T00:00:00Z')).toBe(Date.UTC(2024, 0, 1));
    expect(isoTime('2024-01-01T02:30:00+02:30')).toBe(Date.UTC(2024, 0, 1));
    expect(isoTime('2024-01-01T00:00:00.123456Z')).toBe(Date.UTC(2024, 0, 1) + 123);
    expect(isoTime('2024-02-29')).toBe(Date.UTC(2024, 1, 29));
    for (const s of ['2023-02-29', '2024-13-01', '2024-01-01T24:00:00Z', '2024', '42', 'yesterday', '2024-1-1']) {
      expect(isoTime(s)).toBeNull();
    }
  });
});

describe('readPath', () => {
  const traits = JSON.parse('{"a":{"b":{"c":1}},"items":[{"sku":"x"}],"__proto__":{"polluted":true},"n":null}') as Record<
    string,
    unknown
  >;
  it.each([
    ['a.b.c', 1],
    ['a.b', { c: 1 }],
    ['a.x', undefined],
    ['a.b.c.d', undefined],
    ['items.0.sku', 'x'],
    ['items.1.sku', undefined],
    ['items.length', undefined],
    ['items.00', undefined],
    ['__proto__.polluted', true], // an own key named __proto__ (from JSON) is data
    ['constructor', undefined],
    ['toString', undefined],
    ['a.constructor.name', undefined],
    ['a.__proto__', undefined],
    ['hasOwnProperty', undefined],
    ['n', undefined],
  ])('%s', (path, want) => {
    expect(readPath(traits, path)).toEqual(want);
  });
  it('never reaches Object.prototype', () => {
    expect(readPath({}, '__proto__')).toBeUndefined();
    expect(readPath({}, '__proto__.toString')).toBeUndefined();
    expect(readPath(Object.create({ inherited: 1 }), 'inherited')).toBeUndefined();
  });
});

// ---------------------------------------------------------------------------------------------------
// Leaves
// ---------------------------------------------------------------------------------------------------

describe('trait, property and profile leaves', () => {
  const p = profile({
    traits: JSON.parse(
      '{"plan":"pro","age":"42","address":{"city":"Paris"},"tags":["vip","beta"],"employee":false,"__proto__":{"x":1}}',
    ) as Record<string, unknown>,
    timezone: 'Europe/Paris',
    locale: null,
    preferredChannel: 'sms',
  });
  const event: EventLike = {
    name: 'Order Completed',
    properties: { total: 150, currency: 'EUR', items: [{ sku: 'A1' }] },
    timestamp: '2024-06-10T11:00:00.000Z',
  };
  const table: [Condition, boolean][] = [
    [{ trait: 'plan', op: 'eq', value: 'pro' }, true],
    [{ trait: 'plan', op: 'in', value: ['free', 'pro'] }, true],
    [{ trait: 'age', op: 'gte', value: 18 }, true],
    [{ trait: 'address.city', op: 'eq', value: 'Paris' }, true],
    [{ trait: 'address.zip', op: 'exists' }, false],
    [{ trait: 'address.zip', op: 'not_exists' }, true],
    [{ trait: 'tags', op: 'contains', value: 'vip' }, true],
    [{ trait: 'employee', op: 'eq', value: true }, false],
    [{ not: { trait: 'employee', op: 'eq', value: true } }, true],
    [{ trait: '__proto__.x', op: 'eq', value: 1 }, true],
    [{ trait: 'constructor', op: 'exists' }, false],
    [{ trait: 'plan.length', op: 'exists' }, false],
    [{ property: 'total', op: 'gte', value: 100 }, true],
    [{ property: 'currency', op: 'ne', value: 'USD' }, true],
    [{ property: 'items.0.sku', op: 'starts_with', value: 'A' }, true],
    [{ property: 'coupon', op: 'not_exists' }, true],
    [{ profile: 'timezone', op: 'eq', value: 'Europe/Paris' }, true],
    [{ profile: 'timezone', op: 'starts_with', value: 'Europe/' }, true],
    [{ profile: 'locale', op: 'exists' }, false], // null = not set
    [{ profile: 'locale', op: 'not_exists' }, true],
    [{ profile: 'preferredChannel', op: 'in', value: ['sms', 'whatsapp'] }, true],
  ];
  it.each(table.map(([c, want]) => [JSON.stringify(c), want, c] as const))('%s → %s', async (_, want, c) => {
    expect(await evaluate(c, context({ profile: p, event }))).toBe(want);
  });

  it('property leaves are false without an event under test, whatever the operator', async () => {
    const ctx = context({ profile: p });
    for (const c of [
      { property: 'total', op: 'exists' },
      { property: 'total', op: 'not_exists' },
      { property: 'total', op: 'ne', value: 1 },
    ] as Condition[]) {
      expect(await evaluate(c, ctx)).toBe(false);
    }
  });
});

describe('event leaves', () => {
  const events: StoredEvent[] = [
    ev('Activated', '2024-06-01T00:00:00.000Z'),
    ev('Activated', '2024-06-08T00:00:00.000Z'),
    ev('Activated', '2024-06-10T11:00:00.000Z'),
    ev('Purchased', '2024-06-09T00:00:00.000Z', { total: 50, plan: 'pro' }),
    ev('Purchased', '2024-06-10T10:00:00.000Z', { total: 150, plan: 'pro' }),
  ];
  const table: [Condition, boolean, string | undefined][] = [
    [{ event: 'Activated' }, true, undefined],
    [{ event: 'Never' }, false, undefined],
    [{ event: 'Never', count: { op: 'eq', value: 0 } }, true, undefined],
    [{ event: 'Activated', count: { op: 'eq', value: 0 } }, false, undefined],
    [{ event: 'Activated', count: { op: 'eq', value: 3 } }, true, undefined],
    [{ event: 'Activated', count: { op: 'ne', value: 3 } }, false, undefined],
    [{ event: 'Activated', count: { op: 'gt', value: 2 } }, true, undefined],
    [{ event: 'Activated', count: { op: 'lt', value: 3 } }, false, undefined],
    [{ event: 'Activated', count: { op: 'lte', value: 3 } }, true, undefined],
    // within P3D: since 2024-06-07T12:00Z → 2 events
    [{ event: 'Activated', within: 'P3D', count: { op: 'eq', value: 2 } }, true, '2024-06-07T12:00:00.000Z'],
    [{ event: 'Activated', within: 'PT15M' }, false, '2024-06-10T11:45:00.000Z'],
    [{ event: 'Activated', within: 'PT1H' }, true, '2024-06-10T11:00:00.000Z'], // at the bound counts
    [{ event: 'Activated', within: 'P1M', count: { op: 'eq', value: 3 } }, true, '2024-05-10T12:00:00.000Z'],
    // since entry (2024-06-05) → 2 events
    [{ event: 'Activated', since: 'entry', count: { op: 'eq', value: 2 } }, true, '2024-06-05T00:00:00.000Z'],
    // both: the later bound wins (now − P1D = 2024-06-09T12:00Z)
    [{ event: 'Activated', since: 'entry', within: 'P1D', count: { op: 'eq', value: 1 } }, true, '2024-06-09T12:00:00.000Z'],
    [{ event: 'Activated', since: 'entry', within: 'P30D', count: { op: 'eq', value: 2 } }, true, '2024-06-05T00:00:00.000Z'],
    // where, evaluated on each history event
    [{ event: 'Purchased', where: { property: 'total', op: 'gte', value: 100 } }, true, undefined],
    [{ event: 'Purchased', where: { property: 'total', op: 'gte', value: 100 }, count: { op: 'eq', value: 1 } }, true, undefined],
    [{ event: 'Purchased', where: { property: 'total', op: 'gt', value: 500 } }, false, undefined],
    [{ event: 'Purchased', where: { property: 'total', op: 'gte', value: 100 }, within: 'PT1H' }, false, '2024-06-10T11:00:00.000Z'],
    [
      { event: 'Purchased', where: { all: [{ property: 'plan', op: 'eq', value: 'pro' }, { trait: 'vip', op: 'eq', value: true }] } },
      true,
      undefined,
    ],
  ];
  it.each(table.map(([c, want, since]) => [JSON.stringify(c), want, since, c] as const))(
    '%s → %s',
    async (_, want, since, c) => {
      const ctx = context({ events, enteredAt: ENTERED, profile: profile({ traits: { vip: true } }) });
      expect(await evaluate(c, ctx)).toBe(want);
      expect(ctx.historyCalls[0]).toEqual({ name: (c as { event: string }).event, since });
    },
  );

  it('drops events older than the bound even if the history provider returns them', async () => {
    const ctx = context({ events, enteredAt: ENTERED, looseHistory: true });
    expect(await evaluate({ event: 'Activated', since: 'entry', count: { op: 'eq', value: 2 } }, ctx)).toBe(true);
  });

  it('since: entry needs an entry time', async () => {
    await expect(evaluate({ event: 'Activated', since: 'entry' }, context({ events }))).rejects.toBeInstanceOf(
      ConditionEvaluationError,
    );
  });

  it('a `within` too large to subtract means no lower bound', async () => {
    const ctx = context({ events });
    expect(await evaluate({ event: 'Activated', within: 'P999999999Y', count: { op: 'eq', value: 3 } }, ctx)).toBe(true);
    expect(ctx.historyCalls[0]!.since).toBeUndefined();
  });

  it('all/any short-circuit so later history look-ups are skipped', async () => {
    const ctx = context({ events });
    expect(await evaluate({ any: [{ event: 'Activated' }, { event: 'Purchased' }] }, ctx)).toBe(true);
    expect(ctx.historyCalls.map((c) => c.name)).toEqual(['Activated']);
    const ctx2 = context({ events });
    expect(await evaluate({ all: [{ event: 'Never' }, { event: 'Purchased' }] }, ctx2)).toBe(false);
    expect(ctx2.historyCalls.map((c) => c.name)).toEqual(['Never']);
  });

  it('works with a class-based context (callbacks keep their `this` inside `where`)', async () => {
    class Ctx implements ConditionContext {
      now = NOW;
      profile = profile();
      private readonly stored = events;
      async history(name: string): Promise<EventLike[]> {
        return this.stored.filter((e) => e.name === name);
      }
      reachable(): boolean {
        return true;
      }
    }
    const c: Condition = {
      event: 'Purchased',
      where: { all: [{ property: 'total', op: 'gt', value: 100 }, { event: 'Activated' }] },
    };
    expect(await evaluate(c, new Ctx())).toBe(true);
  });
});

describe('event leaves with since_event', () => {
  const OPENED = 'Support Ticket Opened';
  const CLOSED = 'Support Ticket Closed';
  // The suppression example of docs/gate.md: an open ticket in the last 48 hours.
  const openTicket: Condition = {
    all: [
      { event: OPENED, within: 'PT48H' },
      { event: CLOSED, since_event: OPENED, count: { op: 'eq', value: 0 } },
    ],
  };
  const hoursAgo = (h: number) => new Date(NOW.getTime() - h * 3_600_000).toISOString();

  it('the documented example parses', () => {
    expect(conditionSchema.safeParse(openTicket).success).toBe(true);
  });

  const table: [string, StoredEvent[], boolean][] = [
    ['opened 10h ago, not closed', [ev(OPENED, hoursAgo(10))], true],
    ['opened 10h ago, closed 5h ago', [ev(OPENED, hoursAgo(10)), ev(CLOSED, hoursAgo(5))], false],
    [
      'opened, closed, opened again',
      [ev(OPENED, hoursAgo(30)), ev(CLOSED, hoursAgo(20)), ev(OPENED, hoursAgo(10))],
      true,
    ],
    ['opened 3 days ago, not closed', [ev(OPENED, hoursAgo(72))], false],
    ['closed before the last opening only (an older ticket)', [ev(CLOSED, hoursAgo(100)), ev(OPENED, hoursAgo(10))], true],
    ['closed at the same instant as opened counts as closed', [ev(OPENED, hoursAgo(10)), ev(CLOSED, hoursAgo(10))], false],
    ['never opened', [], false],
  ];
  it.each(table)('%s → %s', async (_, events, want) => {
    expect(await evaluate(openTicket, context({ events }))).toBe(want);
  });

  it('looks up the most recent since_event without a bound, then the leaf from it', async () => {
    const ctx = context({ events: [ev(OPENED, hoursAgo(30)), ev(OPENED, hoursAgo(10)), ev(OPENED, 'garbage')] });
    expect(await evaluate({ event: CLOSED, since_event: OPENED, count: { op: 'eq', value: 0 } }, ctx)).toBe(true);
    expect(ctx.historyCalls).toEqual([
      { name: OPENED, since: undefined },
      { name: CLOSED, since: hoursAgo(10) },
    ]);
  });

  it('never had since_event → counts from the beginning', async () => {
    const ctx = context({ events: [ev(CLOSED, '2020-01-01T00:00:00.000Z')] });
    expect(await evaluate({ event: CLOSED, since_event: OPENED, count: { op: 'eq', value: 1 } }, ctx)).toBe(true);
    expect(ctx.historyCalls[1]).toEqual({ name: CLOSED, since: undefined });
  });

  it('combines with within and since: entry, the latest bound wins', async () => {
    const events = [
      ev('Activated', '2024-06-01T00:00:00.000Z'),
      ev('Signed Up', '2024-06-07T00:00:00.000Z'),
      ev('Activated', '2024-06-08T00:00:00.000Z'),
      ev('Activated', '2024-06-10T11:00:00.000Z'),
    ];
    // since_event (06-07) later than entry (06-05) and within P30D
    let ctx = context({ events, enteredAt: ENTERED });
    const c: Condition = { event: 'Activated', since_event: 'Signed Up', since: 'entry', within: 'P30D', count: { op: 'eq', value: 2 } };
    expect(await evaluate(c, ctx)).toBe(true);
    expect(ctx.historyCalls[1]!.since).toBe('2024-06-07T00:00:00.000Z');
    // within P1D (06-09T12:00) later than since_event
    ctx = context({ events, enteredAt: ENTERED });
    expect(await evaluate({ event: 'Activated', since_event: 'Signed Up', within: 'P1D', count: { op: 'eq', value: 1 } }, ctx)).toBe(true);
    expect(ctx.historyCalls[1]!.since).toBe('2024-06-09T12:00:00.000Z');
  });

  it('drops events before the since_event bound even if the history provider returns them', async () => {
    const ctx = context({ events: [ev(OPENED, hoursAgo(10)), ev(CLOSED, hoursAgo(20))], looseHistory: true });
    expect(await evaluate({ event: CLOSED, since_event: OPENED, count: { op: 'eq', value: 0 } }, ctx)).toBe(true);
  });

  it('since_event names are reported by conditionMentionsEvents', () => {
    expect(conditionMentionsEvents(openTicket)).toEqual([OPENED, CLOSED]);
    expect(conditionMentionsEvents({ event: 'A', since_event: 'B' })).toEqual(['A', 'B']);
  });
});

describe('message, reachable, consent and topic leaves', () => {
  const messages: Record<string, SendOutcome | null> = {
    welcome: 'opened',
    sms_nudge: 'failed',
    push_tip: 'suppressed',
    digest: 'sent',
    promo: 'clicked',
    sms_reply: 'replied',
  };
  const p = profile({
    consent: {
      channels: {
        email: { status: 'subscribed', source: 'api', updatedAt: '2024-01-01T00:00:00.000Z' },
        sms: { status: 'unsubscribed', source: 'sms_stop', updatedAt: '2024-01-01T00:00:00.000Z' },
      },
      topics: { newsletter: { status: 'subscribed', source: 'api', updatedAt: '2024-01-01T00:00:00.000Z' } },
    },
  });
  const table: [Condition, boolean][] = [
    [{ message: 'welcome', status: 'sent' }, true],
    [{ message: 'welcome', status: 'delivered' }, true],
    [{ message: 'welcome', status: 'opened' }, true],
    [{ message: 'welcome', status: 'clicked' }, false],
    [{ message: 'digest', status: 'sent' }, true],
    [{ message: 'digest', status: 'delivered' }, false],
    [{ message: 'promo', status: 'clicked' }, true],
    [{ message: 'promo', status: 'replied' }, false], // a click is not a reply
    [{ message: 'sms_reply', status: 'replied' }, true],
    [{ message: 'sms_reply', status: 'clicked' }, true], // a reply is the strongest engagement
    [{ message: 'sms_reply', status: 'opened' }, true],
    [{ message: 'sms_nudge', status: 'sent' }, false], // failed
    [{ message: 'push_tip', status: 'sent' }, false], // suppressed
    [{ message: 'never_sent', status: 'sent' }, false], // null
    [{ reachable: 'email' }, true],
    [{ reachable: 'sms' }, false],
    [{ consent: 'email', status: 'subscribed' }, true],
    [{ consent: 'email', status: 'unsubscribed' }, false],
    [{ consent: 'sms', status: 'unsubscribed' }, true],
    [{ consent: 'whatsapp', status: 'unknown' }, true],
    [{ consent: 'whatsapp', status: 'subscribed' }, false],
    [{ topic: 'newsletter', status: 'subscribed' }, true],
    [{ topic: 'offers', status: 'unknown' }, true],
    [{ topic: 'constructor', status: 'unknown' }, true], // no prototype lookup
    [{ topic: '__proto__', status: 'unknown' }, true],
    [{ topic: 'toString', status: 'subscribed' }, false],
  ];
  it.each(table.map(([c, want]) => [JSON.stringify(c), want, c] as const))('%s → %s', async (_, want, c) => {
    expect(await evaluate(c, context({ profile: p, messages, reachable: ['email', 'push'] }))).toBe(want);
  });

  it('message conditions need a run', async () => {
    await expect(evaluate({ message: 'welcome', status: 'sent' }, context({ noMessages: true }))).rejects.toBeInstanceOf(
      ConditionEvaluationError,
    );
  });
});

describe('conditionMentionsEvents', () => {
  it('collects event names from every event leaf, once each', () => {
    const c: Condition = {
      all: [
        { event: 'Signed Up' },
        { not: { event: 'Activated', since: 'entry' } },
        { any: [{ trait: 'plan', op: 'exists' }, { event: 'Purchased', where: { event: 'Refunded' } }] },
        { event: 'Activated', within: 'P3D' },
      ],
    };
    expect(conditionMentionsEvents(c)).toEqual(['Signed Up', 'Activated', 'Purchased', 'Refunded']);
    expect(conditionMentionsEvents({ trait: 'plan', op: 'exists' })).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------------

const isoArb = fc
  .integer({ min: Date.UTC(2000, 0, 1), max: Date.UTC(2030, 0, 1) })
  .map((ms) => new Date(ms).toISOString());
const scalarArb: fc.Arbitrary<Scalar> = fc.oneof(
  fc.string({ maxLength: 6 }),
  fc.constantFrom('pro', 'free', '42', '2024-06-01T00:00:00Z', '__proto__'),
  fc.integer({ min: -5, max: 50 }),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.boolean(),
  isoArb,
);
const keyArb = fc.constantFrom('a', 'b', 'plan', 'total', '0', 'tags', '__proto__', 'constructor', 'length', 'toString');
const pathArb = fc.array(keyArb, { minLength: 1, maxLength: 3 }).map((s) => s.join('.'));
const opValueArb = fc.oneof(
  fc.record({ op: fc.constantFrom<Operator>('exists', 'not_exists') }),
  fc.record({ op: fc.constantFrom<Operator>('in', 'not_in'), value: fc.array(scalarArb, { maxLength: 4 }) }),
  fc.record({ op: fc.constantFrom<Operator>('eq', 'ne', 'contains', 'not_contains'), value: scalarArb }),
  fc.record({
    op: fc.constantFrom<Operator>('gt', 'gte', 'lt', 'lte'),
    value: fc.oneof(fc.string({ maxLength: 6 }), fc.integer({ min: -5, max: 50 }), isoArb),
  }),
  fc.record({ op: fc.constantFrom<Operator>('starts_with', 'ends_with'), value: fc.string({ maxLength: 3 }) }),
);
const eventNameArb = fc.constantFrom('A', 'B', 'C');

const { condition: conditionArb } = fc.letrec<{
  condition: Condition;
  leaf: Condition;
  all: Condition;
  any: Condition;
  not: Condition;
}>((tie) => ({
  condition: fc.oneof({ depthSize: 'small', withCrossShrink: true }, tie('leaf'), tie('all'), tie('any'), tie('not')),
  all: fc.record({ all: fc.array(tie('condition'), { maxLength: 3 }) }),
  any: fc.record({ any: fc.array(tie('condition'), { maxLength: 3 }) }),
  not: fc.record({ not: tie('condition') }),
  leaf: fc.oneof(
    fc.tuple(pathArb, opValueArb).map(([trait, ov]): Condition => ({ trait, ...ov })),
    fc.tuple(pathArb, opValueArb).map(([property, ov]): Condition => ({ property, ...ov })),
    fc
      .tuple(fc.constantFrom('timezone', 'locale', 'preferredChannel' as const), opValueArb)
      .map(([field, ov]): Condition => ({ profile: field, ...ov })),
    fc.record(
      {
        event: eventNameArb,
        where: tie('condition'),
        within: fc.constantFrom('PT15M', 'P3D', 'P1W', 'P1DT12H', 'P1M', 'P999999999Y'),
        since: fc.constant('entry' as const),
        since_event: eventNameArb,
        count: fc.record({
          op: fc.constantFrom('eq', 'ne', 'gt', 'gte', 'lt', 'lte' as const),
          value: fc.nat({ max: 4 }),
        }),
      },
      { requiredKeys: ['event'] },
    ),
    fc.record({
      message: fc.constantFrom('welcome', 'nudge'),
      status: fc.constantFrom('sent', 'delivered', 'opened', 'clicked', 'replied' as const),
    }),
    fc.record({ reachable: fc.constantFrom(...CHANNELS) }),
    fc.record({
      consent: fc.constantFrom(...CHANNELS),
      status: fc.constantFrom('subscribed', 'unsubscribed', 'unknown' as const),
    }),
    fc.record({
      topic: fc.constantFrom('newsletter', 'constructor', '__proto__'),
      status: fc.constantFrom('subscribed', 'unsubscribed', 'unknown' as const),
    }),
  ),
}));

const jsonObjectArb = fc.dictionary(keyArb, fc.jsonValue({ maxDepth: 3 }), { maxKeys: 6 });
const eventArb: fc.Arbitrary<StoredEvent> = fc.record({
  name: eventNameArb,
  properties: jsonObjectArb,
  timestamp: fc.oneof(isoArb, fc.string({ maxLength: 5 })),
});
const consentRecordArb = fc.record({
  status: fc.constantFrom('subscribed', 'unsubscribed', 'unknown' as const),
  source: fc.constant('api'),
  updatedAt: fc.constant('2024-01-01T00:00:00.000Z'),
});
const profileArb: fc.Arbitrary<ProfileState> = fc
  .record({
    traits: jsonObjectArb,
    timezone: fc.option(fc.constantFrom('UTC', 'Europe/Paris', 'Pacific/Kiritimati')),
    locale: fc.option(fc.constantFrom('fr-FR', 'en')),
    preferredChannel: fc.option(fc.constantFrom(...CHANNELS)),
    channels: fc.dictionary(fc.constantFrom(...CHANNELS), consentRecordArb),
    topics: fc.dictionary(fc.constantFrom('newsletter', 'offers'), consentRecordArb),
  })
  .map(({ channels, topics, ...rest }) => profile({ ...rest, consent: { channels, topics } }));
const contextArb = fc
  .record({
    profile: profileArb,
    event: fc.option(eventArb, { nil: undefined }),
    events: fc.array(eventArb, { maxLength: 6 }),
    messages: fc.record({
      welcome: fc.constantFrom<SendOutcome | null>('sent', 'delivered', 'opened', 'clicked', 'replied', 'failed', 'suppressed', null),
    }),
    reachable: fc.subarray([...CHANNELS]),
  })
  .map((o) => context({ ...o, enteredAt: ENTERED }));

describe('properties', () => {
  it('generated conditions are schema-valid and parse to themselves', () => {
    fc.assert(
      fc.property(conditionArb, (c) => {
        const r = conditionSchema.safeParse(c);
        expect(r.error?.issues ?? []).toEqual([]);
        expect(r.data).toEqual(c);
      }),
      { numRuns: 300 },
    );
  });

  it('evaluation never throws for schema-valid conditions (in a run context)', async () => {
    await fc.assert(
      fc.asyncProperty(conditionArb, contextArb, async (c, ctx) => {
        expect(typeof (await evaluate(c, ctx))).toBe('boolean');
      }),
      { numRuns: 500 },
    );
  });

  it('`not` inverts', async () => {
    await fc.assert(
      fc.asyncProperty(conditionArb, contextArb, async (c, ctx) => {
        expect(await evaluate({ not: c }, ctx)).toBe(!(await evaluate(c, ctx)));
      }),
      { numRuns: 300 },
    );
  });

  it('all([]) holds, any([]) does not; all/any agree with every/some', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(conditionArb, { maxLength: 4 }), contextArb, async (cs, ctx) => {
        expect(await evaluate({ all: [] }, ctx)).toBe(true);
        expect(await evaluate({ any: [] }, ctx)).toBe(false);
        const each = await Promise.all(cs.map((c) => evaluate(c, ctx)));
        expect(await evaluate({ all: cs }, ctx)).toBe(each.every(Boolean));
        expect(await evaluate({ any: cs }, ctx)).toBe(each.some(Boolean));
      }),
      { numRuns: 200 },
    );
  });

  it('`in` agrees with `any` of `eq`s, and `not_in` with `all` of `ne`s', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.option(fc.oneof(scalarArb, fc.jsonValue({ maxDepth: 2 })), { nil: undefined }),
        fc.array(scalarArb, { maxLength: 5 }),
        async (actual, list) => {
          const traits: Record<string, unknown> = actual === undefined ? {} : { x: actual };
          const ctx = context({ profile: profile({ traits }) });
          const inC: Condition = { trait: 'x', op: 'in', value: list };
          const anyEq: Condition = { any: list.map((value): Condition => ({ trait: 'x', op: 'eq', value })) };
          expect(await evaluate(inC, ctx)).toBe(await evaluate(anyEq, ctx));
          const notInC: Condition = { trait: 'x', op: 'not_in', value: list };
          const allNe: Condition = { all: list.map((value): Condition => ({ trait: 'x', op: 'ne', value })) };
          expect(await evaluate(notInC, ctx)).toBe(await evaluate(allNe, ctx));
        },
      ),
      { numRuns: 500 },
    );
  });

  it('negated operators are exact negations on present values; missing values pass only the negated ones', () => {
    const pairs: [Operator, Operator][] = [
      ['eq', 'ne'],
      ['in', 'not_in'],
      ['contains', 'not_contains'],
      ['exists', 'not_exists'],
    ];
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 2 }), scalarArb, fc.array(scalarArb, { maxLength: 3 }), (actual, v, list) => {
        for (const [pos, neg] of pairs) {
          const value = pos === 'in' ? list : pos === 'exists' ? undefined : v;
          const present = actual !== null;
          expect(applyOperator(neg, actual, value)).toBe(present ? !applyOperator(pos, actual, value) : true);
          expect(applyOperator(pos, undefined, value)).toBe(false);
          expect(applyOperator(neg, undefined, value)).toBe(true);
        }
        for (const op of ['gt', 'gte', 'lt', 'lte', 'starts_with', 'ends_with'] as Operator[]) {
          expect(applyOperator(op, undefined, typeof v === 'boolean' ? 'x' : v)).toBe(false);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('gt/lt are consistent with gte/lte and eq on numbers and date-times', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.tuple(fc.integer(), fc.integer()),
          fc.tuple(isoArb, isoArb),
        ),
        ([a, b]) => {
          const gt = applyOperator('gt', a, b);
          const lt = applyOperator('lt', a, b);
          const eq = applyOperator('eq', a, b);
          expect([gt, lt, eq].filter(Boolean)).toHaveLength(1);
          expect(applyOperator('gte', a, b)).toBe(gt || eq);
          expect(applyOperator('lte', a, b)).toBe(lt || eq);
        },
      ),
    );
  });
});

describe('holdsOutsideRun', () => {
  it('answers false for a part that needs a run, and evaluates everything else as usual', async () => {
    const ctx = context({ noMessages: true, profile: profile({ traits: { plan: 'pro' } }) });
    await expect(evaluate({ message: 'welcome', status: 'sent' }, ctx)).rejects.toThrow(ConditionEvaluationError);
    expect(await holdsOutsideRun({ message: 'welcome', status: 'sent' }, ctx)).toBe(false);
    expect(await holdsOutsideRun({ any: [{ event: 'X', since: 'entry' }, { trait: 'plan', op: 'eq', value: 'pro' }] }, ctx)).toBe(false);
    expect(await holdsOutsideRun({ trait: 'plan', op: 'eq', value: 'pro' }, ctx)).toBe(true);
  });
});
