// Durations and wall-clock time for journeys (wait steps, `within`, cooldowns). Pure: the current time is
// always an argument, never read from a clock.

import { DateTime, Duration, IANAZone } from 'luxon';
import { zoneFor, offsetOf } from './zone.js';
import { z } from 'zod';

/** An ISO 8601 duration string such as `PT15M`, `P3D`, `P1W`, `P1DT12H`, `P1M`. */
export type IsoDuration = string;

const DURATION_UNITS = ['years', 'quarters', 'months', 'weeks', 'days', 'hours', 'minutes', 'seconds', 'milliseconds'] as const;

/**
 * Parse an ISO 8601 duration. Returns null unless it is valid and positive: every component ≥ 0, at least
 * one > 0, all finite. Calendar units (years, months, weeks, days) are kept as such, so adding `P1M` or
 * `P1D` is calendar-aware (see addDuration).
 */
export function parseDuration(s: string): Duration | null {
  if (typeof s !== 'string' || s.length === 0 || s.length > 64) return null;
  const d = Duration.fromISO(s);
  if (!d.isValid) return null;
  const values = d.toObject() as Partial<Record<(typeof DURATION_UNITS)[number], number>>;
  let positive = false;
  for (const unit of DURATION_UNITS) {
    const v = values[unit];
    if (v === undefined) continue;
    if (!Number.isFinite(v) || v < 0) return null;
    if (v > 0) positive = true;
  }
  return positive ? d : null;
}

export const durationSchema: z.ZodType<string> = z
  .string()
  .refine((s) => parseDuration(s) !== null, { message: 'expected an ISO 8601 duration such as P3D' });

/** True for IANA zone names the runtime knows (`UTC`, `Europe/Paris`, …). */
// luxon builds an Intl formatter on every validity check (~0.3 ms); zones are few, so remember them.
const validZones = new Map<string, boolean>();

export function isValidTimeZone(zone: string): boolean {
  if (typeof zone !== 'string' || zone.length === 0) return false;
  let valid = validZones.get(zone);
  if (valid === undefined) {
    valid = IANAZone.isValidZone(zone);
    if (validZones.size >= 1000) validZones.clear();
    validZones.set(zone, valid);
  }
  return valid;
}

// Specs name a handful of durations, each used on every step that waits: parse each once.
const parsedDurations = new Map<string, Duration>();

function toDuration(d: IsoDuration | Duration): Duration {
  if (typeof d !== 'string') return d;
  let parsed = parsedDurations.get(d) ?? null;
  if (!parsed) {
    parsed = parseDuration(d);
    if (!parsed) throw new RangeError(`invalid ISO 8601 duration: ${JSON.stringify(d)}`);
    if (parsedDurations.size >= 1000) parsedDurations.clear();
    parsedDurations.set(d, parsed);
  }
  return parsed;
}

function checkZone(zone: string): void {
  if (!isValidTimeZone(zone)) throw new RangeError(`unknown time zone: ${JSON.stringify(zone)}`);
}

/**
 * `at` plus a duration, calendar-aware in `zone` (default UTC): days, weeks, months and years keep the
 * wall-clock time across DST changes (P1D from 12:00 is 12:00 the next day, 23 or 25 hours later), months
 * clamp to the end of shorter months (Jan 31 + P1M = Feb 28/29); hours, minutes and seconds are exact
 * elapsed time. Throws RangeError on an invalid duration string, an unknown zone, or an out-of-range result.
 */
export function addDuration(at: Date, d: IsoDuration | Duration, zone: string = 'UTC'): Date {
  checkZone(zone);
  const duration = toDuration(d);
  const fixed = exactMs(duration, zone);
  if (fixed !== null) return inRange(at.getTime() + fixed);
  const same = sameOffsetMs(at.getTime(), duration, zone, 1);
  if (same !== null) return inRange(same);
  const result = DateTime.fromJSDate(at, { zone: zoneFor(zone) }).plus(duration);
  if (!result.isValid) throw new RangeError('date out of range');
  return result.toJSDate();
}

/** `at` minus a duration, with the same calendar rules as addDuration. */
export function subtractDuration(at: Date, d: IsoDuration | Duration, zone: string = 'UTC'): Date {
  checkZone(zone);
  const duration = toDuration(d);
  const fixed = exactMs(duration, zone);
  if (fixed !== null) return inRange(at.getTime() - fixed);
  const same = sameOffsetMs(at.getTime(), duration, zone, -1);
  if (same !== null) return inRange(same);
  const result = DateTime.fromJSDate(at, { zone: zoneFor(zone) }).minus(duration);
  if (!result.isValid) throw new RangeError('date out of range');
  return result.toJSDate();
}

// ECMAScript's time range, which luxon enforces too.
const MAX_TIME_MS = 8.64e15;

function inRange(ms: number): Date {
  if (!Number.isFinite(ms) || Math.abs(ms) > MAX_TIME_MS) throw new RangeError('date out of range');
  return new Date(ms);
}

const UNIT_MS = { weeks: 7 * 86_400_000, days: 86_400_000, hours: 3_600_000, minutes: 60_000, seconds: 1_000, milliseconds: 1 } as const;
const exactCache = new WeakMap<Duration, { elapsed: number | null; inUtc: number | null; days: number | null; clock: number }>();

/**
 * The duration as exact elapsed milliseconds where luxon's calendar arithmetic comes to the same thing,
 * else null: hours and smaller units are always exact; days and weeks only in UTC (no DST there); months,
 * quarters and years never (their length varies). Spec durations take this path on nearly every step.
 */
function exactMs(d: Duration, zone: string): number | null {
  let known = exactCache.get(d);
  if (!known) {
    const v = d.toObject();
    const calendar = (v.years ?? 0) !== 0 || (v.quarters ?? 0) !== 0 || (v.months ?? 0) !== 0;
    const days = (v.weeks ?? 0) * UNIT_MS.weeks + (v.days ?? 0) * UNIT_MS.days;
    const clock = (v.hours ?? 0) * UNIT_MS.hours + (v.minutes ?? 0) * UNIT_MS.minutes + (v.seconds ?? 0) * UNIT_MS.seconds + (v.milliseconds ?? 0);
    const integral = Number.isInteger(days) && Number.isInteger(clock);
    known = {
      elapsed: !calendar && days === 0 && integral ? clock : null,
      inUtc: !calendar && integral ? days + clock : null,
      days: !calendar && integral ? days : null,
      clock,
    };
    exactCache.set(d, known);
  }
  return zone === 'UTC' || zone === 'Etc/UTC' ? known.inUtc : known.elapsed;
}

/**
 * Days and weeks in a zone with daylight saving: when the zone's offset is the same at `at` and at `at`
 * plus the days as 24-hour spans, that instant shows the same wall-clock time, and it is the one luxon
 * picks (it tries the starting offset first); the clock part then adds exact time, as luxon does. Else
 * null: luxon decides. Saves building a luxon DateTime for nearly every wait in a customer's zone.
 */
function sameOffsetMs(atMs: number, d: Duration, zone: string, sign: 1 | -1): number | null {
  const known = exactCache.get(d);
  if (!known || known.days === null || !Number.isFinite(atMs)) return null;
  // Calendar days land at the same wall-clock time; the clock part is then exact elapsed time.
  const dayEnd = atMs + sign * known.days;
  if (Math.abs(dayEnd) > MAX_TIME_MS || offsetOf(atMs, zone) !== offsetOf(dayEnd, zone)) return null;
  return dayEnd + sign * known.clock;
}

const LOCAL_TIME_RE = /^([01]\d|2[0-3]):([0-5]\d)$/;

/** A local time of day, `HH:MM`, 00:00–23:59. */
export const localTimeSchema = z
  .string()
  .regex(LOCAL_TIME_RE, { message: 'expected a local time of day such as 10:00' });

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;

function offsetMinutes(ms: number, zone: string): number {
  return offsetOf(ms, zone);
}

/**
 * The instants whose wall-clock time in `zone` is the given local date-time: one normally, two in a
 * fall-back overlap (earlier first), and, in a spring-forward gap, the single instant the time moves
 * forward to (02:30 on a day that jumps 02:00 → 03:00 becomes 03:30, i.e. the local time read with the
 * offset in force before the gap).
 */
function instantsAtLocal(localAsUtcMs: number, zone: string): number[] {
  const offsets = new Set<number>([
    offsetMinutes(localAsUtcMs - 36 * HOUR_MS, zone),
    offsetMinutes(localAsUtcMs, zone),
    offsetMinutes(localAsUtcMs + 36 * HOUR_MS, zone),
  ]);
  const exact: number[] = [];
  for (const o of offsets) {
    const t = localAsUtcMs - o * MINUTE_MS;
    if (t + offsetMinutes(t, zone) * MINUTE_MS === localAsUtcMs) exact.push(t);
  }
  if (exact.length > 0) return [...new Set(exact)].sort((a, b) => a - b);
  // A gap: read the local time with the offset in force just before it, which lands past the gap.
  const before = offsetMinutes(localAsUtcMs - 36 * HOUR_MS, zone);
  return [localAsUtcMs - before * MINUTE_MS];
}

/**
 * The first instant at or after `at` (so `at` itself when it is exactly hh:mm:00.000 local) whose
 * wall-clock time in `zone` is `hhmm`. Crosses midnight as needed (23:30 asking for 00:15 gives 00:15 the
 * next local day). DST: a local time that doesn't exist that day (spring-forward gap) moves forward by the
 * gap (02:30 → 03:30 in America/New_York); a repeated local time (fall-back overlap) matches its first
 * occurrence at or after `at`, so either occurrence can be returned. Throws RangeError on a malformed
 * `hhmm` or an unknown zone.
 */
export function nextLocalTime(at: Date, hhmm: string, zone: string): Date {
  const m = LOCAL_TIME_RE.exec(hhmm);
  if (!m) throw new RangeError(`invalid local time ${JSON.stringify(hhmm)}: expected HH:MM`);
  checkZone(zone);
  const hour = Number(m[1]);
  const minute = Number(m[2]);
  const atMs = at.getTime();
  if (!Number.isFinite(atMs)) throw new RangeError('invalid date');
  const local = DateTime.fromMillis(atMs, { zone: zoneFor(zone) });
  let best: number | undefined;
  // The answer's local date is the local date of `at` or the next; look one day further each way so
  // zones that skipped or repeated a whole day are still covered.
  for (let k = -1; k <= 3; k++) {
    const localAsUtc = Date.UTC(local.year, local.month - 1, local.day + k, hour, minute);
    for (const t of instantsAtLocal(localAsUtc, zone)) {
      if (t >= atMs && (best === undefined || t < best)) best = t;
    }
  }
  if (best === undefined) throw new RangeError('no such local time found'); // unreachable in practice
  return new Date(best);
}
