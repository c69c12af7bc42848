// Identifier normalization and profile references. Pure: no I/O.
import { isSupportedCountry, parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js';
import { fitsIndex } from './limits.js';
import { IDENTIFIER_KINDS, type Identifier, type IdentifierKind } from './types.js';

/** Placeholder values SDKs and integrations send instead of "no id"; linking on them would merge strangers. */
const JUNK_VALUES = new Set([
  'null',
  'undefined',
  'anonymous',
  '0',
  '-1',
  'nil',
  'none',
  'n/a',
  'unknown',
  '[object object]',
]);

// Deliberately simple: one @, no whitespace, a dotted domain. Deliverability is the provider's problem.
const EMAIL_RE = /^[^\s@]+@[^\s@.]+(?:\.[^\s@.]+)+$/;

export function isJunkIdentifier(v: unknown): boolean {
  if (typeof v === 'number') return !Number.isFinite(v) || JUNK_VALUES.has(String(v));
  if (typeof v !== 'string') return true;
  const t = v.trim().toLowerCase();
  return t === '' || JUNK_VALUES.has(t);
}

/** RFC 5321's limit on an address that can receive mail (a 3,000-character "email" once made a 500). */
const MAX_EMAIL_CHARS = 254;

export function normalizeEmail(v: unknown): string | null {
  if (typeof v !== 'string') return null;
  const email = v.trim().toLowerCase();
  return email.length <= MAX_EMAIL_CHARS && EMAIL_RE.test(email) ? email : null;
}

/** A 2-letter country code libphonenumber knows, upper-cased; otherwise undefined. */
export function phoneCountry(v: unknown): CountryCode | undefined {
  if (typeof v !== 'string' || !/^[A-Za-z]{2}$/.test(v.trim())) return undefined;
  const code = v.trim().toUpperCase();
  return isSupportedCountry(code) ? code : undefined;
}

// Parsing a number with libphonenumber costs ~10 µs, and the same customer's phone comes back with every
// identify and every event that carries their traits: remember recent answers (pure, so always the same).
const PHONE_MEMO_MAX = 10_000;
const phoneMemo = new Map<string, string | null>();

/** E.164, or null. Without a default country the input must be international (`+…`). */
export function normalizePhone(v: unknown, defaultCountry?: string): string | null {
  if (typeof v === 'number' && Number.isFinite(v)) v = String(v);
  if (typeof v !== 'string' || v.trim() === '') return null;
  const key = `${typeof defaultCountry === 'string' ? defaultCountry : ''}\u0000${v}`;
  const known = phoneMemo.get(key);
  if (known !== undefined) return known;
  const parsed = parsePhoneNumberFromString(v.trim(), phoneCountry(defaultCountry));
  const out = parsed && parsed.isValid() ? parsed.number : null;
  if (phoneMemo.size >= PHONE_MEMO_MAX) phoneMemo.clear();
  phoneMemo.set(key, out);
  return out;
}

export function normalizeIdentifier(kind: IdentifierKind, v: unknown): string | null {
  if (isJunkIdentifier(v)) return null;
  if (kind === 'email') return normalizeEmail(v);
  if (kind === 'phone') return normalizePhone(v);
  // isJunkIdentifier guarantees a non-blank string or a finite number here.
  const value = String(v).trim();
  return fitsIndex(value) ? value : null;
}

export function isIdentifierKind(v: string): v is IdentifierKind {
  return (IDENTIFIER_KINDS as readonly string[]).includes(v);
}

const REF_HELP = `expected a profile id (prf_…) or kind:value with kind one of ${IDENTIFIER_KINDS.join(', ')}`;

/** Parses `prf_…` or `kind:value` (split on the first colon, so URL values such as web push endpoints work). */
export function parseProfileRef(
  ref: string,
): { profileId: string } | { identifier: Identifier } | { error: string } {
  const colon = ref.indexOf(':');
  if (colon < 0) {
    const id = ref.trim();
    return id.startsWith('prf_') && id.length > 4 ? { profileId: id } : { error: `Invalid profile ref "${ref}": ${REF_HELP}` };
  }
  const kind = ref.slice(0, colon).trim().toLowerCase();
  if (!isIdentifierKind(kind)) return { error: `Unknown identifier kind "${kind}" in "${ref}": ${REF_HELP}` };
  const value = normalizeIdentifier(kind, ref.slice(colon + 1));
  if (value === null) {
    const hint = kind === 'phone' ? ' (phone numbers must be international, e.g. +14155552671)' : '';
    return { error: `Invalid ${kind} value in "${ref}"${hint}; ${REF_HELP}` };
  }
  return { identifier: { kind, value } };
}
