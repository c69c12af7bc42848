import { consentFor, contactFor, type Category } from '../reach.js';
import { isHardOptOutRecord, type Channel, type ProfileState } from '../types.js';
import type { FallbackHop } from '../journey-spec.js';
import { checkCaps, type CapCheck, type SentRecord } from './caps.js';
import { quietUntil } from './quiet.js';
import { scoreChannels, type ChannelScore, type EngagementStats } from './score.js';
import type { GateSettings, Priority, SuppressionRule } from './settings.js';

// The send gate's decision for one message, as a pure function of what is known about the customer.
// The engine gathers the facts inside the customer's serialized step and records the result on the
// message (DESIGN invariant 4).

export interface SendRequest {
  /** The channel as asked: one, an ordered list, or auto. */
  channel: Channel | Channel[] | 'auto';
  /** Channels that have content, in the order written (the candidates of `auto`, and its tie-break). */
  contentChannels: Channel[];
  category: Category;
  priority: Priority;
  topic?: string;
  type?: string;
  tags: string[];
  overrideCaps: boolean;
  /** true when the WhatsApp content is an approved template (allowed outside the 24-hour window). */
  whatsappTemplate: boolean;
  /** Escalation hops still to come after this message. */
  fallback: FallbackHop[];
}

export interface GateFacts {
  now: Date;
  /** The customer's zone, else the workspace's. */
  zone: string;
  profile: ProfileState;
  hasUserId: boolean;
  settings: GateSettings;
  /** Messages already sent or queued to this customer (and decided earlier in this step). */
  history: SentRecord[];
  engagement: { customer: Partial<Record<Channel, EngagementStats>>; workspace: Partial<Record<Channel, EngagementStats>> };
  /** The customer wrote to us on WhatsApp within 24 hours. */
  whatsappWindowOpen: boolean;
  /** Suppression rules whose condition holds for this customer now. */
  suppressedBy: SuppressionRule[];
}

export interface CandidateTrace {
  channel: Channel;
  score?: ChannelScore;
  outcome: 'chosen' | 'ruled_out' | 'fallback' | 'not_tried';
  reason?: string;
}

export interface Decision {
  outcome: 'send' | 'defer' | 'suppress';
  channel: Channel | null;
  address: string | null;
  provider: string | null;
  deferUntil: Date | null;
  /** The rule that decided: channel, consent, suppression:<id>, quiet_hours, cap:<id>, … */
  rule: string;
  reason: string;
  trace: { candidates: CandidateTrace[]; caps: CapCheck[]; quietUntil: string | null; suppression: string[] };
}

/** Hard opt-outs (an SMS STOP, a complaint, one recorded through the admin API) bind even transactional messages. */
export function isHardOptOut(profile: ProfileState, channel: Channel): boolean {
  return isHardOptOutRecord(profile.consent.channels[channel]);
}

function hardOptOutReason(profile: ProfileState, channel: Channel): string {
  const c = profile.consent.channels[channel];
  return `hard opt-out on ${channel} (${c?.source}${c?.reason ? `: ${c.reason}` : ''})`;
}

function undeliverable(profile: ProfileState, channel: Channel): boolean {
  const cp = profile.contactPoints as unknown as Record<string, { undeliverable?: boolean } | undefined>;
  return cp[channel]?.undeliverable === true;
}

/** Why the channel can't carry this message at all (not a timing matter), or null. */
function channelProblem(req: SendRequest, f: GateFacts, channel: Channel): { rule: string; reason: string } | null {
  const cfg = f.settings.channels[channel];
  if (!cfg?.enabled) return { rule: 'channel_disabled', reason: `${channel} is not enabled in this workspace` };
  if (!req.contentChannels.includes(channel)) return { rule: 'content', reason: `the message has no ${channel} content` };
  const contact = contactFor(f.profile, f.hasUserId, channel);
  if (!contact.ok) return { rule: 'reachability', reason: contact.reason };
  if (undeliverable(f.profile, channel)) return { rule: 'reachability', reason: `the ${channel} contact point is marked undeliverable` };
  if (isHardOptOut(f.profile, channel)) return { rule: 'consent', reason: hardOptOutReason(f.profile, channel) };
  const consent = consentFor(f.profile, channel, req.category, req.topic);
  if (!consent.ok) return { rule: 'consent', reason: consent.reason };
  if (channel === 'whatsapp' && !f.whatsappWindowOpen && !req.whatsappTemplate) {
    return { rule: 'whatsapp_window', reason: 'outside the 24-hour WhatsApp window only an approved template may be sent' };
  }
  return null;
}

function candidates(req: SendRequest, f: GateFacts): { list: Channel[]; scores: Map<Channel, ChannelScore> } {
  const scores = new Map<Channel, ChannelScore>();
  if (req.channel !== 'auto') return { list: Array.isArray(req.channel) ? req.channel : [req.channel], scores };
  const s = f.settings;
  const ranked = scoreChannels({
    candidates: req.contentChannels,
    messageType: req.type ? s.message_types[req.type] : undefined,
    preferred: f.profile.preferredChannel,
    customer: f.engagement.customer,
    workspace: f.engagement.workspace,
    costs: Object.fromEntries(req.contentChannels.map((c) => [c, s.channels[c]?.cost ?? 0])),
    capabilities: Object.fromEntries(req.contentChannels.map((c) => [c, s.channels[c]?.capabilities ?? []])),
    weights: s.scoring,
  });
  for (const r of ranked) scores.set(r.channel, r);
  return { list: ranked.map((r) => r.channel), scores };
}

const bypassesQuiet = (req: SendRequest, f: GateFacts) => req.priority === 'urgent' || f.settings.quiet_hours.bypass.includes(req.category);

export function decide(req: SendRequest, f: GateFacts): Decision {
  const trace: Decision['trace'] = { candidates: [], caps: [], quietUntil: null, suppression: [] };
  // Object.assign, not a spread: V8 (Node 20) copies an object and then adds a key ~5x slower by spread.
  const done = (d: Omit<Decision, 'trace'>): Decision => Object.assign({}, d, { trace });
  const none = { channel: null, address: null, provider: null, deferUntil: null };

  // Suppression rules are about the customer, not the channel: they come first.
  const suppressing = f.suppressedBy.filter((r) => r.categories.includes(req.category));
  trace.suppression = suppressing.map((r) => r.id);
  if (suppressing.length > 0) {
    const r = suppressing[0];
    return done({ outcome: 'suppress', ...none, rule: `suppression:${r.id}`, reason: r.reason });
  }

  const { list, scores } = candidates(req, f);
  // The earliest moment a timing rule (quiet hours, a deferring cap) would let some candidate through.
  let deferral: { until: Date; rule: string; reason: string } | null = null;
  let firstBlock: { rule: string; reason: string } | null = null;
  // Every candidate is in the trace, tried or not, with its score when ranked.
  const entries = list.map((channel): CandidateTrace => ({ channel, ...(scores.has(channel) ? { score: scores.get(channel) } : {}), outcome: 'not_tried' }));
  trace.candidates.push(...entries);
  for (const [i, channel] of list.entries()) {
    const entry = entries[i];
    entry.outcome = 'ruled_out';
    const problem = channelProblem(req, f, channel);
    if (problem) {
      entry.reason = problem.reason;
      firstBlock ??= problem;
      continue;
    }
    if (!bypassesQuiet(req, f)) {
      const until = quietUntil(f.settings.quiet_hours, channel, f.now, f.zone);
      if (until) {
        entry.outcome = 'fallback';
        entry.reason = `quiet hours in ${f.zone} until ${until.toISOString()}`;
        trace.quietUntil ??= until.toISOString();
        if (f.settings.quiet_hours.action === 'defer' && (!deferral || until < deferral.until)) {
          deferral = { until, rule: 'quiet_hours', reason: entry.reason };
        }
        firstBlock ??= { rule: 'quiet_hours', reason: entry.reason };
        continue;
      }
    }
    const caps = checkCaps(f.settings.caps, { channel, category: req.category, tags: req.tags, overrideCaps: req.overrideCaps }, f.history, f.now, f.zone);
    trace.caps.push(...caps.checks.filter((c) => !trace.caps.some((t) => t.rule.id === c.rule.id)));
    if (!caps.allowed && caps.blocking) {
      const b = caps.blocking;
      entry.outcome = 'fallback';
      entry.reason = `cap ${b.rule.id}: ${b.count} of ${b.rule.limit} in the window`;
      if (b.rule.on_exceed === 'defer' && b.reopensAt && (!deferral || b.reopensAt < deferral.until)) {
        deferral = { until: b.reopensAt, rule: `cap:${b.rule.id}`, reason: entry.reason };
      }
      firstBlock ??= { rule: `cap:${b.rule.id}`, reason: entry.reason };
      continue;
    }
    const contact = contactFor(f.profile, f.hasUserId, channel);
    entry.outcome = 'chosen';
    const passedOver = entries.slice(0, i).map((c) => `${c.channel}: ${c.reason}`);
    const why = req.channel === 'auto' ? `highest-scoring usable channel (score ${entry.score?.total.toFixed(3)})` : `first usable channel of [${list.join(', ')}]`;
    return done({
      outcome: 'send',
      channel,
      address: contact.ok ? contact.address : null,
      provider: f.settings.channels[channel].provider,
      deferUntil: null,
      rule: passedOver.length > 0 ? 'fallback' : 'channel',
      reason: [`${channel}: ${why}`, ...passedOver].join('; '),
    });
  }
  if (deferral) {
    return done({ outcome: 'defer', ...none, deferUntil: deferral.until, rule: deferral.rule, reason: `${deferral.reason}; deferred to ${deferral.until.toISOString()}` });
  }
  const block = firstBlock ?? { rule: 'channel', reason: 'no channel to send on' };
  return done({ outcome: 'suppress', ...none, rule: block.rule, reason: block.reason });
}

export const PRIORITY_RANK: Record<Priority, number> = { urgent: 3, high: 2, normal: 1, low: 0 };

/** Decision order within one step: higher priority first, then older, then lower id. */
export function byPriority<T extends { priority: Priority; createdAt: number; id: string }>(a: T, b: T): number {
  return PRIORITY_RANK[b.priority] - PRIORITY_RANK[a.priority] || a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}
