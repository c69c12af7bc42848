// Remembering rendered templates. Most message templates only print variables (`Hi {{ profile.traits.
// first_name | default: "there" }}`, `{{ journey.data.app_url }}/tour`), and many customers share those
// values, so the same text is rendered again and again. For a template whose output can depend on nothing
// but the values at the paths it reads, the output is remembered under those values.
//
// Which templates qualify (decided once, when the template is parsed; anything else is always rendered):
// - outputs only: no tags (`{% %}`: loops, assignments, captures, conditions);
// - no date filters (`"now" | date` changes with the clock);
// - every variable is a plain dotted path: no brackets, and no `size`, `first` or `last` (liquidjs
//   computes those from the value: the number of a profile's traits is not a value at a path).
// Which renders qualify (per call): every path leads through plain objects to a string, number, boolean or
// nothing at all; a path through an array, a string or a Date (or a cycle) is rendered.
//
// The values are read the way the render scope (render.ts) sees them: own properties only, null and
// functions are missing, `__proto__` is never followed. Failures are not remembered (they are rare and
// their messages name the token).

export const MEMO_MAX = 10_000;

/** The variable paths a template reads, or null when its output may depend on anything else. */
export function memoReads(template: string, segments: () => unknown[][]): string[][] | null {
  if (template.includes('{%') || template.includes('[') || /\|\s*date/.test(template)) return null;
  let found: unknown[][];
  try {
    found = segments();
  } catch {
    return null;
  }
  const reads: string[][] = [];
  for (const path of found) {
    if (path.length === 0 || !path.every((s): s is string => typeof s === 'string')) return null;
    if (path.some((s) => s === 'size' || s === 'first' || s === 'last' || s === '__proto__')) return null;
    reads.push(path);
  }
  return reads;
}

const ROOTS = new Set(['profile', 'event', 'journey', 'run', 'data']);

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

/** The key of the values at `reads` in `vars`, or null when this render must not be remembered. */
export function memoKey(vars: object, reads: string[][], maxDepth: number): string | null {
  let key = '';
  for (const path of reads) {
    const part = valueAt(vars as Record<string, unknown>, path, maxDepth);
    if (part === null) return null;
    // Length-prefixed, so no value can run into the next one's.
    key += `${part.length}:${part}`;
  }
  return key;
}

function valueAt(vars: Record<string, unknown>, path: string[], maxDepth: number): string | null {
  if (path.length > maxDepth) return null;
  let v: unknown = ROOTS.has(path[0]) && Object.hasOwn(vars, path[0]) ? vars[path[0]] : undefined;
  const seen: object[] = [];
  for (let i = 1; i < path.length; i++) {
    // Missing part-way: the render fails or takes its default, the same way for every such value.
    if (v === null || v === undefined || typeof v === 'function' || typeof v === 'symbol') return `-${i}`;
    if (!isPlainObject(v) || seen.includes(v)) return null;
    seen.push(v);
    v = Object.hasOwn(v, path[i]) ? v[path[i]] : undefined;
  }
  switch (typeof v) {
    case 'string':
      return `s${v}`;
    case 'number':
      return `n${String(v)}`;
    case 'boolean':
      return `b${String(v)}`;
    case 'bigint':
      return `i${String(v)}`;
    case 'undefined':
    case 'function':
    case 'symbol':
      return `-${path.length}`;
    default:
      return v === null ? `-${path.length}` : null;
  }
}
