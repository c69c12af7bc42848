import type { Channel, ProfileState } from './types.js';

// Can this customer be reached on a channel, and may we? The simple rule of the journeys issue; the send
// gate (caps, quiet hours, scoring) builds on it later.

export type Category = 'transactional' | 'operational' | 'promotional';

export type Reach = { ok: true; address: string } | { ok: false; reason: string };

/** A usable contact point for the channel. In-app reaches any identified (user_id) customer unless disabled. */
export function contactFor(profile: ProfileState, hasUserId: boolean, channel: Channel): Reach {
  const cp = profile.contactPoints;
  switch (channel) {
    case 'email':
      return cp.email ? { ok: true, address: cp.email.address } : { ok: false, reason: 'no email address' };
    case 'sms':
      return cp.sms ? { ok: true, address: cp.sms.phone } : { ok: false, reason: 'no phone number' };
    case 'whatsapp':
      return cp.whatsapp ? { ok: true, address: cp.whatsapp.phone } : { ok: false, reason: 'no WhatsApp number' };
    case 'push': {
      const token = [...cp.push].sort((a, b) => (a.updatedAt < b.updatedAt ? 1 : -1))[0];
      return token ? { ok: true, address: `${token.provider}:${token.token}` } : { ok: false, reason: 'no push token' };
    }
    case 'in_app':
      if (cp.in_app?.enabled === false) return { ok: false, reason: 'in-app messages disabled' };
      return hasUserId || cp.in_app?.enabled ? { ok: true, address: profile.id } : { ok: false, reason: 'not an identified app user' };
  }
}

/** Consent: an unsubscribe blocks everything but transactional messages; a topic unsubscribe blocks that topic. */
export function consentFor(profile: ProfileState, channel: Channel, category: Category, topic?: string): Reach {
  if (category === 'transactional') return { ok: true, address: '' };
  if (profile.consent.channels[channel]?.status === 'unsubscribed') return { ok: false, reason: `unsubscribed from ${channel}` };
  if (topic && profile.consent.topics[topic]?.status === 'unsubscribed') return { ok: false, reason: `unsubscribed from topic ${topic}` };
  return { ok: true, address: '' };
}

export type ChannelChoice =
  | { ok: true; channel: Channel; address: string; skipped: { channel: Channel; reason: string }[] }
  | { ok: false; reason: string; skipped: { channel: Channel; reason: string }[] };

/** The first candidate the customer is reachable and consented on, with the reason each earlier one was passed over. */
export function chooseChannel(
  candidates: Channel[],
  profile: ProfileState,
  hasUserId: boolean,
  category: Category,
  topic?: string,
): ChannelChoice {
  const skipped: { channel: Channel; reason: string }[] = [];
  for (const channel of candidates) {
    const contact = contactFor(profile, hasUserId, channel);
    if (!contact.ok) {
      skipped.push({ channel, reason: contact.reason });
      continue;
    }
    const consent = consentFor(profile, channel, category, topic);
    if (!consent.ok) {
      skipped.push({ channel, reason: consent.reason });
      continue;
    }
    return { ok: true, channel, address: contact.address, skipped };
  }
  const why = skipped.map((s) => `${s.channel}: ${s.reason}`).join('; ');
  return { ok: false, reason: `not reachable on any allowed channel (${why || 'no channels'})`, skipped };
}
