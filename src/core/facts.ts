// The identify-trait conventions (docs/profiles.md): what one event says about its profile. Pure: no I/O.
import { isJunkIdentifier, normalizeEmail, normalizeIdentifier, normalizePhone, phoneCountry } from './identifiers.js';
import { fitsIndex, tooLong } from './limits.js';
import {
  CHANNELS,
  type Channel,
  type ConsentStatus,
  type Identifier,
  type IncomingEvent,
  type ProfileFacts,
  type PushProvider,
  type PushToken,
  type WebPushSubscription,
} from './types.js';

type Obj = Record<string, unknown>;
type Rejected = ProfileFacts['rejected'];

function obj(v: unknown): Obj | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : undefined;
}

/** Own-property write, so payload keys such as `__proto__` stay data instead of reaching the prototype. */
export function putOwn<T>(o: Partial<Record<string, T>>, key: string, value: NoInfer<T>): void {
  Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
}

export function getOwn<T>(o: Partial<Record<string, T>>, key: string): T | undefined {
  return Object.hasOwn(o, key) ? o[key] : undefined;
}

/** Nothing was said: missing, null or blank. */
function isAbsent(v: unknown): boolean {
  return v === undefined || v === null || (typeof v === 'string' && v.trim() === '');
}

/** Like isAbsent, but placeholder ids ('null', 'n/a', 0 …) also count as nothing rather than as errors. */
function isBlankId(v: unknown): boolean {
  return v === undefined || v === null || ((typeof v === 'string' || typeof v === 'number') && isJunkIdentifier(v));
}

/** Canonical IANA zone name (e.g. `america/new_york` → `America/New_York`), or null. */
// Building an Intl formatter costs ~0.4 ms and every identify carries a zone: remember the answers.
const zoneCache = new Map<string, string | null>();
const localeCache = new Map<string, string | null>();

function remembered(cache: Map<string, string | null>, key: string, compute: () => string | null): string | null {
  const hit = cache.get(key);
  if (hit !== undefined) return hit;
  const value = compute();
  if (cache.size >= 2000) cache.clear();
  cache.set(key, value);
  return value;
}

export function normalizeTimeZone(v: unknown): string | null {
  // Newer engines accept UTC offsets like "+05:00"; those are not zones and would ignore DST.
  if (typeof v !== 'string' || !/^[A-Za-z]/.test(v.trim())) return null;
  const zone = v.trim();
  return remembered(zoneCache, zone, () => {
    try {
      return new Intl.DateTimeFormat(undefined, { timeZone: zone }).resolvedOptions().timeZone;
    } catch {
      return null;
    }
  });
}

/** Canonical BCP 47 tag (`en-us` → `en-US`); `en_US` is accepted since mobile SDKs send it. */
export function normalizeLocale(v: unknown): string | null {
  if (typeof v !== 'string' || v.trim() === '') return null;
  const tag = v.trim().replace(/_/g, '-');
  return remembered(localeCache, tag, () => {
    try {
      return Intl.getCanonicalLocales(tag)[0] ?? null;
    } catch {
      return null;
    }
  });
}

function parseConsent(v: unknown): ConsentStatus | null {
  if (v === true) return 'subscribed';
  if (v === false) return 'unsubscribed';
  const s = typeof v === 'string' ? v.trim().toLowerCase() : '';
  return s === 'subscribed' || s === 'unsubscribed' ? s : null;
}

function parseWebPush(v: unknown): WebPushSubscription | null {
  const sub = obj(v);
  const keys = obj(sub?.keys);
  const { endpoint } = sub ?? {};
  if (typeof endpoint !== 'string' || typeof keys?.p256dh !== 'string' || typeof keys.auth !== 'string') return null;
  if (!fitsIndex(endpoint)) return null;
  if (!keys.p256dh || !keys.auth) return null;
  try {
    if (new URL(endpoint).protocol !== 'https:') return null;
  } catch {
    return null;
  }
  return { endpoint, keys: { p256dh: keys.p256dh, auth: keys.auth } };
}

/** First usable candidate; each non-blank but unusable one is reported. */
function pick<T>(
  candidates: [field: string, value: unknown][],
  normalize: (v: unknown) => T | null,
  reason: string,
  rejected: Rejected,
  blank: (v: unknown) => boolean = isAbsent,
): T | undefined {
  for (const [field, value] of candidates) {
    if (blank(value)) continue;
    const n = normalize(value);
    if (n !== null) return n;
    rejected.push({ field, value, reason });
  }
  return undefined;
}

function dedupeIdentifiers(ids: (Identifier | null)[]): Identifier[] {
  const seen = new Set<string>();
  return ids.filter((id): id is Identifier => {
    if (!id || seen.has(`${id.kind}:${id.value}`)) return false;
    seen.add(`${id.kind}:${id.value}`);
    return true;
  });
}

function id(kind: Identifier['kind'], v: unknown): Identifier | null {
  const value = normalizeIdentifier(kind, v);
  return value === null ? null : { kind, value };
}

function derivePushTokens(traits: Obj, context: Obj, at: string, rejected: Rejected): PushToken[] {
  const out: PushToken[] = [];
  const add = (provider: PushProvider, token: string, subscription?: WebPushSubscription) => {
    if (out.some((t) => t.provider === provider && t.token === token)) return;
    out.push(subscription ? { provider, token, subscription, updatedAt: at } : { provider, token, updatedAt: at });
  };
  // Segment mobile SDKs put the device's push token in context.device.
  const device = obj(context.device);
  const deviceProvider = { ios: 'apns', android: 'fcm' }[String(device?.type ?? '').toLowerCase()] as PushProvider | undefined;
  if (deviceProvider && typeof device?.token === 'string' && !isJunkIdentifier(device.token)) {
    if (fitsIndex(device.token.trim())) add(deviceProvider, device.token.trim());
    else rejected.push({ field: 'context.device.token', value: device.token, reason: `push token ${tooLong(device.token.trim())}` });
  }

  for (const [key, provider] of [['fcm_token', 'fcm'], ['apns_token', 'apns']] as const) {
    const raw = traits[key];
    for (const t of Array.isArray(raw) ? raw : [raw]) {
      if (isBlankId(t)) continue;
      if (typeof t !== 'string') rejected.push({ field: `traits.${key}`, value: t, reason: 'push token must be a string or an array of strings' });
      else if (!fitsIndex(t.trim())) rejected.push({ field: `traits.${key}`, value: t, reason: `push token ${tooLong(t.trim())}` });
      else add(provider, t.trim());
    }
  }

  const sub = pick([['traits.webpush_subscription', traits.webpush_subscription]], parseWebPush,
    'web push subscription must be {endpoint: https URL, keys: {p256dh, auth}}', rejected);
  if (sub) add('webpush', sub.endpoint, sub);
  return out;
}

function deriveConsent(traits: Obj, context: Obj, rejected: Rejected): ProfileFacts['consent'] {
  const consent: ProfileFacts['consent'] = { channels: {}, topics: {} };
  const reason = "consent must be 'subscribed', 'unsubscribed', true or false";
  for (const ch of CHANNELS) {
    const status = pick([[`traits.${ch}_consent`, traits[`${ch}_consent`]]], parseConsent, reason, rejected);
    if (status) consent.channels[ch] = status;
  }
  // Segment's consent spec: context.consent.categoryPreferences = { <category>: boolean }.
  const prefs = obj(context.consent)?.categoryPreferences;
  const bool = (v: unknown) => (typeof v === 'boolean' ? parseConsent(v) : null);
  topicEntries(prefs, 'context.consent.categoryPreferences', bool, 'category preference must be a boolean', consent, rejected);
  // traits.subscriptions is applied last so an explicit identify beats the cookie banner in the same call.
  topicEntries(traits.subscriptions, 'traits.subscriptions', parseConsent, reason, consent, rejected);
  return consent;
}

function topicEntries(
  raw: unknown,
  field: string,
  parse: (v: unknown) => ConsentStatus | null,
  reason: string,
  consent: ProfileFacts['consent'],
  rejected: Rejected,
): void {
  if (isAbsent(raw)) return;
  const o = obj(raw);
  if (!o) {
    rejected.push({ field, value: raw, reason: 'must be an object of topic → status' });
    return;
  }
  for (const [topic, v] of Object.entries(o)) {
    const status = pick([[`${field}.${topic}`, v]], parse, reason, rejected);
    if (status) putOwn(consent.topics, topic, status);
  }
}

function parseChannel(v: unknown): Channel | null {
  const s = typeof v === 'string' ? v.trim().toLowerCase() : '';
  return (CHANNELS as readonly string[]).includes(s) ? (s as Channel) : null;
}

/** `whatsapp: true` means "reach me on WhatsApp at my phone"; a number means that number. */
function deriveWhatsapp(
  raw: unknown,
  phone: string | undefined,
  phoneOf: (v: unknown) => string | null,
  rejected: Rejected,
): string | undefined {
  if (raw === false) return undefined;
  if (raw !== true) return pick([['traits.whatsapp', raw]], phoneOf, 'whatsapp must be a phone number or true', rejected, isBlankId);
  if (!phone) rejected.push({ field: 'traits.whatsapp', value: raw, reason: 'whatsapp: true needs a valid phone' });
  return phone;
}

/** Email, phone and the contact points they and the other contact traits give. */
function deriveContact(traits: Obj, ctxTraits: Obj, rejected: Rejected) {
  const country = [traits.country, ctxTraits.country, obj(traits.address)?.country, obj(ctxTraits.address)?.country]
    .map(phoneCountry)
    .find((c) => c !== undefined);
  const phoneOf = (v: unknown) => normalizePhone(v, country);

  const email = pick([['traits.email', traits.email], ['context.traits.email', ctxTraits.email]], normalizeEmail,
    'not a valid email address', rejected, isBlankId);
  const phone = pick([['traits.phone', traits.phone], ['context.traits.phone', ctxTraits.phone]], phoneOf,
    'not a valid phone number', rejected, isBlankId);

  const contact: ProfileFacts['contact'] = {};
  if (email) contact.email = email;
  if (phone) contact.sms = phone;
  const wa = deriveWhatsapp(traits.whatsapp, phone, phoneOf, rejected);
  if (wa) contact.whatsapp = wa;
  const inApp = pick([['traits.in_app', traits.in_app]], (v) => (typeof v === 'boolean' ? v : null),
    'in_app must be a boolean', rejected);
  if (inApp !== undefined) contact.inApp = inApp;
  return { email, phone, contact };
}

export function deriveFacts(e: IncomingEvent): ProfileFacts {
  // Only identify traits describe the user; group traits describe the group.
  const traits: Obj = e.type === 'identify' ? e.traits : {};
  const context = e.context;
  const rejected: Rejected = [];
  const { email, phone, contact } = deriveContact(traits, obj(context.traits) ?? {}, rejected);

  const facts: ProfileFacts = {
    identifiers: dedupeIdentifiers([
      id('user_id', e.userId),
      email ? { kind: 'email', value: email } : null,
      phone ? { kind: 'phone', value: phone } : null,
      id('anonymous_id', e.anonymousId),
    ]),
    pushTokens: derivePushTokens(traits, context, e.timestamp, rejected),
    traits: { ...traits },
    contact,
    consent: deriveConsent(traits, context, rejected),
    rejected,
  };

  const timezone = pick([['traits.timezone', traits.timezone], ['context.timezone', context.timezone]],
    normalizeTimeZone, 'not a valid IANA time zone', rejected);
  const locale = pick([['traits.locale', traits.locale], ['context.locale', context.locale]],
    normalizeLocale, 'not a valid BCP 47 locale', rejected);
  const preferredChannel = pick([['traits.preferred_channel', traits.preferred_channel]], parseChannel,
    `preferred_channel must be one of ${CHANNELS.join(', ')}`, rejected);
  if (timezone) facts.timezone = timezone;
  if (locale) facts.locale = locale;
  if (preferredChannel) facts.preferredChannel = preferredChannel;
  return facts;
}
