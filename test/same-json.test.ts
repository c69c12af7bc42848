import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { sameJson } from '../src/core/same-json.js';

// sameJson against its definition: two values are the same when JSON writes them the same, up to key order.

function canonical(v: unknown): string {
  return JSON.stringify(v, (_key, value: unknown) =>
    value && typeof value === 'object' && !Array.isArray(value)
      ? Object.fromEntries(Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : value,
  );
}

/** The same value with its object keys in another order. */
function shuffled(v: unknown, seed: number): unknown {
  if (Array.isArray(v)) return v.map((x, i) => shuffled(x, seed + i));
  if (v && typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>);
    if (seed % 2) entries.reverse();
    return Object.fromEntries(entries.map(([k, x], i) => [k, shuffled(x, seed + i)]));
  }
  return v;
}

describe('sameJson', () => {
  it('agrees with comparing canonical JSON (property)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.jsonValue(), (a, b) => {
        expect(sameJson(a, b)).toBe(canonical(a) === canonical(b));
      }),
      { numRuns: 3000 },
    );
  });

  it('ignores key order, and keys holding undefined (property)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.nat(), (a, seed) => {
        expect(sameJson(a, shuffled(a, seed))).toBe(true);
        expect(sameJson({ x: a, gone: undefined }, { x: shuffled(a, seed + 1) })).toBe(true);
      }),
    );
  });

  it('tells apart what JSON tells apart', () => {
    expect(sameJson({ a: 1 }, { a: 1, b: null })).toBe(false);
    expect(sameJson([1, 2], [2, 1])).toBe(false);
    expect(sameJson({ a: [] }, { a: {} })).toBe(false);
    expect(sameJson('1', 1)).toBe(false);
  });
});
