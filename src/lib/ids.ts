import { randomFillSync } from 'node:crypto';

// Time-ordered, URL-safe ids: a prefix, 10 characters of milliseconds and 16 random characters
// (Crockford base32, like ULID), so ids sort by creation time and index well.
const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';

function encodeTime(ms: number): string {
  let out = '';
  for (let i = 0; i < 10; i++) {
    out = ALPHABET[ms % 32] + out;
    ms = Math.floor(ms / 32);
  }
  return out;
}

// Random bytes are drawn from a pooled buffer: one system call per 4 KiB instead of one per id.
const pool = Buffer.alloc(4096);
let poolOffset = pool.length;

function randomPart(length: number): string {
  if (poolOffset + length > pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  let out = '';
  for (let i = 0; i < length; i++) out += ALPHABET[pool[poolOffset + i] & 31];
  poolOffset += length;
  return out;
}

export function newId(prefix: string, now: number = Date.now()): string {
  return `${prefix}_${encodeTime(now)}${randomPart(16)}`;
}

/** A secret API key: prefix plus 32 random base32 characters (160 bits). */
export function newApiKey(prefix: 'wk' | 'sk'): string {
  return `${prefix}_${randomPart(32)}`;
}
