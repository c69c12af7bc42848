import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isoTime, parseIsoTime } from '../src/core/iso-time.js';

describe('isoTime', () => {
  it('is toISOString for any time in years 1970–9999 (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 253_402_300_799_999 }), (ms) => {
        expect(isoTime(ms)).toBe(new Date(ms).toISOString());
      }),
      { numRuns: 20_000 },
    );
  });

  it('is toISOString at the edges: leap days, century years, month and year ends, the last 4-digit millisecond', () => {
    const times = ['1970-01-01T00:00:00.000Z', '2000-02-29T23:59:59.999Z', '2100-02-28T12:00:00.000Z', '2100-03-01T00:00:00.000Z', '2400-02-29T00:00:00.001Z', '2026-12-31T23:59:59.999Z', '9999-12-31T23:59:59.999Z'];
    for (const t of times) expect(isoTime(Date.parse(t))).toBe(t);
  });

  it('falls back to toISOString outside its range, fractions and errors included', () => {
    for (const ms of [-1, -62_198_755_200_000, 253_402_300_800_000, 8.64e15, 1.5]) expect(isoTime(ms)).toBe(new Date(ms).toISOString());
    expect(() => isoTime(Number.NaN)).toThrow(RangeError);
    expect(() => isoTime(8.64e15 + 1)).toThrow(RangeError);
  });
});

describe('parseIsoTime', () => {
  it('reads back what isoTime writes (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 253_402_300_799_999 }), (ms) => {
        expect(parseIsoTime(isoTime(ms))).toBe(ms);
      }),
      { numRuns: 20_000 },
    );
  });

  it('is Date.parse for any other text, and for texts of the same shape with fields out of range', () => {
    const texts = ['2026-02-30T00:00:00.000Z', '2026-13-01T00:00:00.000Z', '2026-01-01T24:00:00.000Z', '2026-01-01T23:60:00.000Z', '1969-12-31T23:59:59.999Z', '2026-01-01T00:00:00.00aZ', '2026-01-01T00:00:00Z', '2026-01-01', 'not a time', '', '+012026-01-01T00:00:00.000Z', '2024-02-29T12:00:00.000Z', '2026-02-29T12:00:00.000Z', '2100-02-29T00:00:00.000Z', '2000-02-29T00:00:00.000Z', '2026-04-31T00:00:00.000Z', '2026-12-31T23:59:59.999Z'];
    for (const t of texts) expect(Object.is(parseIsoTime(t), Date.parse(t)), t).toBe(true);
    fc.assert(
      fc.property(fc.string({ minLength: 24, maxLength: 24 }), (t) => {
        expect(Object.is(parseIsoTime(t), Date.parse(t))).toBe(true);
      }),
    );
  });
});
