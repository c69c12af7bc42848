// Sizes of the text Chorus indexes: ids, identifier values and event names.

/**
 * The longest such text in UTF-8 bytes. PostgreSQL's b-tree entries hold at most ~2,700 bytes, and these
 * values sit in indexes beside a workspace id and a profile id: a 3,000-byte email or 1,024 emoji in a
 * user id made the insert fail (a 500) instead of a 400.
 */
export const MAX_INDEXED_BYTES = 2048;

/** True when `s` fits in an index; short strings skip the count (a UTF-16 unit is at most 3 UTF-8 bytes). */
export function fitsIndex(s: string): boolean {
  return s.length * 3 <= MAX_INDEXED_BYTES || Buffer.byteLength(s, 'utf8') <= MAX_INDEXED_BYTES;
}

export const tooLong = (s: string) => `must be at most ${MAX_INDEXED_BYTES} bytes of UTF-8, got ${Buffer.byteLength(s, 'utf8')}`;
