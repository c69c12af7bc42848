import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { deriveFacts } from '../src/core/facts.js';
import { hasFacts } from '../src/core/resolve.js';
import {
  isJunkIdentifier,
  normalizeEmail,
  normalizeIdentifier,
  normalizePhone,
  parseProfileRef,
} from '../src/core/identifiers.js';
import { applyFacts, mergeProfiles, patchProfile, profilePatchSchema, validatePatch } from '../src/core/profile.js';
import { emptyProfile, IDENTIFIER_KINDS, type IncomingEvent, type ProfileFacts, type ProfileState } from '../src/core/types.js';

const T0 = '2024-01-01T00:00:00.000Z';
const T1 = '2024-01-02T00:00:00.000Z';
const T2 = '2024-01-03T00:00:00.000Z';
const T3 = '2024-01-04T00:00:00.000Z';

function ev(p: Partial<IncomingEvent>): IncomingEvent {
  return {
    messageId: 'm1',
    type: 'identify',
    userId: null,
    anonymousId: null,
    previousId: null,
    groupId: null,
    event: null,
    properties: {},
    traits: {},
    context: {},
    timestamp: T1,
    originalTimestamp: null,
    sentAt: null,
    receivedAt: T1,
    raw: {},
    ...p,
  };
}

function facts(p: Partial<ProfileFacts> = {}): ProfileFacts {
  return { identifiers: [], pushTokens: [], traits: {}, contact: {}, consent: { channels: {}, topics: {} }, rejected: [], ...p };
}

const JUNK = ['null', 'undefined', 'anonymous', '0', '-1', 'nil', 'none', 'n/a', 'unknown', '[object Object]'];

describe('identifiers', () => {
  it.each([...JUNK, 'NULL', ' None ', 'N/A', '', '   ', null, undefined, 0, -1, NaN, true, {}, []])(
    'junk %j never normalizes',
    (v) => {
      expect(isJunkIdentifier(v)).toBe(true);
      for (const kind of IDENTIFIER_KINDS) expect(normalizeIdentifier(kind, v)).toBeNull();
    },
  );

  it('property: junk in any casing or padding never normalizes to an identifier', () => {
    const padded = fc
      .tuple(fc.constantFrom(...JUNK), fc.boolean(), fc.constantFrom('', ' ', '\t', '  '))
      .map(([v, upper, pad]) => pad + (upper ? v.toUpperCase() : v) + pad);
    fc.assert(
      fc.property(padded, fc.constantFrom(...IDENTIFIER_KINDS), (v, kind) => normalizeIdentifier(kind, v) === null),
    );
  });

  it('property: whatever normalizes is not junk and is stable', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.integer()), fc.constantFrom(...IDENTIFIER_KINDS), (v, kind) => {
        const n = normalizeIdentifier(kind, v);
        return n === null || (!isJunkIdentifier(n) && normalizeIdentifier(kind, n) === n);
      }),
    );
  });

  it('ids are trimmed strings; numbers become strings', () => {
    expect(normalizeIdentifier('user_id', '  u-1 ')).toBe('u-1');
    expect(normalizeIdentifier('user_id', 42)).toBe('42');
    expect(normalizeIdentifier('anonymous_id', 'a b')).toBe('a b');
  });

  it.each([
    [' Ann@Example.COM ', 'ann@example.com'],
    ['a.b+tag@sub.example.co.uk', 'a.b+tag@sub.example.co.uk'],
    ['ann@example', null],
    ['ann@@example.com', null],
    ['a b@example.com', null],
    ['ann@example..com', null],
    ['ann', null],
    [42, null],
    [null, null],
  ])('normalizeEmail(%j) = %j', (v, want) => expect(normalizeEmail(v)).toBe(want));

  it('property: email normalization is idempotent', () => {
    const noisy = fc
      .tuple(fc.emailAddress(), fc.boolean(), fc.constantFrom('', ' ', '\n'))
      .map(([e, upper, pad]) => pad + (upper ? e.toUpperCase() : e) + pad);
    fc.assert(
      fc.property(fc.oneof(fc.string(), noisy), (v) => {
        const once = normalizeEmail(v);
        return once === null || normalizeEmail(once) === once;
      }),
    );
    fc.assert(fc.property(noisy, (v) => normalizeEmail(v) !== null));
  });

  it.each<[unknown, string | undefined, string | null]>([
    ['+14155552671', undefined, '+14155552671'],
    ['+1 (415) 555-2671', undefined, '+14155552671'],
    ['(415) 555-2671', 'US', '+14155552671'],
    ['(415) 555-2671', 'us', '+14155552671'],
    [4155552671, 'US', '+14155552671'],
    ['07911 123456', 'GB', '+447911123456'],
    ['+44 7911 123456', 'US', '+447911123456'],
    ['(415) 555-2671', undefined, null], // national number without a country
    ['(415) 555-2671', 'XX', null], // unknown country is ignored
    ['+1 555 123 4567', undefined, null], // 555-01xx style fictional numbers are not valid
    ['call me', 'US', null],
    ['', 'US', null],
    [null, 'US', null],
  ])('normalizePhone(%j, %j) = %j', (v, country, want) => expect(normalizePhone(v, country)).toBe(want));

  it.each([
    ['prf_01HZX', { profileId: 'prf_01HZX' }],
    ['user_id:42', { identifier: { kind: 'user_id', value: '42' } }],
    ['user_id: 42 ', { identifier: { kind: 'user_id', value: '42' } }],
    ['email:Ann@Example.com', { identifier: { kind: 'email', value: 'ann@example.com' } }],
    ['phone:+1 415 555 2671', { identifier: { kind: 'phone', value: '+14155552671' } }],
    ['anonymous_id:a:b', { identifier: { kind: 'anonymous_id', value: 'a:b' } }],
    [
      'webpush_endpoint:https://fcm.googleapis.com/fcm/send/x',
      { identifier: { kind: 'webpush_endpoint', value: 'https://fcm.googleapis.com/fcm/send/x' } },
    ],
  ])('parseProfileRef(%j)', (ref, want) => expect(parseProfileRef(ref)).toEqual(want));

  it.each(['fax:123', 'user_id:null', 'user_id:', 'email:not-an-email', 'phone:4155552671', 'prf_', 'bob', ''])(
    'parseProfileRef(%j) is an error listing the kinds',
    (ref) => {
      const r = parseProfileRef(ref);
      expect(r).toHaveProperty('error');
      if ('error' in r) for (const kind of IDENTIFIER_KINDS) expect(r.error).toContain(kind);
    },
  );
});

describe('deriveFacts', () => {
  it('identifiers in priority order, junk and duplicates removed', () => {
    const f = deriveFacts(
      ev({
        userId: 'u1',
        anonymousId: 'anon-1',
        traits: { email: 'Ann@Example.com', phone: '+14155552671' },
        context: { traits: { email: 'ann@example.com ' } },
      }),
    );
    expect(f.identifiers).toEqual([
      { kind: 'user_id', value: 'u1' },
      { kind: 'email', value: 'ann@example.com' },
      { kind: 'phone', value: '+14155552671' },
      { kind: 'anonymous_id', value: 'anon-1' },
    ]);
    expect(deriveFacts(ev({ userId: 'null', anonymousId: '  ', traits: { email: 'n/a' } })).identifiers).toEqual([]);
    expect(deriveFacts(ev({ userId: 'null', traits: { email: 'n/a' } })).rejected).toEqual([]);
  });

  it('alias: previousId is left to the resolver', () => {
    const f = deriveFacts(ev({ type: 'alias', userId: 'u2', previousId: 'u1', anonymousId: 'a1' }));
    expect(f.identifiers).toEqual([
      { kind: 'user_id', value: 'u2' },
      { kind: 'anonymous_id', value: 'a1' },
    ]);
  });

  it('traits are identify traits verbatim; context.traits only supply email/phone', () => {
    const traits = { email: 'a@x.io', plan: 'pro', nested: { a: 1 }, gone: null };
    expect(deriveFacts(ev({ traits })).traits).toEqual(traits);
    const track = deriveFacts(
      ev({ type: 'track', event: 'Bought', context: { traits: { email: 'a@x.io', phone: '+14155552671', plan: 'pro' } } }),
    );
    expect(track.traits).toEqual({});
    expect(track.identifiers.map((i) => i.kind)).toEqual(['email', 'phone']);
    expect(track.contact).toEqual({ email: 'a@x.io', sms: '+14155552671' });
    // group traits describe the group, not the user
    const group = deriveFacts(ev({ type: 'group', groupId: 'g1', traits: { email: 'billing@acme.io', plan: 'pro' } }));
    expect(group.traits).toEqual({});
    expect(group.identifiers).toEqual([]);
  });

  it.each([
    [{ phone: '(415) 555-2671', country: 'us' }, {}],
    [{ phone: '(415) 555-2671', address: { country: 'US' } }, {}],
    [{ phone: '(415) 555-2671' }, { traits: { country: 'US' } }],
    [{ phone: '+1 415-555-2671', country: 'United States' }, {}],
  ])('phone default country from %j / context %j', (traits, context) => {
    expect(deriveFacts(ev({ traits, context })).contact.sms).toBe('+14155552671');
  });

  it('unusable email/phone are rejected, not identifiers', () => {
    const f = deriveFacts(ev({ traits: { email: 'ann@', phone: '555' }, context: { traits: { phone: 12 } } }));
    expect(f.identifiers).toEqual([]);
    expect(f.contact).toEqual({});
    expect(f.rejected.map((r) => r.field)).toEqual(['traits.email', 'traits.phone', 'context.traits.phone']);
  });

  it.each<[Record<string, unknown>, ProfileFacts['contact'], string[]]>([
    [{ phone: '+14155552671', whatsapp: true }, { sms: '+14155552671', whatsapp: '+14155552671' }, []],
    [{ whatsapp: '+447911123456' }, { whatsapp: '+447911123456' }, []],
    [{ whatsapp: '07911 123456', country: 'GB' }, { whatsapp: '+447911123456' }, []],
    [{ whatsapp: false, phone: '+14155552671' }, { sms: '+14155552671' }, []],
    [{ whatsapp: true }, {}, ['traits.whatsapp']],
    [{ whatsapp: 'yes please' }, {}, ['traits.whatsapp']],
    [{ in_app: true }, { inApp: true }, []],
    [{ in_app: false }, { inApp: false }, []],
    [{ in_app: 'yes' }, {}, ['traits.in_app']],
  ])('contact from %j', (traits, contact, rejected) => {
    const f = deriveFacts(ev({ userId: 'u1', traits }));
    expect(f.contact).toEqual(contact);
    expect(f.rejected.map((r) => r.field)).toEqual(rejected);
  });

  it('push tokens from context.device and traits', () => {
    const sub = { endpoint: 'https://push.example.com/abc', keys: { p256dh: 'pk', auth: 'au' } };
    const f = deriveFacts(
      ev({
        timestamp: T2,
        traits: { fcm_token: ['f1', 'f2', 'null', ''], apns_token: 'a1', webpush_subscription: sub },
        context: { device: { type: 'ios', token: 'dev-apns' } },
      }),
    );
    expect(f.pushTokens).toEqual([
      { provider: 'apns', token: 'dev-apns', updatedAt: T2 },
      { provider: 'fcm', token: 'f1', updatedAt: T2 },
      { provider: 'fcm', token: 'f2', updatedAt: T2 },
      { provider: 'apns', token: 'a1', updatedAt: T2 },
      { provider: 'webpush', token: sub.endpoint, subscription: sub, updatedAt: T2 },
    ]);
    const track = deriveFacts(ev({ type: 'track', context: { device: { type: 'android', token: 'dev-fcm' } } }));
    expect(track.pushTokens).toEqual([{ provider: 'fcm', token: 'dev-fcm', updatedAt: T1 }]);
    expect(deriveFacts(ev({ context: { device: { type: 'web', token: 'x' } } })).pushTokens).toEqual([]);
    expect(deriveFacts(ev({ context: { device: { type: 'ios', token: 'undefined' } } })).pushTokens).toEqual([]);
  });

  it.each([
    { endpoint: 'http://push.example.com/abc', keys: { p256dh: 'pk', auth: 'au' } },
    { endpoint: 'https://push.example.com/abc', keys: { p256dh: 'pk' } },
    { endpoint: 'not a url', keys: { p256dh: 'pk', auth: 'au' } },
    'https://push.example.com/abc',
  ])('bad web push subscription %j is rejected', (sub) => {
    const f = deriveFacts(ev({ traits: { webpush_subscription: sub } }));
    expect(f.pushTokens).toEqual([]);
    expect(f.rejected.map((r) => r.field)).toEqual(['traits.webpush_subscription']);
  });

  it('consent from traits, subscriptions and context.consent', () => {
    const f = deriveFacts(
      ev({
        traits: {
          email_consent: 'subscribed',
          sms_consent: false,
          whatsapp_consent: true,
          in_app_consent: 'Unsubscribed',
          push_consent: 'maybe',
          subscriptions: { newsletter: 'unsubscribed', promos: true, Marketing: false, bad: 'x' },
        },
        context: { consent: { categoryPreferences: { Marketing: true, Analytics: false, Ads: 'yes' } } },
      }),
    );
    expect(f.consent).toEqual({
      channels: { email: 'subscribed', sms: 'unsubscribed', whatsapp: 'subscribed', in_app: 'unsubscribed' },
      topics: { Marketing: 'unsubscribed', Analytics: 'unsubscribed', newsletter: 'unsubscribed', promos: 'subscribed' },
    });
    expect(f.rejected.map((r) => r.field).sort()).toEqual([
      'context.consent.categoryPreferences.Ads',
      'traits.push_consent',
      'traits.subscriptions.bad',
    ]);
    // context consent applies on any call; trait consent only on identify
    const track = deriveFacts(
      ev({ type: 'track', traits: { email_consent: true }, context: { consent: { categoryPreferences: { A: true } } } }),
    );
    expect(track.consent).toEqual({ channels: {}, topics: { A: 'subscribed' } });
  });

  it.each<[Record<string, unknown>, Record<string, unknown>, Partial<ProfileFacts>, string[]]>([
    [{ timezone: 'america/new_york' }, { timezone: 'Europe/Paris' }, { timezone: 'America/New_York' }, []],
    [{}, { timezone: 'Europe/Paris', locale: 'fr-FR' }, { timezone: 'Europe/Paris', locale: 'fr-FR' }, []],
    [{ timezone: 'Mars/Olympus' }, { timezone: 'UTC' }, { timezone: 'UTC' }, ['traits.timezone']],
    [{ timezone: '+05:00' }, {}, {}, ['traits.timezone']],
    [{ locale: 'en_us' }, {}, { locale: 'en-US' }, []],
    [{ locale: 'not a locale!' }, {}, {}, ['traits.locale']],
    [{ preferred_channel: 'SMS' }, {}, { preferredChannel: 'sms' }, []],
    [{ preferred_channel: 'fax' }, {}, {}, ['traits.preferred_channel']],
  ])('traits %j, context %j → %j', (traits, context, want, rejected) => {
    const f = deriveFacts(ev({ traits, context }));
    expect({ timezone: f.timezone, locale: f.locale, preferredChannel: f.preferredChannel }).toEqual({
      timezone: undefined,
      locale: undefined,
      preferredChannel: undefined,
      ...want,
    });
    expect(f.rejected.map((r) => r.field)).toEqual(rejected);
  });
});

describe('applyFacts', () => {
  const base = () => emptyProfile('prf_a', T0);

  it('newer wins on out-of-order events, and does not mutate', () => {
    const p0 = base();
    const snapshot = structuredClone(p0);
    const newer = facts({ traits: { plan: 'pro' }, timezone: 'Europe/Paris', contact: { email: 'new@x.io' } });
    const older = facts({ traits: { plan: 'free', city: 'Oslo' }, timezone: 'UTC', contact: { email: 'old@x.io', sms: '+14155552671' } });
    const p = applyFacts(applyFacts(p0, newer, T2, 'identify'), older, T1, 'identify');
    expect(p0).toEqual(snapshot);
    expect(p.traits).toEqual({ plan: 'pro', city: 'Oslo' });
    expect(p.timezone).toBe('Europe/Paris');
    expect(p.contactPoints.email).toEqual({ address: 'new@x.io', updatedAt: T2 });
    expect(p.contactPoints.sms).toEqual({ phone: '+14155552671', updatedAt: T1 });
    expect(p.fieldTimes).toMatchObject({ 'traits.plan': T2, 'traits.city': T1, timezone: T2 });
    expect(p.updatedAt).toBe(T2);
    expect(applyFacts(p, facts(), T0, 'identify').updatedAt).toBe(T2);
  });

  it('null deletes a trait and an older set does not resurrect it', () => {
    let p = applyFacts(base(), facts({ traits: { plan: 'pro' } }), T1, 'identify');
    p = applyFacts(p, facts({ traits: { plan: null } }), T3, 'identify');
    p = applyFacts(p, facts({ traits: { plan: 'free' } }), T2, 'identify');
    expect(p.traits).toEqual({});
    expect(p.fieldTimes['traits.plan']).toBe(T3);
  });

  it('consent records carry source and time; older changes lose', () => {
    let p = applyFacts(base(), facts({ consent: { channels: { email: 'unsubscribed' }, topics: { news: 'subscribed' } } }), T2, 'identify');
    p = applyFacts(p, facts({ consent: { channels: { email: 'subscribed' }, topics: { news: 'unsubscribed' } } }), T1, 'context.consent');
    expect(p.consent.channels.email).toEqual({ status: 'unsubscribed', source: 'identify', updatedAt: T2 });
    expect(p.consent.topics.news).toEqual({ status: 'subscribed', source: 'identify', updatedAt: T2 });
  });

  it('push tokens upsert by provider and token', () => {
    const tok = (token: string, updatedAt: string) => ({ provider: 'fcm' as const, token, updatedAt });
    let p = applyFacts(base(), facts({ pushTokens: [tok('t1', T2)] }), T2, 'identify');
    p = applyFacts(p, facts({ pushTokens: [tok('t1', T1), tok('t2', T1)] }), T1, 'identify');
    expect(p.contactPoints.push).toEqual([tok('t1', T2), tok('t2', T1)]);
    p = applyFacts(p, facts({ pushTokens: [tok('t2', T3)] }), T3, 'identify');
    expect(p.contactPoints.push).toEqual([tok('t2', T3), tok('t1', T2)]);
  });
});

// ---- generators for the properties ----

const TRAIT_KEYS = ['name', 'plan', 'age', 'city'];
const time = (max: number) => fc.integer({ min: 0, max }).map((n) => new Date(Date.UTC(2024, 0, 1) + n * 1000).toISOString());
const arbFacts = fc.record({
  traits: fc.dictionary(fc.constantFrom(...TRAIT_KEYS), fc.oneof(fc.integer(), fc.string(), fc.constant(null))),
  email: fc.option(fc.constantFrom('a@x.io', 'b@x.io')),
  timezone: fc.option(fc.constantFrom('UTC', 'Europe/Paris')),
  consent: fc.option(fc.constantFrom('subscribed', 'unsubscribed') as fc.Arbitrary<'subscribed' | 'unsubscribed'>),
  push: fc.option(fc.constantFrom('tok1', 'tok2')),
});
type FactsInput = typeof arbFacts extends fc.Arbitrary<infer T> ? T : never;
const toFacts = (r: FactsInput, at: string): ProfileFacts =>
  facts({
    traits: r.traits,
    contact: r.email ? { email: r.email } : {},
    timezone: r.timezone ?? undefined,
    consent: { channels: r.consent ? { sms: r.consent } : {}, topics: r.consent ? { news: r.consent } : {} },
    pushTokens: r.push ? [{ provider: 'apns', token: r.push, updatedAt: at }] : [],
  });
/** A history entry: event facts, or an admin patch that removes the email address. */
const arbOp = (maxSeconds: number) => fc.record({ t: time(maxSeconds), f: arbFacts, removeEmail: fc.boolean() });
type Op = { t: string; f: FactsInput; removeEmail: boolean };
const run = (p: ProfileState, ops: Op[]) =>
  ops.reduce(
    (s, o) =>
      o.removeEmail ? patchProfile(s, { contactPoints: { email: null } }, o.t) : applyFacts(s, toFacts(o.f, o.t), o.t, 'identify'),
    p,
  );
const content = ({ id: _id, createdAt: _c, updatedAt: _u, ...rest }: ProfileState) => rest;

describe('newer-wins properties', () => {
  it('applying the same facts in any order yields the same profile', () => {
    const ops = fc.uniqueArray(arbOp(1_000_000), { selector: (o) => o.t, maxLength: 8 });
    const withOrder = ops.chain((o) => fc.tuple(fc.constant(o), fc.shuffledSubarray(o, { minLength: o.length })));
    fc.assert(
      fc.property(withOrder, ([inOrder, shuffled]) => {
        const a = run(emptyProfile('prf_a', T0), inOrder);
        const b = run(emptyProfile('prf_a', T0), shuffled);
        expect(b.traits).toEqual(a.traits);
        expect(b).toEqual(a);
      }),
    );
  });

  it('mergeProfiles is commutative on content (even with timestamp ties)', () => {
    const history = fc.array(arbOp(20), { maxLength: 6 });
    fc.assert(
      fc.property(history, history, time(20), time(20), (ha, hb, ca, cb) => {
        const a = run(emptyProfile('prf_a', ca), ha);
        const b = run(emptyProfile('prf_b', cb), hb);
        const ab = mergeProfiles(a, b, T3);
        const ba = mergeProfiles(b, a, T3);
        expect(ab.id).toBe('prf_a');
        expect(ba.id).toBe('prf_b');
        expect({ ...ab, id: '' }).toEqual({ ...ba, id: '' });
        expect(ab.createdAt).toBe(ca < cb ? ca : cb);
      }),
    );
  });

  it('merging two histories equals one profile that saw every event', () => {
    const ops = fc.uniqueArray(arbOp(1_000_000), { selector: (o) => o.t, maxLength: 10 });
    fc.assert(
      fc.property(ops, fc.array(fc.boolean(), { minLength: 10, maxLength: 10 }), (all, side) => {
        const a = run(emptyProfile('prf_a', T0), all.filter((_, i) => side[i]));
        const b = run(emptyProfile('prf_b', T0), all.filter((_, i) => !side[i]));
        expect(content(mergeProfiles(a, b, T3))).toEqual(content(run(emptyProfile('prf_c', T0), all)));
      }),
    );
  });
});

describe('hasFacts', () => {
  it('facts it calls empty change nothing on any profile but its time; the others can change it', () => {
    const op = fc.record({ t: time(1_000_000), f: arbFacts });
    fc.assert(
      fc.property(fc.array(arbOp(1_000_000), { maxLength: 6 }), op, (history, { t, f }) => {
        const p = run(emptyProfile('prf_a', T0), history);
        const next = toFacts(f, t);
        if (!hasFacts(next)) expect(content(applyFacts(p, next, t, 'track'))).toEqual(content(p));
      }),
    );
    expect(hasFacts(facts({ identifiers: [{ kind: 'user_id', value: 'u1' }] }))).toBe(false);
    for (const f of [
      facts({ traits: { plan: null } }),
      facts({ contact: { inApp: false } }),
      facts({ consent: { channels: {}, topics: { news: 'unsubscribed' } } }),
      facts({ locale: 'fr-FR' }),
      facts({ preferredChannel: 'sms' }),
      facts({ pushTokens: [{ provider: 'apns', token: 't', updatedAt: T1 }] }),
    ])
      expect(hasFacts(f)).toBe(true);
  });
});

describe('mergeProfiles', () => {
  it('newer field wins, deletions included; push tokens union; earliest createdAt', () => {
    let a = emptyProfile('prf_a', T1);
    a = applyFacts(a, facts({ traits: { plan: 'pro', city: 'Oslo' }, pushTokens: [{ provider: 'fcm', token: 'f1', updatedAt: T1 }] }), T1, 'identify');
    a = applyFacts(a, facts({ consent: { channels: { email: 'subscribed' }, topics: {} } }), T3, 'api');
    let b = emptyProfile('prf_b', T0);
    b = applyFacts(b, facts({ traits: { plan: 'free', city: null }, locale: 'de-DE', pushTokens: [{ provider: 'apns', token: 'a1', updatedAt: T2 }] }), T2, 'identify');
    b = applyFacts(b, facts({ consent: { channels: { email: 'unsubscribed' }, topics: {} } }), T2, 'identify');
    const m = mergeProfiles(a, b, T3);
    expect(m.id).toBe('prf_a');
    expect(m.traits).toEqual({ plan: 'free' });
    expect(m.fieldTimes).toMatchObject({ 'traits.plan': T2, 'traits.city': T2, locale: T2 });
    expect(m.locale).toBe('de-DE');
    expect(m.consent.channels.email).toEqual({ status: 'subscribed', source: 'api', updatedAt: T3 });
    expect(m.contactPoints.push.map((t) => t.token)).toEqual(['a1', 'f1']);
    expect(m.createdAt).toBe(T0);
    expect(m.updatedAt).toBe(T3);
  });
});

describe('patchProfile', () => {
  it('normalizes email/phone, removes with null, and keeps newer-wins', () => {
    let p = patchProfile(
      emptyProfile('prf_a', T0),
      {
        traits: { plan: 'pro' },
        contactPoints: { email: ' Ann@Example.com ', sms: '+1 415 555 2671', whatsapp: 'nope', inApp: true },
        consent: { channels: { sms: 'subscribed' }, topics: { news: 'unknown' } },
        timezone: 'europe/paris',
        preferredChannel: 'sms',
      },
      T2,
    );
    expect(p.contactPoints).toMatchObject({
      email: { address: 'ann@example.com', updatedAt: T2 },
      sms: { phone: '+14155552671', updatedAt: T2 },
      in_app: { enabled: true, updatedAt: T2 },
    });
    expect(p.contactPoints.whatsapp).toBeUndefined();
    expect(p.consent.channels.sms).toEqual({ status: 'subscribed', source: 'api', updatedAt: T2 });
    expect(p.consent.topics.news?.status).toBe('unknown');
    expect([p.timezone, p.preferredChannel]).toEqual(['Europe/Paris', 'sms']);

    p = patchProfile(p, { contactPoints: { email: null }, timezone: null }, T3);
    expect(p.contactPoints.email).toBeUndefined();
    expect(p.timezone).toBeNull();
    // an event older than the removal doesn't bring the address back
    p = applyFacts(p, facts({ contact: { email: 'ann@example.com' }, timezone: 'UTC' }), T2, 'identify');
    expect(p.contactPoints.email).toBeUndefined();
    expect(p.timezone).toBeNull();
  });

  it('adds and removes push tokens', () => {
    const sub = { endpoint: 'https://push.example.com/1', keys: { p256dh: 'p', auth: 'a' } };
    let p = patchProfile(
      emptyProfile('prf_a', T0),
      { contactPoints: { push: { add: [{ provider: 'fcm', token: 'f1' }, { provider: 'webpush', subscription: sub }] } } },
      T1,
    );
    expect(p.contactPoints.push).toEqual([
      { provider: 'fcm', token: 'f1', updatedAt: T1 },
      { provider: 'webpush', token: sub.endpoint, subscription: sub, updatedAt: T1 },
    ]);
    p = patchProfile(p, { contactPoints: { push: { remove: ['f1'] } } }, T2);
    expect(p.contactPoints.push.map((t) => t.token)).toEqual([sub.endpoint]);
  });
});

describe('validatePatch', () => {
  it('accepts a full valid patch', () => {
    const body = {
      traits: { plan: 'pro', old: null },
      contactPoints: {
        email: 'a@x.io',
        sms: '+14155552671',
        whatsapp: null,
        inApp: false,
        push: { add: [{ provider: 'apns', token: 't' }], remove: ['x'] },
      },
      consent: { channels: { email: 'unsubscribed' }, topics: { news: 'unknown' } },
      timezone: 'Europe/Paris',
      locale: 'en-GB',
      preferredChannel: 'whatsapp',
    };
    expect(validatePatch(body)).toEqual({ ok: true, value: body });
    expect(validatePatch({})).toEqual({ ok: true, value: {} });
  });

  it('reports every problem with its path, naming unknown fields', () => {
    const r = validatePatch({
      nickname: 'x',
      contactPoints: { email: 'nope', sms: '555', fax: '1' },
      consent: { channels: { email: 'yes', pigeon: 'subscribed' } },
      timezone: 'Mars/Olympus',
      preferredChannel: 'fax',
    });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    const paths = r.errors.map((e) => e.path).sort();
    expect(paths).toEqual([
      'consent.channels.email',
      'consent.channels.pigeon',
      'contactPoints.email',
      'contactPoints.fax',
      'contactPoints.sms',
      'nickname',
      'preferredChannel',
      'timezone',
    ]);
    expect(r.errors.find((e) => e.path === 'nickname')?.message).toContain('nickname');
    expect(validatePatch([]).ok).toBe(false);
  });

  it('the schema converts to JSON Schema for OpenAPI', () => {
    expect(z.toJSONSchema(profilePatchSchema)).toMatchObject({
      type: 'object',
      additionalProperties: false,
    });
  });
});

describe('hostile keys', () => {
  it('a __proto__ trait or topic stays data', () => {
    const traits = JSON.parse('{"__proto__": {"polluted": true}, "subscriptions": {"__proto__": true}}') as Record<string, unknown>;
    const f = deriveFacts(ev({ traits }));
    expect(Object.hasOwn(f.consent.topics, '__proto__')).toBe(true);
    const p = applyFacts(emptyProfile('prf_a', T0), f, T1, 'identify');
    const m = mergeProfiles(p, emptyProfile('prf_b', T0), T2);
    for (const o of [p.traits, p.consent.topics, m.traits, m.consent.topics]) {
      expect(Object.getPrototypeOf(o)).toBe(Object.prototype);
      expect(Object.hasOwn(o, '__proto__')).toBe(true);
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});
