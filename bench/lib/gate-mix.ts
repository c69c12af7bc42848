import { Rng } from './random.js';

// What the gate bench sends: the customers (identify calls), the workspace settings, and a mix of
// POST /v1/messages bodies that exercise channel selection (auto, ordered lists, fixed), every category,
// every priority, tags, topics and message types. Seeded, so a run with the same seed sends the same.

export const ZONES: readonly (readonly [string | null, number])[] = [
  ['America/New_York', 25],
  ['America/Chicago', 8],
  ['America/Los_Angeles', 12],
  ['America/Sao_Paulo', 6],
  ['Europe/London', 10],
  ['Europe/Berlin', 10],
  ['Asia/Kolkata', 6],
  ['Asia/Tokyo', 6],
  ['Australia/Sydney', 5],
  [null, 12], // no zone: the workspace's (UTC)
];

/** The gate settings of the bench workspace: the caps, quiet hours and suppression rule of docs/gate.md. */
export const BENCH_SETTINGS = {
  timezone: 'UTC',
  message_types: {
    alert: { prefer: ['sms', 'push'] },
    receipt: { prefer: ['email'] },
    promotion: { prefer: ['whatsapp', 'email'], needs: ['rich_media'] },
  },
  caps: [
    { id: 'promo-per-day', limit: 3, window: { calendar: 'day' }, categories: ['promotional'] },
    { id: 'sms-per-day', limit: 1, window: { calendar: 'day' }, channels: ['sms'], on_exceed: 'defer' },
    { id: 'weekly', limit: 10, window: { rolling: 'P7D' } },
  ],
  quiet_hours: {
    window: { start: '21:00', end: '08:00' },
    channels: { sms: { start: '21:00', end: '08:00' }, in_app: null },
    action: 'defer',
    bypass: ['transactional'],
  },
  suppression: [
    {
      id: 'open-support-ticket',
      categories: ['promotional'],
      reason: 'the customer has an open support ticket',
      when: {
        all: [
          { event: 'Support Ticket Opened', within: 'PT48H' },
          { event: 'Support Ticket Closed', since_event: 'Support Ticket Opened', count: { op: 'eq', value: 0 } },
        ],
      },
    },
  ],
};

export const SUPPORT_TICKET_SHARE = 0.03;
export const WHATSAPP_INBOUND_SHARE = 0.05;

export const userIdOf = (n: number) => `gc-${n}`;

/** Customer n's identify call: contact points, zone, consent and preferences, seeded by n. */
export function identifyCall(n: number, seed: number): Record<string, unknown> {
  const r = new Rng((seed * 1_000_003 + n) >>> 0);
  const traits: Record<string, unknown> = { first_name: r.pick(['Ann', 'Bo', 'Chen', 'Dee', 'Eli', 'Fay', 'Gus', 'Hana']), plan: r.pick(['free', 'pro', 'team']) };
  const hasEmail = r.chance(0.9);
  const hasPhone = r.chance(0.6) || !hasEmail;
  if (hasEmail) traits.email = `gc${n}@example.com`;
  // +1 415 2xx xxxx: unique per customer, valid NANP numbers.
  if (hasPhone) traits.phone = `+1415${String(2_000_000 + n).padStart(7, '0')}`;
  if (hasPhone && r.chance(0.3)) traits.whatsapp = true;
  if (r.chance(0.25)) traits.fcm_token = `fcm-${seed}-${n}`;
  const zone = r.weighted(ZONES);
  if (zone) traits.timezone = zone;
  if (r.chance(0.15)) traits.preferred_channel = r.pick(['email', 'sms', 'push', 'whatsapp']);
  if (hasEmail && r.chance(0.06)) traits.email_consent = 'unsubscribed';
  if (hasPhone && r.chance(0.03)) traits.sms_consent = 'unsubscribed';
  return { type: 'identify', userId: userIdOf(n), messageId: `gid-${seed}-${n}`, traits, timestamp: new Date().toISOString() };
}

const CONTENT = {
  email: { subject: 'Hi {{ profile.traits.first_name | default: "there" }}', text: 'News for {{ profile.traits.plan | default: "you" }}: {{ data.offer | default: "-" }}' },
  sms: { text: 'Example: {{ data.offer | default: "news" }}' },
  whatsapp: { template: 'offer_v2', language: 'en', parameters: ['{{ data.offer | default: "-" }}'] },
  push: { title: 'Example', body: '{{ data.offer | default: "Open the app" }}' },
  in_app: { title: 'Example', body: 'Something new for {{ profile.traits.first_name | default: "you" }}' },
};

export type SendKind = 'promo-auto' | 'promo-sms' | 'alert-list' | 'receipt-auto' | 'digest-email';

const KINDS: readonly (readonly [SendKind, number])[] = [
  ['promo-auto', 40],
  ['promo-sms', 10],
  ['alert-list', 20],
  ['receipt-auto', 20],
  ['digest-email', 10],
];

/** One POST /v1/messages body, to a customer drawn uniformly from `customers`. */
export function sendBody(r: Rng, customers: number): { kind: SendKind; body: Record<string, unknown> } {
  const to = `user_id:${userIdOf(r.int(customers))}`;
  const kind = r.weighted(KINDS);
  const data = { offer: r.pick(['10% off', 'free shipping', 'new arrivals', 'last chance']) };
  switch (kind) {
    case 'promo-auto':
      return {
        kind,
        body: {
          to,
          channel: 'auto',
          category: 'promotional',
          type: 'promotion',
          priority: r.weighted([['low', 3], ['normal', 6], ['high', 1]] as const),
          tags: ['campaign'],
          data,
          content: { email: CONTENT.email, whatsapp: CONTENT.whatsapp, push: CONTENT.push, in_app: CONTENT.in_app },
        },
      };
    case 'promo-sms':
      return { kind, body: { to, channel: 'sms', category: 'promotional', tags: ['flash-sale'], data, content: { sms: CONTENT.sms } } };
    case 'alert-list':
      return {
        kind,
        body: {
          to,
          channel: ['push', 'sms', 'email'],
          category: 'operational',
          type: 'alert',
          priority: r.weighted([['normal', 5], ['high', 4], ['urgent', 1]] as const),
          data,
          content: { push: CONTENT.push, sms: CONTENT.sms, email: CONTENT.email },
        },
      };
    case 'receipt-auto':
      return {
        kind,
        body: { to, channel: 'auto', category: 'transactional', type: 'receipt', priority: 'high', data, content: { email: CONTENT.email, sms: CONTENT.sms, push: CONTENT.push } },
      };
    case 'digest-email':
      return { kind, body: { to, channel: 'email', category: 'promotional', topic: 'newsletter', priority: 'low', data, content: { email: CONTENT.email } } };
  }
}
