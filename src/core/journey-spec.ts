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
import { eachCondition, runOnlyParts, type Condition } from './conditions.js';
import { storableText } from './text.js';
import { findWaitlessCycles } from './journey-graph.js';
import {
  ALL_DIGITS_RE,
  describeValue,
  didYouMean,
  formatPath,
  nextSchema,
  PAYLOAD_SCHEMAS,
  parseTopSchema,
  parseWith,
  STEP_ID_RE,
  type PathPart,
} from './journey-schema.js';
import {
  END,
  ENTRY_MODES,
  STEP_TYPES,
  type Entry,
  type EntryMode,
  type EventMatch,
  type FallbackHop,
  type JourneySpec,
  type SendContent,
  type SendStep,
  type SpecError,
  type SpecResult,
  type Step,
  type StepType,
  type WhatsappContent,
} from './journey-types.js';
import { CHANNELS, type Channel } from './types.js';

// The spec's types, schema and graph live in journey-types.ts, journey-schema.ts and journey-graph.ts;
// this module is their public face.
export * from './journey-types.js';
export { formatPath, journeySpecSchema } from './journey-schema.js';
export { stepOrder, successors } from './journey-graph.js';

// ---------------------------------------------------------------------------------------------------------
// Helpers

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const has = (o: Obj, k: string): boolean => Object.hasOwn(o, k);
const isChannel = (v: unknown): v is Channel => typeof v === 'string' && (CHANNELS as readonly string[]).includes(v);
const isStepType = (v: string): v is StepType => (STEP_TYPES as readonly string[]).includes(v);



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
  // The trigger and the audience are decided before a run exists.
  for (const [value, at] of [[isObj(input.trigger) ? input.trigger.where : undefined, ['trigger', 'where']], [input.audience, ['audience']]] as const) {
    for (const part of runOnlyParts(value, [...at])) errors.push({ path: formatPath(part.path), message: part.message });
  }
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
  for (const site of CONDITION_SITES(input)) {
    eachCondition(
      site.value,
      (c, path) => {
        if (typeof c.message === 'string' && byId.get(c.message)?.type !== 'send') {
          const list = sends.length > 0 ? `send steps are: ${sends.join(', ')}` : 'this journey has no send steps';
          errors.push({ path: formatPath([...path, 'message']), message: `unknown send step "${c.message}"; ${list}` });
        }
      },
      site.path,
    );
  }
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
  // YAML's "\0" and "\ud800" escapes: as an API body's JSON (src/api/request-text.ts).
  return parseJourneySpec(storableText(value));
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

