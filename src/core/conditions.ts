// The condition model of docs/journeys.md ("Conditions"): one small data model for triggers, audiences,
// branches, goals and exits. No expression language and no eval: a condition is data, validated by
// `conditionSchema` and interpreted by `evaluate` (condition-eval.ts), which gets time, history and
// message state through its context.

import { z } from 'zod';
import { CHANNELS, type Channel, type ConsentStatus } from './types.js';
import { durationSchema, type IsoDuration } from './time.js';

// ---------------------------------------------------------------------------------------------------------
// Model

export const OPERATORS = [
  'eq',
  'ne',
  'gt',
  'gte',
  'lt',
  'lte',
  'in',
  'not_in',
  'contains',
  'not_contains',
  'starts_with',
  'ends_with',
  'exists',
  'not_exists',
] as const;
export type Operator = (typeof OPERATORS)[number];

export const COUNT_OPERATORS = ['eq', 'ne', 'gt', 'gte', 'lt', 'lte'] as const;
export type CountOperator = (typeof COUNT_OPERATORS)[number];

export const PROFILE_FIELDS = ['timezone', 'locale', 'preferredChannel'] as const;
export type ProfileField = (typeof PROFILE_FIELDS)[number];

/**
 * Message statuses a `message` condition can ask for, lowest first. `replied` (an inbound SMS/WhatsApp
 * reply, an email reply) is the strongest engagement, so it also satisfies `clicked` and below.
 */
export const MESSAGE_STATUSES = ['sent', 'delivered', 'opened', 'clicked', 'replied'] as const;
export type MessageStatus = (typeof MESSAGE_STATUSES)[number];

export const CONSENT_STATUSES = ['subscribed', 'unsubscribed', 'unknown'] as const;

/**
 * A comparison value. `null` is not allowed: a null field counts as missing (null deletes a trait), so
 * "is null" is written `op: not_exists`.
 */
export type Scalar = string | number | boolean;
export type ConditionValue = Scalar | Scalar[];

export interface AllCondition {
  all: Condition[];
}
export interface AnyCondition {
  any: Condition[];
}
export interface NotCondition {
  not: Condition;
}
/** A profile trait, by dotted path (`address.city`). */
export interface TraitCondition {
  trait: string;
  op: Operator;
  value?: ConditionValue;
}
/** A field of the event under test, by dotted path into its properties. */
export interface PropertyCondition {
  property: string;
  op: Operator;
  value?: ConditionValue;
}
/** A profile field: timezone | locale | preferredChannel. */
export interface ProfileFieldCondition {
  profile: ProfileField;
  op: Operator;
  value?: ConditionValue;
}
/** The customer's event history. */
export interface EventCondition {
  event: string;
  where?: Condition;
  within?: IsoDuration;
  since?: 'entry';
  /**
   * Count only events at or after the customer's most recent event with this name ("no Support Ticket
   * Closed since the last Support Ticket Opened"). If the customer never had it, there is no lower bound
   * from it. Combines with within/since: the latest bound wins.
   */
  since_event?: string;
  count?: { op: CountOperator; value: number };
}
/** A send step of this run reached at least `status`. */
export interface MessageCondition {
  message: string;
  status: MessageStatus;
}
export interface ReachableCondition {
  reachable: Channel;
}
export interface ConsentCondition {
  consent: Channel;
  status: ConsentStatus;
}
export interface TopicCondition {
  topic: string;
  status: ConsentStatus;
}

export type Condition =
  | AllCondition
  | AnyCondition
  | NotCondition
  | TraitCondition
  | PropertyCondition
  | ProfileFieldCondition
  | EventCondition
  | MessageCondition
  | ReachableCondition
  | ConsentCondition
  | TopicCondition;

/** The keys that say what kind of condition an object is; exactly one must be present. */
export const CONDITION_KINDS = [
  'all',
  'any',
  'not',
  'trait',
  'property',
  'profile',
  'event',
  'message',
  'reachable',
  'consent',
  'topic',
] as const;
export type ConditionKind = (typeof CONDITION_KINDS)[number];

// ---------------------------------------------------------------------------------------------------------
// Schema

const list = (xs: readonly string[]): string => {
  if (xs.length <= 1) return xs.join('');
  return `${xs.slice(0, -1).join(', ')} or ${xs[xs.length - 1]}`;
};

const enumOf = <T extends readonly [string, ...string[]]>(values: T, what: string) =>
  z.enum(values, { error: () => `expected ${what}: ${list(values)}` });

const operatorSchema = enumOf(OPERATORS, 'an operator');
const channelSchema = enumOf(CHANNELS, 'a channel');
const consentStatusSchema = enumOf(CONSENT_STATUSES, 'a consent status');

const PATH_RE = /^[^.\s]+(\.[^.\s]+)*$/;
const pathSchema = z
  .string({ error: 'expected a dotted path such as address.city' })
  .regex(PATH_RE, { message: 'expected a dotted path such as address.city' });
const STEP_ID_RE = /^[A-Za-z0-9_-]+$/;

const NO_VALUE_OPS: ReadonlySet<Operator> = new Set(['exists', 'not_exists']);
const LIST_OPS: ReadonlySet<Operator> = new Set(['in', 'not_in']);
const ORDER_OPS: ReadonlySet<Operator> = new Set(['gt', 'gte', 'lt', 'lte']);
const STRING_OPS: ReadonlySet<Operator> = new Set(['starts_with', 'ends_with']);

const isScalar = (v: unknown): v is Scalar =>
  typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v));

/** Checks `value` against `op` (leaf conditions); issues go on `value`. */
function checkOpValue(leaf: { op: Operator; value?: unknown }, ctx: z.RefinementCtx): void {
  const { op, value } = leaf;
  const issue = (message: string) => ctx.addIssue({ code: 'custom', path: ['value'], message });
  if (NO_VALUE_OPS.has(op)) {
    if (value !== undefined) issue(`op ${op} takes no value`);
    return;
  }
  if (value === undefined) {
    issue(`op ${op} needs a value`);
    return;
  }
  if (value === null) {
    issue('value cannot be null: a null field counts as missing, use op exists or not_exists');
    return;
  }
  if (LIST_OPS.has(op)) {
    if (!Array.isArray(value)) {
      issue(`op ${op} needs a list value such as [a, b]`);
      return;
    }
    value.forEach((v, i) => {
      if (!isScalar(v)) {
        ctx.addIssue({ code: 'custom', path: ['value', i], message: 'expected a string, number or boolean' });
      }
    });
    return;
  }
  if (Array.isArray(value)) {
    issue(`op ${op} needs a single value, not a list (use op in for a list)`);
    return;
  }
  if (ORDER_OPS.has(op)) {
    if (!(typeof value === 'number' && Number.isFinite(value)) && typeof value !== 'string') {
      issue(`op ${op} needs a number or a string such as an ISO date-time`);
    }
    return;
  }
  if (STRING_OPS.has(op)) {
    if (typeof value !== 'string') issue(`op ${op} needs a string value`);
    return;
  }
  if (!isScalar(value)) issue(`op ${op} needs a string, number or boolean value`);
}

// `z.lazy` for recursion; the dispatcher below refers to it lazily too.
const lazyCondition: z.ZodType<Condition> = z.lazy(() => conditionSchema);

const leafFields = { op: operatorSchema, value: z.unknown().optional() };

const kindSchemas: Record<ConditionKind, z.ZodType> = {
  all: z.strictObject({ all: z.array(lazyCondition, { error: 'all needs a list of conditions' }) }),
  any: z.strictObject({ any: z.array(lazyCondition, { error: 'any needs a list of conditions' }) }),
  not: z.strictObject({ not: lazyCondition }),
  trait: z.strictObject({ trait: pathSchema, ...leafFields }).superRefine(checkOpValue),
  property: z.strictObject({ property: pathSchema, ...leafFields }).superRefine(checkOpValue),
  profile: z
    .strictObject({ profile: enumOf(PROFILE_FIELDS, 'a profile field'), ...leafFields })
    .superRefine(checkOpValue),
  event: z.strictObject({
    event: z.string({ error: 'expected an event name' }).min(1, { message: 'expected an event name' }),
    where: lazyCondition.optional(),
    within: durationSchema.optional(),
    since: z.literal('entry', { error: 'since can only be entry' }).optional(),
    since_event: z
      .string({ error: 'since_event needs an event name' })
      .min(1, { message: 'since_event needs an event name' })
      .optional(),
    count: z
      .strictObject({
        op: enumOf(COUNT_OPERATORS, 'a count operator'),
        value: z
          .number({ error: 'expected a whole number ≥ 0' })
          .int({ message: 'expected a whole number ≥ 0' })
          .min(0, { message: 'expected a whole number ≥ 0' }),
      })
      .optional(),
  }),
  message: z.strictObject({
    message: z
      .string({ error: 'expected a send step id' })
      .regex(STEP_ID_RE, { message: 'expected a send step id' }),
    status: enumOf(MESSAGE_STATUSES, 'a message status'),
  }),
  reachable: z.strictObject({ reachable: channelSchema }),
  consent: z.strictObject({ consent: channelSchema, status: consentStatusSchema }),
  topic: z.strictObject({
    topic: z.string({ error: 'expected a topic name' }).min(1, { message: 'expected a topic name' }),
    status: consentStatusSchema,
  }),
};

const KIND_LIST = list(CONDITION_KINDS);

/** Which kind of condition `input` is, or why it is none. */
function conditionKind(input: Record<string, unknown>): { kind: ConditionKind } | { error: string } {
  const found = CONDITION_KINDS.filter((k) => Object.hasOwn(input, k));
  if (found.length === 1) return { kind: found[0]! };
  if (found.length === 0) {
    return { error: `expected a condition with one of ${KIND_LIST}` };
  }
  if (found.length === 2 && found.includes('consent') && found.includes('topic')) {
    return { error: 'give one of consent or topic, not both' };
  }
  return { error: `a condition has exactly one of ${KIND_LIST}; found ${list(found)}` };
}

/**
 * A condition, validated strictly: exactly one kind key, no unknown keys, operator/value rules per op.
 * Implemented as a dispatcher (by kind key) over strict object schemas, so errors name the real problem
 * (`…when.op: expected an operator: eq, ne, …`) instead of a union's "invalid input". The parsed value is
 * the input itself (nothing is transformed or defaulted).
 */
export const conditionSchema: z.ZodType<Condition> = z.unknown().superRefine((input, ctx) => {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    ctx.addIssue({ code: 'custom', message: `expected a condition object with one of ${KIND_LIST}` });
    return;
  }
  const k = conditionKind(input as Record<string, unknown>);
  if ('error' in k) {
    ctx.addIssue({ code: 'custom', message: k.error });
    return;
  }
  const result = kindSchemas[k.kind].safeParse(input);
  if (!result.success) {
    for (const issue of result.error.issues) {
      ctx.addIssue({ code: 'custom', message: issue.message, path: [...issue.path] });
    }
  }
}) as unknown as z.ZodType<Condition>;

/**
 * Calls `visit` on a condition and on each condition inside it (all, any, not, an event's where), with
 * its path, on input not yet validated (anything else is skipped; nesting past 100 is not followed).
 */
export function eachCondition(c: unknown, visit: (node: Record<string, unknown>, path: (string | number)[]) => void, path: (string | number)[] = [], depth = 0): void {
  if (typeof c !== 'object' || c === null || Array.isArray(c) || depth > 100) return;
  const o = c as Record<string, unknown>;
  visit(o, path);
  if (Array.isArray(o.all)) o.all.forEach((x, i) => eachCondition(x, visit, [...path, 'all', i], depth + 1));
  if (Array.isArray(o.any)) o.any.forEach((x, i) => eachCondition(x, visit, [...path, 'any', i], depth + 1));
  if ('not' in o) eachCondition(o.not, visit, [...path, 'not'], depth + 1);
  if ('event' in o && 'where' in o) eachCondition(o.where, visit, [...path, 'where'], depth + 1);
}

/**
 * The parts of a condition that only mean something inside a journey run, with their paths: `message`
 * (a send step of this run) and `since: entry` (when this run entered). A trigger, an audience or a
 * suppression rule is evaluated with no run, where they can't be answered; those sites refuse them.
 */
export function runOnlyParts(c: unknown, at: (string | number)[] = []): { path: (string | number)[]; message: string }[] {
  const out: { path: (string | number)[]; message: string }[] = [];
  eachCondition(
    c,
    (o, path) => {
      if ('message' in o) out.push({ path: [...path, 'message'], message: 'a message condition needs a journey run: use it in a branch, a wait_for, the goal or an exit' });
      if ('event' in o && o.since === 'entry') out.push({ path: [...path, 'since'], message: 'since: entry needs a journey run: use within, or since_event, here' });
    },
    at,
  );
  return out;
}
