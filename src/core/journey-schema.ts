// The journey spec's zod schemas (shape only; the rules across fields live in journey-spec.ts) and the
// translation of zod issues into path-named spec errors.

import { z } from 'zod';
import { fitsIndex, MAX_INDEXED_BYTES } from './limits.js';
import { conditionSchema } from './conditions.js';
import { ENTRY_MODES, FALLBACK_CONDITIONS, SEND_CATEGORIES, type SpecError, type StepType } from './journey-types.js';
import { durationSchema, localTimeSchema } from './time.js';
import { CHANNELS } from './types.js';

// ---------------------------------------------------------------------------------------------------------
// Schemas

const KEY_RE = /^[a-z0-9][a-z0-9_-]{0,63}$/;
export const STEP_ID_RE = /^[A-Za-z0-9_-]{1,64}$/;
export const ALL_DIGITS_RE = /^[0-9]+$/;
const FIELD_PATH_RE = /^[^.\s]+(\.[^.\s]+)*$/;

const nonBlank = z.string().refine((v) => v.trim() !== '', { message: 'must not be empty' });
const template = z.string().min(1, { message: 'must not be empty' });
// As long as an ingested event's name can be (src/ingest/segment.ts): a longer one could never match.
const eventName = nonBlank
  .max(1024, { message: 'must be at most 1024 characters' })
  .refine(fitsIndex, { message: `must be at most ${MAX_INDEXED_BYTES} bytes of UTF-8` })
  .describe('An event name, e.g. Signed Up');

const stepRef = z
  .string()
  .regex(STEP_ID_RE, { message: 'expected a step id (letters, digits, _ and -) or end' })
  .describe('A step id, or `end`');
export const nextSchema = z
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

export const PAYLOAD_SCHEMAS: Record<StepType, z.ZodType> = {
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
export const parseTopSchema = topLevelSchema(z.unknown());
const TOP_LEVEL_KEYS = Object.keys(parseTopSchema.shape);

// ---------------------------------------------------------------------------------------------------------
// Errors

export type PathPart = string | number;

export function formatPath(parts: readonly PathPart[]): string {
  let out = '';
  for (const p of parts) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out === '' ? p : `.${p}`;
  }
  return out;
}

export function describeValue(v: unknown): string {
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

export function parseWith<T>(schema: z.ZodType<T>, input: unknown, prefix: readonly PathPart[], errors: SpecError[]): T | undefined {
  const result = schema.safeParse(input, { error: errorMap });
  if (result.success) return result.data;
  errors.push(...toSpecErrors(result.error.issues, prefix));
  return undefined;
}

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

export function didYouMean(key: string, candidates: readonly string[]): string {
  if (key.length > 64) return '';
  const best = candidates
    .map((c) => ({ c, d: editDistance(key.toLowerCase(), c) }))
    .sort((x, y) => x.d - y.d)[0];
  return best && best.d <= 2 ? ` (did you mean ${best.c}?)` : '';
}
