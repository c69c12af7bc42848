import { deriveSeed, Rng } from './random.js';

// The customers of the journeys bench and what examples/journeys/onboarding.yaml must do with each.
//
// Everyone signs up on day 0 (identify with email, and for most a phone and WhatsApp, then "Signed Up").
// 70% log in on day 0, 1 or 2; 30% activate: 10% on day 1, 10% on day 4, 10% on day 9; the rest never
// do. A customer who activates has logged in first (on or before that day). Every event of day d is sent
// at 09:00 of day d, after the timers due then have fired, logins before activations.
//
// `expected` is the journey worked out by hand from the spec, per customer, so the database can be
// checked row for row after the run.

export const DAYS = 14;
export const ACTIVATION_DAYS = [1, 4, 9] as const;

export interface Customer {
  index: number;
  userId: string;
  anonymousId: string;
  email: string;
  phone: string | null;
  whatsapp: boolean;
  firstName: string | null;
  plan: string;
  timezone: string;
  loginDay: number | null;
  activationDay: (typeof ACTIVATION_DAYS)[number] | null;
}

const FIRST_NAMES = ['Ada', 'Grace', 'Alan', 'Linus', 'Margaret', 'Ken', 'Barbara', 'Dennis', 'Frances', 'Edsger', 'Radia', 'Tim', 'Hedy', 'John', 'Katherine', 'Niklaus'];
const DOMAINS = ['gmail.com', 'yahoo.com', 'outlook.com', 'icloud.com', 'proton.me', 'acme.io', 'example.org', 'fastmail.com'];
const PLANS = [['free', 6], ['starter', 3], ['pro', 2]] as const;
// No DST change in any of these between 5 and 19 January, so "P3D" is 72 hours for everyone.
const ZONES = ['America/New_York', 'America/Chicago', 'America/Los_Angeles', 'Europe/London', 'Europe/Berlin', 'Asia/Tokyo', 'Asia/Kolkata'];
const AREA_CODES = ['415', '212', '312', '617', '206', '303', '512', '646', '213', '305'];
const PLATFORMS = ['ios', 'android', 'web'];

export function customer(seed: number, index: number): Customer {
  const rng = new Rng(deriveSeed(seed, index));
  const first = rng.pick(FIRST_NAMES);
  const r = rng.next();
  const activationDay = r < 0.1 ? 1 : r < 0.2 ? 4 : r < 0.3 ? 9 : null;
  // 30% activate (and log in first); of the other 70%, 4 in 7 log in: 70% log in overall.
  let loginDay: number | null;
  if (activationDay !== null) loginDay = rng.int(Math.min(activationDay, 2) + 1);
  else loginDay = rng.chance(4 / 7) ? rng.int(3) : null;
  const hasPhone = rng.chance(0.8);
  // Unique per customer, valid NANP numbers: area code, exchange ≥ 200, line = index.
  const area = AREA_CODES[Math.floor(index / 10_000) % AREA_CODES.length];
  const exchange = 200 + Math.floor(index / (10_000 * AREA_CODES.length));
  return {
    index,
    userId: `usr_${index.toString(36).padStart(5, '0')}${rng.hex(8)}`,
    anonymousId: rng.uuid(),
    email: `${first.toLowerCase()}.${index}@${rng.pick(DOMAINS)}`,
    phone: hasPhone ? `+1${area}${exchange}${String(index % 10_000).padStart(4, '0')}` : null,
    // 75% of those with a phone are on WhatsApp: 60% of everyone.
    whatsapp: hasPhone && rng.chance(0.75),
    firstName: rng.chance(0.9) ? first : null,
    plan: rng.weighted(PLANS),
    timezone: rng.pick(ZONES),
    loginDay,
    activationDay,
  };
}

type Call = Record<string, unknown>;

let sequence = 0;
const messageId = (c: Customer, what: string) => `bench-${c.index.toString(36)}-${what}-${(sequence++).toString(36)}`;

/** Sign-up: an identify with the contact traits, then "Signed Up". No timestamps: the server's (virtual) clock stamps them. */
export function signUpCalls(c: Customer): Call[] {
  const traits: Record<string, unknown> = { email: c.email, plan: c.plan, timezone: c.timezone };
  if (c.firstName) traits.first_name = c.firstName;
  if (c.phone) traits.phone = c.phone;
  if (c.whatsapp) traits.whatsapp = true;
  return [
    { type: 'identify', messageId: messageId(c, 'id'), userId: c.userId, anonymousId: c.anonymousId, traits, context: { locale: 'en-US' } },
    { type: 'track', messageId: messageId(c, 'su'), userId: c.userId, anonymousId: c.anonymousId, event: 'Signed Up', properties: { plan: c.plan, source: 'web' } },
  ];
}

export function loginCall(c: Customer): Call {
  return { type: 'track', messageId: messageId(c, 'li'), userId: c.userId, event: 'Logged In', properties: { platform: PLATFORMS[c.index % 3] } };
}

export function activationCall(c: Customer): Call {
  return { type: 'track', messageId: messageId(c, 'ac'), userId: c.userId, event: 'Activated', properties: { source: 'app', project: 'first' } };
}

/** What the onboarding journey must leave in the database. Message keys: `step/status/channel`. */
export interface Expected {
  customers: number;
  logins: number;
  activations: Record<string, number>;
  runs: { converted: number; completed: number };
  runSteps: number;
  messages: Record<string, number>;
  messagesTotal: number;
  messagesSent: number;
  events: number;
}

export function expectedOf(customers: Iterable<Customer>): Expected {
  const e: Expected = {
    customers: 0,
    logins: 0,
    activations: { day1: 0, day4: 0, day9: 0 },
    runs: { converted: 0, completed: 0 },
    runSteps: 0,
    messages: {},
    messagesTotal: 0,
    messagesSent: 0,
    events: 0,
  };
  const msg = (step: string, sent: boolean, channel: string) => {
    const key = `${step}/${sent ? 'sent' : 'suppressed'}/${sent ? channel : '-'}`;
    e.messages[key] = (e.messages[key] ?? 0) + 1;
    e.messagesTotal++;
    if (sent) e.messagesSent++;
  };
  for (const c of customers) {
    const A = c.activationDay;
    const L = c.loginDay;
    e.customers++;
    e.events += 2 + (L !== null ? 1 : 0) + (A !== null ? 1 : 0);
    if (L !== null) e.logins++;
    if (A !== null) e.activations[`day${A}`]++;
    // Entry: $entry, welcome (send), first_login (waiting), day_3 (waiting).
    let steps = 4;
    msg('welcome', true, 'email');
    // Login (always before activation): first_login event_received, in_app_tip (send).
    if (L !== null) {
      steps += 2;
      msg('in_app_tip', true, 'in_app');
    }
    // Activation: $goal converted; the run ends with every listener and timer.
    if (A !== null) steps += 1;
    // Day 3, if still running: day_3 resumed, activated_by_day_3 (default), whatsapp_nudge (send), day_7 (waiting).
    if (A === null || A > 3) {
      steps += 4;
      msg('whatsapp_nudge', c.whatsapp, 'whatsapp');
    }
    // Day 7: day_7 resumed, activated_by_day_7 (default), sms_nudge (send); that path ends.
    if (A === null || A > 7) {
      steps += 3;
      msg('sms_nudge', c.phone !== null, 'sms');
    }
    // Day 14: the wait for a login times out; the goal window closes on every run not converted.
    if (L === null && A === null) steps += 1;
    if (A === null) steps += 1;
    e.runSteps += steps;
    if (A !== null) e.runs.converted++;
    else e.runs.completed++;
  }
  return e;
}
