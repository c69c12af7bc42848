// Applying facts, admin patches and merges to a profile with "newer wins" per field. Pure: no I/O.
import { z } from 'zod';
import { getOwn, normalizeLocale, normalizeTimeZone, putOwn } from './facts.js';
import { normalizeEmail, normalizePhone } from './identifiers.js';
import { fitsIndex, MAX_INDEXED_BYTES } from './limits.js';
import {
  CHANNELS,
  isHardOptOutRecord,
  type Channel,
  type ConsentRecord,
  type ConsentStatus,
  type ContactPoints,
  type ProfileFacts,
  type ProfileState,
  type PushToken,
  type WebPushSubscription,
} from './types.js';

// ---------------------------------------------------------------------------------------------------
// Newer wins
// ---------------------------------------------------------------------------------------------------

/** A value with the time it was set; `value: undefined` is a deletion (tombstone) or never set. */
interface Timed<T> {
  time: string;
  value: T | undefined;
}

/** Order-independent serialization, used only to break exact-time ties deterministically. */
function stable(v: unknown): string {
  if (v === undefined) return '';
  if (Array.isArray(v)) return `[${v.map(stable).join(',')}]`;
  if (typeof v === 'object' && v !== null) {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o).sort().map((k) => `${JSON.stringify(k)}:${stable(o[k])}`).join(',')}}`;
  }
  return JSON.stringify(v) ?? '';
}

/** The later one; on an exact tie the choice depends on content only, so merges commute. */
function newer<T>(a: Timed<T>, b: Timed<T>): Timed<T> {
  if (a.time !== b.time) return a.time > b.time ? a : b;
  return stable(a.value) >= stable(b.value) ? a : b;
}

/** Events set a field only if they are not older than its last change (ISO strings compare lexically). */
const canSet = (lastSet: string | undefined, at: string): boolean => lastSet === undefined || at >= lastSet;
const maxTime = (a: string, b: string): string => (a >= b ? a : b);

// ---------------------------------------------------------------------------------------------------
// Field setters (mutate a fresh copy made by `copy`)
// ---------------------------------------------------------------------------------------------------

type ContactKey = 'email' | 'sms' | 'whatsapp' | 'in_app';
const CONTACT_KEYS: readonly ContactKey[] = ['email', 'sms', 'whatsapp', 'in_app'];
type ContactValue<K extends ContactKey> = Omit<NonNullable<ContactPoints[K]>, 'updatedAt'>;
type ScalarField = 'timezone' | 'locale' | 'preferredChannel';

function copy(p: ProfileState): ProfileState {
  return {
    ...p,
    traits: { ...p.traits },
    fieldTimes: { ...p.fieldTimes },
    contactPoints: { ...p.contactPoints, push: [...p.contactPoints.push] },
    consent: { channels: { ...p.consent.channels }, topics: { ...p.consent.topics } },
  };
}

function setTraits(s: ProfileState, traits: Record<string, unknown>, at: string): void {
  for (const [key, value] of Object.entries(traits)) {
    const timeKey = `traits.${key}`;
    if (value === undefined || !canSet(s.fieldTimes[timeKey], at)) continue;
    if (value === null) delete s.traits[key];
    else putOwn(s.traits, key, value);
    // Recorded for deletions too, so an older event can't resurrect a deleted trait.
    s.fieldTimes[timeKey] = at;
  }
}

function setScalar<K extends ScalarField>(s: ProfileState, key: K, value: ProfileState[K] | undefined, at: string): void {
  if (value === undefined || !canSet(s.fieldTimes[key], at)) return;
  s[key] = value;
  s.fieldTimes[key] = at;
}

/** A contact point's last change: its updatedAt, or the tombstone left in fieldTimes when it was removed. */
function contactTime(s: ProfileState, key: ContactKey): string {
  return maxTime(s.contactPoints[key]?.updatedAt ?? '', s.fieldTimes[`contactPoints.${key}`] ?? '');
}

function setContact<K extends ContactKey>(s: ProfileState, key: K, value: ContactValue<K> | null | undefined, at: string): void {
  if (value === undefined || !canSet(contactTime(s, key) || undefined, at)) return;
  if (value === null) {
    delete s.contactPoints[key];
    s.fieldTimes[`contactPoints.${key}`] = at;
  } else {
    // Object.assign: a spread followed by a new key takes a much slower path in V8 (Node 20).
    s.contactPoints[key] = Object.assign({}, value, { updatedAt: at }) as ContactPoints[K];
    // Invariant: a tombstone exists only while the contact point is absent (keeps histories comparable).
    delete s.fieldTimes[`contactPoints.${key}`];
  }
}

function setConsent(records: Record<string, ConsentRecord>, key: string, status: ConsentStatus, source: string, at: string): void {
  if (canSet(getOwn(records, key)?.updatedAt, at)) putOwn(records, key, { status, source, updatedAt: at });
}

/** The source recorded on a hard opt-out set through the admin API (beside `hard:stop`, `hard:complaint`). */
export const HARD_API_SOURCE = 'hard:api';

/**
 * Channel consent from an event or an admin edit. A hard opt-out on the channel is sticky: only an
 * explicit re-opt-in (`reoptIn`: an admin PATCH to `subscribed`) replaces it; anything else (an identify
 * trait such as `sms_consent: true`, a soft unsubscribe that would let transactional messages through,
 * `unknown`) leaves it as it is, whatever its time.
 */
function setChannelConsent(s: ProfileState, channel: string, status: ConsentStatus, source: string, at: string, reoptIn = false): void {
  if (isHardOptOutRecord(getOwn(s.consent.channels, channel)) && !(reoptIn && status === 'subscribed')) return;
  setConsent(s.consent.channels, channel, status, source, at);
}

/** A hard opt-out binds at once, even over a record stamped later (a STOP is never out of date). */
function setHardOptOut(s: ProfileState, channel: string, reason: string | undefined, at: string): void {
  const rec: ConsentRecord = { status: 'unsubscribed', source: HARD_API_SOURCE, updatedAt: at };
  if (reason !== undefined) rec.reason = reason;
  putOwn(s.consent.channels, channel, rec);
}

/** Newest device first; deterministic so merge order doesn't show. */
function sortPush(tokens: PushToken[]): PushToken[] {
  const key = (t: PushToken) => `${t.provider}:${t.token}`;
  return tokens.sort((a, b) =>
    a.updatedAt !== b.updatedAt ? (a.updatedAt > b.updatedAt ? -1 : 1) : key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0,
  );
}

/** Upsert by (provider, token), keeping the newer registration. */
function upsertPush(tokens: PushToken[], t: PushToken): PushToken[] {
  const i = tokens.findIndex((x) => x.provider === t.provider && x.token === t.token);
  if (i < 0) return [...tokens, t];
  const winner = newer({ time: tokens[i].updatedAt, value: tokens[i] }, { time: t.updatedAt, value: t }).value ?? t;
  return tokens.map((x, j) => (j === i ? winner : x));
}

function finish(s: ProfileState, at: string): ProfileState {
  s.contactPoints.push = sortPush(s.contactPoints.push);
  s.updatedAt = maxTime(s.updatedAt, at);
  return s;
}

// ---------------------------------------------------------------------------------------------------
// applyFacts / mergeProfiles
// ---------------------------------------------------------------------------------------------------

/** Applies one event's facts at event time `at`; each field changes only if `at` is not older than it. */
export function applyFacts(p: ProfileState, f: ProfileFacts, at: string, source: string): ProfileState {
  const s = copy(p);
  setTraits(s, f.traits, at);
  setScalar(s, 'timezone', f.timezone, at);
  setScalar(s, 'locale', f.locale, at);
  setScalar(s, 'preferredChannel', f.preferredChannel, at);
  if (f.contact.email !== undefined) setContact(s, 'email', { address: f.contact.email }, at);
  if (f.contact.sms !== undefined) setContact(s, 'sms', { phone: f.contact.sms }, at);
  if (f.contact.whatsapp !== undefined) setContact(s, 'whatsapp', { phone: f.contact.whatsapp }, at);
  if (f.contact.inApp !== undefined) setContact(s, 'in_app', { enabled: f.contact.inApp }, at);
  // Events never clear a hard opt-out (setChannelConsent): an identify with sms_consent: true after a STOP
  // is most likely a stale sign-up form, not a recorded re-opt-in.
  for (const [ch, status] of Object.entries(f.consent.channels)) setChannelConsent(s, ch, status, source, at);
  for (const [topic, status] of Object.entries(f.consent.topics)) setConsent(s.consent.topics, topic, status, source, at);
  for (const t of f.pushTokens) s.contactPoints.push = upsertPush(s.contactPoints.push, t);
  return finish(s, at);
}

/** Per key, the newer entry wins; a key absent on one side competes as "never set". */
function mergeRecords<T extends { updatedAt: string }>(
  a: Partial<Record<string, T>>,
  b: Partial<Record<string, T>>,
): Record<string, T> {
  const out: Record<string, T> = {};
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
    const [va, vb] = [getOwn(a, k), getOwn(b, k)];
    const win = newer<T>({ time: va?.updatedAt ?? '', value: va }, { time: vb?.updatedAt ?? '', value: vb });
    if (win.value !== undefined) putOwn(out, k, win.value);
  }
  return out;
}

/**
 * Channel consent of a merge: a hard opt-out on either side survives, even against a newer entry on the
 * other side (that entry was made without knowing of the opt-out); otherwise, and between two hard
 * opt-outs, the newer entry wins. Symmetric, like mergeRecords.
 */
function mergeChannelConsent(
  a: Partial<Record<string, ConsentRecord>>,
  b: Partial<Record<string, ConsentRecord>>,
): Record<string, ConsentRecord> {
  const out = mergeRecords(a, b);
  for (const k of Object.keys(out)) {
    const [va, vb] = [getOwn(a, k), getOwn(b, k)];
    const [ha, hb] = [isHardOptOutRecord(va), isHardOptOutRecord(vb)];
    if (ha !== hb) putOwn(out, k, (ha ? va : vb)!);
  }
  return out;
}

function timedTrait(p: ProfileState, key: string): Timed<unknown> {
  return { time: p.fieldTimes[`traits.${key}`] ?? '', value: getOwn(p.traits, key) };
}

function mergeTraits(a: ProfileState, b: ProfileState): Record<string, unknown> {
  // Keys known only from fieldTimes are deletions; they still compete with the other side's value.
  const keysOf = (p: ProfileState) => [
    ...Object.keys(p.traits),
    ...Object.keys(p.fieldTimes).filter((k) => k.startsWith('traits.')).map((k) => k.slice('traits.'.length)),
  ];
  const out: Record<string, unknown> = {};
  for (const k of new Set([...keysOf(a), ...keysOf(b)])) {
    const win = newer(timedTrait(a, k), timedTrait(b, k));
    if (win.value !== undefined) putOwn(out, k, win.value);
  }
  return out;
}

function mergeContactPoints(a: ProfileState, b: ProfileState): ContactPoints {
  const out: ContactPoints = { push: [] };
  for (const key of CONTACT_KEYS) {
    const win = newer<ContactPoints[ContactKey]>(
      { time: contactTime(a, key), value: a.contactPoints[key] },
      { time: contactTime(b, key), value: b.contactPoints[key] },
    );
    if (win.value !== undefined) Object.assign(out, { [key]: win.value });
  }
  // Push tokens are unioned: a device registered on either side still belongs to this person.
  for (const t of [...a.contactPoints.push, ...b.contactPoints.push]) out.push = upsertPush(out.push, t);
  return out;
}

/**
 * Folds `absorbed` into `survivor`: per trait, field, contact point and consent entry the newer one wins
 * (deletions included); push tokens are unioned. Symmetric in content; only `id` comes from the survivor.
 */
export function mergeProfiles(survivor: ProfileState, absorbed: ProfileState, at: string): ProfileState {
  const [a, b] = [survivor, absorbed];
  const fieldTimes: Record<string, string> = { ...a.fieldTimes };
  for (const [k, t] of Object.entries(b.fieldTimes)) fieldTimes[k] = maxTime(fieldTimes[k] ?? '', t);
  const contactPoints = mergeContactPoints(a, b);
  for (const key of CONTACT_KEYS) if (contactPoints[key]) delete fieldTimes[`contactPoints.${key}`];
  const scalar = <K extends ScalarField>(key: K): ProfileState[K] =>
    newer({ time: a.fieldTimes[key] ?? '', value: a[key] }, { time: b.fieldTimes[key] ?? '', value: b[key] }).value ?? null;

  const merged: ProfileState = {
    id: survivor.id,
    traits: mergeTraits(a, b),
    fieldTimes,
    contactPoints,
    consent: {
      channels: mergeChannelConsent(a.consent.channels, b.consent.channels),
      topics: mergeRecords(a.consent.topics, b.consent.topics),
    },
    timezone: scalar('timezone'),
    locale: scalar('locale'),
    preferredChannel: scalar('preferredChannel'),
    createdAt: a.createdAt <= b.createdAt ? a.createdAt : b.createdAt,
    updatedAt: maxTime(a.updatedAt, b.updatedAt),
  };
  return finish(merged, at);
}

// ---------------------------------------------------------------------------------------------------
// Admin patches
// ---------------------------------------------------------------------------------------------------

/** A push registration as the admin API accepts it; a web push token is its subscription endpoint. */
export type PushTokenInput =
  | { provider: 'fcm' | 'apns'; token: string }
  | { provider: 'webpush'; subscription: WebPushSubscription; token?: string };

/**
 * A hard opt-out recorded through the admin API (the customer asked support to stop, a carrier STOP
 * report): binds even transactional messages, like an SMS STOP. Stored with source `hard:api`.
 */
export interface HardOptOutInput {
  status: 'unsubscribed';
  hard: true;
  reason?: string;
}

export interface ProfilePatch {
  /** `null` deletes a trait. */
  traits?: Record<string, unknown>;
  /** `null` removes a contact point. */
  contactPoints?: {
    email?: string | null;
    sms?: string | null;
    whatsapp?: string | null;
    inApp?: boolean | null;
    /** Removals apply before additions. `remove` lists tokens (web push: endpoints). */
    push?: { add?: PushTokenInput[]; remove?: string[] };
  };
  consent?: {
    /**
     * A status, or a hard opt-out. On a channel with a hard opt-out only `subscribed` (a recorded
     * re-opt-in) has an effect; `unsubscribed` and `unknown` leave the hard opt-out in place.
     */
    channels?: Partial<Record<Channel, ConsentStatus | HardOptOutInput>>;
    topics?: Record<string, ConsentStatus>;
  };
  timezone?: string | null;
  locale?: string | null;
  preferredChannel?: Channel | null;
}

/** undefined = untouched, null = remove; values that don't normalize are dropped (the API validated them). */
function mapPatch<T, R>(v: T | null | undefined, f: (v: T) => R | null): R | null | undefined {
  if (v === null || v === undefined) return v === null ? null : undefined;
  return f(v) ?? undefined;
}

function toPushToken(input: PushTokenInput, at: string): PushToken {
  if (input.provider === 'webpush') {
    return { provider: 'webpush', token: input.subscription.endpoint, subscription: input.subscription, updatedAt: at };
  }
  return { provider: input.provider, token: input.token.trim(), updatedAt: at };
}

function patchContact(s: ProfileState, cp: NonNullable<ProfilePatch['contactPoints']>, at: string): void {
  const emailOf = (v: string) => {
    const address = normalizeEmail(v);
    return address === null ? null : { address };
  };
  const phoneOf = (v: string) => {
    const phone = normalizePhone(v);
    return phone === null ? null : { phone };
  };
  setContact(s, 'email', mapPatch(cp.email, emailOf), at);
  setContact(s, 'sms', mapPatch(cp.sms, phoneOf), at);
  setContact(s, 'whatsapp', mapPatch(cp.whatsapp, phoneOf), at);
  setContact(s, 'in_app', mapPatch(cp.inApp, (enabled) => ({ enabled })), at);
  const remove = new Set(cp.push?.remove ?? []);
  s.contactPoints.push = s.contactPoints.push.filter((t) => !remove.has(t.token));
  for (const input of cp.push?.add ?? []) s.contactPoints.push = upsertPush(s.contactPoints.push, toPushToken(input, at));
}

/**
 * Applies an admin edit (already validated by `validatePatch`) at `at`, with consent source `api` (`hard:api`
 * for a hard opt-out). Never throws.
 */
export function patchProfile(p: ProfileState, patch: ProfilePatch, at: string): ProfileState {
  const s = copy(p);
  if (patch.traits) setTraits(s, patch.traits, at);
  if (patch.contactPoints) patchContact(s, patch.contactPoints, at);
  for (const [ch, value] of Object.entries(patch.consent?.channels ?? {})) {
    if (value === undefined) continue;
    if (typeof value === 'string') setChannelConsent(s, ch, value, 'api', at, true);
    else setHardOptOut(s, ch, value.reason?.trim(), at);
  }
  for (const [topic, status] of Object.entries(patch.consent?.topics ?? {})) setConsent(s.consent.topics, topic, status, 'api', at);
  // Canonical casing when possible; anything else was the API layer's to reject.
  setScalar(s, 'timezone', mapPatch(patch.timezone, (v) => normalizeTimeZone(v) ?? v), at);
  setScalar(s, 'locale', mapPatch(patch.locale, (v) => normalizeLocale(v) ?? v), at);
  setScalar(s, 'preferredChannel', patch.preferredChannel, at);
  return finish(s, at);
}

// ---------------------------------------------------------------------------------------------------
// Patch validation (zod; the schema doubles as OpenAPI documentation)
// ---------------------------------------------------------------------------------------------------

const consentStatusSchema = z.enum(['subscribed', 'unsubscribed', 'unknown']);
const channelSchema = z.enum(CHANNELS);
const nonBlank = z.string().refine((v) => v.trim() !== '', { message: 'must not be blank' });
const emailSchema = z.string().refine((v) => normalizeEmail(v) !== null, { message: 'must be a valid email address' });
const phoneSchema = z.string().refine((v) => normalizePhone(v) !== null, {
  message: 'must be a valid phone number in international format, e.g. +14155552671',
});
/** A push token or web push endpoint: identifiers, so indexed (src/core/limits.ts). */
const indexable = (schema: z.ZodString) => schema.refine(fitsIndex, { message: `must be at most ${MAX_INDEXED_BYTES} bytes of UTF-8` });
const httpsUrl = z.string().refine(
  (v) => {
    try {
      return new URL(v).protocol === 'https:';
    } catch {
      return false;
    }
  },
  { message: 'must be an https URL' },
);

const webPushSubscriptionSchema = z.strictObject({
  endpoint: indexable(httpsUrl),
  keys: z.strictObject({ p256dh: nonBlank, auth: nonBlank }),
});

const pushTokenInputSchema = z.discriminatedUnion('provider', [
  z.strictObject({ provider: z.enum(['fcm', 'apns']), token: indexable(nonBlank) }),
  z
    .strictObject({ provider: z.literal('webpush'), subscription: webPushSubscriptionSchema, token: z.string().optional() })
    .refine((v) => v.token === undefined || v.token === v.subscription.endpoint, {
      message: 'token must equal subscription.endpoint (or be omitted)',
      path: ['token'],
    }),
]);

const HARD_SHAPE = '{"status": "unsubscribed", "hard": true, "reason"?: string}';

const hardOptOutSchema = z
  .strictObject({
    status: z.literal('unsubscribed', { error: 'a hard opt-out has status "unsubscribed"' }),
    hard: z.literal(true, { error: `must be true (a hard opt-out is ${HARD_SHAPE}; for a plain change give the status as a string)` }),
    reason: nonBlank
      .refine((v) => v.length <= 500, { message: 'must be at most 500 characters' })
      .optional()
      .describe('Why, e.g. "customer asked support to stop texting"; shown in the gate decision'),
  })
  .describe('A hard opt-out: binds even transactional messages; stored with source hard:api');

/** A status string, or a hard opt-out object; errors name the field at fault inside the object. */
const channelConsentValueSchema = z.union([consentStatusSchema, hardOptOutSchema], {
  error: (iss) => {
    if (iss.code !== 'invalid_union') return undefined;
    const input: unknown = iss.input;
    if (typeof input === 'object' && input !== null && !Array.isArray(input)) {
      const inner = (iss.errors[1] ?? [])[0];
      if (inner) return inner.path.length > 0 ? `${inner.path.map(String).join('.')}: ${inner.message}` : inner.message;
    }
    return `must be "subscribed", "unsubscribed" or "unknown", or a hard opt-out ${HARD_SHAPE}`;
  },
});

const channelConsentSchema = z.strictObject({
  email: channelConsentValueSchema.optional(),
  sms: channelConsentValueSchema.optional(),
  whatsapp: channelConsentValueSchema.optional(),
  push: channelConsentValueSchema.optional(),
  in_app: channelConsentValueSchema.optional(),
});

export const profilePatchSchema = z
  .strictObject({
    traits: z.record(z.string(), z.unknown()).optional().describe('Traits to set; null deletes a trait.'),
    contactPoints: z
      .strictObject({
        email: emailSchema.nullable().optional(),
        sms: phoneSchema.nullable().optional(),
        whatsapp: phoneSchema.nullable().optional(),
        inApp: z.boolean().nullable().optional(),
        push: z
          .strictObject({ add: z.array(pushTokenInputSchema).optional(), remove: z.array(nonBlank).optional() })
          .optional(),
      })
      .optional()
      .describe('null removes a contact point.'),
    consent: z
      .strictObject({ channels: channelConsentSchema.optional(), topics: z.record(nonBlank, consentStatusSchema).optional() })
      .optional(),
    timezone: z
      .string()
      .refine((v) => normalizeTimeZone(v) !== null, { message: 'must be an IANA time zone, e.g. Europe/Paris' })
      .nullable()
      .optional(),
    locale: z
      .string()
      .refine((v) => normalizeLocale(v) !== null, { message: 'must be a BCP 47 locale, e.g. en-US' })
      .nullable()
      .optional(),
    preferredChannel: channelSchema.nullable().optional(),
  })
  .describe('Admin edit of a profile. Every field is optional; newer-wins still applies.');

export interface PatchError {
  path: string;
  message: string;
}

function toErrors(issues: z.core.$ZodIssue[]): PatchError[] {
  return issues.flatMap((issue) => {
    const base = issue.path.map(String);
    // One error per unknown field, each naming it, instead of zod's single combined issue.
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => ({ path: [...base, key].join('.'), message: `unknown field "${key}"` }));
    }
    return [{ path: base.join('.'), message: issue.message }];
  });
}

export function validatePatch(body: unknown): { ok: true; value: ProfilePatch } | { ok: false; errors: PatchError[] } {
  const result = profilePatchSchema.safeParse(body);
  return result.success ? { ok: true, value: result.data } : { ok: false, errors: toErrors(result.error.issues) };
}
