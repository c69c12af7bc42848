import { sha256 } from '../lib/sha256.js';
import { evaluate, type ConditionContext, type EventLike } from './condition-eval.js';
import type { SendRequest } from './gate/decide.js';
import type { JourneySpec, SendContent, SendStep, Step } from './journey-spec.js';
import { applyFacts } from './profile.js';
import { chooseChannel } from './reach.js';
import { renderString, type TemplateVars } from './render.js';
import { addDuration, nextLocalTime } from './time.js';
import type { Channel, ProfileFacts, ProfileState } from './types.js';
import { isoTime } from './iso-time.js';

// The journey interpreter: walks a run's paths from the given steps until each one waits or ends, and
// returns what should happen (messages, waits, trait updates, history) for the store to apply in the same
// transaction. Time, history and message state come in through the context; nothing here does I/O.

export interface RunInfo {
  id: string;
  journeyKey: string;
  journeyName: string;
  version: number;
  profileId: string;
  enteredAt: Date;
  holdout: boolean;
  trigger: EventLike;
}

export interface WalkInput {
  spec: JourneySpec;
  run: RunInfo;
  profile: ProfileState;
  hasUserId: boolean;
  now: Date;
  /** The zone for `wait: {until}` and calendar durations when the profile has none. */
  defaultTimeZone: string;
  history: ConditionContext['history'];
  messageStatus: NonNullable<ConditionContext['messageStatus']>;
  /** How many times each step was entered before this walk (a loop revisits steps). */
  visits: Map<string, number>;
}

/** A message the run wants to send; the send gate decides whether, when and on which channel. */
export interface NewMessage {
  stepId: string;
  /** 1 for the first visit of the step in this run, 2 for the second … : part of the message's id. */
  attempt: number;
  request: SendRequest;
  templates: SendContent;
}

export interface NewWait {
  stepId: string;
  kind: 'wait' | 'wait_for';
  eventName: string | null;
  dueAt: Date;
}

export interface StepRecord {
  stepId: string;
  type: Step['type'];
  outcome: string;
  detail?: Record<string, unknown>;
}

export interface WalkResult {
  records: StepRecord[];
  messages: NewMessage[];
  waits: NewWait[];
  /** The profile after update_profile steps, or null when no step changed it. */
  profile: ProfileState | null;
  /** Set when an exit step ended the whole run. */
  exit: string | null;
}

const MAX_STEPS_PER_WALK = 1000;

/** A stable number in [0, 100) for sticky assignment (splits, holdout). */
export function bucket(...parts: string[]): number {
  const h = sha256(parts.join('\u0000'));
  return h.readUInt32BE(0) % 10_000 / 100;
}

export function isHoldout(spec: JourneySpec, profileId: string): boolean {
  return spec.holdout > 0 && bucket('holdout', spec.key, profileId) < spec.holdout;
}

/** What templates see of a profile: `profile.id`, `profile.traits.*`, `profile.email` … */
export function profileVars(p: ProfileState): Record<string, unknown> {
  return {
    id: p.id,
    traits: p.traits,
    timezone: p.timezone,
    locale: p.locale,
    email: p.contactPoints.email?.address ?? null,
    phone: p.contactPoints.sms?.phone ?? null,
  };
}

export function templateVars(input: Pick<WalkInput, 'spec' | 'run' | 'profile'>): TemplateVars {
  return {
    profile: profileVars(input.profile),
    event: { name: input.run.trigger.name, properties: input.run.trigger.properties, timestamp: input.run.trigger.timestamp },
    journey: { key: input.spec.key, name: input.spec.name, version: input.run.version, data: input.spec.data },
    run: { id: input.run.id, enteredAt: isoTime(input.run.enteredAt.getTime()) },
  };
}

export async function walk(input: WalkInput, start: string[]): Promise<WalkResult> {
  const result: WalkResult = { records: [], messages: [], waits: [], profile: null, exit: null };
  let profile = input.profile;
  const visits = new Map(input.visits);
  const queue = [...start];
  const ctx = (): ConditionContext => ({
    now: input.now,
    profile,
    enteredAt: input.run.enteredAt,
    history: input.history,
    messageStatus: input.messageStatus,
    reachable: (channel) => chooseChannel([channel], profile, input.hasUserId, 'promotional').ok,
  });
  const zone = () => profile.timezone ?? input.defaultTimeZone;

  for (let count = 0; queue.length > 0; count++) {
    if (count >= MAX_STEPS_PER_WALK) {
      result.exit = `stopped after ${MAX_STEPS_PER_WALK} steps without waiting; check the journey for a loop`;
      break;
    }
    const stepId = queue.shift()!;
    const step = input.spec.steps[stepId];
    if (!step) {
      result.records.push({ stepId, type: 'exit', outcome: 'error', detail: { reason: `unknown step ${stepId}` } });
      continue;
    }
    const visit = (visits.get(stepId) ?? 0) + 1;
    visits.set(stepId, visit);
    const record = (outcome: string, detail?: Record<string, unknown>) => result.records.push({ stepId, type: step.type, outcome, detail });

    switch (step.type) {
      case 'send': {
        result.messages.push({ stepId, attempt: visit, request: sendRequest(step.send), templates: step.send.content });
        record('to_gate', { attempt: visit });
        queue.push(...step.next);
        break;
      }
      case 'wait': {
        const w = step.wait;
        // "until 10:00" is strictly after now, so a loop through this step always lets time pass.
        const dueAt = 'duration' in w ? addDuration(input.now, w.duration, zone()) : nextLocalTime(new Date(input.now.getTime() + 1), w.until, zone());
        result.waits.push({ stepId, kind: 'wait', eventName: null, dueAt });
        record('waiting', { until: isoTime(dueAt.getTime()) });
        break;
      }
      case 'wait_for': {
        const w = step.wait_for;
        if (w.since_entry) {
          const already = await evaluate({ event: w.event, since: 'entry', ...(w.where ? { where: w.where } : {}) }, ctx());
          if (already) {
            record('event_already_happened', { event: w.event });
            queue.push(...step.onEvent);
            break;
          }
        }
        const dueAt = addDuration(input.now, w.timeout, zone());
        result.waits.push({ stepId, kind: 'wait_for', eventName: w.event, dueAt });
        record('waiting', { event: w.event, timeoutAt: isoTime(dueAt.getTime()) });
        break;
      }
      case 'branch': {
        let chosen: string[] = step.branch.default;
        let which = 'default';
        for (const [i, c] of step.branch.cases.entries()) {
          if (await evaluate(c.when, ctx())) {
            chosen = c.next;
            which = `case ${i}`;
            break;
          }
        }
        record(which, { next: chosen });
        queue.push(...chosen);
        break;
      }
      case 'split': {
        const b = bucket('split', input.spec.key, stepId, input.run.profileId);
        let acc = 0;
        let chosen = step.split.paths[step.split.paths.length - 1];
        for (const p of step.split.paths) {
          acc += p.percent;
          if (b < acc) {
            chosen = p;
            break;
          }
        }
        const index = step.split.paths.indexOf(chosen);
        record(`path ${index}`, { next: chosen.next });
        queue.push(...chosen.next);
        break;
      }
      case 'update_profile': {
        const traits = renderTraits(step.update_profile.traits, { ...input, profile });
        if (!traits.ok) {
          record('failed', { reason: traits.reason });
        } else {
          profile = applyFacts(profile, traitFacts(traits.value), isoTime(input.now.getTime()), 'journey');
          result.profile = profile;
          record('updated', { traits: traits.value });
        }
        queue.push(...step.next);
        break;
      }
      case 'exit': {
        result.exit = step.exit.reason ?? `exit step ${stepId}`;
        record('exited', { reason: result.exit });
        queue.length = 0;
        break;
      }
    }
  }
  return result;
}

export function sendRequest(s: SendStep): SendRequest {
  const w = s.content.whatsapp;
  return {
    channel: s.channel,
    contentChannels: Object.keys(s.content) as SendRequest['contentChannels'],
    category: s.category,
    priority: s.priority,
    ...(s.topic !== undefined && { topic: s.topic }),
    ...(s.type !== undefined && { type: s.type }),
    tags: s.tags,
    overrideCaps: s.override_caps,
    whatsappTemplate: w !== undefined && 'template' in w,
    fallback: s.fallback,
  };
}

function renderTraits(traits: Record<string, unknown>, input: WalkInput): { ok: true; value: Record<string, unknown> } | { ok: false; reason: string } {
  const out: Record<string, unknown> = {};
  const vars = templateVars(input);
  for (const [k, v] of Object.entries(traits)) {
    if (typeof v !== 'string') {
      out[k] = v;
      continue;
    }
    const r = renderString(v, vars, `traits.${k}`);
    if (!r.ok) return { ok: false, reason: r.reason };
    out[k] = r.value;
  }
  return { ok: true, value: out };
}

function traitFacts(traits: Record<string, unknown>): ProfileFacts {
  return { identifiers: [], pushTokens: [], traits, contact: {}, consent: { channels: {}, topics: {} }, rejected: [] };
}
