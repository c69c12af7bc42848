import type { FastifyInstance } from 'fastify';
import { invalid } from './errors.js';

// Text in a request, made into what the databases store, before anything reads it:
// - PostgreSQL's text cannot hold the NUL character (U+0000): a user id, event name or email with one made
//   the database refuse the statement, and the request failed with a 500. Chorus refuses NUL anywhere in
//   a request instead, on both databases, with a 400 that names where it is.
// - A lone UTF-16 surrogate (`"\ud800"` in JSON) is stored as U+FFFD (the databases keep UTF-8). Read
//   back, it no longer equals the id the request carried: an alias to such an id tried to insert it a
//   second time (a 500). Strings are made well-formed (U+FFFD) on the way in, so they match what is stored.
// Each is one native scan of the raw body for the escape (JSON can't carry a raw NUL or surrogate); only a
// body that has one is walked.

const NUL_MESSAGE = 'contains the NUL character (U+0000), which Chorus does not store; remove it';

/** The path of the first string or key holding U+0000 (`batch[2].userId`, `traits.email`), or null. */
export function nulPath(value: unknown, path = ''): string | null {
  if (typeof value === 'string') return value.includes('\u0000') ? path : null;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = nulPath(value[i], `${path}[${i}]`);
      if (found !== null) return found;
    }
    return null;
  }
  if (value !== null && typeof value === 'object') {
    for (const [key, v] of Object.entries(value)) {
      const at = path ? `${path}.${key}` : key;
      if (key.includes('\u0000')) return at;
      const found = nulPath(v, at);
      if (found !== null) return found;
    }
  }
  return null;
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
/** String.prototype.toWellFormed (ES2024), which this TypeScript target doesn't declare. */
const toWellFormed = (s: string) => s.replace(LONE_SURROGATE, '\ufffd');

/** The value with every string and key made well-formed UTF-16 (lone surrogates become U+FFFD). */
export function wellFormed(value: unknown): unknown {
  if (typeof value === 'string') return toWellFormed(value);
  if (Array.isArray(value)) return value.map(wellFormed);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, v] of Object.entries(value)) out[toWellFormed(key)] = wellFormed(v);
    return out;
  }
  return value;
}

/** A surrogate written as an escape: paired or lone, JSON.parse keeps it as a UTF-16 unit. */
const SURROGATE_ESCAPE = /\\u[dD][89a-fA-F]/;

/**
 * Parses JSON bodies as Fastify does (prototype-poisoning checks included), refuses NUL and makes
 * strings well-formed.
 */
export function guardRequestText(app: FastifyInstance): void {
  const parseJson = app.getDefaultJsonParser('error', 'error');
  const checked = (body: string, value: unknown, done: (err: Error | null, value?: unknown) => void) => {
    const at = body.includes('\\u0000') ? nulPath(value) : null;
    if (at !== null) done(invalid([{ path: at, message: NUL_MESSAGE }]));
    else done(null, SURROGATE_ESCAPE.test(body) ? wellFormed(value) : value);
  };
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    parseJson(req, body as string, (err, value) => (err ? done(err) : checked(body as string, value, done)));
  });
  // Browsers' sendBeacon posts Segment calls as text/plain; accept them as JSON.
  app.addContentTypeParser('text/plain', { parseAs: 'string' }, (req, body, done) => {
    parseJson(req, body as string, (err, value) => (err ? done(err) : checked(body as string, value, done)));
  });
  // Path and query: `%00` decodes to NUL.
  app.addHook('onRequest', async (req) => {
    if (/%00/.test(req.url)) throw invalid([{ path: 'url', message: NUL_MESSAGE.replace('(U+0000)', '(%00)') }]);
  });
}
