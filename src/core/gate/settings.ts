// Workspace settings of the send gate (docs/gate.md, "Settings"): channels, message types, scoring weights,
// frequency caps, quiet hours and suppression rules, as one document. Pure: no I/O, no clock.
//
// parseSettings / parseSettingsText turn a (possibly partial) document into a complete GateSettings with
// every default applied, or into every error found, each with a path (`caps[0].window.rolling`) and a
// sentence. Objects are strict: an unknown field is an error naming it.
//
// Defaults and merging:
// - an omitted top-level section takes its default;
// - `channels` merges per channel and per field: `channels: { sms: { enabled: false } }` keeps sms's cost
//   and capabilities and every other channel as they are by default;
// - `scoring` and `quiet_hours` merge per field (`scoring: { cost: 0 }` keeps the other weights);
// - `message_types`, `caps`, `suppression` and `quiet_hours.channels` are taken as given when present (they
//   are lists or maps of the workspace's own rules, so what is written is what applies; an entry can be
//   removed by leaving it out). Within each cap, message type and quiet window the field defaults apply.
//
// `settingsSchema` is the zod schema of the document (input: all optional, with defaults; output:
// GateSettings), for OpenAPI documentation; parse with parseSettings, which adds the cross-entry rules
// (unique cap and suppression ids) and readable messages.

import { parseDocument, LineCounter } from 'yaml';
import { z } from 'zod';
import { conditionSchema, runOnlyParts, type Condition } from '../conditions.js';
import type { Category } from '../reach.js';
import { durationSchema, isValidTimeZone, localTimeSchema, parseDuration } from '../time.js';
import { CHANNELS, type Channel } from '../types.js';

// ---------------------------------------------------------------------------------------------------------
// Public types

export const CAPABILITIES = ['rich_media', 'buttons', 'long_text'] as const;
export type Capability = (typeof CAPABILITIES)[number];

export const PRIORITIES = ['low', 'normal', 'high', 'urgent'] as const;
export type Priority = (typeof PRIORITIES)[number];

/** The message categories (reach.ts `Category`), as a runtime list. */
export const CATEGORIES = ['transactional', 'operational', 'promotional'] as const satisfies readonly Category[];

export const CAP_CALENDAR_UNITS = ['day', 'week'] as const;
export const CAP_ON_EXCEED = ['suppress', 'defer'] as const;
export const QUIET_ACTIONS = ['defer', 'drop'] as const;

export interface ChannelSettings {
  enabled: boolean;
  provider: string;
  /** cost per message, ≥ 0 (any currency, only ratios matter) */
  cost: number;
  capabilities: Capability[];
}

export interface MessageTypeSettings {
  prefer: Channel[];
  needs: Capability[];
}

export type CapWindow = { calendar: 'day' | 'week' } | { rolling: string /* ISO 8601 duration */ };

export interface CapRule {
  id: string;
  /** whole number ≥ 0; 0 blocks every message the rule applies to */
  limit: number;
  window: CapWindow;
  categories: Category[];
  channels: Channel[];
  /** empty: every message; else only messages with one of these tags are counted and capped */
  tags: string[];
  on_exceed: 'suppress' | 'defer';
}

/** A quiet period of local time, `HH:MM`; start ≠ end; end < start crosses midnight (21:00 → 08:00). */
export interface QuietWindow {
  start: string;
  end: string;
}

export interface SuppressionRule {
  id: string;
  when: Condition;
  categories: Category[];
  reason: string;
}

export interface ScoringSettings {
  type_rule: number;
  preference: number;
  engagement: number;
  cost: number;
  capability: number;
  prior_strength: number;
}

export interface QuietHoursSettings {
  /** the workspace-wide quiet period; null: none */
  window: QuietWindow | null;
  /** per channel: a window replaces `window` for that channel, null turns quiet hours off for it */
  channels: Partial<Record<Channel, QuietWindow | null>>;
  action: 'defer' | 'drop';
  /** categories that ignore quiet hours (urgent priority always does) */
  bypass: Category[];
}

export interface GateSettings {
  /** IANA zone for customers without a time zone */
  timezone: string;
  channels: Record<Channel, ChannelSettings>;
  message_types: Record<string, MessageTypeSettings>;
  scoring: ScoringSettings;
  caps: CapRule[];
  quiet_hours: QuietHoursSettings;
  suppression: SuppressionRule[];
}

export interface SettingsError {
  path: string;
  message: string;
}
export type SettingsResult = { ok: true; settings: GateSettings } | { ok: false; errors: SettingsError[] };

// ---------------------------------------------------------------------------------------------------------
// Defaults (docs/gate.md)

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

const DEFAULT_CHANNELS: Record<Channel, ChannelSettings> = {
  email: { enabled: true, provider: 'sandbox', cost: 0.0008, capabilities: ['rich_media', 'buttons', 'long_text'] },
  sms: { enabled: true, provider: 'sandbox', cost: 0.0079, capabilities: [] },
  whatsapp: { enabled: true, provider: 'sandbox', cost: 0.005, capabilities: ['rich_media', 'buttons'] },
  push: { enabled: true, provider: 'sandbox', cost: 0, capabilities: ['buttons'] },
  in_app: { enabled: true, provider: 'sandbox', cost: 0, capabilities: ['rich_media', 'buttons', 'long_text'] },
};

/**
 * The settings of a workspace that never set any (deeply frozen: copy before changing, e.g. with
 * structuredClone). parseSettings({}) returns an equal, unfrozen copy.
 */
export const DEFAULT_SETTINGS: GateSettings = deepFreeze({
  timezone: 'UTC',
  channels: DEFAULT_CHANNELS,
  message_types: {
    alert: { prefer: ['sms', 'push'], needs: [] },
    receipt: { prefer: ['email'], needs: [] },
    promotion: { prefer: ['whatsapp', 'email'], needs: ['rich_media'] },
  },
  scoring: { type_rule: 3, preference: 2, engagement: 4, cost: 1, capability: 1, prior_strength: 20 },
  caps: [],
  quiet_hours: {
    window: { start: '21:00', end: '08:00' },
    // Marketing SMS only 08:00–21:00 (TCPA), kept even when the workspace changes its general window.
    // In-app messages show while the customer is in the app: no quiet hours for them.
    channels: { sms: { start: '21:00', end: '08:00' }, in_app: null },
    action: 'defer',
    bypass: ['transactional'],
  },
  suppression: [],
} satisfies GateSettings);

const DEFAULT_CAP_CATEGORIES: readonly Category[] = ['promotional', 'operational'];
const DEFAULT_SUPPRESSION_CATEGORIES: readonly Category[] = ['promotional', 'operational'];

const clone = <T>(v: T): T => structuredClone(v) as T;

// ---------------------------------------------------------------------------------------------------------
// Schema

const list = (xs: readonly string[]): string =>
  xs.length <= 1 ? xs.join('') : `${xs.slice(0, -1).join(', ')} or ${xs[xs.length - 1]}`;

const enumOf = <T extends readonly [string, ...string[]]>(values: T, what: string) =>
  z.enum(values, { error: () => `expected ${what}: ${list(values)}` });

/** A list without repeats; a repeat is reported on its index. */
const uniqueList = <T extends z.ZodType<string>>(item: T) =>
  z.array(item).superRefine((xs, ctx) => {
    xs.forEach((x, i) => {
      if (xs.indexOf(x) !== i) ctx.addIssue({ code: 'custom', path: [i], message: `${x} is listed twice` });
    });
  });

const channelSchema = enumOf(CHANNELS, 'a channel');
const capabilitySchema = enumOf(CAPABILITIES, 'a capability');
const categorySchema = enumOf(CATEGORIES, 'a category');

/** A type error message, or `required` when the field is missing. */
const orRequired = (message: string) => (iss: { input?: unknown }) => (iss.input === undefined ? 'required' : message);

const nonNegative = (what: string) =>
  z
    .number({ error: `expected ${what} ≥ 0` })
    .min(0, { message: `expected ${what} ≥ 0` });

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/;
const ID_MESSAGE = 'expected an id: letters, digits, _ . : - (at most 64, starting with a letter or digit)';
const idSchema = z.string({ error: orRequired(ID_MESSAGE) }).regex(ID_RE, { message: ID_MESSAGE });

const timezoneSchema = z
  .string({ error: 'expected an IANA time zone such as Europe/Paris' })
  .refine(isValidTimeZone, { message: 'expected an IANA time zone such as Europe/Paris' });

function channelSettingsSchema(channel: Channel) {
  const d = DEFAULT_CHANNELS[channel];
  return z
    .strictObject({
      enabled: z.boolean().default(d.enabled),
      provider: z
        .string({ error: 'expected a provider name such as sandbox' })
        .min(1, { message: 'expected a provider name such as sandbox' })
        .default(d.provider),
      cost: nonNegative('a cost per message').default(d.cost),
      capabilities: uniqueList(capabilitySchema).default(() => [...d.capabilities]),
    })
    .prefault({})
    .describe(`Settings of the ${channel} channel; omitted fields keep their defaults`);
}

const channelsSchema = z
  .strictObject(
    Object.fromEntries(CHANNELS.map((c) => [c, channelSettingsSchema(c)])) as {
      [C in Channel]: ReturnType<typeof channelSettingsSchema>;
    },
  )
  .prefault({})
  .describe('Per channel; every channel is enabled with the sandbox provider by default');

const TYPE_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/;
const TYPE_NAME_MESSAGE = 'a message type name is letters, digits, _ . : - (at most 64, starting with a letter or digit)';

const messageTypeSchema = z.strictObject({
  prefer: uniqueList(channelSchema).default(() => []),
  needs: uniqueList(capabilitySchema).default(() => []),
});

const messageTypesSchema = z
  .record(z.string().regex(TYPE_NAME_RE, { message: TYPE_NAME_MESSAGE }), messageTypeSchema)
  .default(() => clone(DEFAULT_SETTINGS.message_types))
  .describe('Channel rules per message type, for `auto`; replaces the default types when given');

const weight = (name: keyof ScoringSettings) =>
  nonNegative(name === 'prior_strength' ? 'a number of pseudo-messages' : 'a weight').default(
    DEFAULT_SETTINGS.scoring[name],
  );

const scoringSchema = z
  .strictObject({
    type_rule: weight('type_rule'),
    preference: weight('preference'),
    engagement: weight('engagement'),
    cost: weight('cost'),
    capability: weight('capability'),
    prior_strength: weight('prior_strength'),
  })
  .prefault({})
  .describe('Weights of the auto score; omitted weights keep their defaults');

/** A rolling window has a fixed length: no months or years (whose length varies). */
const ROLLING_MESSAGE = 'a rolling window has a fixed length: use weeks, days, hours, minutes or seconds (P30D, not P1M)';
const rollingSchema = durationSchema.refine(
  (s) => {
    const d = parseDuration(s);
    return d === null || (d.years === 0 && d.quarters === 0 && d.months === 0);
  },
  { message: ROLLING_MESSAGE },
);

const capWindowSchema: z.ZodType<CapWindow> = z
  .union([
    z.strictObject({ calendar: enumOf(CAP_CALENDAR_UNITS, 'a calendar window') }),
    z.strictObject({ rolling: rollingSchema }),
  ])
  .describe('{ calendar: day | week } in the customer time zone, or { rolling: ISO 8601 duration such as P7D }');

const capRuleSchema = z.strictObject({
  id: idSchema,
  limit: z
    .number({ error: orRequired('expected a whole number ≥ 0') })
    .int({ message: 'expected a whole number ≥ 0' })
    .min(0, { message: 'expected a whole number ≥ 0' }),
  window: capWindowSchema,
  categories: uniqueList(categorySchema)
    .min(1, { message: 'list at least one category (or leave categories out for promotional and operational)' })
    .default(() => [...DEFAULT_CAP_CATEGORIES]),
  channels: uniqueList(channelSchema)
    .min(1, { message: 'list at least one channel (or leave channels out for all)' })
    .default(() => [...CHANNELS]),
  tags: uniqueList(z.string({ error: 'expected a tag' }).min(1, { message: 'expected a tag' })).default(() => []),
  on_exceed: enumOf(CAP_ON_EXCEED, 'an action').default('suppress'),
});

const quietWindowSchema = z
  .strictObject({ start: localTimeSchema, end: localTimeSchema })
  .refine((w) => w.start !== w.end, {
    message: 'start and end must differ (for no quiet hours use null)',
  })
  .describe('A quiet period in local time; end before start crosses midnight');

const quietHoursSchema = z
  .strictObject({
    window: quietWindowSchema.nullable().default(() => clone(DEFAULT_SETTINGS.quiet_hours.window)),
    channels: z
      .strictObject(
        Object.fromEntries(CHANNELS.map((c) => [c, quietWindowSchema.nullable().optional()])) as {
          [C in Channel]: z.ZodOptional<z.ZodNullable<typeof quietWindowSchema>>;
        },
      )
      .default(() => clone(DEFAULT_SETTINGS.quiet_hours.channels))
      .describe('Per channel: a window replaces the general one, null turns quiet hours off; replaces the defaults when given'),
    action: enumOf(QUIET_ACTIONS, 'an action').default('defer'),
    bypass: uniqueList(categorySchema).default(() => [...DEFAULT_SETTINGS.quiet_hours.bypass]),
  })
  .prefault({});

const suppressionRuleSchema = z.strictObject({
  id: idSchema,
  // Evaluated for any message, journey or not: no run to ask about.
  when: conditionSchema.superRefine((c, ctx) => {
    for (const part of runOnlyParts(c)) ctx.addIssue({ code: 'custom', message: part.message, path: part.path });
  }),
  categories: uniqueList(categorySchema)
    .min(1, { message: 'list at least one category (or leave categories out for promotional and operational)' })
    .default(() => [...DEFAULT_SUPPRESSION_CATEGORIES]),
  reason: z.string({ error: orRequired('expected a sentence for the trace') }).min(1, { message: 'expected a sentence for the trace' }),
});

/** The settings document: input with every field optional (defaults shown), output a complete GateSettings. */
export const settingsSchema = z
  .strictObject({
    timezone: timezoneSchema.default(DEFAULT_SETTINGS.timezone),
    channels: channelsSchema,
    message_types: messageTypesSchema,
    scoring: scoringSchema,
    caps: z.array(capRuleSchema).default(() => []).describe('Frequency caps (ids unique)'),
    quiet_hours: quietHoursSchema,
    suppression: z.array(suppressionRuleSchema).default(() => []).describe('Suppression rules (ids unique)'),
  })
  .describe('Workspace settings of the send gate (docs/gate.md)');

// The schema's output is a GateSettings (checked at compile time).
type Output = z.output<typeof settingsSchema>;
const _outputIsGateSettings: Output extends GateSettings ? true : never = true;
void _outputIsGateSettings;

// ---------------------------------------------------------------------------------------------------------
// Errors

type PathPart = string | number;

function formatPath(parts: readonly PathPart[]): string {
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

/** Messages for zod's generic issues; schema-level messages take precedence. */
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
      if (iss.origin === 'array' || iss.origin === 'string') return 'must not be empty';
      return undefined;
    default:
      return undefined;
  }
};

const hasOwn = (o: unknown, k: string): boolean =>
  o !== null && typeof o === 'object' && !Array.isArray(o) && Object.hasOwn(o, k);

function valueAt(root: unknown, path: readonly PathPart[]): unknown {
  let cur = root;
  for (const p of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    if (!Object.hasOwn(cur, p)) return undefined;
    cur = (cur as Record<PathPart, unknown>)[p];
  }
  return cur;
}

function toErrors(issues: readonly z.core.$ZodIssue[], prefix: readonly PathPart[], input: unknown): SettingsError[] {
  const out: SettingsError[] = [];
  for (const issue of issues) {
    const base = [...prefix, ...(issue.path as PathPart[])];
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) out.push({ path: formatPath([...base, key]), message: `unknown field "${key}"` });
      continue;
    }
    if (issue.code === 'invalid_key') {
      out.push({ path: formatPath(base), message: issue.issues[0]?.message ?? issue.message });
      continue;
    }
    if (issue.code === 'invalid_union') {
      // The only union is a cap window: pick the branch by the key that is there.
      const raw = valueAt(input, base);
      const cal = hasOwn(raw, 'calendar');
      const roll = hasOwn(raw, 'rolling');
      if (cal !== roll && issue.errors.length === 2) {
        out.push(...toErrors(issue.errors[cal ? 0 : 1]!, base, input));
      } else if (cal && roll) {
        out.push({ path: formatPath(base), message: 'give calendar or rolling, not both' });
      } else {
        out.push({
          path: formatPath(base),
          message: raw === undefined
            ? 'required'
            : 'expected { calendar: day } or { calendar: week } or { rolling: <ISO 8601 duration such as P7D> }',
        });
      }
      continue;
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

/** Rules across entries, checked on the raw input so they are reported with the shape errors. */
function crossChecks(input: Record<string, unknown>): SettingsError[] {
  const out: SettingsError[] = [];
  for (const section of ['caps', 'suppression'] as const) {
    const rules = input[section];
    if (!Array.isArray(rules)) continue;
    const seen = new Map<string, number>();
    rules.forEach((rule: unknown, i) => {
      const id = hasOwn(rule, 'id') ? (rule as { id: unknown }).id : undefined;
      if (typeof id !== 'string') return;
      const first = seen.get(id);
      if (first === undefined) seen.set(id, i);
      else out.push({ path: formatPath([section, i, 'id']), message: `duplicate id "${id}" (also ${section}[${first}])` });
    });
  }
  // zod drops a `__proto__` key of a record silently; refuse it instead.
  const types = input['message_types'];
  if (hasOwn(types, '__proto__')) out.push({ path: 'message_types.__proto__', message: TYPE_NAME_MESSAGE });
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Parsing

/**
 * Validates a settings document (a parsed JSON/YAML value) and applies every default. All errors are
 * collected, each with its path. The result shares nothing with the input or with DEFAULT_SETTINGS.
 */
export function parseSettings(input: unknown): SettingsResult {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    return { ok: false, errors: [{ path: '', message: `expected a settings document (an object), got ${describeValue(input)}` }] };
  }
  const errors = crossChecks(input as Record<string, unknown>);
  const result = settingsSchema.safeParse(input, { error: errorMap });
  if (!result.success) errors.unshift(...toErrors(result.error.issues, [], input));
  if (errors.length > 0) return { ok: false, errors };
  return { ok: true, settings: clone(result.data as GateSettings) };
}

/** Parses YAML (or JSON, which is YAML) text, then parseSettings. Syntax errors carry line:col. */
export function parseSettingsText(text: string): SettingsResult {
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
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    return { ok: false, errors: [{ path: '', message: `invalid YAML: ${(e as Error).message}` }] };
  }
  return parseSettings(value);
}
