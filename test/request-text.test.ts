import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nulPath, wellFormed } from '../src/api/request-text.js';
import { DIALECTS } from './support/dialects.js';
import { admin, basic, call, ingest, startTestServer, WRITE_KEY, type TestServer } from './support/server.js';

// PostgreSQL's text can't hold U+0000: a NUL in a user id or an event name made the database refuse the
// statement and the request fail with a 500. Chorus refuses NUL in any request, on both databases, with a
// 400 that names the field.

describe('nulPath', () => {
  it('finds the first string or key holding NUL, and nothing in a value without one (property)', () => {
    const noNul = fc.string().map((s) => s.replace(/\u0000/g, ''));
    const json = fc.letrec((tie) => ({
      value: fc.oneof({ depthSize: 'small' }, noNul, fc.integer(), fc.boolean(), fc.constant(null), tie('array'), tie('object')),
      array: fc.array(tie('value'), { maxLength: 4 }),
      object: fc.dictionary(noNul, tie('value'), { maxKeys: 4 }),
    })).value;
    fc.assert(
      fc.property(json, fc.array(fc.nat(), { minLength: 1, maxLength: 6 }), (value, walk) => {
        expect(nulPath(value)).toBeNull();
        // Put a NUL into one string reached by `walk`, and expect its path.
        const root = { v: value } as Record<string, unknown>;
        let holder: Record<string, unknown> | unknown[] = root;
        let key: string | number = 'v';
        let path = 'v';
        for (const step of walk) {
          const next: unknown = (holder as Record<string | number, unknown>)[key];
          if (Array.isArray(next) && next.length > 0) {
            holder = next;
            key = step % next.length;
            path += `[${key}]`;
          } else if (next !== null && typeof next === 'object' && Object.keys(next).length > 0) {
            const keys = Object.keys(next);
            holder = next as Record<string, unknown>;
            key = keys[step % keys.length];
            path += `.${key}`;
          } else break;
        }
        (holder as Record<string | number, unknown>)[key] = 'a\u0000b';
        const found = nulPath(root);
        // An earlier string can't hold NUL (none did), so the first one found is the one put there.
        expect(found).toBe(path);
      }),
      { numRuns: 300 },
    );
  });

  it('makes every string and key well-formed, keeping surrogate pairs', () => {
    expect(wellFormed({ a: 'x\ud800y', ['k\udfff']: ['\ud83d\ude00', 1, null, { b: '\udc00' }] })).toEqual({
      a: 'x\ufffdy',
      ['k\ufffd']: ['\ud83d\ude00', 1, null, { b: '\ufffd' }],
    });
  });

  it('names a key that holds NUL', () => {
    expect(nulPath({ traits: { 'a\u0000': 1 } })).toBe('traits.a\u0000');
    expect(nulPath(['x', ['y', 'z\u0000']])).toBe('[1][1]');
  });
});

for (const dialect of DIALECTS) {
  describe.skipIf(!dialect.available)(`requests with NUL on ${dialect.name}`, () => {
    let srv: TestServer;
    beforeAll(async () => {
      srv = await startTestServer(dialect);
    });
    afterAll(async () => srv?.close());

    it('refuses NUL in an id, an event name, a trait or a property with a 400 naming the field, and stores nothing', async () => {
      const cases: [string, unknown, string][] = [
        ['track', { userId: 'u\u00001', event: 'Signed Up' }, 'userId'],
        ['identify', { userId: 'nul-2', traits: { email: 'a\u0000@example.com' } }, 'traits.email'],
        ['track', { userId: 'nul-3', event: 'X', properties: { note: 'x\u0000y' } }, 'properties.note'],
        ['batch', { batch: [{ type: 'track', userId: 'nul-4', event: 'Ok' }, { type: 'track', userId: 'nul-4', event: 'A\u0000B' }] }, 'batch[1].event'],
      ];
      for (const [type, body, path] of cases) {
        const res = await ingest(srv.url, type, body);
        expect(res.status, `${type} ${path}`).toBe(400);
        expect(res.body.error).toBe('invalid_request');
        expect(res.body.fields).toEqual([{ path, message: expect.stringMatching(/NUL character/) }]);
      }
      const stored = await admin(srv.url, 'GET', '/v1/profiles/user_id:nul-4');
      expect(stored.status).toBe(404);
    });

    it('refuses NUL in a sendBeacon (text/plain) body and in the URL', async () => {
      const beacon = await call(srv.url, 'POST', '/v1/track', {
        raw: JSON.stringify({ userId: 'nul-5', event: 'E\u0000' }),
        auth: basic(WRITE_KEY),
        headers: { 'content-type': 'text/plain' },
      });
      expect(beacon.status).toBe(400);
      expect(beacon.body.fields[0].path).toBe('event');
      const url = await admin(srv.url, 'GET', '/v1/profiles/user_id:a%00b');
      expect(url.status).toBe(400);
      expect(url.body.fields[0]).toMatchObject({ path: 'url' });
    });

    it('takes ids with lone surrogates as the U+FFFD the database stores, so later calls find them', async () => {
      // The second alias used to miss the stored (U+FFFD) identifier and insert it again: a 500.
      expect((await ingest(srv.url, 'alias', { userId: 'lone-1', previousId: 'p\ud800' })).status).toBe(200);
      expect((await ingest(srv.url, 'alias', { userId: 'lone-2', previousId: 'p\ud800' })).status).toBe(200);
      expect((await ingest(srv.url, 'track', { userId: 'lone-3', event: 'E', messageId: 'm\udc00' })).status).toBe(200);
      // The same messageId again is a retry: stored once, not a unique-key failure.
      expect((await ingest(srv.url, 'track', { userId: 'lone-3', event: 'E', messageId: 'm\udc00' })).status).toBe(200);
      const profile = await admin(srv.url, 'GET', `/v1/profiles/${encodeURIComponent('anonymous_id:p\ufffd')}`);
      expect(profile.status).toBe(200);
    });

    it('still takes the same calls without NUL, and text that only spells \\u0000', async () => {
      expect((await ingest(srv.url, 'track', { userId: 'nul-6', event: 'Signed Up', properties: { note: 'a \\u0000 b' } })).status).toBe(200);
      const stored = await admin(srv.url, 'GET', '/v1/profiles/user_id:nul-6');
      expect(stored.status).toBe(200);
    });
  });
}
