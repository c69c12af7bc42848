// The journey spec of docs/journeys.md: parsing, validation and normalization. Pure: no I/O, no clock.
//
// parseJourneyText / parseJourneySpec turn YAML or JSON into a JourneySpec with every default applied and
// every `next` resolved to a list of step ids, or into a list of errors, each with a path
// (`steps.nudge.wait.duration`) and a sentence. All errors are collected, not just the first:
//
// 1. Shape, with zod: strict objects (an unknown key is an error naming it), types, formats. The top level
//    and each step's payload are parsed separately, so a broken step does not hide the errors of the others,
//    and a step is dispatched on its step-type key instead of going through a union ("invalid input").
// 2. Rules across fields (a send's channels need content, wait has duration or until, entry mode needs its
//    setting, split percents add up to 100, references name existing steps), on the raw input with type
//    guards, so they are reported alongside the shape errors.
// 3. The graph (cycles that no wait breaks), once everything else is valid.
//
// `journeySpecSchema` is for OpenAPI documentation: it describes the shape and accepts a superset of valid
// specs (the cross-field rules live in parseJourneySpec).

import { LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';
import { conditionSchema, type Condition } from './conditions.js';
import { durationSchema, localTimeSchema } from './time.js';
import { CHANNELS, type Channel } from './types.js';

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

// ---------------------------------------------------------------------------------------------------------
// Schemas

const KEY_RE = /^[a-z0-9][a-z0-9_-]{0,63}$/;
const STEP_ID_RE = /^[A-Za-z0-9_-]{1,64}$/;
const ALL_DIGITS_RE = /^[0-9]+$/;
const FIELD_PATH_RE = /^[^.\s]+(\.[^.\s]+)*$/;

const nonBlank = z.string().refine((v) => v.trim() !== '', { message: 'must not be empty' });
const template = z.string().min(1, { message: 'must not be empty' });
const eventName = nonBlank.describe('An event name, e.g. Signed Up');

const stepRef = z
  .string()
  .regex(STEP_ID_RE, { message: 'expected a step id (letters, digits, _ and -) or end' })
  .describe('A step id, or `end`');
const nextSchema = z
  .union([stepRef, z.array(stepRef).min(1, { message: 'must not be empty; use end to end the path' })], {
    error: 'expected a step id, a list of step ids, or end',
  })
  .describe('A step id, a list of step ids (parallel paths), or `end`. Default: the following step.');

const channelSchema = z.enum(CHANNELS);
const channelChoiceSchema = z
  .union([channelSchema, z.array(channelSchema).min(1, { message: 'must not be empty' }), z.literal('auto')], {
    error: `expected a channel (${CHANNELS.join(', ')}), a list of channels, or auto`,
  })
  .describe('A channel, an ordered list of channels (first reachable and consented wins), or `auto`');

const emailContentSchema = z
  .strictObject({ subject: template, text: template.optional(), html: template.optional() })
  .describe('subject, and text or html (or both)');
const smsContentSchema = z.strictObject({ text: template });
const whatsappContentSchema = z
  .strictObject({
    text: template.optional(),
    template: nonBlank.optional(),
    language: nonBlank.optional(),
    parameters: z.array(z.string()).optional(),
  })
  .describe('{ text } or { template, language, parameters? }');
const pushContentSchema = z.strictObject({ title: template, body: template, url: template.optional() });
const inAppContentSchema = z.strictObject({
  title: template,
  body: template,
  cta: z.strictObject({ label: template, url: template }).optional(),
});
const contentSchema = z
  .strictObject({
    email: emailContentSchema.optional(),
    sms: smsContentSchema.optional(),
    whatsapp: whatsappContentSchema.optional(),
    push: pushContentSchema.optional(),
    in_app: inAppContentSchema.optional(),
  })
  .describe('Liquid templates per channel; every channel the send may use needs content');

const sendSchema = z.strictObject({
  channel: channelChoiceSchema,
  category: z.enum(SEND_CATEGORIES).default('promotional'),
  topic: nonBlank.optional().describe('Consent topic'),
  priority: z.enum(['low', 'normal', 'high', 'urgent']).default('normal'),
  type: nonBlank.optional().describe('Message type for the channel rules, e.g. alert, receipt, promotion'),
  tags: z.array(nonBlank).default([]),
  override_caps: z.boolean().default(false),
  fallback: z
    .array(
      z.strictObject({
        channel: channelSchema,
        when: z.enum(FALLBACK_CONDITIONS),
        after: durationSchema.optional().describe('Wait this long for delivery or engagement, e.g. PT1H'),
      }),
    )
    .default([])
    .describe('Escalation: e.g. [{channel: sms, when: not_opened, after: PT1H}]'),
  content: contentSchema,
});

const waitSchema = z
  .strictObject({ duration: durationSchema.optional(), until: localTimeSchema.optional() })
  .describe('Exactly one of duration (ISO 8601, e.g. P3D) or until (HH:MM, customer time zone)');

const waitForSchema = z.strictObject({
  event: eventName,
  where: conditionSchema.optional(),
  timeout: durationSchema,
  since_entry: z.boolean().default(true),
  on_event: nextSchema.optional(),
  on_timeout: nextSchema.optional(),
});

const branchSchema = z.strictObject({
  cases: z
    .array(z.strictObject({ when: conditionSchema, next: nextSchema }))
    .min(1, { message: 'must have at least one case' }),
  default: nextSchema.optional(),
});

const splitSchema = z.strictObject({
  paths: z
    .array(
      z.strictObject({
        percent: z
          .number()
          .gt(0, { message: 'must be greater than 0' })
          .max(100, { message: 'must be at most 100' }),
        next: nextSchema.optional(),
      }),
    )
    .min(1, { message: 'must have at least one path' })
    .describe('Percents add up to 100'),
});

const updateProfileSchema = z.strictObject({
  traits: z.record(z.string(), z.unknown()).describe('Trait name → value; null deletes; strings are Liquid templates'),
});

const exitSchema = z.strictObject({ reason: nonBlank.optional() }).nullable();

const PAYLOAD_SCHEMAS: Record<StepType, z.ZodType> = {
  send: sendSchema,
  wait: waitSchema,
  wait_for: waitForSchema,
  branch: branchSchema,
  split: splitSchema,
  update_profile: updateProfileSchema,
  exit: exitSchema,
};

const stepSchema = z
  .union([
    z.strictObject({ send: sendSchema, next: nextSchema.optional() }),
    z.strictObject({ wait: waitSchema, next: nextSchema.optional() }),
    z.strictObject({ wait_for: waitForSchema, next: nextSchema.optional() }),
    z.strictObject({ branch: branchSchema, next: nextSchema.optional() }),
    z.strictObject({ split: splitSchema, next: nextSchema.optional() }),
    z.strictObject({ update_profile: updateProfileSchema, next: nextSchema.optional() }),
    z.strictObject({ exit: exitSchema }),
  ])
  .describe('Exactly one step-type key, plus an optional next');

const eventMatchSchema = z.strictObject({ event: eventName, where: conditionSchema.optional() });

const entrySchema = z
  .strictObject({
    mode: z.enum(ENTRY_MODES).default('once'),
    cooldown: durationSchema.optional().describe('Required with mode cooldown'),
    key: z
      .string()
      .regex(FIELD_PATH_RE, { message: 'expected a dotted path to an event field, e.g. properties.order_id' })
      .optional()
      .describe('Required with mode per_key: a dotted path into the trigger event, e.g. properties.order_id'),
  })
  .default({ mode: 'once' });

const goalSchema = z.strictObject({
  event: eventName,
  where: conditionSchema.optional(),
  within: durationSchema.describe('From entry'),
  on_reach: z.enum(['exit', 'continue']).default('exit'),
});

function topLevelSchema<S extends z.ZodType>(steps: S) {
  return z.strictObject({
    key: z
      .string()
      .regex(KEY_RE, { message: 'expected lower-case letters, digits, - and _ (at most 64, not starting with - or _), e.g. onboarding' }),
    name: nonBlank,
    description: z.string().optional(),
    trigger: eventMatchSchema,
    audience: conditionSchema.optional(),
    entry: entrySchema,
    goal: goalSchema.optional(),
    exit_when: z.array(eventMatchSchema).default([]),
    holdout: z
      .number()
      .min(0, { message: 'must be between 0 and 100' })
      .max(100, { message: 'must be between 0 and 100' })
      .default(0),
    data: z.record(z.string(), z.unknown()).default({}),
    steps,
  });
}

/** The journey spec, for OpenAPI documentation. Accepts a superset of valid specs: use parseJourneySpec. */
export const journeySpecSchema = topLevelSchema(
  z.record(stepRef, stepSchema).describe('An ordered map of step id → step; the run starts at the first step'),
).describe('A journey spec (docs/journeys.md)');

// The top level as parsed; steps are checked one by one below.
const parseTopSchema = topLevelSchema(z.unknown());
const TOP_LEVEL_KEYS = Object.keys(parseTopSchema.shape);

// ---------------------------------------------------------------------------------------------------------
// Errors

type PathPart = string | number;

export function formatPath(parts: readonly PathPart[]): string {
  let out = '';
  for (const p of parts) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out === '' ? p : `.${p}`;
  }
  return out;
}

function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  switch (typeof v) {
    case 'string':
      return 'a string';
    case 'number':
      return Number.isFinite(v) ? 'a number' : String(v);
    case 'boolean':
      return v ? 'true' : 'false';
    case 'object':
      return 'an object';
    default:
      return typeof v;
  }
}

const EXPECTED: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
  object: 'an object',
  array: 'a list',
  record: 'an object',
  null: 'null',
};

/** Per-parse messages for zod's generic issues; schema-level messages (durationSchema …) take precedence. */
const errorMap: z.core.$ZodErrorMap = (iss) => {
  switch (iss.code) {
    case 'invalid_type':
      if (iss.input === undefined) return 'required';
      return `expected ${EXPECTED[iss.expected] ?? iss.expected}, got ${describeValue(iss.input)}`;
    case 'invalid_value': {
      const values = iss.values.map((v) => String(v));
      return values.length === 1 ? `expected ${values[0]}` : `expected one of ${values.join(', ')}`;
    }
    case 'too_small':
      if (iss.origin === 'array') return 'must not be empty';
      if (iss.origin === 'string') return 'must not be empty';
      return undefined;
    default:
      return undefined;
  }
};

function toSpecErrors(issues: readonly z.core.$ZodIssue[], prefix: readonly PathPart[]): SpecError[] {
  const out: SpecError[] = [];
  for (const issue of issues) {
    const base = [...prefix, ...(issue.path as PathPart[])];
    if (issue.code === 'unrecognized_keys') {
      // Suggestions where the allowed keys are known cheaply: the top level (steps have their own).
      const hint = (key: string) => (base.length === 0 ? didYouMean(key, TOP_LEVEL_KEYS) : '');
      for (const key of issue.keys) out.push({ path: formatPath([...base, key]), message: `unknown field "${key}"${hint(key)}` });
      continue;
    }
    if (issue.code === 'invalid_union' && issue.errors.length > 0) {
      const best = bestUnionOption(issue.errors);
      if (best) {
        out.push(...toSpecErrors(best, base));
        continue;
      }
    }
    // conditions.ts re-raises an inner strict object's unknown keys as custom issues.
    const unknownKey = /^Unrecognized keys?: (.+)$/.exec(issue.message);
    if (unknownKey) {
      for (const m of unknownKey[1]!.matchAll(/"([^"]*)"/g)) {
        out.push({ path: formatPath([...base, m[1]!]), message: `unknown field "${m[1]}"` });
      }
      continue;
    }
    out.push({ path: formatPath(base), message: issue.message });
  }
  return out;
}

/**
 * The union option the input was most likely meant for: among the options whose issues are all below the
 * root (the input had the right type), the one with the fewest issues. None such: the union's own message.
 */
function bestUnionOption(options: readonly (readonly z.core.$ZodIssue[])[]): readonly z.core.$ZodIssue[] | undefined {
  let best: readonly z.core.$ZodIssue[] | undefined;
  for (const issues of options) {
    if (issues.some((i) => i.path.length === 0)) continue;
    if (!best || issues.length < best.length) best = issues;
  }
  return best;
}

function parseWith<T>(schema: z.ZodType<T>, input: unknown, prefix: readonly PathPart[], errors: SpecError[]): T | undefined {
  const result = schema.safeParse(input, { error: errorMap });
  if (result.success) return result.data;
  errors.push(...toSpecErrors(result.error.issues, prefix));
  return undefined;
}

// ---------------------------------------------------------------------------------------------------------
// Helpers

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const has = (o: Obj, k: string): boolean => Object.hasOwn(o, k);
const isChannel = (v: unknown): v is Channel => typeof v === 'string' && (CHANNELS as readonly string[]).includes(v);
const isStepType = (v: string): v is StepType => (STEP_TYPES as readonly string[]).includes(v);

function editDistance(a: string, b: string): number {
  const dp = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = dp[0]!;
    dp[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = dp[j]!;
      dp[j] = Math.min(dp[j]! + 1, dp[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return dp[b.length]!;
}

function didYouMean(key: string, candidates: readonly string[]): string {
  if (key.length > 64) return '';
  const best = candidates
    .map((c) => ({ c, d: editDistance(key.toLowerCase(), c) }))
    .sort((x, y) => x.d - y.d)[0];
  return best && best.d <= 2 ? ` (did you mean ${best.c}?)` : '';
}

/** The step ids a step continues to (all paths), without duplicates. */
export function successors(step: Step): string[] {
  const out: string[] = [];
  const add = (ids: string[]) => ids.forEach((id) => out.includes(id) || out.push(id));
  switch (step.type) {
    case 'send':
    case 'wait':
    case 'update_profile':
      add(step.next);
      break;
    case 'wait_for':
      add(step.onEvent);
      add(step.onTimeout);
      break;
    case 'branch':
      step.branch.cases.forEach((c) => add(c.next));
      add(step.branch.default);
      break;
    case 'split':
      step.split.paths.forEach((p) => add(p.next));
      break;
    case 'exit':
      break;
  }
  return out;
}

/** The step ids in map order; the first is where a run starts. */
export function stepOrder(spec: JourneySpec): string[] {
  return Object.keys(spec.steps);
}

// ---------------------------------------------------------------------------------------------------------
// Parsing

const STEP_TYPE_LIST = STEP_TYPES.join(', ');

export function parseJourneySpec(input: unknown): SpecResult {
  if (!isObj(input)) {
    return { ok: false, errors: [{ path: '', message: `expected a journey object (key, name, trigger, steps), got ${describeValue(input)}` }] };
  }
  const errors: SpecError[] = [];
  const top = parseWith(parseTopSchema, input, [], errors);
  checkEntry(input.entry, errors);

  // Steps: the map itself.
  const rawSteps = input.steps;
  let ids: string[] = [];
  if (rawSteps === undefined) {
    errors.push({ path: 'steps', message: 'required' });
  } else if (!isObj(rawSteps)) {
    errors.push({ path: 'steps', message: `expected an ordered map of step id → step, got ${describeValue(rawSteps)}` });
  } else {
    ids = Object.keys(rawSteps);
    if (ids.length === 0) errors.push({ path: 'steps', message: 'must have at least one step' });
  }
  const stepsObj = (isObj(rawSteps) ? rawSteps : {}) as Obj;
  const idSet = new Set(ids);
  const refCtx: RefContext = { ids: idSet, list: ids.join(', ') };

  // Each step.
  const steps: Step[] = [];
  ids.forEach((id, index) => {
    const following = index + 1 < ids.length ? [ids[index + 1]!] : [];
    const step = parseStep(id, stepsObj[id], following, refCtx, errors);
    if (step) steps.push(step);
  });

  if (errors.length > 0 || !top) return { ok: false, errors };

  // Cross references that need the parsed steps: `message` conditions name send steps.
  const byId = new Map(steps.map((s) => [s.id, s]));
  checkMessageRefs(input, byId, errors);
  if (errors.length === 0) errors.push(...findWaitlessCycles(steps, byId));
  if (errors.length > 0) return { ok: false, errors };

  const spec: JourneySpec = {
    key: top.key,
    name: top.name,
    ...(top.description !== undefined && { description: top.description }),
    trigger: eventMatch(top.trigger),
    ...(top.audience !== undefined && { audience: top.audience }),
    entry: normalizeEntry(top.entry),
    ...(top.goal !== undefined && { goal: { ...eventMatch(top.goal), within: top.goal.within, on_reach: top.goal.on_reach } }),
    exit_when: top.exit_when.map(eventMatch),
    holdout: top.holdout,
    data: top.data,
    steps: Object.fromEntries(steps.map((s) => [s.id, s])),
  };
  return { ok: true, spec };
}

function eventMatch(m: { event: string; where?: Condition | undefined }): EventMatch {
  return m.where === undefined ? { event: m.event } : { event: m.event, where: m.where };
}

function normalizeEntry(e: { mode: EntryMode; cooldown?: string | undefined; key?: string | undefined }): Entry {
  if (e.mode === 'cooldown') return { mode: 'cooldown', cooldown: e.cooldown! };
  if (e.mode === 'per_key') return { mode: 'per_key', key: e.key! };
  return { mode: 'once' };
}

function checkEntry(entry: unknown, errors: SpecError[]): void {
  if (!isObj(entry)) return;
  const mode = entry.mode === undefined ? 'once' : entry.mode;
  if (typeof mode !== 'string' || !(ENTRY_MODES as readonly string[]).includes(mode)) return;
  if (mode === 'cooldown' && entry.cooldown === undefined) {
    errors.push({ path: 'entry.cooldown', message: 'required with mode cooldown: how long after the last entry a customer may enter again, e.g. P30D' });
  }
  if (mode !== 'cooldown' && entry.cooldown !== undefined) {
    errors.push({ path: 'entry.cooldown', message: `applies only to mode cooldown (mode is ${mode})` });
  }
  if (mode === 'per_key' && entry.key === undefined) {
    errors.push({ path: 'entry.key', message: 'required with mode per_key: the event field whose value keys the run, e.g. properties.order_id' });
  }
  if (mode !== 'per_key' && entry.key !== undefined) {
    errors.push({ path: 'entry.key', message: `applies only to mode per_key (mode is ${mode})` });
  }
}

interface RefContext {
  ids: ReadonlySet<string>;
  list: string;
}

/** Reports a reference (raw: string or list of strings) to a step that doesn't exist. */
function checkRef(raw: unknown, path: readonly PathPart[], ctx: RefContext, errors: SpecError[]): void {
  const one = (v: unknown, p: readonly PathPart[]) => {
    if (typeof v !== 'string' || v === END || !STEP_ID_RE.test(v) || ctx.ids.has(v)) return;
    errors.push({ path: formatPath(p), message: `unknown step "${v}"; steps are: ${ctx.list}` });
  };
  if (Array.isArray(raw)) {
    const seen = new Set<unknown>();
    raw.forEach((v, i) => {
      one(v, [...path, i]);
      if (typeof v === 'string' && seen.has(v)) errors.push({ path: formatPath([...path, i]), message: `"${v}" is listed twice` });
      seen.add(v);
    });
  } else {
    one(raw, path);
  }
}

/** A parsed reference resolved to step ids: `end` → [], a list without its `end`s. */
function resolveRef(ref: string | string[] | undefined, fallback: string[]): string[] {
  if (ref === undefined) return fallback;
  const list = Array.isArray(ref) ? ref : [ref];
  return list.filter((id) => id !== END);
}

function parseStep(id: string, raw: unknown, following: string[], ctx: RefContext, errors: SpecError[]): Step | undefined {
  const at: PathPart[] = ['steps', id];
  const before = errors.length;
  if (!STEP_ID_RE.test(id)) {
    errors.push({ path: formatPath(at), message: 'step ids are letters, digits, _ and - (at most 64)' });
  } else if (id === END) {
    errors.push({ path: formatPath(at), message: '"end" is reserved (a next of end ends the path); rename this step' });
  } else if (ALL_DIGITS_RE.test(id)) {
    errors.push({ path: formatPath(at), message: 'a step id needs a letter, _ or - (all-digit keys lose their order in JSON objects)' });
  }
  if (!isObj(raw)) {
    errors.push({ path: formatPath(at), message: `expected a step with one of ${STEP_TYPE_LIST}, got ${describeValue(raw)}` });
    return undefined;
  }

  const keys = Object.keys(raw);
  for (const k of keys) {
    if (!isStepType(k) && k !== 'next') {
      errors.push({ path: formatPath([...at, k]), message: `unknown field "${k}"${didYouMean(k, [...STEP_TYPES, 'next'])}` });
    }
  }
  const types = keys.filter(isStepType);
  if (types.length !== 1) {
    const found = types.length > 1 ? `; found ${types.join(' and ')}` : '';
    errors.push({ path: formatPath(at), message: `step must have exactly one of ${STEP_TYPE_LIST}${found}` });
    return undefined;
  }
  const type = types[0]!;
  const payloadAt = [...at, type];

  // `next` of the step: shape, references.
  let next: string[] = following;
  if (has(raw, 'next')) {
    if (type === 'exit') {
      errors.push({ path: formatPath([...at, 'next']), message: 'an exit step ends the run; it has no next' });
    } else {
      const parsed = parseWith(nextSchema, raw.next, [...at, 'next'], errors);
      checkRef(raw.next, [...at, 'next'], ctx, errors);
      if (parsed !== undefined) next = resolveRef(parsed, following);
    }
  }

  // The payload: shape, then the rules across fields (on the raw value, so they're reported either way).
  const payloadRaw = raw[type];
  const payload = parseWith(PAYLOAD_SCHEMAS[type], payloadRaw, payloadAt, errors);
  const p = isObj(payloadRaw) ? payloadRaw : undefined;
  switch (type) {
    case 'send':
      if (p) checkSend(p, payloadAt, errors);
      break;
    case 'wait':
      if (p) checkWait(p, payloadAt, errors);
      break;
    case 'wait_for':
      if (p) {
        checkRef(p.on_event, [...payloadAt, 'on_event'], ctx, errors);
        checkRef(p.on_timeout, [...payloadAt, 'on_timeout'], ctx, errors);
      }
      break;
    case 'branch':
      if (p) {
        if (Array.isArray(p.cases)) {
          p.cases.forEach((c, i) => isObj(c) && checkRef(c.next, [...payloadAt, 'cases', i, 'next'], ctx, errors));
        }
        checkRef(p.default, [...payloadAt, 'default'], ctx, errors);
      }
      break;
    case 'split':
      if (p && Array.isArray(p.paths)) {
        p.paths.forEach((sp, i) => isObj(sp) && checkRef(sp.next, [...payloadAt, 'paths', i, 'next'], ctx, errors));
        checkSplitSum(p.paths, [...payloadAt, 'paths'], errors);
      }
      break;
    case 'update_profile':
      if (p && isObj(p.traits) && Object.keys(p.traits).length === 0) {
        errors.push({ path: formatPath([...payloadAt, 'traits']), message: 'set at least one trait' });
      }
      break;
    case 'exit':
      break;
  }
  if (errors.length > before || payload === undefined) return undefined;
  return normalizeStep(id, type, (payload ?? {}) as Parsed, p ?? {}, next);
}

function checkSend(p: Obj, at: readonly PathPart[], errors: SpecError[]): void {
  const content = isObj(p.content) ? p.content : undefined;
  const ch = p.channel;
  if (Array.isArray(p.fallback)) {
    p.fallback.forEach((hop, i) => {
      if (!isObj(hop)) return;
      if (content && isChannel(hop.channel) && content[hop.channel] === undefined) {
        errors.push({ path: formatPath([...at, 'fallback', i, 'channel']), message: `missing content for ${hop.channel}, which this fallback uses` });
      }
      if (hop.when !== 'failed' && hop.when !== undefined && hop.after === undefined) {
        errors.push({ path: formatPath([...at, 'fallback', i, 'after']), message: `${String(hop.when)} needs "after", how long to wait (e.g. PT1H)` });
      }
    });
  }
  // Duplicates in a channel list.
  if (Array.isArray(ch)) {
    ch.forEach((c, i) => {
      if (isChannel(c) && ch.indexOf(c) !== i) errors.push({ path: formatPath([...at, 'channel', i]), message: `${c} is listed twice` });
    });
  }
  if (content) {
    let mayUse: Channel[] | undefined;
    if (isChannel(ch)) mayUse = [ch];
    else if (Array.isArray(ch) && ch.every(isChannel)) mayUse = [...new Set(ch)];
    if (mayUse) {
      for (const c of mayUse) {
        if (content[c] === undefined) {
          errors.push({ path: formatPath([...at, 'content', c]), message: `missing content for ${c}, which this send may use` });
        }
      }
    } else if (ch === 'auto' && !CHANNELS.some((c) => content[c] !== undefined)) {
      errors.push({ path: formatPath([...at, 'content']), message: `channel auto needs content for at least one channel (${CHANNELS.join(', ')})` });
    }
    const email = content.email;
    if (isObj(email) && email.text === undefined && email.html === undefined) {
      errors.push({ path: formatPath([...at, 'content', 'email']), message: 'email content needs text or html (or both)' });
    }
    const wa = content.whatsapp;
    if (isObj(wa)) {
      const wat = [...at, 'content', 'whatsapp'];
      if (wa.text !== undefined && wa.template !== undefined) {
        errors.push({ path: formatPath(wat), message: 'give text or template, not both' });
      } else if (wa.text === undefined && wa.template === undefined) {
        errors.push({ path: formatPath(wat), message: 'whatsapp content needs text, or template and language' });
      } else if (wa.template !== undefined) {
        if (wa.language === undefined) errors.push({ path: formatPath([...wat, 'language']), message: 'required with template, e.g. en' });
      } else {
        for (const k of ['language', 'parameters']) {
          if (wa[k] !== undefined) errors.push({ path: formatPath([...wat, k]), message: 'applies only to template messages' });
        }
      }
    }
  }
}

function checkWait(p: Obj, at: readonly PathPart[], errors: SpecError[]): void {
  if (p.duration !== undefined && p.until !== undefined) {
    errors.push({ path: formatPath(at), message: 'give duration or until, not both' });
  } else if (p.duration === undefined && p.until === undefined) {
    errors.push({ path: formatPath(at), message: 'wait needs duration (e.g. P3D) or until (e.g. "10:00")' });
  }
}

function checkSplitSum(paths: unknown[], at: readonly PathPart[], errors: SpecError[]): void {
  const percents = paths.map((sp) => (isObj(sp) ? sp.percent : undefined));
  if (percents.length === 0 || !percents.every((v) => typeof v === 'number' && Number.isFinite(v) && v > 0)) return;
  const sum = (percents as number[]).reduce((a, b) => a + b, 0);
  if (Math.abs(sum - 100) > 1e-9) {
    errors.push({ path: formatPath(at), message: `percents must add up to 100; they add up to ${Math.round(sum * 1e6) / 1e6}` });
  }
}

type Parsed = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- a payload PAYLOAD_SCHEMAS parsed

function normalizeStep(id: string, type: StepType, v: Parsed, raw: Obj, next: string[]): Step {
  switch (type) {
    case 'send': {
      // zod builds objects in schema order; `auto` needs the order the content was written in.
      const contentKeys = Object.keys(isObj(raw.content) ? raw.content : {}).filter(isChannel);
      const content: SendContent = {};
      for (const c of contentKeys) {
        const value = v.content[c];
        if (value === undefined) continue;
        (content as Record<Channel, unknown>)[c] = c === 'whatsapp' ? normalizeWhatsapp(value) : stripUndefined(value);
      }
      const channels: Channel[] =
        v.channel === 'auto' ? contentKeys : Array.isArray(v.channel) ? [...v.channel] : [v.channel];
      const send: SendStep = {
        channel: Array.isArray(v.channel) ? [...v.channel] : v.channel,
        channels,
        category: v.category,
        ...(v.topic !== undefined && { topic: v.topic }),
        priority: v.priority,
        ...(v.type !== undefined && { type: v.type }),
        tags: v.tags,
        override_caps: v.override_caps,
        fallback: v.fallback.map((h: FallbackHop) => ({ channel: h.channel, when: h.when, ...(h.after !== undefined && { after: h.after }) })),
        content,
      };
      return { id, type, send, next };
    }
    case 'wait':
      return { id, type, wait: v.duration !== undefined ? { duration: v.duration } : { until: v.until }, next };
    case 'wait_for':
      return {
        id,
        type,
        wait_for: {
          event: v.event,
          ...(v.where !== undefined && { where: v.where }),
          timeout: v.timeout,
          since_entry: v.since_entry,
        },
        onEvent: resolveRef(v.on_event, next),
        onTimeout: resolveRef(v.on_timeout, next),
      };
    case 'branch':
      return {
        id,
        type,
        branch: {
          cases: (v.cases as { when: Condition; next: string | string[] }[]).map((c) => ({ when: c.when, next: resolveRef(c.next, next) })),
          default: resolveRef(v.default, next),
        },
      };
    case 'split':
      return {
        id,
        type,
        split: { paths: (v.paths as { percent: number; next?: string | string[] }[]).map((sp) => ({ percent: sp.percent, next: resolveRef(sp.next, next) })) },
      };
    case 'update_profile':
      return { id, type, update_profile: { traits: v.traits }, next };
    case 'exit':
      return { id, type, exit: v.reason !== undefined ? { reason: v.reason } : {} };
  }
}

function normalizeWhatsapp(v: Parsed): WhatsappContent {
  if (v.template !== undefined) return { template: v.template, language: v.language, parameters: v.parameters ?? [] };
  return { text: v.text };
}

function stripUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, x]) => x !== undefined)) as T;
}

// ---------------------------------------------------------------------------------------------------------
// Conditions that name steps

const CONDITION_SITES = (input: Obj): { value: unknown; path: PathPart[] }[] => {
  const sites: { value: unknown; path: PathPart[] }[] = [];
  const goal = input.goal;
  if (isObj(goal)) sites.push({ value: goal.where, path: ['goal', 'where'] });
  if (Array.isArray(input.exit_when)) {
    input.exit_when.forEach((e, i) => isObj(e) && sites.push({ value: e.where, path: ['exit_when', i, 'where'] }));
  }
  const steps = isObj(input.steps) ? input.steps : {};
  for (const [id, s] of Object.entries(steps)) {
    if (!isObj(s)) continue;
    if (isObj(s.wait_for)) sites.push({ value: s.wait_for.where, path: ['steps', id, 'wait_for', 'where'] });
    if (isObj(s.branch) && Array.isArray(s.branch.cases)) {
      s.branch.cases.forEach((c, i) => isObj(c) && sites.push({ value: c.when, path: ['steps', id, 'branch', 'cases', i, 'when'] }));
    }
  }
  return sites;
};

/** `message: <step>` conditions must name a send step of this journey. */
function checkMessageRefs(input: Obj, byId: ReadonlyMap<string, Step>, errors: SpecError[]): void {
  const sends = [...byId.values()].filter((s) => s.type === 'send').map((s) => s.id);
  const walk = (c: unknown, path: PathPart[], depth: number): void => {
    if (!isObj(c) || depth > 100) return;
    if (Array.isArray(c.all)) c.all.forEach((x, i) => walk(x, [...path, 'all', i], depth + 1));
    if (Array.isArray(c.any)) c.any.forEach((x, i) => walk(x, [...path, 'any', i], depth + 1));
    if (has(c, 'not')) walk(c.not, [...path, 'not'], depth + 1);
    if (has(c, 'event') && has(c, 'where')) walk(c.where, [...path, 'where'], depth + 1);
    if (typeof c.message === 'string' && byId.get(c.message)?.type !== 'send') {
      const list = sends.length > 0 ? `send steps are: ${sends.join(', ')}` : 'this journey has no send steps';
      errors.push({ path: formatPath([...path, 'message']), message: `unknown send step "${c.message}"; ${list}` });
    }
  };
  for (const site of CONDITION_SITES(input)) walk(site.value, site.path, 0);
}

// ---------------------------------------------------------------------------------------------------------
// Cycles

/**
 * A cycle through sends, branches, splits and profile updates only would loop forever without time passing.
 * Such cycles exist exactly when the graph without the wait and wait_for steps has one: one error per
 * strongly connected component of that graph that holds a cycle, naming one cycle through it.
 */
function findWaitlessCycles(steps: Step[], byId: ReadonlyMap<string, Step>): SpecError[] {
  const order = new Map(steps.map((s, i) => [s.id, i]));
  const passesTime = (s: Step) => s.type === 'wait' || s.type === 'wait_for';
  const edges = new Map<string, string[]>();
  for (const s of steps) {
    if (passesTime(s)) continue;
    edges.set(s.id, successors(s).filter((t) => byId.has(t) && !passesTime(byId.get(t)!)));
  }

  // Tarjan's algorithm, iterative.
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const components: string[][] = [];
  let counter = 0;
  for (const root of edges.keys()) {
    if (index.has(root)) continue;
    const work: { v: string; i: number }[] = [{ v: root, i: 0 }];
    index.set(root, counter);
    low.set(root, counter++);
    stack.push(root);
    onStack.add(root);
    while (work.length > 0) {
      const frame = work[work.length - 1]!;
      const out = edges.get(frame.v)!;
      if (frame.i < out.length) {
        const w = out[frame.i++]!;
        if (!index.has(w)) {
          index.set(w, counter);
          low.set(w, counter++);
          stack.push(w);
          onStack.add(w);
          work.push({ v: w, i: 0 });
        } else if (onStack.has(w)) {
          low.set(frame.v, Math.min(low.get(frame.v)!, index.get(w)!));
        }
        continue;
      }
      work.pop();
      const parent = work[work.length - 1];
      if (parent) low.set(parent.v, Math.min(low.get(parent.v)!, low.get(frame.v)!));
      if (low.get(frame.v) === index.get(frame.v)) {
        const comp: string[] = [];
        let w: string;
        do {
          w = stack.pop()!;
          onStack.delete(w);
          comp.push(w);
        } while (w !== frame.v);
        components.push(comp);
      }
    }
  }

  const errors: { at: number; error: SpecError }[] = [];
  for (const comp of components) {
    const members = new Set(comp);
    const start = comp.reduce((a, b) => (order.get(a)! <= order.get(b)! ? a : b));
    if (comp.length === 1 && !edges.get(start)!.includes(start)) continue;
    // Shortest way back to `start` inside the component (BFS).
    const prev = new Map<string, string>();
    const queue = [start];
    let found = false;
    while (queue.length > 0 && !found) {
      const v = queue.shift()!;
      for (const w of edges.get(v)!) {
        if (!members.has(w)) continue;
        if (w === start) {
          prev.set(start, v);
          found = true;
          break;
        }
        if (!prev.has(w)) {
          prev.set(w, v);
          queue.push(w);
        }
      }
    }
    // Walk the predecessors back from the closing edge: [start, …, start].
    const cycle = [start];
    for (let v = prev.get(start)!; v !== start; v = prev.get(v)!) cycle.unshift(v);
    cycle.unshift(start);
    errors.push({
      at: order.get(start)!,
      error: {
        path: formatPath(['steps', start]),
        message: `cycle without a wait: ${cycle.join(' → ')}; it would loop forever without time passing (add a wait or wait_for step to it)`,
      },
    });
  }
  return errors.sort((a, b) => a.at - b.at).map((e) => e.error);
}

// ---------------------------------------------------------------------------------------------------------
// Text

/**
 * Parses YAML (1.2; JSON is valid YAML) or, with format 'json', strict JSON, then the spec. Syntax errors
 * have path "" and a message starting with `line:column:`.
 */
export function parseJourneyText(text: string, format: 'yaml' | 'json' = 'yaml'): SpecResult {
  let value: unknown;
  if (format === 'json') {
    try {
      value = JSON.parse(text);
    } catch (e) {
      return { ok: false, errors: [{ path: '', message: jsonSyntaxMessage(text, e) }] };
    }
  } else {
    const lineCounter = new LineCounter();
    const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
    if (doc.errors.length > 0) {
      return {
        ok: false,
        errors: doc.errors.map((err) => {
          const { line, col } = lineCounter.linePos(err.pos[0]);
          return { path: '', message: `${line}:${col}: ${err.message} (invalid YAML)` };
        }),
      };
    }
    try {
      value = doc.toJS({ maxAliasCount: 100 });
    } catch (e) {
      return { ok: false, errors: [{ path: '', message: `invalid YAML: ${(e as Error).message}` }] };
    }
  }
  return parseJourneySpec(value);
}

function jsonSyntaxMessage(text: string, e: unknown): string {
  const message = e instanceof Error ? e.message : String(e);
  const m = /at position (\d+)/.exec(message);
  const clean = message.replace(/\s*in JSON at position \d+.*$/, '').replace(/\s*\(line \d+ column \d+\)$/, '');
  let pos = m ? Number(m[1]) : text.length;
  if (!m && !/end of JSON input/i.test(message)) return `${message} (invalid JSON)`;
  pos = Math.min(pos, text.length);
  const before = text.slice(0, pos);
  const line = before.split('\n').length;
  const col = pos - before.lastIndexOf('\n');
  return `${line}:${col}: ${clean} (invalid JSON)`;
}
