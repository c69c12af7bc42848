import type { FastifyInstance } from 'fastify';
import { invalid } from './errors.js';

// PostgreSQL's text cannot hold the NUL character (U+0000): a user id, event name or email with one made
// the database refuse the statement, and the request failed with a 500. Chorus refuses NUL anywhere in a
// request instead, on both databases, with a 400 that names where it is. The check is one native scan
// of the raw body for the escape `\u0000` (JSON can't carry a raw NUL); only a body that has it is walked.

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

/** Parses JSON bodies as Fastify does (prototype-poisoning checks included), then refuses NUL. */
export function guardAgainstNul(app: FastifyInstance): void {
  const parseJson = app.getDefaultJsonParser('error', 'error');
  const checked = (body: string, value: unknown, done: (err: Error | null, value?: unknown) => void) => {
    const at = body.includes('\\u0000') ? nulPath(value) : null;
    if (at === null) done(null, value);
    else done(invalid([{ path: at, message: NUL_MESSAGE }]));
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
