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

// Ids are strictly increasing within a process, like a monotonic ULID: an id made in the same millisecond
// as the last one (or with an earlier time) takes the last id's time and its random part plus one. Rows a
// batch inserts then land together at the end of every index keyed by id, instead of one page each (on
// the virtual clock a whole batch shares one millisecond).
let lastMs = -1;
let lastRandom: number[] = [];

function nextRandom(): number[] | null {
  const next = lastRandom.slice();
  for (let i = next.length - 1; i >= 0; i--) {
    if (next[i] < 31) {
      next[i]++;
      return next;
    }
    next[i] = 0;
  }
  return null;
}

function freshRandom(): number[] {
  if (poolOffset + 16 > pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const out: number[] = [];
  // The top bit stays clear, so increments within a millisecond never run out of room.
  for (let i = 0; i < 16; i++) out.push(pool[poolOffset + i] & (i === 0 ? 15 : 31));
  poolOffset += 16;
  return out;
}

export function newId(prefix: string, now: number = Date.now()): string {
  const incremented = now <= lastMs ? nextRandom() : null;
  if (incremented) lastRandom = incremented;
  else {
    lastMs = Math.max(now, lastMs + (now <= lastMs ? 1 : 0));
    lastRandom = freshRandom();
  }
  let random = '';
  for (const d of lastRandom) random += ALPHABET[d];
  return `${prefix}_${encodeTime(lastMs)}${random}`;
}

/** A secret API key: prefix plus 32 random base32 characters (160 bits). */
export function newApiKey(prefix: 'wk' | 'sk'): string {
  return `${prefix}_${randomPart(32)}`;
}
