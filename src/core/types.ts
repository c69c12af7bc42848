// Domain types shared by ingestion, profiles and (later) the engine. Pure data, no I/O.

export const CHANNELS = ['email', 'sms', 'whatsapp', 'push', 'in_app'] as const;
export type Channel = (typeof CHANNELS)[number];

/** Identifiers that link events to a profile. Strong kinds can merge profiles; push tokens never do. */
export const IDENTIFIER_KINDS = [
  'user_id',
  'anonymous_id',
  'email',
  'phone',
  'fcm_token',
  'apns_token',
  'webpush_endpoint',
] as const;
export type IdentifierKind = (typeof IDENTIFIER_KINDS)[number];
export const STRONG_IDENTIFIER_KINDS: readonly IdentifierKind[] = ['user_id', 'email', 'phone', 'anonymous_id'];
export const PUSH_IDENTIFIER_KINDS: readonly IdentifierKind[] = ['fcm_token', 'apns_token', 'webpush_endpoint'];

export interface Identifier {
  kind: IdentifierKind;
  value: string;
}

export type ConsentStatus = 'subscribed' | 'unsubscribed' | 'unknown';
export interface ConsentRecord {
  status: ConsentStatus;
  /**
   * Where the change came from: `identify`, `api`, `context.consent`, `journey`, or, for a hard opt-out,
   * `hard:stop` (SMS STOP), `hard:complaint` (spam complaint) or `hard:api` (admin API).
   */
  source: string;
  /** Why, when known (a hard opt-out set through the admin API may say). */
  reason?: string;
  updatedAt: string;
}

/**
 * A hard opt-out (an SMS STOP, a complaint, an admin-recorded one): binds even transactional messages and
 * is cleared only by an explicit re-opt-in through the admin API, never by an identify trait or a merge.
 * `sms_stop` and `complaint` are legacy spellings of `hard:stop` and `hard:complaint`.
 */
export function isHardOptOutRecord(c: ConsentRecord | undefined): boolean {
  return c?.status === 'unsubscribed' && (c.source.startsWith('hard') || c.source === 'sms_stop' || c.source === 'complaint');
}

export interface Consent {
  channels: Partial<Record<Channel, ConsentRecord>>;
  topics: Record<string, ConsentRecord>;
}

export type PushProvider = 'fcm' | 'apns' | 'webpush';
export interface WebPushSubscription {
  endpoint: string;
  keys: { p256dh: string; auth: string };
}
export interface PushToken {
  provider: PushProvider;
  /** The device token (FCM, APNs) or the subscription endpoint (web push). */
  token: string;
  subscription?: WebPushSubscription;
  updatedAt: string;
}
/** Set by a bounce report: the address exists on the profile but can't receive messages. */
interface Deliverability {
  undeliverable?: boolean;
  undeliverableAt?: string;
}
export interface ContactPoints {
  email?: { address: string; updatedAt: string } & Deliverability;
  sms?: { phone: string; updatedAt: string } & Deliverability;
  whatsapp?: { phone: string; updatedAt: string } & Deliverability;
  push: PushToken[];
  in_app?: { enabled: boolean; updatedAt: string };
}

/** The mutable state of one profile, as the resolver and the admin API see it. */
export interface ProfileState {
  id: string;
  traits: Record<string, unknown>;
  /**
   * When each field was last set, for "newer wins" on out-of-order events and merges.
   * Keys: `traits.<name>`, `timezone`, `locale`, `preferredChannel`.
   */
  fieldTimes: Record<string, string>;
  contactPoints: ContactPoints;
  consent: Consent;
  timezone: string | null;
  locale: string | null;
  preferredChannel: Channel | null;
  createdAt: string;
  updatedAt: string;
}

export const EVENT_TYPES = ['identify', 'track', 'page', 'screen', 'group', 'alias'] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** One validated, normalized Segment call. Produced by src/ingest/segment.ts. */
export interface IncomingEvent {
  messageId: string;
  type: EventType;
  userId: string | null;
  anonymousId: string | null;
  /** alias only */
  previousId: string | null;
  /** group only */
  groupId: string | null;
  /** track: the event name; page/screen: the page or screen name; otherwise null */
  event: string | null;
  properties: Record<string, unknown>;
  traits: Record<string, unknown>;
  context: Record<string, unknown>;
  /** Skew-corrected event time, ISO 8601 UTC with milliseconds. */
  timestamp: string;
  originalTimestamp: string | null;
  sentAt: string | null;
  receivedAt: string;
  /** The payload as received (minus writeKey), kept for export. */
  raw: Record<string, unknown>;
}

/** Profile updates carried by one event, per the documented trait conventions (docs/profiles.md). */
export interface ProfileFacts {
  /** Strong identifiers in priority order: user_id, email, phone, anonymous_id. Junk already removed. */
  identifiers: Identifier[];
  /** Push tokens: they attach to the event's profile and move between profiles, but never merge them. */
  pushTokens: PushToken[];
  /** Traits to set (identify traits; `null` deletes a trait). */
  traits: Record<string, unknown>;
  contact: {
    email?: string;
    sms?: string;
    whatsapp?: string;
    inApp?: boolean;
  };
  consent: {
    channels: Partial<Record<Channel, ConsentStatus>>;
    topics: Record<string, ConsentStatus>;
  };
  timezone?: string;
  locale?: string;
  preferredChannel?: Channel;
  /** Values that looked like a convention but were unusable, e.g. an unparseable phone number. */
  rejected: { field: string; value: unknown; reason: string }[];
}

export function emptyProfile(id: string, at: string): ProfileState {
  return {
    id,
    traits: {},
    fieldTimes: {},
    contactPoints: { push: [] },
    consent: { channels: {}, topics: {} },
    timezone: null,
    locale: null,
    preferredChannel: null,
    createdAt: at,
    updatedAt: at,
  };
}

/** The identifier kind a push token is held under. */
export function pushIdentifierKind(provider: PushProvider): IdentifierKind {
  return provider === 'fcm' ? 'fcm_token' : provider === 'apns' ? 'apns_token' : 'webpush_endpoint';
}
