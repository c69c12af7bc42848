import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { withFields } from '../src/core/json-text.js';

// withFields against its definition: the text JSON.stringify writes for the merged object.

describe('withFields', () => {
  it('writes what stringifying the merged object writes, when no key repeats (property)', () => {
    const object = fc.dictionary(fc.string(), fc.jsonValue());
    // Integer-like keys are the exception: JavaScript objects list them first, wherever they were added.
    const extraObject = fc.dictionary(fc.string().filter((k) => !/^(0|[1-9]\d*)$/.test(k)), fc.jsonValue());
    fc.assert(
      fc.property(object, extraObject, (value, extra) => {
        for (const key of Object.keys(extra)) delete value[key];
        expect(withFields(JSON.stringify(value), extra)).toBe(JSON.stringify({ ...value, ...extra }));
      }),
    );
  });

  it('keeps an object without extra fields as it is, and adds fields to an empty one', () => {
    expect(withFields('{"a":1}', {})).toBe('{"a":1}');
    expect(withFields('{}', { decidedAt: 'x' })).toBe('{"decidedAt":"x"}');
    expect(withFields('{"outcome":"send","trace":{"caps":[]}}', { decidedAt: '2026-01-05T09:00:00.000Z' })).toBe(
      '{"outcome":"send","trace":{"caps":[]},"decidedAt":"2026-01-05T09:00:00.000Z"}',
    );
  });
});
