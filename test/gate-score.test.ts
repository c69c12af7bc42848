// Pure tests of the `auto` channel score (src/core/gate/score.ts): the documented examples, the Bayesian
// prior, cost and tie ordering, and fast-check properties (bounds, stable order, monotone engagement).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_PRIOR_RATE,
  DEFAULT_SCORE_WEIGHTS,
  engagementRate,
  scoreChannels,
  workspacePriorRate,
  type ChannelScore,
  type EngagementStats,
  type ScoreInput,
  type ScoreWeights,
} from '../src/core/gate/score.js';
import { CHANNELS, type Channel } from '../src/core/types.js';

// The workspace of docs/gate.md.
const COSTS: Partial<Record<Channel, number>> = { email: 0.0008, sms: 0.0079, whatsapp: 0.005, push: 0, in_app: 0 };
const CAPABILITIES: Partial<Record<Channel, string[]>> = {
  email: ['rich_media', 'buttons', 'long_text'],
  sms: [],
  whatsapp: ['rich_media', 'buttons'],
  push: ['buttons'],
  in_app: ['rich_media', 'buttons', 'long_text'],
};
const MESSAGE_TYPES: Record<string, { prefer: Channel[]; needs: string[] }> = {
  alert: { prefer: ['sms', 'push'], needs: [] },
  receipt: { prefer: ['email'], needs: [] },
  promotion: { prefer: ['whatsapp', 'email'], needs: ['rich_media'] },
};
const ALL: Channel[] = [...CHANNELS];

function input(over: Partial<ScoreInput> = {}): ScoreInput {
  return {
    candidates: ALL,
    preferred: null,
    customer: {},
    workspace: {},
    costs: COSTS,
    capabilities: CAPABILITIES,
    weights: { ...DEFAULT_SCORE_WEIGHTS },
    ...over,
  };
}
const order = (scores: ChannelScore[]): Channel[] => scores.map((s) => s.channel);
const byChannel = (scores: ChannelScore[], ch: Channel): ChannelScore => scores.find((s) => s.channel === ch)!;

describe('documented examples', () => {
  it('alert prefers sms, then push', () => {
    const scores = scoreChannels(input({ messageType: MESSAGE_TYPES.alert }));
    expect(order(scores).slice(0, 2)).toEqual(['sms', 'push']);
    expect(byChannel(scores, 'sms').components.type_rule).toBe(1);
    expect(byChannel(scores, 'push').components.type_rule).toBe(0.5);
    expect(byChannel(scores, 'email').components.type_rule).toBe(0);
  });

  it('receipt goes to email', () => {
    const scores = scoreChannels(input({ messageType: MESSAGE_TYPES.receipt }));
    expect(order(scores)[0]).toBe('email');
  });

  it('promotion (needs rich_media) favours whatsapp, then email; sms supports none of it', () => {
    const scores = scoreChannels(input({ messageType: MESSAGE_TYPES.promotion }));
    expect(order(scores).slice(0, 2)).toEqual(['whatsapp', 'email']);
    expect(byChannel(scores, 'whatsapp').components.capability).toBe(1);
    expect(byChannel(scores, 'sms').components.capability).toBe(0);
    expect(byChannel(scores, 'push').components.capability).toBe(0);
    expect(order(scores).at(-1)).toBe('sms');
  });

  it('component table for an alert (no history: engagement = default prior 0.1)', () => {
    const scores = scoreChannels(input({ messageType: MESSAGE_TYPES.alert, preferred: 'email' }));
    const sms = byChannel(scores, 'sms');
    expect(sms.components).toEqual({ type_rule: 1, preference: 0, engagement: 0.1, cost: 0, capability: 1 });
    expect(sms.total).toBeCloseTo(3 + 0.4 + 0 + 1, 12);
    const email = byChannel(scores, 'email');
    expect(email.components.preference).toBe(1);
    expect(email.components.cost).toBeCloseTo(1 - 0.0008 / 0.0079, 12);
    expect(email.total).toBeCloseTo(0 + 2 + 0.4 + (1 - 0.0008 / 0.0079) + 1, 12);
    expect(sms.priorRate).toBe(DEFAULT_PRIOR_RATE);
  });

  it('no message type: type_rule 0 and capability 1 everywhere', () => {
    for (const s of scoreChannels(input())) {
      expect(s.components.type_rule).toBe(0);
      expect(s.components.capability).toBe(1);
    }
  });

  it("the customer's preferred channel and engagement can outweigh a type rule", () => {
    const scores = scoreChannels(
      input({
        messageType: MESSAGE_TYPES.alert,
        preferred: 'push',
        customer: { push: { delivered: 40, engaged: 30 }, sms: { delivered: 40, engaged: 0 } },
        workspace: { push: { delivered: 1000, engaged: 200 }, sms: { delivered: 1000, engaged: 100 } },
      }),
    );
    expect(order(scores)[0]).toBe('push');
  });
});

describe('engagement and the Bayesian prior', () => {
  const workspace: Partial<Record<Channel, EngagementStats>> = {
    email: { delivered: 1000, engaged: 230 },
    sms: { delivered: 500, engaged: 40 },
  };

  it("a brand-new customer's engagement is exactly the workspace rate on the channel", () => {
    const scores = scoreChannels(input({ candidates: ['email', 'sms'], workspace }));
    expect(byChannel(scores, 'email').components.engagement).toBe(0.23);
    expect(byChannel(scores, 'email').priorRate).toBe(0.23);
    expect(byChannel(scores, 'sms').components.engagement).toBe(0.08);
    // explicit zero stats are the same as none
    const zero = scoreChannels(input({ candidates: ['email'], workspace, customer: { email: { delivered: 0, engaged: 0 } } }));
    expect(zero[0]!.components.engagement).toBe(0.23);
  });

  it('a channel the workspace never delivered on uses the overall workspace rate; none at all → 0.1', () => {
    expect(workspacePriorRate(workspace, 'push')).toBeCloseTo(270 / 1500, 12);
    expect(workspacePriorRate({}, 'push')).toBe(DEFAULT_PRIOR_RATE);
    expect(workspacePriorRate({ push: { delivered: 0, engaged: 0 } }, 'push')).toBe(DEFAULT_PRIOR_RATE);
    const scores = scoreChannels(input({ candidates: ['push'], workspace }));
    expect(scores[0]!.components.engagement).toBeCloseTo(270 / 1500, 12);
  });

  it('2 of 2 opens with prior strength 20 does not jump to 1', () => {
    const rate = engagementRate({ delivered: 2, engaged: 2 }, 0.23, 20);
    expect(rate).toBeCloseTo((2 + 20 * 0.23) / 22, 12); // 0.3
    expect(rate).toBeLessThan(0.35);
    const scores = scoreChannels(input({ candidates: ['email'], workspace, customer: { email: { delivered: 2, engaged: 2 } } }));
    expect(scores[0]!.components.engagement).toBeCloseTo(0.3, 12);
    expect(scores[0]!.engagementRate).toBe(scores[0]!.components.engagement);
  });

  it('a long history dominates the prior', () => {
    expect(engagementRate({ delivered: 10_000, engaged: 9_000 }, 0.1, 20)).toBeCloseTo(9_002 / 10_020, 12);
  });

  it('engagementRate edge cases', () => {
    expect(engagementRate(undefined, 0.3, 20)).toBe(0.3);
    expect(engagementRate({ delivered: 4, engaged: 1 }, 0.3, 0)).toBe(0.25); // k = 0: the raw rate
    expect(engagementRate({ delivered: 0, engaged: 3 }, 0.3, 0)).toBe(0.3); // nothing to divide by
    expect(engagementRate({ delivered: 2, engaged: 10 }, 0.5, 0)).toBe(1); // clamped
    expect(engagementRate({ delivered: 10, engaged: 5 }, 1.7, 10)).toBe(0.75); // prior clamped to 1
    expect(engagementRate({ delivered: -5, engaged: Number.NaN }, 0.2, 20)).toBe(0.2);
    expect(engagementRate({ delivered: 10, engaged: 5 }, 0.2, -3)).toBe(0.5); // negative k → 0
  });
});

describe('cost and ties', () => {
  it('cheaper channels get a higher cost component; the most expensive gets 0', () => {
    const scores = scoreChannels(input({ candidates: ['sms', 'whatsapp', 'email'] }));
    expect(order(scores)).toEqual(['email', 'whatsapp', 'sms']);
    expect(byChannel(scores, 'sms').components.cost).toBe(0);
    expect(byChannel(scores, 'whatsapp').components.cost).toBeCloseTo(1 - 0.005 / 0.0079, 12);
  });

  it('max cost is among the candidates only', () => {
    const scores = scoreChannels(input({ candidates: ['email', 'whatsapp'] }));
    expect(byChannel(scores, 'whatsapp').components.cost).toBe(0);
    expect(byChannel(scores, 'email').components.cost).toBeCloseTo(1 - 0.0008 / 0.005, 12);
  });

  it('all free → cost 1 for every candidate; a missing cost counts as free', () => {
    const scores = scoreChannels(input({ candidates: ['push', 'in_app'] }));
    expect(scores.map((s) => s.components.cost)).toEqual([1, 1]);
    const missing = scoreChannels(input({ candidates: ['email', 'sms'], costs: { sms: 0.01 } }));
    expect(byChannel(missing, 'email').components.cost).toBe(1);
  });

  it('ties keep the candidates order', () => {
    const same = { costs: {}, capabilities: {} };
    expect(order(scoreChannels(input({ ...same, candidates: ['push', 'email', 'sms'] })))).toEqual(['push', 'email', 'sms']);
    expect(order(scoreChannels(input({ ...same, candidates: ['sms', 'push', 'email'] })))).toEqual(['sms', 'push', 'email']);
  });

  it('duplicate candidates are scored once', () => {
    expect(order(scoreChannels(input({ candidates: ['email', 'sms', 'email'], costs: {} })))).toEqual(['email', 'sms']);
  });

  it('no candidates → no scores', () => {
    expect(scoreChannels(input({ candidates: [] }))).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------------

const channelArb = fc.constantFrom(...CHANNELS);
const statsArb: fc.Arbitrary<EngagementStats> = fc.record({
  delivered: fc.nat({ max: 10_000 }),
  engaged: fc.nat({ max: 12_000 }), // may exceed delivered (open + click of one message)
});
const statsMapArb = fc.dictionary(channelArb, statsArb) as fc.Arbitrary<Partial<Record<Channel, EngagementStats>>>;
const weightArb = fc.oneof(fc.integer({ min: 0, max: 10 }), fc.double({ min: 0, max: 10, noNaN: true }));
const weightsArb: fc.Arbitrary<ScoreWeights> = fc.record({
  type_rule: weightArb,
  preference: weightArb,
  engagement: weightArb,
  cost: weightArb,
  capability: weightArb,
  prior_strength: weightArb,
});
const capabilityArb = fc.constantFrom('rich_media', 'buttons', 'long_text', 'location');
const inputArb: fc.Arbitrary<ScoreInput> = fc
  .record(
    {
      candidates: fc.uniqueArray(channelArb, { minLength: 1, maxLength: 5 }),
      messageType: fc.record({
        prefer: fc.uniqueArray(channelArb, { maxLength: 5 }),
        needs: fc.uniqueArray(capabilityArb, { maxLength: 3 }),
      }),
      preferred: fc.option(channelArb, { nil: null }),
      customer: statsMapArb,
      workspace: statsMapArb,
      costs: fc.dictionary(channelArb, fc.oneof(fc.constant(0), fc.double({ min: 0, max: 1, noNaN: true }))),
      capabilities: fc.dictionary(channelArb, fc.uniqueArray(capabilityArb, { maxLength: 4 })),
      weights: weightsArb,
    },
    { requiredKeys: ['candidates', 'preferred', 'customer', 'workspace', 'costs', 'capabilities', 'weights'] },
  )
  .map((x) => x as ScoreInput);

const sumWeights = (w: ScoreWeights): number => w.type_rule + w.preference + w.engagement + w.cost + w.capability;
/** c is ranked ahead of d */
const ahead = (scores: ChannelScore[], c: Channel, d: Channel): boolean =>
  order(scores).indexOf(c) < order(scores).indexOf(d);

describe('properties', () => {
  it('components are in [0, 1] and totals within [0, Σ weights]', () => {
    fc.assert(
      fc.property(inputArb, (inp) => {
        const scores = scoreChannels(inp);
        expect(order(scores).sort()).toEqual([...inp.candidates].sort());
        for (const s of scores) {
          for (const v of Object.values(s.components)) {
            expect(v).toBeGreaterThanOrEqual(0);
            expect(v).toBeLessThanOrEqual(1);
          }
          expect(s.total).toBeGreaterThanOrEqual(0);
          expect(s.total).toBeLessThanOrEqual(sumWeights(inp.weights) + 1e-9);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('sorted best first, ties in candidates order, and a channel’s score does not depend on the order', () => {
    fc.assert(
      fc.property(
        inputArb.chain((inp) => fc.tuple(fc.constant(inp), fc.shuffledSubarray(inp.candidates, { minLength: inp.candidates.length }))),
        ([inp, shuffled]) => {
          const scores = scoreChannels(inp);
          for (let i = 1; i < scores.length; i++) {
            const prev = scores[i - 1]!;
            const cur = scores[i]!;
            expect(prev.total).toBeGreaterThanOrEqual(cur.total);
            if (prev.total === cur.total) {
              expect(inp.candidates.indexOf(prev.channel)).toBeLessThan(inp.candidates.indexOf(cur.channel));
            }
          }
          const reordered = scoreChannels({ ...inp, candidates: shuffled });
          for (const s of scores) expect(byChannel(reordered, s.channel)).toEqual(s);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('identical inputs give every candidate the same total, kept in candidates order', () => {
    fc.assert(
      fc.property(fc.uniqueArray(channelArb, { minLength: 1, maxLength: 5 }), weightsArb, (candidates, weights) => {
        const scores = scoreChannels({
          candidates,
          preferred: null,
          customer: {},
          workspace: {},
          costs: {},
          capabilities: {},
          weights,
        });
        expect(order(scores)).toEqual(candidates);
        expect(new Set(scores.map((s) => s.total)).size).toBe(1);
      }),
    );
  });

  it('adding engagement to a channel never lowers its rank relative to the others', () => {
    fc.assert(
      fc.property(
        inputArb.chain((inp) => fc.tuple(fc.constant(inp), fc.constantFrom(...inp.candidates), fc.integer({ min: 1, max: 500 }))),
        ([inp, channel, extra]) => {
          const before = scoreChannels(inp);
          const stats = inp.customer[channel] ?? { delivered: 0, engaged: 0 };
          const after = scoreChannels({
            ...inp,
            customer: { ...inp.customer, [channel]: { delivered: stats.delivered, engaged: stats.engaged + extra } },
          });
          expect(byChannel(after, channel).components.engagement).toBeGreaterThanOrEqual(
            byChannel(before, channel).components.engagement,
          );
          for (const other of inp.candidates) {
            if (other === channel) continue;
            expect(byChannel(after, other)).toEqual(byChannel(before, other));
            if (ahead(before, channel, other)) expect(ahead(after, channel, other)).toBe(true);
          }
          expect(order(after).indexOf(channel)).toBeLessThanOrEqual(order(before).indexOf(channel));
        },
      ),
      { numRuns: 500 },
    );
  });

  it('no history → engagement equals the prior rate, whatever k', () => {
    fc.assert(
      fc.property(statsMapArb, channelArb, weightArb, (workspace, channel, k) => {
        const p = workspacePriorRate(workspace, channel);
        expect(engagementRate(undefined, p, k)).toBe(p);
        expect(p).toBeGreaterThanOrEqual(0);
        expect(p).toBeLessThanOrEqual(1);
      }),
    );
  });
});
