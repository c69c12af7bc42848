// The journey spec's public types, normalized: every default applied and every `next` resolved to step ids.
// journey-spec.ts parses YAML or JSON into them.

import type { Condition } from './conditions.js';
import type { Channel } from './types.js';

// ---------------------------------------------------------------------------------------------------------
// Public types (normalized: defaults applied, references resolved)

export const STEP_TYPES = ['send', 'wait', 'wait_for', 'branch', 'split', 'update_profile', 'exit'] as const;
export type StepType = (typeof STEP_TYPES)[number];

export const SEND_CATEGORIES = ['transactional', 'operational', 'promotional'] as const;
export type SendCategory = (typeof SEND_CATEGORIES)[number];

export const ENTRY_MODES = ['once', 'cooldown', 'per_key'] as const;
export type EntryMode = (typeof ENTRY_MODES)[number];

/** The reserved step reference that ends a path. */
export const END = 'end';

/** An ISO 8601 duration string (valid per time.ts parseDuration). */
export type IsoDuration = string;

export interface EmailContent {
  subject: string;
  text?: string;
  html?: string;
}
export interface SmsContent {
  text: string;
}
export type WhatsappContent = { text: string } | { template: string; language: string; parameters: string[] };
export interface PushContent {
  title: string;
  body: string;
  url?: string;
}
export interface InAppContent {
  title: string;
  body: string;
  cta?: { label: string; url: string };
}
/** Per-channel Liquid templates. Keys keep the order they were written in (it matters for `auto`). */
export interface SendContent {
  email?: EmailContent;
  sms?: SmsContent;
  whatsapp?: WhatsappContent;
  push?: PushContent;
  in_app?: InAppContent;
}

export interface SendStep {
  /** As written: one channel, an ordered list, or `auto`. */
  channel: Channel | Channel[] | 'auto';
  /**
   * The channels this send may use, in the order to try them: `[channel]`, the list, or (auto) the
   * channels that have content, in the order they appear under `content`. Every one has content.
   */
  channels: Channel[];
  category: SendCategory;
  topic?: string;
  /** low | normal | high | urgent (default normal): who wins the last slot under a cap. */
  priority: 'low' | 'normal' | 'high' | 'urgent';
  /** Message type for channel rules (`auto`), e.g. alert, receipt, promotion. */
  type?: string;
  /** Tags, for caps per tag. */
  tags: string[];
  /** Ignore frequency caps for this send (recorded on the message). */
  override_caps: boolean;
  /** Escalation hops, in order: each fires if the previous message met its condition. */
  fallback: FallbackHop[];
  content: SendContent;
}

export const FALLBACK_CONDITIONS = ['failed', 'not_delivered', 'not_opened', 'not_clicked'] as const;
export type FallbackCondition = (typeof FALLBACK_CONDITIONS)[number];

/** Send on `channel` when the previous message `when` (failed, or not delivered/opened/clicked within `after`). */
export interface FallbackHop {
  channel: Channel;
  when: FallbackCondition;
  /** How long to wait for delivery or engagement; not used with `failed`. */
  after?: IsoDuration;
}

/** Exactly one of the two. `until` is HH:MM in the customer's time zone. */
export type WaitStep = { duration: IsoDuration } | { until: string };

export interface WaitForStep {
  event: string;
  where?: Condition;
  timeout: IsoDuration;
  since_entry: boolean;
}

export interface BranchStep {
  cases: { when: Condition; next: string[] }[];
  default: string[];
}

export interface SplitStep {
  /** Percents are > 0 and add up to 100. */
  paths: { percent: number; next: string[] }[];
}

export interface UpdateProfileStep {
  /** Trait name → value; `null` deletes; string values are Liquid templates. Non-empty. */
  traits: Record<string, unknown>;
}

export interface ExitStep {
  reason?: string;
}

/**
 * A normalized step. Every reference is resolved to a list of step ids: `[]` is the end of the path, one id
 * continues, several fork parallel paths. Omitted references are resolved to the step's `next`, or else to
 * the step that follows in the map, or else (last step) to `[]`.
 */
export type Step =
  | { id: string; type: 'send'; send: SendStep; next: string[] }
  | { id: string; type: 'wait'; wait: WaitStep; next: string[] }
  | { id: string; type: 'wait_for'; wait_for: WaitForStep; onEvent: string[]; onTimeout: string[] }
  | { id: string; type: 'branch'; branch: BranchStep }
  | { id: string; type: 'split'; split: SplitStep }
  | { id: string; type: 'update_profile'; update_profile: UpdateProfileStep; next: string[] }
  | { id: string; type: 'exit'; exit: ExitStep };

export type StepOf<T extends StepType> = Extract<Step, { type: T }>;

export type Entry = { mode: 'once' } | { mode: 'cooldown'; cooldown: IsoDuration } | { mode: 'per_key'; key: string };

export interface EventMatch {
  event: string;
  where?: Condition;
}

export interface Goal extends EventMatch {
  within: IsoDuration;
  on_reach: 'exit' | 'continue';
}

export interface JourneySpec {
  key: string;
  name: string;
  description?: string;
  trigger: EventMatch;
  audience?: Condition;
  entry: Entry;
  goal?: Goal;
  exit_when: EventMatch[];
  /** Percent of entrants held out, 0–100. */
  holdout: number;
  data: Record<string, unknown>;
  /** In map order (see stepOrder); the run starts at the first step. */
  steps: Record<string, Step>;
}

export interface SpecError {
  /** `steps.nudge.wait.duration`, `steps.check.branch.cases[0].when.op`; "" for the document itself. */
  path: string;
  message: string;
}

export type SpecResult = { ok: true; spec: JourneySpec } | { ok: false; errors: SpecError[] };

