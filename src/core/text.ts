// Text as both databases store it. PostgreSQL's text can't hold NUL (U+0000), and UTF-8 (both databases)
// can't hold a lone UTF-16 surrogate, which comes back as U+FFFD: replaced up front, an id read back from
// the database equals the one that came in.

const UNSTORABLE = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** NUL and lone surrogates as U+FFFD (String.prototype.toWellFormed does the second; ES2024). */
export const storable = (s: string): string => s.replace(UNSTORABLE, '\ufffd');

/** The value with every string and key made storable. */
export function storableText(value: unknown): unknown {
  if (typeof value === 'string') return storable(value);
  if (Array.isArray(value)) return value.map(storableText);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, v] of Object.entries(value)) out[storable(key)] = storableText(v);
    return out;
  }
  return value;
}
