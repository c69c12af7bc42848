import fc from 'fast-check';
import { IANAZone } from 'luxon';
import { describe, expect, it } from 'vitest';
import { offsetOf } from '../src/core/zone.js';

// The remembered offsets must be exactly luxon's, including around DST transitions.
const ZONES = ['America/New_York', 'Europe/Paris', 'Australia/Lord_Howe', 'America/St_Johns', 'Pacific/Chatham', 'Asia/Kathmandu', 'America/Sao_Paulo', 'Europe/Dublin', 'UTC'];

describe('zone offsets', () => {
  it('equal luxon’s at any instant from 1990 to 2040, in zones with odd offsets and DST', () => {
    fc.assert(
      fc.property(fc.constantFrom(...ZONES), fc.integer({ min: Date.UTC(1990, 0, 1), max: Date.UTC(2040, 0, 1) }), (zone, ms) => {
        expect(offsetOf(ms, zone)).toBe(IANAZone.create(zone).offset(ms));
        // Asked again, from the cache.
        expect(offsetOf(ms, zone)).toBe(IANAZone.create(zone).offset(ms));
      }),
      { numRuns: 3000 },
    );
  });

  it('change at the exact millisecond of a transition', () => {
    const spring = Date.UTC(2026, 2, 8, 7, 0); // New York 02:00 EST → 03:00 EDT
    for (const ms of [spring - 1, spring, spring + 1, spring - 60_000, spring + 14 * 60_000]) {
      expect(offsetOf(ms, 'America/New_York')).toBe(IANAZone.create('America/New_York').offset(ms));
    }
    expect(offsetOf(spring - 1, 'America/New_York')).toBe(-300);
    expect(offsetOf(spring, 'America/New_York')).toBe(-240);
  });
});
