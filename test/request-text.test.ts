import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storableText } from '../src/core/text.js';
import { DIALECTS } from './support/dialects.js';
import { admin, basic, call, ingest, SECRET_KEY, startTestServer, WRITE_KEY, type TestServer } from './support/server.js';

// Text in requests becomes what both databases store: NUL (which PostgreSQL's text can't hold: a NUL in a
// user id was a 500) and lone UTF-16 surrogates (stored as U+FFFD, so an id read back didn't equal the
// request's: a second alias to it was a 500) become U+FFFD on the way in.

describe('storableText', () => {
  it('replaces NUL and lone surrogates in every string and key, and nothing else (property)', () => {
    const json = fc.letrec((tie) => ({
      value: fc.oneof({ depthSize: 'small' }, fc.string({ unit: 'binary' }), fc.integer(), fc.boolean(), fc.constant(null), tie('array'), tie('object')),
      array: fc.array(tie('value'), { maxLength: 4 }),
      object: fc.dictionary(fc.string({ unit: 'binary' }), tie('value'), { maxKeys: 4 }),
    })).value;
    fc.assert(
      fc.property(json, (value) => {
        const out = storableText(value);
        // Storable: UTF-8 round trip is the identity, and no NUL is left.
        const text = JSON.stringify(out);
        expect(text).not.toMatch(/\\u0000/);
        expect(Buffer.from(text, 'utf8').toString('utf8')).toBe(text);
        // Well-formed input without NUL comes back as it was.
        const clean = JSON.stringify(value) ?? '';
        if (!/\\u0000|\\u[dD][89a-fA-F]/.test(clean)) expect(out).toEqual(value);
      }),
      { numRuns: 300 },
    );
  });

  it('keeps surrogate pairs and replaces what a database can\'t store', () => {
    expect(storableText({ a: 'x\u0000y\ud800', ['k\udfff']: ['\ud83d\ude00', 1, null, { b: '\udc00' }] })).toEqual({
      a: 'x\ufffdy\ufffd',
      ['k\ufffd']: ['\ud83d\ude00', 1, null, { b: '\ufffd' }],
    });
  });
});

for (const dialect of DIALECTS) {
  describe.skipIf(!dialect.available)(`request text on ${dialect.name}`, () => {
    let srv: TestServer;
    beforeAll(async () => {
      srv = await startTestServer(dialect);
    });
    afterAll(async () => srv?.close());

    it('stores ids, event names, traits and properties with NUL as U+FFFD, and finds them again', async () => {
      expect((await ingest(srv.url, 'identify', { userId: 'nul\u00001', traits: { email: 'a\u0000@example.com', note: 'x\u0000y' } })).status).toBe(200);
      expect((await ingest(srv.url, 'track', { userId: 'nul\u00001', event: 'A\u0000B', properties: { p: '\u0000' } })).status).toBe(200);
      expect(
        (await ingest(srv.url, 'batch', { batch: [{ type: 'track', userId: 'nul\u00001', event: 'Ok' }, { type: 'track', userId: 'nul\u00001', event: 'C\u0000' }] })).status,
      ).toBe(200);
      const profile = await admin(srv.url, 'GET', `/v1/profiles/${encodeURIComponent('user_id:nul\ufffd1')}`);
      expect(profile.status).toBe(200);
      expect(profile.body.traits.note).toBe('x\ufffdy');
      const events = await admin(srv.url, 'GET', `/v1/profiles/${encodeURIComponent('user_id:nul\ufffd1')}/events`);
      expect(events.body.data.map((e: { event?: string }) => e.event)).toEqual(expect.arrayContaining(['A\ufffdB', 'C\ufffd', 'Ok']));
    });

    it('does the same for a sendBeacon (text/plain) body, and refuses %00 in a URL', async () => {
      const beacon = await call(srv.url, 'POST', '/v1/track', {
        raw: JSON.stringify({ userId: 'nul-5', event: 'E\u0000' }),
        auth: basic(WRITE_KEY),
        headers: { 'content-type': 'text/plain' },
      });
      expect(beacon.status).toBe(200);
      const url = await admin(srv.url, 'GET', '/v1/profiles/user_id:a%00b');
      expect(url.status).toBe(400);
      expect(url.body.fields[0]).toMatchObject({ path: 'url', message: expect.stringMatching(/%00/) });
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

    it('does the same for a journey written in YAML ("\\0" and "\\ud800" escapes)', async () => {
      const yaml = 'key: yaml-nul\nname: "a\\0b\\ud800"\ntrigger: {event: "Go\\0"}\nsteps:\n  s0: {exit: null}\n';
      const res = await call(srv.url, 'POST', '/v1/journeys', { raw: yaml, auth: `Bearer ${SECRET_KEY}`, headers: { 'content-type': 'application/yaml' } });
      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({ name: 'a\ufffdb\ufffd', draft: { trigger: { event: 'Go\ufffd' } } });
    });

    it('leaves text that only spells \\u0000 as it is', async () => {
      expect((await ingest(srv.url, 'track', { userId: 'nul-6', event: 'Signed Up', properties: { note: 'a \\u0000 b' } })).status).toBe(200);
      const stored = await admin(srv.url, 'GET', '/v1/profiles/user_id:nul-6');
      expect(stored.status).toBe(200);
    });
  });
}
