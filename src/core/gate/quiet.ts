// Quiet hours of the send gate (docs/gate.md, "Quiet hours"). Pure: the current time and the customer's
// zone are arguments. Bypasses (transactional, urgent) and the action (defer or drop) are the gate's
// business; this module only answers "is it quiet now, and until when?".
//
// A window { start, end } is the QUIET period in local time: 21:00 → 08:00 crosses midnight, 13:00 → 14:00
// doesn't. `start` is inside (quiet at exactly 21:00:00), `end` is not (not quiet at exactly 08:00:00).
// The local time of day is the instant plus the zone's UTC offset at that instant (luxon's), so it follows
// DST. The quiet period ends at the next local `end` (time.ts nextLocalTime). On a spring-forward day
// whose gap swallows `end` (end 02:30, clocks jump 02:00 → 03:00), it ends when the clock jumps past it
// (03:00), the first instant whose local time is outside the window.

import { offsetOf } from '../zone.js';
import { isValidTimeZone, nextLocalTime } from '../time.js';
import type { Channel } from '../types.js';
import type { GateSettings, QuietWindow } from './settings.js';

type QuietSettings = Pick<GateSettings['quiet_hours'], 'window' | 'channels'>;

const HHMM_RE = /^([01]\d|2[0-3]):([0-5]\d)$/;

function minuteOfDay(hhmm: string): number {
  const m = HHMM_RE.exec(hhmm);
  if (!m) throw new RangeError(`invalid local time ${JSON.stringify(hhmm)}: expected HH:MM`);
  return Number(m[1]) * 60 + Number(m[2]);
}

/** The quiet window of a channel: its own entry if present (null = no quiet hours), else the general one. */
export function quietWindowFor(settings: QuietSettings, channel: Channel): QuietWindow | null {
  const own = Object.hasOwn(settings.channels, channel) ? settings.channels[channel] : undefined;
  return own !== undefined ? own : settings.window;
}

const DAY_MS = 86_400_000;

/**
 * Milliseconds since local midnight of `ms` in `zone`: the instant shifted by the zone's offset then (the
 * offset luxon uses, cached in zone.ts), as luxon computes local time, without building a DateTime.
 */
function localMsOfDay(ms: number, zone: string): number {
  const local = ms + offsetOf(ms, zone) * 60_000;
  return ((local % DAY_MS) + DAY_MS) % DAY_MS;
}

/** Is the local time of `ms` in `zone` inside the window? (start inclusive, end exclusive) */
function inWindow(ms: number, start: number, end: number, zone: string): boolean {
  const m = localMsOfDay(ms, zone) / 60_000;
  return start < end ? m >= start && m < end : m >= start || m < end;
}

const offsetAt = (ms: number, zone: string): number => offsetOf(ms, zone);

/**
 * If `now` falls in quiet hours for this channel in `zone`, the end of the quiet period (always after
 * `now`); else null. A window with start = end is no quiet period. Throws RangeError on an unknown zone or a
 * malformed window.
 */
export function quietUntil(settings: QuietSettings, channel: Channel, now: Date, zone: string): Date | null {
  if (!isValidTimeZone(zone)) throw new RangeError(`unknown time zone: ${JSON.stringify(zone)}`);
  const nowMs = now.getTime();
  if (!Number.isFinite(nowMs)) throw new RangeError('invalid date');
  const window = quietWindowFor(settings, channel);
  if (!window) return null;
  const start = minuteOfDay(window.start);
  const end = minuteOfDay(window.end);
  if (start === end) return null;

  const localMinute = (ms: number): number => Math.floor(localMsOfDay(ms, zone) / 60_000);
  let at = nowMs; // the candidate end of the quiet period (quiet as long as it is inside the window)
  let from = nowMs; // where to look for the next local `end`
  // Normally one round; more only around DST gaps.
  for (let round = 0; round < 8; round++) {
    if (!inWindow(at, start, end, zone)) return at === nowMs ? null : new Date(at);
    const until = nextLocalTime(new Date(from), window.end, zone).getTime();
    if (localMinute(until) === end) {
      at = until;
      from = until;
      continue;
    }
    // `end` fell in a spring-forward gap (nextLocalTime moved it forward by the gap).
    const after = offsetAt(until, zone);
    if (offsetAt(at, zone) === after) {
      // The jump is already behind `at`: that `end` never came; look for the next one.
      from = until + 1;
      continue;
    }
    // The period ends at the jump itself: the first instant with the offset in force at `until`.
    let lo = at;
    let hi = until;
    while (hi - lo > 1) {
      const mid = lo + Math.floor((hi - lo) / 2);
      if (offsetAt(mid, zone) === after) hi = mid;
      else lo = mid;
    }
    at = hi;
    from = hi;
  }
  // Not reached in practice (a zone changing its offset every few hours).
  return new Date(Math.max(at, nextLocalTime(new Date(from), window.end, zone).getTime(), nowMs + 1));
}
