import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deriveFacts } from '../src/core/facts.js';
import { normalizeEmail } from '../src/core/identifiers.js';
import { parseJourneySpec } from '../src/core/journey-spec.js';
import { validatePatch } from '../src/core/profile.js';
import { fitsIndex, MAX_INDEXED_BYTES } from '../src/core/limits.js';
import { parseCall } from '../src/ingest/segment.js';
import { DIALECTS } from './support/dialects.js';
import { admin, ingest, startTestServer, type TestServer } from './support/server.js';

// Ids, identifier values and event names are indexed; PostgreSQL's b-tree entries hold at most ~2,700
// bytes. Longer values are refused (ids, event names) or set aside as unusable (traits), never a 500.

const emoji = (n: number) => '😀'.repeat(n); // 2 UTF-16 units, 4 UTF-8 bytes each
const han = (n: number) => '中'.repeat(n); // 1 UTF-16 unit, 3 UTF-8 bytes each

describe('indexed text limits', () => {
  it('measures UTF-8 bytes, not characters', () => {
    expect(fitsIndex('a'.repeat(MAX_INDEXED_BYTES))).toBe(true);
    expect(fitsIndex('a'.repeat(MAX_INDEXED_BYTES + 1))).toBe(false);
    expect(fitsIndex(emoji(512))).toBe(true);
    expect(fitsIndex(emoji(513))).toBe(false);
  });

  it('refuses a user id or an event name within 1024 characters but over the byte limit', () => {
    const id = parseCall('track', { userId: han(1000), event: 'X' }, new Date(), () => 'm1');
    expect(id.ok).toBe(false);
    if (!id.ok) expect(id.errors[0]).toMatchObject({ path: 'userId', message: expect.stringMatching(/2048 bytes of UTF-8, got 3000/) });
    const name = parseCall('track', { userId: 'u', event: han(1000) }, new Date(), () => 'm2');
    expect(name.ok).toBe(false);
    if (!name.ok) expect(name.errors[0].path).toBe('event');
  });

  it('sets aside an email longer than 254 characters and an oversized push token', () => {
    expect(normalizeEmail(`${'a'.repeat(250)}@example.com`)).toBeNull();
    expect(normalizeEmail(`${'a'.repeat(200)}@example.com`)).toBe(`${'a'.repeat(200)}@example.com`);
    const facts = deriveFacts({
      type: 'identify',
      userId: 'u1',
      anonymousId: null,
      traits: { email: `${'a'.repeat(3000)}@example.com`, fcm_token: 'f'.repeat(3000) },
      context: {},
      timestamp: '2026-01-01T00:00:00.000Z',
    } as never);
    expect(facts.identifiers.map((i) => i.kind)).toEqual(['user_id']);
    expect(facts.pushTokens).toEqual([]);
    expect(facts.rejected.map((r) => r.field).sort()).toEqual(['traits.email', 'traits.fcm_token']);
  });

  it('refuses an oversized push token or web push endpoint in an admin profile edit', () => {
    const token = validatePatch({ contactPoints: { push: { add: [{ provider: 'fcm', token: 'f'.repeat(3000) }] } } });
    expect(token.ok).toBe(false);
    if (!token.ok) expect(token.errors[0].message).toMatch(/2048 bytes/);
    const endpoint = `https://push.example.com/${'e'.repeat(3000)}`;
    const sub = validatePatch({ contactPoints: { push: { add: [{ provider: 'webpush', subscription: { endpoint, keys: { p256dh: 'k', auth: 'a' } } }] } } });
    expect(sub.ok).toBe(false);
    expect(validatePatch({ contactPoints: { push: { add: [{ provider: 'fcm', token: 'f'.repeat(200) }] } } }).ok).toBe(true);
  });

  it('refuses a journey event name no ingested event could have', () => {
    const result = parseJourneySpec({ key: 'k', name: 'K', trigger: { event: 'x'.repeat(1025) }, steps: { a: { exit: {} } } });
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.errors.some((e) => e.path === 'trigger.event' && /1024/.test(e.message))).toBe(true);
  });
});

for (const dialect of DIALECTS) {
  describe.skipIf(!dialect.available)(`oversized identifiers over HTTP on ${dialect.name}`, () => {
    let srv: TestServer;
    beforeAll(async () => {
      srv = await startTestServer(dialect);
    });
    afterAll(async () => srv?.close());

    it('stores the call and leaves out a 3,000-character email; refuses a 3,000-byte user id with a 400', async () => {
      const res = await ingest(srv.url, 'identify', { userId: 'long-1', traits: { email: `${'a'.repeat(3000)}@example.com`, name: 'Ada' } });
      expect(res.status).toBe(200);
      const profile = await admin(srv.url, 'GET', '/v1/profiles/user_id:long-1');
      expect(profile.status).toBe(200);
      // Kept as a trait (JSON text), not as an identifier or a contact point.
      expect(profile.body.identifiers.map((i: { kind: string }) => i.kind)).toEqual(['user_id']);
      expect(profile.body.contactPoints?.email).toBeUndefined();
      const bad = await ingest(srv.url, 'track', { userId: han(1000), event: 'X' });
      expect(bad.status).toBe(400);
      expect(bad.body.fields[0].path).toBe('userId');
    });
  });
}

for (const dialect of DIALECTS) {
  describe.skipIf(!dialect.available)(`the virtual clock at the end of time on ${dialect.name}`, () => {
    let srv: TestServer;
    beforeAll(async () => {
      srv = await startTestServer(dialect, { CHORUS_VIRTUAL_CLOCK: '2026-01-01T00:00:00Z' });
    });
    afterAll(async () => srv?.close());

    it('refuses to move past the last date a clock can show with a 400, and stays where it was', async () => {
      expect((await admin(srv.url, 'POST', '/v1/clock/advance', { to: '+275760-09-13T00:00:00Z' })).status).toBe(200);
      const past = await admin(srv.url, 'POST', '/v1/clock/advance', { by: 'P1Y' });
      expect(past.status).toBe(400);
      expect(past.body.fields).toEqual([{ path: 'by', message: expect.stringMatching(/past the last date/) }]);
      expect((await admin(srv.url, 'GET', '/v1/clock')).body.now).toBe('+275760-09-13T00:00:00.000Z');
    });
  });
}
