import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { sha256, sha256Hex } from '../src/lib/sha256.js';

// Message ids and holdout buckets are SHA-256 digests: the one-shot path must give the same bytes, or a
// message re-created after an upgrade would get a new id and go out twice.
describe('sha256', () => {
  it('equals createHash for any text (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (s) => {
        expect(sha256Hex(s)).toBe(createHash('sha256').update(s).digest('hex'));
        expect(sha256(s).equals(createHash('sha256').update(s).digest())).toBe(true);
      }),
      { numRuns: 500 },
    );
  });
});
