import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bucketed, nameFor, prepared } from '../src/store/prepared.js';

// Which statement texts run as named prepared statements on PostgreSQL, and the IN-list padding that
// makes the hot reads' texts repeat.

describe('bucketed', () => {
  it('pads to the next power of two up to 512 with the last value: the same set, one of ten lengths (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.string(), { minLength: 1, maxLength: 600 }), (values) => {
        const out = bucketed(values);
        expect(new Set(out)).toEqual(new Set(values));
        expect(out.slice(0, values.length)).toEqual(values);
        if (values.length <= 512) expect([1, 2, 4, 8, 16, 32, 64, 128, 256, 512]).toContain(out.length);
        else expect(out).toEqual(values);
      }),
    );
  });

  it('leaves an empty list empty', () => {
    expect(bucketed([])).toEqual([]);
  });
});

describe('statement names', () => {
  it('names a registered text at once, another on its third run, and never a long one', () => {
    const registered = prepared(`select 1 where ${'x'.repeat(10)} = $1 -- registered`);
    expect(nameFor(registered)).toMatch(/^chorus_\d+$/);
    const text = 'select 2 where $1 = $1 -- repeated';
    expect(nameFor(text)).toBeUndefined();
    expect(nameFor(text)).toBeUndefined();
    const name = nameFor(text);
    expect(name).toMatch(/^chorus_\d+$/);
    expect(nameFor(text)).toBe(name);
    const long = `select 3 where $1 = $1 -- ${'y'.repeat(20_000)}`;
    for (let i = 0; i < 5; i++) expect(nameFor(long)).toBeUndefined();
  });
});
