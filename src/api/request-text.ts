import type { FastifyInstance } from 'fastify';
import { storableText } from '../core/text.js';
import { invalid } from './errors.js';

// Text in a request, made into what both databases store before anything reads it, so an id read back
// from the database equals the one the request carried:
// - PostgreSQL's text cannot hold the NUL character (U+0000): a user id, event name or email with one made
//   it refuse the statement (a 500). A NUL in a JSON body becomes U+FFFD, on SQLite too: JSON and Segment
//   accept it, and refusing a batch for one NUL deep in a property would lose every event in it.
// - A lone UTF-16 surrogate (`"\ud800"` in JSON) is stored as U+FFFD (the databases keep UTF-8). Read
//   back, it no longer equaled the id the request carried: an alias to such an id tried to insert it a
//   second time (a 500). It becomes U+FFFD on the way in.
// One native scan of the raw body finds either escape (JSON can't carry a raw NUL or surrogate); only a
// body that has one is walked. A URL with `%00` is refused: no id or key Chorus serves contains NUL.

/** `\u0000`, or a surrogate written as an escape (paired or lone: JSON.parse keeps it as a UTF-16 unit). */
const ESCAPE = /\\u(?:0000|[dD][89a-fA-F])/;

/** Parses JSON bodies as Fastify does (prototype-poisoning checks included), with storable strings. */
export function guardRequestText(app: FastifyInstance): void {
  const parseJson = app.getDefaultJsonParser('error', 'error');
  const storableBody = (req: Parameters<typeof parseJson>[0], body: string, done: (err: Error | null, value?: unknown) => void) =>
    parseJson(req, body, (err, value) => (err ? done(err) : done(null, ESCAPE.test(body) ? storableText(value) : value)));
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => storableBody(req, body as string, done));
  // Browsers' sendBeacon posts Segment calls as text/plain; accept them as JSON.
  app.addContentTypeParser('text/plain', { parseAs: 'string' }, (req, body, done) => storableBody(req, body as string, done));
  app.addHook('onRequest', async (req) => {
    if (/%00/.test(req.url)) throw invalid([{ path: 'url', message: 'contains %00 (the NUL character), which no id or key in Chorus has; remove it' }]);
  });
}
