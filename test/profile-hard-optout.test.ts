// Pure tests of hard opt-outs on profiles (src/core/profile.ts): setting one through an admin patch, its
// stickiness against identify traits and soft edits, the explicit re-opt-in, merges, and patch validation.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { decide, isHardOptOut, type GateFacts, type SendRequest } from '../src/core/gate/decide.js';
import { DEFAULT_SETTINGS } from '../src/core/gate/settings.js';
import { applyFacts, HARD_API_SOURCE, mergeProfiles, patchProfile, profilePatchSchema, validatePatch } from '../src/core/profile.js';
import { emptyProfile, isHardOptOutRecord, type ConsentRecord, type ProfileFacts, type ProfileState } from '../src/core/types.js';

const T0 = '2024-01-01T00:00:00.000Z';
const T1 = '2024-01-02T00:00:00.000Z';
const T2 = '2024-01-03T00:00:00.000Z';
const T3 = '2024-01-04T00:00:00.000Z';

function facts(p: Partial<ProfileFacts> = {}): ProfileFacts {
  return { identifiers: [], pushTokens: [], traits: {}, contact: {}, consent: { channels: {}, topics: {} }, rejected: [], ...p };
}
const smsConsent = (status: 'subscribed' | 'unsubscribed') => facts({ consent: { channels: { sms: status }, topics: {} } });
const hard = (reason?: string) => ({ status: 'unsubscribed' as const, hard: true as const, ...(reason !== undefined ? { reason } : {}) });
const withHard = (at = T1, reason?: string) => patchProfile(emptyProfile('prf_a', T0), { consent: { channels: { sms: hard(reason) } } }, at);

describe('hard opt-out through an admin patch', () => {
  it('is recorded with source hard:api and the reason, and counts as a hard opt-out', () => {
    const p = withHard(T1, ' asked support to stop texting ');
    expect(p.consent.channels.sms).toEqual({ status: 'unsubscribed', source: HARD_API_SOURCE, reason: 'asked support to stop texting', updatedAt: T1 });
    expect(HARD_API_SOURCE).toBe('hard:api');
    expect(isHardOptOut(p, 'sms')).toBe(true);
    expect(isHardOptOut(p, 'email')).toBe(false);
    // No reason: no reason field at all.
    expect(withHard(T1).consent.channels.sms).toEqual({ status: 'unsubscribed', source: 'hard:api', updatedAt: T1 });
  });

  it('applies even over a consent record stamped later (a STOP is never out of date)', () => {
    let p = applyFacts(emptyProfile('prf_a', T0), smsConsent('subscribed'), T3, 'identify');
    p = patchProfile(p, { consent: { channels: { sms: hard() } } }, T2);
    expect(p.consent.channels.sms?.source).toBe('hard:api');
  });

  it('a soft unsubscribe is not hard', () => {
    const p = patchProfile(emptyProfile('prf_a', T0), { consent: { channels: { sms: 'unsubscribed' } } }, T1);
    expect(p.consent.channels.sms).toEqual({ status: 'unsubscribed', source: 'api', updatedAt: T1 });
    expect(isHardOptOut(p, 'sms')).toBe(false);
  });
});

describe('stickiness', () => {
  it.each(['subscribed', 'unsubscribed'] as const)('a later identify with sms_consent %s leaves it in place', (status) => {
    const p = applyFacts(withHard(T1, 'why'), smsConsent(status), T3, 'identify');
    expect(p.consent.channels.sms).toEqual({ status: 'unsubscribed', source: 'hard:api', reason: 'why', updatedAt: T1 });
  });

  it('journey profile updates and context consent do not clear it either; other channels and topics still change', () => {
    let p = applyFacts(withHard(T1), facts({ consent: { channels: { sms: 'subscribed', email: 'subscribed' }, topics: { news: 'subscribed' } } }), T2, 'journey');
    p = applyFacts(p, smsConsent('subscribed'), T3, 'context.consent');
    expect(isHardOptOut(p, 'sms')).toBe(true);
    expect(p.consent.channels.email).toEqual({ status: 'subscribed', source: 'journey', updatedAt: T2 });
    expect(p.consent.topics.news?.status).toBe('subscribed');
  });

  it('hard opt-outs from engagement reports (hard:stop, hard:complaint, legacy sms_stop) are sticky too', () => {
    for (const source of ['hard:stop', 'hard:complaint', 'sms_stop', 'complaint']) {
      const p0 = emptyProfile('prf_a', T0);
      p0.consent.channels.sms = { status: 'unsubscribed', source, updatedAt: T1 };
      const p = applyFacts(p0, smsConsent('subscribed'), T3, 'identify');
      expect(p.consent.channels.sms?.source).toBe(source);
    }
  });

  it('admin unsubscribed or unknown leaves it; only an admin subscribed (a re-opt-in) clears it', () => {
    let p = patchProfile(withHard(T1), { consent: { channels: { sms: 'unsubscribed' } } }, T2);
    expect(p.consent.channels.sms?.source).toBe('hard:api');
    p = patchProfile(p, { consent: { channels: { sms: 'unknown' } } }, T2);
    expect(p.consent.channels.sms?.source).toBe('hard:api');
    p = patchProfile(p, { consent: { channels: { sms: 'subscribed' } } }, T3);
    expect(p.consent.channels.sms).toEqual({ status: 'subscribed', source: 'api', updatedAt: T3 });
    expect(isHardOptOut(p, 'sms')).toBe(false);
    // After the re-opt-in, identify consent works again (newer wins).
    p = applyFacts(p, smsConsent('unsubscribed'), '2024-01-05T00:00:00.000Z', 'identify');
    expect(p.consent.channels.sms?.status).toBe('unsubscribed');
  });

  it('a re-opt-in older than the hard opt-out loses (newer wins for the re-opt-in)', () => {
    const p = patchProfile(withHard(T2), { consent: { channels: { sms: 'subscribed' } } }, T1);
    expect(isHardOptOut(p, 'sms')).toBe(true);
  });
});

describe('merges keep hard opt-outs', () => {
  const subscribedAt = (id: string, at: string) => applyFacts(emptyProfile(id, T0), smsConsent('subscribed'), at, 'identify');
  const hardOn = (id: string, at: string, reason?: string) =>
    patchProfile(emptyProfile(id, T0), { consent: { channels: { sms: hard(reason) } } }, at);

  it('a hard opt-out on either side survives a newer record on the other', () => {
    for (const [a, b] of [
      [hardOn('prf_a', T1), subscribedAt('prf_b', T3)],
      [subscribedAt('prf_a', T3), hardOn('prf_b', T1)],
    ]) {
      const m = mergeProfiles(a!, b!, T3);
      expect(m.consent.channels.sms).toEqual({ status: 'unsubscribed', source: 'hard:api', updatedAt: T1 });
    }
    // Even an admin re-opt-in on the other profile: it was made without knowing of this opt-out.
    const reopted = patchProfile(hardOn('prf_b', T1), { consent: { channels: { sms: 'subscribed' } } }, T2);
    const m = mergeProfiles(hardOn('prf_a', T1, 'stop'), reopted, T3);
    expect(m.consent.channels.sms?.reason).toBe('stop');
  });

  it('between two hard opt-outs the newer wins; plain records still merge newer-wins', () => {
    const m = mergeProfiles(hardOn('prf_a', T1, 'old'), hardOn('prf_b', T2, 'new'), T3);
    expect(m.consent.channels.sms?.reason).toBe('new');
    const plain = mergeProfiles(subscribedAt('prf_a', T1), applyFacts(emptyProfile('prf_b', T0), smsConsent('unsubscribed'), T2, 'identify'), T3);
    expect(plain.consent.channels.sms).toEqual({ status: 'unsubscribed', source: 'identify', updatedAt: T2 });
  });

  it('property: merging stays commutative on content with hard opt-outs in play', () => {
    const record: fc.Arbitrary<ConsentRecord | undefined> = fc.option(
      fc.record({
        status: fc.constantFrom('subscribed', 'unsubscribed', 'unknown' as const),
        source: fc.constantFrom('identify', 'api', 'hard:api', 'hard:stop'),
        updatedAt: fc.constantFrom(T0, T1, T2),
      }),
      { nil: undefined },
    );
    const prof = (id: string, sms: ConsentRecord | undefined, email: ConsentRecord | undefined): ProfileState => {
      const p = emptyProfile(id, T0);
      if (sms) p.consent.channels.sms = sms;
      if (email) p.consent.channels.email = email;
      return p;
    };
    fc.assert(
      fc.property(record, record, record, record, (sa, ea, sb, eb) => {
        const [a, b] = [prof('prf_a', sa, ea), prof('prf_b', sb, eb)];
        const ab = mergeProfiles(a, b, T3);
        expect({ ...ab, id: '' }).toEqual({ ...mergeProfiles(b, a, T3), id: '' });
        // A hard opt-out on either side is never lost.
        for (const ch of ['sms', 'email'] as const) {
          if (isHardOptOutRecord(a.consent.channels[ch]) || isHardOptOutRecord(b.consent.channels[ch])) {
            expect(isHardOptOutRecord(ab.consent.channels[ch])).toBe(true);
          }
        }
      }),
    );
  });
});

describe('validatePatch for hard opt-outs', () => {
  it('accepts a status string or the hard object', () => {
    const body = { consent: { channels: { sms: hard('asked support'), email: 'subscribed', whatsapp: hard() } } };
    expect(validatePatch(body)).toEqual({ ok: true, value: body });
  });

  it.each([
    ['maybe', 'consent.channels.sms', 'must be "subscribed", "unsubscribed" or "unknown", or a hard opt-out'],
    [true, 'consent.channels.sms', 'or a hard opt-out'],
    [{ status: 'unsubscribed', hard: false }, 'consent.channels.sms', 'hard: must be true'],
    [{ status: 'unsubscribed' }, 'consent.channels.sms', 'hard: must be true'],
    [{ status: 'subscribed', hard: true }, 'consent.channels.sms', 'status: a hard opt-out has status "unsubscribed"'],
    [{ status: 'unsubscribed', hard: true, reason: '  ' }, 'consent.channels.sms.reason', 'must not be blank'],
    [{ status: 'unsubscribed', hard: true, reason: 'x'.repeat(501) }, 'consent.channels.sms.reason', 'at most 500'],
    [{ status: 'unsubscribed', hard: true, until: 'never' }, 'consent.channels.sms.until', 'unknown field'],
  ])('%j is refused at %s', (value, path, message) => {
    const r = validatePatch({ consent: { channels: { sms: value } } });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors).toHaveLength(1);
    expect(r.errors[0]!.path).toBe(path);
    expect(r.errors[0]!.message).toContain(message);
  });

  it('topics take status strings only (a hard opt-out is per channel)', () => {
    const r = validatePatch({ consent: { topics: { news: hard() } } });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.errors[0]!.path).toBe('consent.topics.news');
  });

  it('the schema still converts to JSON Schema for OpenAPI, with both forms', () => {
    const schema = JSON.stringify(z.toJSONSchema(profilePatchSchema));
    expect(schema).toContain('"hard"');
    expect(schema).toContain('anyOf');
  });
});

describe('the gate decision', () => {
  it('a hard opt-out set by patch suppresses a transactional SMS, naming the source and the reason', () => {
    const profile = patchProfile(
      patchProfile(emptyProfile('prf_a', T0), { contactPoints: { sms: '+14155552671' } }, T1),
      { consent: { channels: { sms: hard('asked support to stop') } } },
      T1,
    );
    const req: SendRequest = {
      channel: 'sms',
      contentChannels: ['sms'],
      category: 'transactional',
      priority: 'normal',
      tags: [],
      overrideCaps: false,
      whatsappTemplate: false,
      fallback: [],
    };
    const f: GateFacts = {
      now: new Date(T2),
      zone: 'UTC',
      profile,
      hasUserId: true,
      settings: DEFAULT_SETTINGS,
      history: [],
      engagement: { customer: {}, workspace: {} },
      whatsappWindowOpen: false,
      suppressedBy: [],
    };
    const d = decide(req, f);
    expect(d.outcome).toBe('suppress');
    expect(d.rule).toBe('consent');
    expect(d.reason).toBe('hard opt-out on sms (hard:api: asked support to stop)');
  });
});
