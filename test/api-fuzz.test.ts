import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIALECTS } from './support/dialects.js';
import { admin, basic, call, ingest, startTestServer, WRITE_KEY, type TestServer } from './support/server.js';

// Whatever a client sends, Chorus answers 2xx or 4xx, never 5xx, on both databases (property). Strings
// come from the whole of Unicode, lone surrogates and NUL included, up to a few thousand characters, in
// the places that end up in indexed columns (ids, event names, emails, push tokens) and in free JSON.

const text = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.constantFrom('', ' ', 'null', '\u0000', 'a\u0000b', '\ud800', 'x\udfffy', '😀'.repeat(700), '中'.repeat(1000), 'a'.repeat(3000), `${'a'.repeat(300)}@example.com`, '+14155552671', 'ann@example.com'),
);
const scalar = fc.oneof(text, fc.integer(), fc.double(), fc.boolean(), fc.constant(null));
const json = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: 'small' }, scalar, tie('array'), tie('object')),
  array: fc.array(tie('value'), { maxLength: 3 }),
  object: fc.dictionary(text, tie('value'), { maxKeys: 3 }),
})).value;

const segmentCall = fc.record(
  {
    type: fc.constantFrom('track', 'identify', 'page', 'screen', 'group', 'alias'),
    userId: fc.oneof(text, fc.integer()),
    anonymousId: text,
    previousId: text,
    event: text,
    name: text,
    messageId: text,
    timestamp: fc.oneof(text, fc.constant('2026-01-05T09:00:00Z')),
    traits: fc.oneof(json, fc.record({ email: text, phone: text, fcm_token: text, apns_token: text, whatsapp: fc.oneof(text, fc.boolean()), timezone: text }, { requiredKeys: [] })),
    properties: json,
    context: fc.oneof(json, fc.record({ device: fc.record({ type: fc.constantFrom('ios', 'android'), token: text }), traits: json }, { requiredKeys: [] })),
  },
  { requiredKeys: ['type'] },
);

for (const dialect of DIALECTS) {
  describe.skipIf(!dialect.available)(`any input on ${dialect.name}`, () => {
    let srv: TestServer;
    beforeAll(async () => {
      srv = await startTestServer(dialect);
    });
    afterAll(async () => srv?.close());

    it('answers every Segment call and batch with 2xx or 4xx', async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(segmentCall, { minLength: 1, maxLength: 4 }), async (calls) => {
          const single = calls[0];
          const one = await call(srv.url, 'POST', `/v1/${single.type}`, { body: single, auth: basic(WRITE_KEY) });
          expect(one.status, JSON.stringify(one.body)).toBeLessThan(500);
          const batch = await call(srv.url, 'POST', '/v1/batch', { body: { batch: calls }, auth: basic(WRITE_KEY) });
          expect(batch.status, JSON.stringify(batch.body)).toBeLessThan(500);
        }),
        { numRuns: 150 },
      );
    });

    it('answers every send and every profile edit with 2xx or 4xx', async () => {
      await ingest(srv.url, 'identify', { userId: 'fuzz-target', traits: { email: 'fuzz@example.com', phone: '+14155552671' } });
      const channel = fc.oneof(text, fc.constantFrom('auto', 'email', 'sms', 'push', ['sms', 'email']));
      const send = fc.record(
        {
          to: fc.oneof(text, fc.constant('user_id:fuzz-target')),
          idempotencyKey: text,
          data: json,
          channel,
          category: fc.oneof(text, fc.constantFrom('promotional', 'transactional')),
          topic: text,
          priority: text,
          type: text,
          tags: fc.oneof(json, fc.array(text, { maxLength: 3 })),
          override_caps: fc.oneof(fc.boolean(), text),
          fallback: json,
          content: fc.oneof(json, fc.record({ email: fc.record({ subject: text, text }), sms: fc.record({ text }) }, { requiredKeys: [] })),
        },
        { requiredKeys: ['to'] },
      );
      const patch = fc.record(
        {
          traits: json,
          contactPoints: fc.oneof(json, fc.record({ email: text, sms: text, whatsapp: text, push: fc.record({ add: fc.array(fc.record({ provider: fc.constantFrom('fcm', 'apns', 'webpush'), token: text }), { maxLength: 2 }) }) }, { requiredKeys: [] })),
          consent: json,
          timezone: text,
          locale: text,
          preferredChannel: channel,
        },
        { requiredKeys: [] },
      );
      await fc.assert(
        fc.asyncProperty(send, patch, async (body, edit) => {
          const sent = await admin(srv.url, 'POST', '/v1/send', body);
          expect(sent.status, JSON.stringify(sent.body)).toBeLessThan(500);
          const edited = await admin(srv.url, 'PATCH', '/v1/profiles/user_id:fuzz-target', edit);
          expect(edited.status, JSON.stringify(edited.body)).toBeLessThan(500);
        }),
        { numRuns: 150 },
      );
    });

    it('answers every cursor, limit, journey, setting, clock and engagement request with 2xx or 4xx', async () => {
      await ingest(srv.url, 'identify', { userId: 'fuzz-pages', traits: { email: 'pages@example.com' } });
      const sent = await admin(srv.url, 'POST', '/v1/send', { to: 'user_id:fuzz-pages', channel: 'email', content: { email: { subject: 'Hi', text: 'Hello' } } });
      const messageId = (sent.body as { id?: string }).id ?? 'msg_none';
      const query = fc.oneof(text, fc.integer().map(String), fc.constantFrom('', '0', '-1', '501', '1e3', 'abc'));
      const urlSafe = (v: string) => encodeURIComponent(v.replace(/[\ud800-\udfff]/g, '\ufffd'));
      await fc.assert(
        fc.asyncProperty(query, query, json, json, text, async (cursor, limit, body, other, key) => {
          const q = `limit=${urlSafe(limit)}&cursor=${urlSafe(cursor)}`;
          const k = urlSafe(key);
          const requests: [string, string, unknown?][] = [
            ['GET', `/v1/messages?profile=user_id:fuzz-pages&${q}`],
            ['GET', `/v1/profiles/user_id:fuzz-pages/events?${q}`],
            ['GET', `/v1/journeys?${q}`],
            ['GET', `/v1/journeys/${k}`],
            ['POST', '/v1/journeys', body],
            ['PUT', `/v1/journeys/${k}`, other],
            ['POST', `/v1/journeys/${k}/publish`, other],
            ['PUT', '/v1/settings', body],
            ['POST', '/v1/clock/advance', other],
            ['POST', `/v1/messages/${urlSafe(messageId)}/engagement`, body],
            ['POST', `/v1/messages/${k}/engagement`, { type: 'opened' }],
            ['GET', `/v1/messages/${k}`],
          ];
          for (const [method, path, payload] of requests) {
            const res = await admin(srv.url, method, path, payload);
            expect(res.status, `${method} ${path} ${JSON.stringify(payload)} → ${JSON.stringify(res.body)}`).toBeLessThan(500);
          }
        }),
        { numRuns: 100 },
      );
    });

    it('answers every profile reference and message query with 2xx or 4xx', async () => {
      await fc.assert(
        fc.asyncProperty(text, fc.constantFrom('user_id', 'email', 'phone', 'anonymous_id', 'fcm_token', 'nope', ''), async (value, kind) => {
          // A URL carries UTF-8: a lone surrogate can't be in one (encodeURIComponent throws).
          const ref = encodeURIComponent((kind ? `${kind}:${value}` : value).replace(/[\ud800-\udfff]/g, '\ufffd'));
          for (const path of [`/v1/profiles/${ref}`, `/v1/profiles/${ref}/runs`, `/v1/profiles/${ref}/events`, `/v1/profiles/${ref}/export`, `/v1/messages?profile=${ref}`]) {
            const res = await admin(srv.url, 'GET', path);
            expect(res.status, `${path} ${JSON.stringify(res.body)}`).toBeLessThan(500);
          }
          const deleted = await admin(srv.url, 'DELETE', `/v1/profiles/${ref}`);
          expect(deleted.status, `DELETE ${ref} ${JSON.stringify(deleted.body)}`).toBeLessThan(500);
        }),
        { numRuns: 100 },
      );
    });
  });
}
