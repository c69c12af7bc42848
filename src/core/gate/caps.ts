// Frequency caps of the send gate (docs/gate.md, "Frequency caps and priority"). Pure: the current time,
// the customer's zone and the customer's send history are arguments.
//
// A rule applies to a message when its categories include the message's category (so transactional
// messages are exempt unless a rule lists `transactional`), its channels include the message's channel and,
// when the rule has tags, the message has at least one of them. It counts the history records that pass the
// same filter and lie in its window; the message fits when that count is below the limit.
//
// Windows:
// - `calendar: day`: [local midnight, next local midnight) in the customer's zone, so 23 or 25 hours long on
//   DST days (luxon; a day whose midnight doesn't exist starts when the clock jumps past it);
// - `calendar: week`: the ISO week, Monday local midnight to the next Monday local midnight;
// - `rolling: <duration>`: (now − duration, now], a fixed length (P1D is 24 hours, P1W 7 × 24 hours; the
//   settings refuse months and years, whose length varies; given one anyway, a month counts as 30 days and a
//   year as 365). A record timed after `now` (a clock ahead, a message queued ahead) counts too: caps err on
//   the side of fewer messages. Calendar windows count the records inside [start, end), also those after
//   `now`.
//
// `reopensAt` is when the count drops below the limit again: the next window's start for calendar windows;
// for rolling windows, when the oldest counted records have left the window (the (count − limit + 1)-th
// oldest's `at + duration`). null when the rule allows the message, and when it never reopens (limit 0).
//
// `blocking`: when several rules are violated, the one whose reopensAt is the LATEST (null = never counts as
// latest), the first in rule order on ties. A message deferred to that time clears every cap that blocks it
// now (another may of course fill up in the meantime: the gate checks again when it wakes up). Note that
// this picks the rule, and so its `on_exceed`, by time alone: a `defer` rule that reopens later wins over a
// `suppress` rule that reopens sooner.

import { DateTime } from 'luxon';
import { zoneFor } from '../zone.js';
import type { Duration } from 'luxon';
import type { Category } from '../reach.js';
import { isValidTimeZone, parseDuration } from '../time.js';
import type { Channel } from '../types.js';
import type { CapRule } from './settings.js';

export interface SentRecord {
  at: Date;
  channel: Channel;
  category: Category;
  tags: string[];
}

export interface CapCheck {
  rule: CapRule;
  /** matching records in the window */
  count: number;
  /** count < limit */
  allowed: boolean;
  windowStart: Date;
  /** when the count drops below the limit; null when allowed or never (limit 0) */
  reopensAt: Date | null;
}

export interface CapMessage {
  channel: Channel;
  category: Category;
  tags: string[];
  /** the send's `override_caps`: allowed whatever the counts (the checks are still reported) */
  overrideCaps?: boolean;
}

export interface CapResult {
  allowed: boolean;
  /** the violated rule that decides (latest reopensAt); null when allowed */
  blocking: CapCheck | null;
  /** one per rule that applies to the message, in rule order */
  checks: CapCheck[];
}

const DAY_MS = 86_400_000;
const MIN_DATE_MS = -8.64e15;
const MAX_DATE_MS = 8.64e15;

function checkZone(zone: string): void {
  if (!isValidTimeZone(zone)) throw new RangeError(`unknown time zone: ${JSON.stringify(zone)}`);
}

function rollingDuration(rule: CapRule, rolling: string): Duration {
  const d = parseDuration(rolling);
  if (!d) throw new RangeError(`cap ${rule.id}: invalid rolling window ${JSON.stringify(rolling)}`);
  return d;
}

/** The length of a rolling window in ms (months 30 days, years 365 days if they get here at all). */
function rollingMs(rule: CapRule, rolling: string): number {
  return rollingDuration(rule, rolling).as('milliseconds');
}

/** The calendar window containing `now` in `zone`: [start, end) as epoch ms. */
export function calendarWindow(unit: 'day' | 'week', now: Date, zone: string): { start: Date; end: Date } {
  checkZone(zone);
  const local = DateTime.fromJSDate(now, { zone: zoneFor(zone) });
  if (!local.isValid) throw new RangeError('invalid date');
  const start = local.startOf(unit);
  let end = start.plus(unit === 'day' ? { days: 1 } : { weeks: 1 }).startOf(unit);
  // Defensive: the next window always starts after now.
  if (end.toMillis() <= now.getTime()) end = local.plus(unit === 'day' ? { days: 1 } : { weeks: 1 }).startOf(unit);
  return { start: start.toJSDate(), end: end.toJSDate() };
}

/** Does the rule apply to a message (or count a record) with this channel, category and tags? */
export function capApplies(rule: CapRule, m: { channel: Channel; category: Category; tags: readonly string[] }): boolean {
  if (!rule.categories.includes(m.category)) return false;
  if (!rule.channels.includes(m.channel)) return false;
  if (rule.tags.length > 0 && !m.tags.some((t) => rule.tags.includes(t))) return false;
  return true;
}

function checkRule(rule: CapRule, history: readonly SentRecord[], now: Date, zone: string): CapCheck {
  const nowMs = now.getTime();
  const matching = history.filter((r) => Number.isFinite(r.at.getTime()) && capApplies(rule, r));
  if ('calendar' in rule.window) {
    const { start, end } = calendarWindow(rule.window.calendar, now, zone);
    const s = start.getTime();
    const e = end.getTime();
    const count = matching.filter((r) => {
      const t = r.at.getTime();
      return t >= s && t < e;
    }).length;
    const allowed = count < rule.limit;
    return { rule, count, allowed, windowStart: start, reopensAt: allowed || rule.limit === 0 ? null : end };
  }
  const length = rollingMs(rule, rule.window.rolling);
  const leaves = matching.map((r) => r.at.getTime() + length).filter((t) => t > nowMs);
  const count = leaves.length;
  const allowed = count < rule.limit;
  let reopensAt: Date | null = null;
  if (!allowed && rule.limit > 0) {
    // The count drops below the limit once count − limit + 1 records have left: the (count − limit + 1)-th
    // earliest leave time (the same record as the (count − limit + 1)-th oldest).
    leaves.sort((a, b) => a - b);
    const t = leaves[count - rule.limit]!;
    reopensAt = t <= MAX_DATE_MS ? new Date(t) : null;
  }
  return { rule, count, allowed, windowStart: new Date(Math.max(nowMs - length, MIN_DATE_MS)), reopensAt };
}

/**
 * Which caps apply to this message and whether it fits. `history` = the messages already sent or queued to
 * this customer (any order, any channel; only the records the rules match are counted). `zone` is the
 * customer's IANA zone (calendar windows). Throws RangeError on an unknown zone or an invalid rolling
 * duration.
 */
export function checkCaps(
  rules: readonly CapRule[],
  message: CapMessage,
  history: readonly SentRecord[],
  now: Date,
  zone: string,
): CapResult {
  checkZone(zone);
  const checks = rules.filter((rule) => capApplies(rule, message)).map((rule) => checkRule(rule, history, now, zone));
  let blocking: CapCheck | null = null;
  for (const c of checks) {
    if (c.allowed) continue;
    if (blocking === null || later(c.reopensAt, blocking.reopensAt)) blocking = c;
  }
  if (message.overrideCaps) return { allowed: true, blocking: null, checks };
  return { allowed: blocking === null, blocking, checks };
}

/** a strictly after b, null meaning never (after everything). */
function later(a: Date | null, b: Date | null): boolean {
  if (b === null) return false;
  if (a === null) return true;
  return a.getTime() > b.getTime();
}

/**
 * How far back the history must reach for checkCaps at `now`: the earliest window start over the rules
 * (rolling: now − duration; calendar week: 8 days; calendar day: 2 days, generous for any zone and DST).
 * No rules → `now`. Query the records at or after it (including any timed after `now`).
 */
export function historyWindow(rules: readonly CapRule[], now: Date): Date {
  let earliest = now.getTime();
  for (const rule of rules) {
    let start: number;
    if ('calendar' in rule.window) start = now.getTime() - (rule.window.calendar === 'week' ? 8 : 2) * DAY_MS;
    else start = now.getTime() - rollingMs(rule, rule.window.rolling);
    if (start < earliest) earliest = start;
  }
  return new Date(Math.max(earliest, MIN_DATE_MS));
}
