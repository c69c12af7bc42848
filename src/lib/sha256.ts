import crypto from 'node:crypto';

// SHA-256 of a short text. Node's one-shot `crypto.hash` (20.12+) is ~2.5x faster than a Hash object for
// the engine's ids (one per message); older Node falls back to createHash. Same digest either way.
type OneShot = (algorithm: string, data: string, encoding: 'hex' | 'buffer') => string | Buffer;
const oneShot = (crypto as unknown as { hash?: OneShot }).hash;

export function sha256Hex(text: string): string {
  return oneShot ? (oneShot('sha256', text, 'hex') as string) : crypto.createHash('sha256').update(text).digest('hex');
}

export function sha256(text: string): Buffer {
  return oneShot ? (oneShot('sha256', text, 'buffer') as Buffer) : crypto.createHash('sha256').update(text).digest();
}
