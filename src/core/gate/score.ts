// The `auto` channel score of the send gate (docs/gate.md, "Channel selection (auto)"). Pure: every number
// it needs (history counts, costs, capabilities, weights) comes in through the input.
//
// Each candidate gets five components in [0, 1], and its total is the weighted sum:
// - type_rule:  the message type's `prefer` list: position i of n → 1 − i/n; not listed (or no type) → 0;
// - preference: 1 if it is the customer's preferred channel, else 0;
// - engagement: the customer's engagement rate (opens + clicks + replies over deliveries), smoothed with a
//               Bayesian prior from the workspace's own rate: (engaged + k·p) / (delivered + k);
// - cost:       1 − cost / max cost among the candidates (all free → 1 for every one);
// - capability: the share of the message type's `needs` the channel supports (no needs → 1).
// Candidates are ranked by total, best first; ties keep the order of the candidates (the send's `content`).

import type { Channel } from '../types.js';

export interface ScoreWeights {
  type_rule: number;
  preference: number;
  engagement: number;
  cost: number;
  capability: number;
  /** pseudo-messages of the workspace's own rate in each customer's estimate (k) */
  prior_strength: number;
}

/** The documented defaults (docs/gate.md, `scoring`). */
export const DEFAULT_SCORE_WEIGHTS: Readonly<ScoreWeights> = Object.freeze({
  type_rule: 3,
  preference: 2,
  engagement: 4,
  cost: 1,
  capability: 1,
  prior_strength: 20,
});

/**
 * The prior rate used when the workspace has no deliveries on any channel yet: a plausible engagement
 * rate, so a brand-new workspace neither favours nor penalises any channel on engagement.
 */
export const DEFAULT_PRIOR_RATE = 0.1;

export interface EngagementStats {
  delivered: number;
  /** opens + clicks + replies */
  engaged: number;
}

export interface ScoreInput {
  /** in content order (the tie-break order); duplicates after the first are ignored */
  candidates: Channel[];
  /** from the workspace's message_types[type]; absent → type_rule 0 and capability 1 for every channel */
  messageType?: { prefer: Channel[]; needs: string[] };
  /** the customer's preferred channel */
  preferred: Channel | null;
  /** the customer's own counts per channel (absent → no history) */
  customer: Partial<Record<Channel, EngagementStats>>;
  /** the workspace's totals per channel, for the prior */
  workspace: Partial<Record<Channel, EngagementStats>>;
  /** cost per message; a channel without a cost counts as free */
  costs: Partial<Record<Channel, number>>;
  /** what each channel supports (rich_media, buttons, …); absent → nothing */
  capabilities: Partial<Record<Channel, string[]>>;
  weights: ScoreWeights;
}

export interface ScoreComponents {
  type_rule: number;
  preference: number;
  engagement: number;
  cost: number;
  capability: number;
}

export interface ChannelScore {
  channel: Channel;
  /** Σ weight · component */
  total: number;
  /** each in [0, 1], before weighting */
  components: ScoreComponents;
  /** the customer's smoothed engagement rate (= components.engagement) */
  engagementRate: number;
  /** the workspace rate p used as the prior for this channel */
  priorRate: number;
}

/** A count or weight as a finite, non-negative number (NaN, ±∞ and negatives → 0). */
function nonNegative(x: number | undefined): number {
  return typeof x === 'number' && Number.isFinite(x) && x > 0 ? x : 0;
}

function clamp01(x: number): number {
  if (Number.isNaN(x)) return 0;
  return x < 0 ? 0 : x > 1 ? 1 : x;
}

/**
 * The customer's engagement rate smoothed towards `prior`: (engaged + k·prior) / (delivered + k), clamped
 * to [0, 1] (engaged can exceed delivered: one message may be opened and clicked). No history (or no
 * stats) → exactly `prior`; k = 0 → the raw rate (or `prior` if there are no deliveries). Counts and k
 * that are negative or not finite count as 0; `prior` is clamped to [0, 1].
 */
export function engagementRate(stats: EngagementStats | undefined, prior: number, k: number): number {
  const p = clamp01(prior);
  const delivered = nonNegative(stats?.delivered);
  const engaged = nonNegative(stats?.engaged);
  const strength = nonNegative(k);
  if (delivered === 0 && engaged === 0) return p;
  const denominator = delivered + strength;
  if (denominator === 0) return p;
  return clamp01((engaged + strength * p) / denominator);
}

/**
 * The workspace's engagement rate on `channel` (engaged / delivered), the prior of every customer's
 * estimate. Without deliveries on that channel: the workspace's overall rate across all channels; without
 * any deliveries at all: DEFAULT_PRIOR_RATE. Clamped to [0, 1].
 */
export function workspacePriorRate(workspace: Partial<Record<Channel, EngagementStats>>, channel: Channel): number {
  const own = Object.hasOwn(workspace, channel) ? workspace[channel] : undefined;
  const delivered = nonNegative(own?.delivered);
  if (delivered > 0) return clamp01(nonNegative(own?.engaged) / delivered);
  let totalDelivered = 0;
  let totalEngaged = 0;
  for (const stats of Object.values(workspace)) {
    totalDelivered += nonNegative(stats?.delivered);
    totalEngaged += nonNegative(stats?.engaged);
  }
  return totalDelivered > 0 ? clamp01(totalEngaged / totalDelivered) : DEFAULT_PRIOR_RATE;
}

/**
 * Scores every candidate and returns them best first; equal totals keep the candidates' order. Weights
 * that are negative or not finite count as 0 (settings validation refuses them anyway), so every total is
 * within [0, Σ weights].
 */
export function scoreChannels(input: ScoreInput): ChannelScore[] {
  const candidates = [...new Set(input.candidates)];
  const w = input.weights;
  const weights = {
    type_rule: nonNegative(w.type_rule),
    preference: nonNegative(w.preference),
    engagement: nonNegative(w.engagement),
    cost: nonNegative(w.cost),
    capability: nonNegative(w.capability),
  };
  const k = nonNegative(w.prior_strength);
  const prefer = input.messageType?.prefer ?? [];
  const needs = [...new Set(input.messageType?.needs ?? [])];
  const costOf = (ch: Channel): number => nonNegative(Object.hasOwn(input.costs, ch) ? input.costs[ch] : undefined);
  const maxCost = candidates.reduce((m, ch) => Math.max(m, costOf(ch)), 0);

  const scored = candidates.map((channel, index) => {
    const position = prefer.indexOf(channel);
    const typeRule = position < 0 ? 0 : 1 - position / prefer.length;
    const preference = input.preferred === channel ? 1 : 0;
    const priorRate = workspacePriorRate(input.workspace, channel);
    const stats = Object.hasOwn(input.customer, channel) ? input.customer[channel] : undefined;
    const engagement = engagementRate(stats, priorRate, k);
    const cost = maxCost > 0 ? clamp01(1 - costOf(channel) / maxCost) : 1;
    const supported = Object.hasOwn(input.capabilities, channel) ? (input.capabilities[channel] ?? []) : [];
    const capability = needs.length === 0 ? 1 : needs.filter((n) => supported.includes(n)).length / needs.length;
    const components: ScoreComponents = { type_rule: typeRule, preference, engagement, cost, capability };
    const total =
      weights.type_rule * typeRule +
      weights.preference * preference +
      weights.engagement * engagement +
      weights.cost * cost +
      weights.capability * capability;
    const score: ChannelScore = { channel, total, components, engagementRate: engagement, priorRate };
    return { score, index };
  });

  scored.sort((a, b) => b.score.total - a.score.total || a.index - b.index);
  return scored.map((s) => s.score);
}
