// Evaluating the condition model of conditions.ts: `evaluate` interprets a validated condition against a
// context that supplies the time, the profile, the event under test, event history and message state.
// Pure: everything it reads comes in through the context.

import { parseDuration, subtractDuration } from './time.js';
import type { Channel, ProfileState } from './types.js';
import { PROFILE_FIELDS, type Condition, type ConditionValue, type CountOperator, type EventCondition, type MessageStatus, type Operator, type ProfileField, type Scalar } from './conditions.js';
import { parseIsoTime } from './iso-time.js';

export interface EventLike {
  name: string | null;
  properties: Record<string, unknown>;
  timestamp: string;
}

/** Statuses a send step can end in; `message` conditions hold from `sent` upward. */
export type SendOutcome = MessageStatus | 'failed' | 'suppressed';

export interface ConditionContext {
  now: Date;
  profile: ProfileState;
  /** the event under test (trigger, wait_for, goal, exit); `property` leaves read it; absent → property leaves are false */
  event?: EventLike;
  /** when the run entered (journey contexts); `since: entry` without it → evaluation error */
  enteredAt?: Date;
  /**
   * The profile's events named `name` at or after `since` (if given). `where` and `count` are applied by
   * the evaluator.
   */
  history(name: string, since: Date | undefined): Promise<EventLike[]>;
  /** the highest status a send step of this run reached, or null if it never sent; absent outside runs */
  messageStatus?(stepId: string): Promise<SendOutcome | null>;
  /** true when the profile has a usable contact point for the channel and isn't unsubscribed from it */
  reachable(channel: Channel): boolean;
}

/** A schema-valid condition that cannot be evaluated in this context (e.g. `since: entry` outside a run). */
export class ConditionEvaluationError extends Error {
  override name = 'ConditionEvaluationError';
}

const MISSING_OK: ReadonlySet<Operator> = new Set(['ne', 'not_in', 'not_contains', 'not_exists']);
const INDEX_RE = /^(0|[1-9]\d*)$/;

/**
 * Reads a dotted path with own-property access only: `__proto__`, `constructor` and friends never reach a
 * prototype. Array elements are reached by index (`items.0.sku`); anything else on an array is missing.
 * `null` counts as missing (a null trait is a deleted trait).
 */
export function readPath(root: unknown, path: string): unknown {
  let cur: unknown = root;
  for (const seg of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    if (Array.isArray(cur)) {
      if (!INDEX_RE.test(seg)) return undefined;
      cur = Object.hasOwn(cur, seg) ? cur[Number(seg)] : undefined;
    } else {
      cur = Object.hasOwn(cur, seg) ? (cur as Record<string, unknown>)[seg] : undefined;
    }
  }
  return cur === null ? undefined : cur;
}

// ISO 8601 calendar date with optional time and offset; a missing offset means UTC.
const ISO_DATE_TIME_RE =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}(?::?\d{2})?)?)?$/i;

/** Milliseconds since the epoch for an ISO 8601 date or date-time string, or null. */
export function isoTime(s: string): number | null {
  if (s.length > 40) return null;
  const m = ISO_DATE_TIME_RE.exec(s);
  if (!m) return null;
  const [, y, mo, d, h = '0', mi = '0', sec = '0', frac = '', tz = 'Z'] = m;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h);
  const minute = Number(mi);
  const second = Number(sec);
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) return null;
  const utc = new Date(0);
  utc.setUTCFullYear(year, month - 1, day);
  if (utc.getUTCMonth() !== month - 1 || utc.getUTCDate() !== day) return null; // e.g. 2023-02-30
  utc.setUTCHours(hour, minute, second, Number((frac + '000').slice(0, 3)));
  let offsetMin = 0;
  if (tz.toUpperCase() !== 'Z') {
    const sign = tz.startsWith('-') ? -1 : 1;
    const digits = tz.slice(1).replace(':', '');
    const oh = Number(digits.slice(0, 2));
    const om = digits.length > 2 ? Number(digits.slice(2, 4)) : 0;
    if (oh > 23 || om > 59) return null;
    offsetMin = sign * (oh * 60 + om);
  }
  return utc.getTime() - offsetMin * 60_000;
}

/** A string that is a finite decimal number (`"42"`, `" 1.5 "`, `"-3e2"`), as a number; otherwise null. */
function numericString(s: string): number | null {
  if (s.trim() === '') return null;
  const n = Number(s);
  return Number.isFinite(n) ? n : null;
}

/**
 * Equality used by eq/ne/in/not_in/contains-on-lists:
 * - numbers: numeric equality;
 * - number vs string: loose — equal when the string is numeric and Number(string) === number, so a trait
 *   stored as "42" (common in Segment payloads) equals value 42;
 * - two strings: both ISO date-times → the same instant (`…T00:00:00Z` eq `…T00:00:00.000+00:00`),
 *   otherwise exact (case-sensitive) equality;
 * - booleans: only the same boolean (no "true" string coercion);
 * - objects and lists never equal a scalar.
 */
export function looseEquals(a: unknown, b: Scalar): boolean {
  if (typeof a === 'number') {
    if (typeof b === 'number') return a === b;
    if (typeof b === 'string') return numericString(b) === a;
    return false;
  }
  if (typeof a === 'string') {
    if (typeof b === 'number') return numericString(a) === b;
    if (typeof b === 'string') {
      if (a === b) return true;
      const ta = isoTime(a);
      return ta !== null && ta === isoTime(b);
    }
    return false;
  }
  if (typeof a === 'boolean') return a === b;
  return false;
}

/**
 * Ordering used by gt/gte/lt/lte; null when the two are not comparable (then the operator fails):
 * numbers (and a number vs a numeric string) numerically; two ISO date-times as times; two other strings
 * lexicographically by UTF-16 code units; anything else is incomparable.
 */
export function compareValues(a: unknown, b: Scalar): number | null {
  const num = (x: unknown): number | null =>
    typeof x === 'number' ? x : typeof x === 'string' ? numericString(x) : null;
  if (typeof a === 'number' || typeof b === 'number') {
    const na = num(a);
    const nb = num(b);
    return na === null || nb === null || !Number.isFinite(na) ? null : Math.sign(na - nb);
  }
  if (typeof a === 'string' && typeof b === 'string') {
    const ta = isoTime(a);
    const tb = isoTime(b);
    if (ta !== null && tb !== null) return Math.sign(ta - tb);
    return a < b ? -1 : a > b ? 1 : 0;
  }
  return null;
}

function contains(a: unknown, b: Scalar): boolean {
  if (typeof a === 'string') return (typeof b === 'string' || typeof b === 'number') && a.includes(String(b));
  if (Array.isArray(a)) return a.some((e) => looseEquals(e, b));
  return false;
}

/**
 * Applies an operator to a field value. `undefined` (and `null`) is a missing field: it fails every
 * operator except ne, not_in, not_contains and not_exists. Values that don't fit the operator (a list for
 * starts_with, an object for gt, …) make it fail; the negated operators (ne, not_in, not_contains) are the
 * exact negations of eq, in, contains.
 */
export function applyOperator(op: Operator, actual: unknown, value: ConditionValue | undefined): boolean {
  if (actual === undefined || actual === null) return MISSING_OK.has(op);
  const single = (): Scalar | undefined => (value === undefined || Array.isArray(value) ? undefined : value);
  switch (op) {
    case 'exists':
      return true;
    case 'not_exists':
      return false;
    case 'eq':
    case 'ne': {
      const v = single();
      const eq = v !== undefined && looseEquals(actual, v);
      return op === 'eq' ? eq : !eq;
    }
    case 'gt':
    case 'gte':
    case 'lt':
    case 'lte': {
      const v = single();
      if (v === undefined) return false;
      const c = compareValues(actual, v);
      if (c === null) return false;
      return op === 'gt' ? c > 0 : op === 'gte' ? c >= 0 : op === 'lt' ? c < 0 : c <= 0;
    }
    case 'in':
    case 'not_in': {
      const found = Array.isArray(value) && value.some((v) => looseEquals(actual, v));
      return op === 'in' ? found : !found;
    }
    case 'contains':
    case 'not_contains': {
      const v = single();
      const found = v !== undefined && contains(actual, v);
      return op === 'contains' ? found : !found;
    }
    case 'starts_with':
    case 'ends_with': {
      const v = single();
      if (typeof actual !== 'string' || typeof v !== 'string') return false;
      return op === 'starts_with' ? actual.startsWith(v) : actual.endsWith(v);
    }
    default: {
      const never: never = op;
      throw new ConditionEvaluationError(`unknown operator ${String(never)}`);
    }
  }
}

function compareCount(n: number, count: { op: CountOperator; value: number }): boolean {
  switch (count.op) {
    case 'eq':
      return n === count.value;
    case 'ne':
      return n !== count.value;
    case 'gt':
      return n > count.value;
    case 'gte':
      return n >= count.value;
    case 'lt':
      return n < count.value;
    case 'lte':
      return n <= count.value;
  }
}

const MESSAGE_RANK: Record<string, number> = { sent: 1, delivered: 2, opened: 3, clicked: 4, replied: 5 };

/**
 * The lower time bound of an `event` leaf: the latest of now − within (calendar arithmetic in UTC; a
 * `within` too large to subtract means no bound), the run's entry (`since: entry`) and the customer's most
 * recent `since_event` (none → no bound from it; occurrences with unreadable timestamps are ignored).
 */
async function eventSince(c: EventCondition, ctx: ConditionContext): Promise<Date | undefined> {
  let since: Date | undefined;
  if (c.within !== undefined) {
    const d = parseDuration(c.within);
    if (!d) throw new ConditionEvaluationError(`invalid duration ${JSON.stringify(c.within)}`);
    try {
      since = subtractDuration(ctx.now, d, 'UTC');
    } catch {
      since = undefined; // out of range: further back than any event
    }
  }
  if (c.since === 'entry') {
    if (!ctx.enteredAt) {
      throw new ConditionEvaluationError('since: entry needs a journey run (no entry time in this context)');
    }
    if (!since || ctx.enteredAt.getTime() > since.getTime()) since = ctx.enteredAt;
  }
  if (c.since_event !== undefined) {
    let latest = Number.NEGATIVE_INFINITY;
    for (const e of await ctx.history(c.since_event, undefined)) {
      const t = parseIsoTime(e.timestamp);
      if (!Number.isNaN(t) && t > latest) latest = t;
    }
    if (Number.isFinite(latest) && (!since || latest > since.getTime())) since = new Date(latest);
  }
  return since;
}

/** A child context testing `event`; callbacks stay bound to the parent (which may be a class instance). */
function withEvent(ctx: ConditionContext, event: EventLike): ConditionContext {
  const child: ConditionContext = {
    now: ctx.now,
    profile: ctx.profile,
    event,
    history: (name, since) => ctx.history(name, since),
    reachable: (channel) => ctx.reachable(channel),
  };
  if (ctx.enteredAt) child.enteredAt = ctx.enteredAt;
  if (ctx.messageStatus) child.messageStatus = (stepId) => ctx.messageStatus!(stepId);
  return child;
}

/**
 * Evaluates a (schema-valid) condition. `all` and `any` short-circuit left to right, so later history
 * look-ups are skipped when the answer is known. Throws ConditionEvaluationError only for conditions that
 * need a journey run outside one (`since: entry` without `enteredAt`, `message` without `messageStatus`);
 * errors from the context's own callbacks propagate.
 */
export async function evaluate(c: Condition, ctx: ConditionContext): Promise<boolean> {
  if ('all' in c) {
    for (const child of c.all) if (!(await evaluate(child, ctx))) return false;
    return true;
  }
  if ('any' in c) {
    for (const child of c.any) if (await evaluate(child, ctx)) return true;
    return false;
  }
  if ('not' in c) return !(await evaluate(c.not, ctx));
  if ('trait' in c) return applyOperator(c.op, readPath(ctx.profile.traits, c.trait), c.value);
  if ('property' in c) {
    if (!ctx.event) return false;
    return applyOperator(c.op, readPath(ctx.event.properties, c.property), c.value);
  }
  if ('profile' in c) {
    const field: ProfileField = c.profile;
    const actual = PROFILE_FIELDS.includes(field) ? ctx.profile[field] : undefined;
    return applyOperator(c.op, actual ?? undefined, c.value);
  }
  if ('event' in c) {
    const since = await eventSince(c, ctx);
    let events = await ctx.history(c.event, since);
    if (since) {
      // The contract says "at or after since"; drop anything older a loose implementation returned.
      const bound = since.getTime();
      events = events.filter((e) => {
        const t = parseIsoTime(e.timestamp);
        return Number.isNaN(t) || t >= bound;
      });
    }
    let n = 0;
    for (const e of events) {
      if (!c.where || (await evaluate(c.where, withEvent(ctx, e)))) n++;
    }
    return compareCount(n, c.count ?? { op: 'gte', value: 1 });
  }
  if ('message' in c) {
    if (!ctx.messageStatus) {
      throw new ConditionEvaluationError('message conditions need a journey run (no message status in this context)');
    }
    const reached = await ctx.messageStatus(c.message);
    const rank = reached ? (MESSAGE_RANK[reached] ?? 0) : 0;
    return rank > 0 && rank >= MESSAGE_RANK[c.status]!;
  }
  if ('reachable' in c) return ctx.reachable(c.reachable);
  if ('consent' in c) {
    const channels = ctx.profile.consent.channels;
    const rec = Object.hasOwn(channels, c.consent) ? channels[c.consent] : undefined;
    return (rec?.status ?? 'unknown') === c.status;
  }
  if ('topic' in c) {
    const topics = ctx.profile.consent.topics;
    const rec = Object.hasOwn(topics, c.topic) ? topics[c.topic] : undefined;
    return (rec?.status ?? 'unknown') === c.status;
  }
  const never: never = c;
  throw new ConditionEvaluationError(`not a condition: ${JSON.stringify(never)}`);
}

/** The event names used by `event` leaves anywhere in the condition (also inside `where`), first-seen order. */
export function conditionMentionsEvents(c: Condition): string[] {
  const names = new Set<string>();
  const walk = (x: Condition): void => {
    if ('all' in x) x.all.forEach(walk);
    else if ('any' in x) x.any.forEach(walk);
    else if ('not' in x) walk(x.not);
    else if ('event' in x) {
      names.add(x.event);
      if (x.since_event !== undefined) names.add(x.since_event);
      if (x.where) walk(x.where);
    }
  };
  walk(c);
  return [...names];
}

/**
 * A condition evaluated where there is no journey run (a trigger, an audience, a suppression rule): a part
 * that needs one (`message`, `since: entry`) doesn't hold. Publishing and saving settings refuse such
 * parts; this keeps one stored before they did from failing every ingestion or send it is evaluated for.
 */
export async function holdsOutsideRun(c: Condition, ctx: ConditionContext): Promise<boolean> {
  try {
    return await evaluate(c, ctx);
  } catch (err) {
    if (err instanceof ConditionEvaluationError) return false;
    throw err;
  }
}
