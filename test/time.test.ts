// Pure tests of src/core/time.ts: ISO durations, calendar-aware addition in a zone, and "the next hh:mm
// in the customer's zone" across DST changes, midnight and zones far from UTC.
import fc from 'fast-check';
import { DateTime } from 'luxon';
import { describe, expect, it } from 'vitest';
import {
  addDuration,
  durationSchema,
  isValidTimeZone,
  localTimeSchema,
  nextLocalTime,
  parseDuration,
  subtractDuration,
} from '../src/core/time.js';

const d = (iso: string): Date => new Date(iso);
const iso = (x: Date): string => x.toISOString();

describe('parseDuration', () => {
  it.each([
    ['PT15M', { minutes: 15 }],
    ['PT2H', { hours: 2 }],
    ['P1D', { days: 1 }],
    ['P3D', { days: 3 }],
    ['P1W', { weeks: 1 }],
    ['P1DT12H', { days: 1, hours: 12 }],
    ['P1M', { months: 1 }],
    ['P1Y', { years: 1 }],
    ['PT30S', { seconds: 30 }],
    ['P14D', { days: 14 }],
    ['PT1M', { minutes: 1 }],
  ])('accepts %s', (s, expected) => {
    expect(parseDuration(s)?.toObject()).toEqual(expected);
  });

  it.each(['', 'P', 'PT', 'PT0S', 'P0D', '-P1D', 'P-1D', 'P1', '3 days', '1d', 'T1H', 'P1H', 'PT1D', 'P'.padEnd(100, '1')])(
    'rejects %j',
    (s) => {
      expect(parseDuration(s)).toBeNull();
    },
  );

  it('durationSchema reports a clear message', () => {
    const r = durationSchema.safeParse('three days');
    expect(r.success).toBe(false);
    expect(r.error?.issues[0]?.message).toBe('expected an ISO 8601 duration such as P3D');
    expect(durationSchema.safeParse('P3D')).toEqual({ success: true, data: 'P3D' });
    expect(durationSchema.safeParse(3).success).toBe(false);
  });
});

describe('addDuration', () => {
  it.each([
    // zone, start, duration, expected
    ['UTC', '2024-01-01T00:00:00.000Z', 'P1D', '2024-01-02T00:00:00.000Z'],
    ['UTC', '2024-01-01T00:00:00.000Z', 'PT15M', '2024-01-01T00:15:00.000Z'],
    ['UTC', '2024-01-01T00:00:00.000Z', 'P1W', '2024-01-08T00:00:00.000Z'],
    ['UTC', '2024-01-01T00:00:00.000Z', 'P1DT12H', '2024-01-02T12:00:00.000Z'],
    ['UTC', '2024-01-31T09:00:00.000Z', 'P1M', '2024-02-29T09:00:00.000Z'], // clamps to month end
    ['UTC', '2023-01-31T09:00:00.000Z', 'P1M', '2023-02-28T09:00:00.000Z'],
    // America/New_York spring forward (2024-03-10 02:00 → 03:00): P1D keeps 12:00 wall time, 23 h later
    ['America/New_York', '2024-03-09T17:00:00.000Z', 'P1D', '2024-03-10T16:00:00.000Z'],
    ['America/New_York', '2024-03-09T17:00:00.000Z', 'PT24H', '2024-03-10T17:00:00.000Z'],
    ['America/New_York', '2024-03-09T17:00:00.000Z', 'P1W', '2024-03-16T16:00:00.000Z'],
    // America/New_York fall back (2024-11-03 02:00 → 01:00): 25 h later
    ['America/New_York', '2024-11-02T16:00:00.000Z', 'P1D', '2024-11-03T17:00:00.000Z'],
    ['America/New_York', '2024-11-02T16:00:00.000Z', 'PT24H', '2024-11-03T16:00:00.000Z'],
    // Europe/Paris spring forward (2024-03-31 02:00 → 03:00) and fall back (2024-10-27 03:00 → 02:00)
    ['Europe/Paris', '2024-03-30T11:00:00.000Z', 'P1D', '2024-03-31T10:00:00.000Z'],
    ['Europe/Paris', '2024-10-26T10:00:00.000Z', 'P1D', '2024-10-27T11:00:00.000Z'],
    ['Europe/Paris', '2024-10-26T10:00:00.000Z', 'P1DT1H', '2024-10-27T12:00:00.000Z'],
    // Far from UTC: months are counted on the local calendar
    // 2024-01-30T12:00Z is 2024-01-31 02:00 in Kiritimati (+14) → 2024-02-29 02:00 local
    ['Pacific/Kiritimati', '2024-01-30T12:00:00.000Z', 'P1M', '2024-02-28T12:00:00.000Z'],
    ['UTC', '2024-01-30T12:00:00.000Z', 'P1M', '2024-02-29T12:00:00.000Z'],
    // 2024-03-01T05:00Z is 2024-02-29 18:00 in Pago Pago (−11) → 2024-03-29 18:00 local
    ['Pacific/Pago_Pago', '2024-03-01T05:00:00.000Z', 'P1M', '2024-03-30T05:00:00.000Z'],
    ['UTC', '2024-03-01T05:00:00.000Z', 'P1M', '2024-04-01T05:00:00.000Z'],
  ])('%s: %s + %s = %s', (zone, start, dur, expected) => {
    expect(iso(addDuration(d(start), dur, zone))).toBe(expected);
  });

  it('defaults to UTC and accepts a parsed Duration', () => {
    const dur = parseDuration('P1D')!;
    expect(iso(addDuration(d('2024-03-09T17:00:00.000Z'), dur))).toBe('2024-03-10T17:00:00.000Z');
    expect(iso(addDuration(d('2024-03-09T17:00:00.000Z'), dur, 'America/New_York'))).toBe(
      '2024-03-10T16:00:00.000Z',
    );
  });

  it('subtractDuration is the calendar inverse for days', () => {
    expect(iso(subtractDuration(d('2024-03-10T16:00:00.000Z'), 'P1D', 'America/New_York'))).toBe(
      '2024-03-09T17:00:00.000Z',
    );
    expect(iso(subtractDuration(d('2024-01-04T00:00:00.000Z'), 'P3D'))).toBe('2024-01-01T00:00:00.000Z');
  });

  it('throws on bad input', () => {
    expect(() => addDuration(d('2024-01-01T00:00:00Z'), 'three days')).toThrow(RangeError);
    expect(() => addDuration(d('2024-01-01T00:00:00Z'), 'P1D', 'Mars/Olympus')).toThrow(RangeError);
    expect(() => addDuration(d('2024-01-01T00:00:00Z'), 'P999999999Y')).toThrow(RangeError);
  });

  it('P1D keeps the wall-clock time in any zone (property)', () => {
    const zones = ['UTC', 'America/New_York', 'Europe/Paris', 'Pacific/Kiritimati', 'Pacific/Pago_Pago', 'Australia/Lord_Howe'];
    fc.assert(
      fc.property(
        fc.integer({ min: Date.UTC(2000, 0, 1), max: Date.UTC(2040, 0, 1) }),
        fc.constantFrom(...zones),
        (ms, zone) => {
          const start = DateTime.fromMillis(ms, { zone });
          const end = DateTime.fromJSDate(addDuration(new Date(ms), 'P1D', zone), { zone });
          const elapsedH = (end.toMillis() - start.toMillis()) / 3_600_000;
          expect(elapsedH).toBeGreaterThanOrEqual(22.5);
          expect(elapsedH).toBeLessThanOrEqual(25.5);
          // Same wall-clock time unless the start or end falls in a DST gap/overlap hour.
          const sameWall = end.hour === start.hour && end.minute === start.minute;
          const nearTransition = start.offset !== end.offset;
          expect(sameWall || nearTransition).toBe(true);
        },
      ),
    );
  });

  it('equals luxon calendar arithmetic for every duration, zone and instant (property; exact-ms fast path included)', () => {
    const zones = ['UTC', 'Etc/UTC', 'America/New_York', 'Europe/Paris', 'Asia/Kolkata', 'Australia/Lord_Howe', 'Pacific/Chatham'];
    const part = (unit: string, max: number) => fc.option(fc.integer({ min: 0, max }).map((n) => (n === 0 ? '' : `${n}${unit}`)), { nil: '' });
    const duration = fc
      .tuple(part('Y', 3), part('M', 14), part('W', 5), part('D', 40), part('H', 50), part('M', 200), part('S', 5000))
      .map(([y, mo, w, dd, h, mi, s]) => `P${y}${mo}${w}${dd}${h || mi || s ? `T${h}${mi}${s}` : ''}`)
      .filter((iso) => parseDuration(iso) !== null);
    fc.assert(
      fc.property(fc.integer({ min: Date.UTC(1990, 0, 1), max: Date.UTC(2045, 0, 1) }), fc.constantFrom(...zones), duration, (ms, zone, iso) => {
        const dur = parseDuration(iso)!;
        const start = DateTime.fromMillis(ms, { zone });
        expect(addDuration(new Date(ms), iso, zone).getTime()).toBe(start.plus(dur).toMillis());
        expect(subtractDuration(new Date(ms), iso, zone).getTime()).toBe(start.minus(dur).toMillis());
      }),
      { numRuns: 2000 },
    );
  });
});

describe('addDuration: days in a zone with daylight saving (same-offset shortcut)', () => {
  it('equals luxon for days, weeks and clock parts around transitions (property)', () => {
    const zones = ['America/New_York', 'Europe/Paris', 'Australia/Lord_Howe', 'Pacific/Chatham', 'America/Santiago'];
    // Instants within a few days of a transition in either hemisphere, where the shortcut must step aside.
    const transitions = [Date.UTC(2024, 2, 10, 7), Date.UTC(2024, 2, 31, 1), Date.UTC(2024, 3, 7, 2), Date.UTC(2024, 8, 29, 2), Date.UTC(2024, 9, 27, 1), Date.UTC(2024, 10, 3, 6)];
    const near = fc.tuple(fc.constantFrom(...transitions), fc.integer({ min: -5 * 86_400_000, max: 5 * 86_400_000 })).map(([t, d]) => t + d);
    const anywhere = fc.integer({ min: Date.UTC(2000, 0, 1), max: Date.UTC(2040, 0, 1) });
    const part = (unit: string, max: number) => fc.integer({ min: 0, max }).map((n) => (n === 0 ? '' : `${n}${unit}`));
    const duration = fc
      .tuple(part('W', 3), part('D', 10), part('H', 30), part('M', 90))
      .map(([w, dd, h, mi]) => `P${w}${dd}${h || mi ? `T${h}${mi}` : ''}`)
      .filter((iso) => parseDuration(iso) !== null);
    fc.assert(
      fc.property(fc.oneof(near, anywhere), fc.constantFrom(...zones), duration, (ms, zone, iso) => {
        const dur = parseDuration(iso)!;
        const start = DateTime.fromMillis(ms, { zone });
        expect(addDuration(new Date(ms), iso, zone).getTime()).toBe(start.plus(dur).toMillis());
        expect(subtractDuration(new Date(ms), iso, zone).getTime()).toBe(start.minus(dur).toMillis());
      }),
      { numRuns: 3000 },
    );
  });
});

describe('nextLocalTime (at or after `at`)', () => {
  it.each([
    // zone, at, hh:mm, expected
    ['UTC', '2024-01-01T09:00:00.000Z', '10:00', '2024-01-01T10:00:00.000Z'],
    ['UTC', '2024-01-01T10:00:00.000Z', '10:00', '2024-01-01T10:00:00.000Z'], // exactly: now
    ['UTC', '2024-01-01T10:00:00.001Z', '10:00', '2024-01-02T10:00:00.000Z'],
    ['UTC', '2024-01-01T23:59:00.000Z', '00:00', '2024-01-02T00:00:00.000Z'],
    ['UTC', '2024-12-31T23:30:00.000Z', '00:15', '2025-01-01T00:15:00.000Z'], // crosses midnight and year
    ['UTC', '2024-02-28T23:30:00.000Z', '00:15', '2024-02-29T00:15:00.000Z'], // leap day
    // America/New_York: 23:30 EST → 00:15 EST the next local day
    ['America/New_York', '2024-01-02T04:30:00.000Z', '00:15', '2024-01-02T05:15:00.000Z'],
    ['America/New_York', '2024-01-01T14:00:00.000Z', '10:00', '2024-01-01T15:00:00.000Z'],
    ['America/New_York', '2024-07-01T14:00:00.000Z', '10:00', '2024-07-01T14:00:00.000Z'], // EDT
    // spring forward 2024-03-10: 10:00 EDT the day after 11:00 EST
    ['America/New_York', '2024-03-09T16:00:00.000Z', '10:00', '2024-03-10T14:00:00.000Z'],
    // 02:30 doesn't exist on 2024-03-10 → moves forward to 03:30 EDT
    ['America/New_York', '2024-03-10T05:00:00.000Z', '02:30', '2024-03-10T07:30:00.000Z'],
    // after that, the next 02:30 is the next day
    ['America/New_York', '2024-03-10T08:00:00.000Z', '02:30', '2024-03-11T06:30:00.000Z'],
    // fall back 2024-11-03: 01:30 happens at 05:30Z (EDT) and 06:30Z (EST)
    ['America/New_York', '2024-11-03T04:00:00.000Z', '01:30', '2024-11-03T05:30:00.000Z'],
    ['America/New_York', '2024-11-03T05:45:00.000Z', '01:30', '2024-11-03T06:30:00.000Z'],
    ['America/New_York', '2024-11-03T06:45:00.000Z', '01:30', '2024-11-04T06:30:00.000Z'],
    ['America/New_York', '2024-11-02T16:00:00.000Z', '10:00', '2024-11-03T15:00:00.000Z'],
    // Europe/Paris spring forward 2024-03-31: 02:15 → 03:15 CEST
    ['Europe/Paris', '2024-03-30T23:00:00.000Z', '02:15', '2024-03-31T01:15:00.000Z'],
    ['Europe/Paris', '2024-03-30T23:00:00.000Z', '10:00', '2024-03-31T08:00:00.000Z'],
    // Europe/Paris fall back 2024-10-27: 02:30 at 00:30Z (CEST) and 01:30Z (CET)
    ['Europe/Paris', '2024-10-26T22:00:00.000Z', '02:30', '2024-10-27T00:30:00.000Z'],
    ['Europe/Paris', '2024-10-27T01:00:00.000Z', '02:30', '2024-10-27T01:30:00.000Z'],
    ['Europe/Paris', '2024-10-26T22:00:00.000Z', '10:00', '2024-10-27T09:00:00.000Z'],
    // Kiritimati (+14): 09:00Z is 23:00 local, so the next 09:00 local is 10 h later
    ['Pacific/Kiritimati', '2024-01-01T09:00:00.000Z', '09:00', '2024-01-01T19:00:00.000Z'],
    ['Pacific/Kiritimati', '2024-01-01T09:00:00.000Z', '23:30', '2024-01-01T09:30:00.000Z'],
    // Pago Pago (−11): 09:00Z is 22:00 the previous local day
    ['Pacific/Pago_Pago', '2024-01-01T09:00:00.000Z', '09:00', '2024-01-01T20:00:00.000Z'],
    ['Pacific/Pago_Pago', '2024-01-01T09:00:00.000Z', '23:00', '2024-01-01T10:00:00.000Z'],
    // Kiritimati skipped 1994-12-31 entirely (−10 → +14): the next 12:00 is 1995-01-01 12:00 +14
    ['Pacific/Kiritimati', '1994-12-30T23:00:00.000Z', '12:00', '1994-12-31T22:00:00.000Z'],
  ])('%s: after %s, %s → %s', (zone, at, hhmm, expected) => {
    expect(iso(nextLocalTime(d(at), hhmm, zone))).toBe(expected);
  });

  it('throws on a bad time or zone', () => {
    expect(() => nextLocalTime(d('2024-01-01T00:00:00Z'), '24:00', 'UTC')).toThrow(RangeError);
    expect(() => nextLocalTime(d('2024-01-01T00:00:00Z'), '9:00', 'UTC')).toThrow(RangeError);
    expect(() => nextLocalTime(d('2024-01-01T00:00:00Z'), '10:00', 'Nowhere/Land')).toThrow(RangeError);
    expect(() => nextLocalTime(new Date(NaN), '10:00', 'UTC')).toThrow(RangeError);
  });

  it('is the first matching instant at or after `at`, within a day and a bit (property)', () => {
    const zones = [
      'UTC',
      'America/New_York',
      'Europe/Paris',
      'Pacific/Kiritimati',
      'Pacific/Pago_Pago',
      'Australia/Lord_Howe', // 30-minute DST shift
      'Asia/Kathmandu', // +05:45
    ];
    fc.assert(
      fc.property(
        fc.integer({ min: Date.UTC(2000, 0, 1), max: Date.UTC(2040, 0, 1) }),
        fc.integer({ min: 0, max: 23 }),
        fc.integer({ min: 0, max: 59 }),
        fc.constantFrom(...zones),
        (ms, h, m, zone) => {
          const hhmm = `${String(h).padStart(2, '0')}:${String(m).padStart(2, '0')}`;
          const next = nextLocalTime(new Date(ms), hhmm, zone).getTime();
          expect(next).toBeGreaterThanOrEqual(ms);
          expect(next - ms).toBeLessThanOrEqual(25 * 3_600_000);
          const local = DateTime.fromMillis(next, { zone });
          const wall = local.hour * 60 + local.minute;
          if (wall !== h * 60 + m) {
            // Only in a DST gap, where the time moves forward by the gap (≤ 1 h here).
            const shift = wall - (h * 60 + m);
            expect(shift).toBeGreaterThan(0);
            expect(shift).toBeLessThanOrEqual(60);
            expect(DateTime.fromMillis(next - 3 * 3_600_000, { zone }).offset).toBeLessThan(local.offset);
          }
          expect(local.second).toBe(0);
          expect(local.millisecond).toBe(0);
          // Nothing earlier qualifies: a day before the answer (minus a DST hour) is before `at`, or has
          // another wall time than asked.
          const dayBefore = DateTime.fromMillis(next, { zone }).minus({ days: 1 });
          if (dayBefore.isValid && dayBefore.hour === h && dayBefore.minute === m) {
            expect(dayBefore.toMillis()).toBeLessThan(ms);
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('localTimeSchema', () => {
  it.each(['00:00', '09:05', '10:00', '23:59'])('accepts %s', (s) => {
    expect(localTimeSchema.safeParse(s).success).toBe(true);
  });
  it.each(['24:00', '9:00', '10:60', '10:00:00', '10h00', '', ' 10:00'])('rejects %j', (s) => {
    const r = localTimeSchema.safeParse(s);
    expect(r.success).toBe(false);
    expect(r.error?.issues[0]?.message).toBe('expected a local time of day such as 10:00');
  });
});

describe('isValidTimeZone', () => {
  it.each([
    ['UTC', true],
    ['Europe/Paris', true],
    ['America/New_York', true],
    ['Pacific/Kiritimati', true],
    ['Mars/Olympus', false],
    ['', false],
    ['not a zone', false],
  ])('%j → %s', (z, ok) => {
    expect(isValidTimeZone(z)).toBe(ok);
  });
});
