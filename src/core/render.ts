// Message content rendering with LiquidJS (the template language of Braze, Customer.io and Shopify).
//
// Rendering is synchronous on purpose: the engine renders inside a database transaction. Parsed templates
// are cached by their text in a small bounded map.
//
// Missing variables. The rule is "nothing is ever sent with a blank hole":
//
// - The shared Liquid instance runs with `strictVariables: true`, so `{{ profile.traits.first_name }}` on a
//   profile without that trait throws, and the send fails with the field and the variable named.
// - `lenientIf: true` is liquidjs's built-in escape hatch for that strictness, and it covers exactly the two
//   things we want: a single undefined variable in `{% if %}` / `{% elsif %}` / `{% unless %}` is false,
//   and `{{ x | default: "there" }}` renders "there". liquidjs only relaxes the check when `default` is the
//   FIRST filter (`{{ x | default: "a" | upcase }}` works, `{{ x | upcase | default: "a" }}` still fails).
//   Verified against liquidjs 10.30 (see test/render.test.ts).
// - liquidjs treats `null` as a defined value and lets property access on it yield null (`{{ event.name }}`
//   with no event, `{{ profile.email }}` when it is null), which would render as blank. So the variables
//   are copied first with every `null` dropped: a null is "missing", fails the same way, and takes a
//   `default` the same way.
// - Last line of defence, for values that become nil inside the template (`{% assign x = missing %}` is
//   lenient under lenientIf, `{{ list | first }}` on an empty list, `| default: nil`): every `{{ … }}` gets
//   a final check (liquidjs's `outputEscape` hook, which is appended to each output's filter chain) that
//   fails the render when the value is nil or a plain object (which would print "[object Object]").
//   `| raw` is re-registered as a plain identity filter so it cannot skip the check.
//
// Safety: `ownPropertyOnly` (no prototype access: `{{ profile.constructor }}` is undefined, hence an
// error), `strictFilters` (an unknown filter is a syntax error), no file system (the include/render/layout
// tags are removed, so they are syntax errors, and `fs` is a stub that fails anyway), and bounded work
// (`parseLimit` on template size, `renderLimit` on render time, `memoryLimit` on allocations such as
// ranges and string building, plus a cap on the rendered length).
import { Liquid, type FS, type Template } from 'liquidjs';
import { MEMO_MAX, memoKey, memoReads } from './render-memo.js';

export type ChannelContent =
  | { channel: 'email'; subject: string; text?: string; html?: string }
  | { channel: 'sms'; text: string }
  | { channel: 'whatsapp'; text?: string; template?: string; language?: string; parameters?: string[] }
  | { channel: 'push'; title: string; body: string; url?: string }
  | { channel: 'in_app'; title: string; body: string; cta?: { label: string; url: string } };

export interface TemplateVars {
  profile: Record<string, unknown>;
  event: Record<string, unknown> | null;
  journey: Record<string, unknown> | null;
  run: Record<string, unknown> | null;
  data?: Record<string, unknown>;
}

export type RenderResult<T> = { ok: true; value: T } | { ok: false; reason: string };

/** Largest template accepted, in characters. */
export const MAX_TEMPLATE_CHARS = 1_000_000;
/** Longest rendered field, in characters. */
export const MAX_OUTPUT_CHARS = 1_000_000;
/** Time budget of one field's render, in milliseconds. */
const RENDER_LIMIT_MS = 1_000;
/** liquidjs allocation budget of one render (range sizes, string and array building). */
const MEMORY_LIMIT = 10_000_000;
const CACHE_MAX = 1_000;
/** Nesting depth of variables copied into a render; deeper values are left out (and so are missing). */
const MAX_VAR_DEPTH = 32;

const DEFAULT_HINT = 'give it a default with | default: "…"';

/** Thrown by the output check for `{{ … }}` that would print nothing or "[object Object]". */
class BlankOutputError extends Error {
  constructor(readonly kind: 'nil' | 'object') {
    super(kind === 'nil' ? 'renders nothing' : 'renders an object');
    this.name = 'BlankOutputError';
  }
}

const noFs: FS = {
  exists: async () => false,
  existsSync: () => false,
  readFile: async (file) => {
    throw new Error(`templates cannot read files (${file})`);
  },
  readFileSync: (file) => {
    throw new Error(`templates cannot read files (${file})`);
  },
  resolve: (_dir, file) => file,
  contains: async () => false,
  containsSync: () => false,
};

// Typed by liquidjs as returning a string; it returns the value untouched and liquidjs stringifies it.
function outputCheck(value: unknown): string {
  if (value === null || value === undefined) throw new BlankOutputError('nil');
  if (typeof value === 'object' && !Array.isArray(value) && !(value instanceof Date)) {
    throw new BlankOutputError('object');
  }
  return value as string;
}

const liquid = new Liquid({
  strictVariables: true,
  strictFilters: true,
  ownPropertyOnly: true,
  lenientIf: true,
  fs: noFs,
  root: [],
  partials: [],
  layouts: [],
  relativeReference: false,
  dynamicPartials: false,
  cache: false,
  outputEscape: outputCheck,
  parseLimit: MAX_TEMPLATE_CHARS,
  renderLimit: RENDER_LIMIT_MS,
  memoryLimit: MEMORY_LIMIT,
  // Deterministic dates: UTC and English unless the template says otherwise (`date: "%H:%M", "Europe/Paris"`).
  timezoneOffset: 0,
  locale: 'en-US',
});
for (const tag of ['include', 'render', 'layout']) delete liquid.tags[tag];
// `raw` is registered with a flag that skips outputEscape; as a plain function it does not.
liquid.registerFilter('raw', (v: unknown) => v);

/** `reads`: the paths whose values decide the output, when nothing else does (render-memo.ts). */
type Parsed = { ok: true; templates: Template[]; id: number; reads: string[][] | null } | { ok: false; message: string };
const cache = new Map<string, Parsed>();
let parsedCount = 0;

/** Rendered texts by template and the values it reads (render-memo.ts), bounded. */
const memo = new Map<string, string>();

/** Forgets remembered renders (tests compare renders with and without them). */
export function clearRenderMemo(): void {
  memo.clear();
}

function parse(template: string): Parsed {
  const hit = cache.get(template);
  if (hit) return hit;
  let parsed: Parsed;
  try {
    const templates = liquid.parse(template);
    const reads = memoReads(template, () => liquid.variableSegmentsSync(templates) as unknown[][]);
    parsed = { ok: true, templates, id: ++parsedCount, reads };
  } catch (e) {
    parsed = { ok: false, message: errorMessage(e) };
  }
  if (cache.size >= CACHE_MAX) cache.clear();
  cache.set(template, parsed);
  return parsed;
}

const TEMPLATE_SYNTAX = /\{[{%]/;

/** Syntax check (for spec validation): null when the template parses, else the error. */
export function checkTemplate(template: string): string | null {
  if (typeof template !== 'string') return 'template must be a string';
  if (!TEMPLATE_SYNTAX.test(template)) return null;
  const parsed = parse(template);
  return parsed.ok ? null : parsed.message;
}

/** The variables of one render, and their scope, copied once and only when a template is rendered. */
interface Vars {
  vars: TemplateVars;
  scope: Scope | null;
}

/** Renders one template; `field` names it in errors (`email.subject`). Never throws. */
export function renderString(template: string, vars: TemplateVars, field: string): RenderResult<string> {
  return renderWithScope(template, { vars, scope: null }, field);
}

/**
 * Renders every string of a content object (recursively: arrays such as `whatsapp.parameters`, nested
 * objects such as `in_app.cta`) and returns the same shape. A top-level `channel` string is the content's
 * type tag: it is kept as is and prefixes field names in errors. The first failing field fails the whole.
 */
export function renderContent<T extends Record<string, unknown>>(template: T, vars: TemplateVars): RenderResult<T> {
  const input: Vars = { vars, scope: null };
  const prefix = typeof template.channel === 'string' ? template.channel : '';
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(template)) {
    if (key === 'channel' && prefix) {
      out[key] = value;
      continue;
    }
    const r = renderValue(value, input, prefix ? `${prefix}.${key}` : key, 0);
    if (!r.ok) return r;
    out[key] = r.value;
  }
  return { ok: true, value: out as T };
}

function renderValue(value: unknown, input: Vars, field: string, depth: number): RenderResult<unknown> {
  if (typeof value === 'string') return renderWithScope(value, input, field);
  if (depth >= MAX_VAR_DEPTH) return { ok: true, value };
  if (Array.isArray(value)) {
    const out: unknown[] = [];
    for (let i = 0; i < value.length; i++) {
      const r = renderValue(value[i], input, `${field}[${i}]`, depth + 1);
      if (!r.ok) return r;
      out.push(r.value);
    }
    return { ok: true, value: out };
  }
  if (isPlainObject(value)) {
    const out: Record<string, unknown> = {};
    for (const [key, v] of Object.entries(value)) {
      const r = renderValue(v, input, `${field}.${key}`, depth + 1);
      if (!r.ok) return r;
      out[key] = r.value;
    }
    return { ok: true, value: out };
  }
  return { ok: true, value };
}

type Scope = Record<string, unknown>;

function renderWithScope(template: string, input: Vars, field: string): RenderResult<string> {
  try {
    if (typeof template !== 'string') return fail(field, 'template must be a string');
    if (!TEMPLATE_SYNTAX.test(template)) return { ok: true, value: template };
    const parsed = parse(template);
    if (!parsed.ok) return fail(field, parsed.message);
    const values = parsed.reads ? memoKeyOf(input.vars, parsed.reads) : null;
    const key = values === null ? null : `${parsed.id}\u0000${values}`;
    const known = key === null ? undefined : memo.get(key);
    if (known !== undefined) return { ok: true, value: known };
    let scope: Scope;
    try {
      scope = input.scope ??= toScope(input.vars);
    } catch (e) {
      return { ok: false, reason: `template error: ${errorMessage(e)}` };
    }
    const out: unknown = renderQuietly(parsed.templates, scope);
    const text = typeof out === 'string' ? out : String(out);
    if (text.length > MAX_OUTPUT_CHARS) {
      return fail(field, `rendered text is longer than ${MAX_OUTPUT_CHARS} characters`);
    }
    if (key !== null) {
      if (memo.size >= MEMO_MAX) memo.clear();
      memo.set(key, text);
    }
    return { ok: true, value: text };
  } catch (e) {
    return { ok: false, reason: renderFailure(e, field, template) };
  }
}

function memoKeyOf(vars: TemplateVars, reads: string[][]): string | null {
  try {
    return memoKey(vars ?? {}, reads, MAX_VAR_DEPTH);
  } catch {
    return null; // a value that cannot be read plainly: render it
  }
}

/**
 * liquidjs signals a missing variable by throwing an Error, also where `| default:` then catches it, so
 * most customers without a `first_name` cost an exception per message. Errors made while rendering carry
 * no stack trace (capturing one is most of their cost); failure messages never use it.
 */
function renderQuietly(templates: Template[], scope: Scope): unknown {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return liquid.renderSync(templates, scope);
  } finally {
    Error.stackTraceLimit = limit;
  }
}

function fail(field: string, message: string): { ok: false; reason: string } {
  return { ok: false, reason: `template error in ${field}: ${message}` };
}

interface LiquidErrorLike {
  name?: unknown;
  message?: unknown;
  originalError?: unknown;
  token?: { getText?: () => string; getPosition?: () => [number, number] };
}

function renderFailure(e: unknown, field: string, template: string): string {
  const err = (typeof e === 'object' && e !== null ? e : {}) as LiquidErrorLike;
  const original = (err.originalError ?? null) as { variableName?: unknown } | null;
  const multiline = template.includes('\n');
  const where = (): string => {
    if (!multiline) return '';
    try {
      const pos = err.token?.getPosition?.();
      return pos ? ` (line ${pos[0]}, col ${pos[1]})` : '';
    } catch {
      return '';
    }
  };
  if (err.name === 'UndefinedVariableError' && original && typeof original.variableName === 'string') {
    const name = original.variableName;
    const fix = name.startsWith('profile.traits.') ? 'or set the trait' : 'or make sure it is set';
    return `template error in ${field}: undefined variable "${name}"${where()}; ${DEFAULT_HINT} ${fix}`;
  }
  if (original instanceof BlankOutputError) {
    let text = 'an output';
    try {
      const t = err.token?.getText?.();
      if (typeof t === 'string') text = t.length > 80 ? `${t.slice(0, 77)}...` : t;
    } catch {
      // keep the generic text
    }
    const what = original.kind === 'nil' ? 'renders nothing (nil)' : 'renders an object, not text';
    const fix = original.kind === 'nil' ? DEFAULT_HINT : 'output one of its fields';
    return `template error in ${field}: ${text} ${what}${where()}; ${fix}`;
  }
  return `template error in ${field}: ${errorMessage(e)}`;
}

function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message;
  if (typeof e === 'object' && e !== null && typeof (e as { message?: unknown }).message === 'string') {
    return (e as { message: string }).message;
  }
  try {
    return String(e);
  } catch {
    return 'unknown error';
  }
}

// ---------------------------------------------------------------------------------------------------
// Variables
// ---------------------------------------------------------------------------------------------------

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

/**
 * The render scope: a copy of the variables with nulls dropped (so they count as missing), functions and
 * symbols dropped, `__proto__` keys skipped, cycles and deep nesting cut. Dates stay Dates for `date`.
 */
function toScope(vars: TemplateVars): Scope {
  const scope: Scope = {};
  const src = (vars ?? {}) as unknown as Record<string, unknown>;
  for (const key of ['profile', 'event', 'journey', 'run', 'data'] as const) {
    const v = copyVar(src[key], 0, new Set());
    if (v !== undefined) scope[key] = v;
  }
  return scope;
}

function copyVar(v: unknown, depth: number, seen: Set<object>): unknown {
  if (v === null || v === undefined) return undefined;
  switch (typeof v) {
    case 'string':
    case 'number':
    case 'boolean':
    case 'bigint':
      return v;
    case 'object':
      break;
    default:
      return undefined; // function, symbol
  }
  const obj = v as object;
  if (obj instanceof Date) return obj;
  if (depth >= MAX_VAR_DEPTH || seen.has(obj)) return undefined;
  seen.add(obj);
  try {
    if (Array.isArray(obj)) return obj.map((x) => copyVar(x, depth + 1, seen));
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(obj)) {
      if (key === '__proto__') continue;
      const c = copyVar(value, depth + 1, seen);
      if (c !== undefined) out[key] = c;
    }
    return out;
  } finally {
    seen.delete(obj);
  }
}
