import type pg from 'pg';

// PostgreSQL: the engine runs a few hundred statement texts thousands of times an hour (one write per
// batch of runs, timers and messages; the reads of each batch). Sent as named prepared statements, the
// server parses each once per connection instead of on every call, and after five runs on a connection
// plans it once too when a generic plan is as good (planning was ~0.6 ms per write and 4% of the
// database's time for the reads, in the journey benchmark). A text is named when it is registered (the
// writes, made by insert-rows.ts) or on its third run. IN lists of the hot reads come in a few lengths
// (`bucketed`), so their texts repeat too. The names are bounded: each costs memory in every
// connection's server process, and one-off texts (an IN list of any length) are never named.

const names = new Map<string, string>();
/** Named texts, at most: about twice the engine's shapes (IN-list lengths included). */
const MAX_NAMES = 600;
/** How often each unnamed text has run, until it reaches NAME_AFTER (forgotten wholesale when full). */
const seen = new Map<string, number>();
const NAME_AFTER = 3;
const MAX_SEEN = 5000;
/** Longer texts aren't worth a name (a VALUES list of many rows, spelled out). */
const MAX_NAMED_CHARS = 16_384;

function name(text: string): string | undefined {
  if (names.size >= MAX_NAMES || text.length > MAX_NAMED_CHARS) return undefined;
  const id = `chorus_${names.size + 1}`;
  names.set(text, id);
  seen.delete(text);
  return id;
}

/** Registers `text` to run as a named prepared statement on PostgreSQL from its first run; returns it unchanged. */
export function prepared(text: string): string {
  if (!names.has(text)) name(text);
  return text;
}

/** The statement name of `text`, once it has one: registered, or run NAME_AFTER times. */
export function nameFor(text: string): string | undefined {
  const known = names.get(text);
  if (known !== undefined || names.size >= MAX_NAMES || text.length > MAX_NAMED_CHARS) return known;
  const count = (seen.get(text) ?? 0) + 1;
  if (count >= NAME_AFTER) return name(text);
  if (seen.size >= MAX_SEEN) seen.clear();
  seen.set(text, count);
  return undefined;
}

/** IN-list lengths: a list is padded (with its last value, which changes nothing) to the next of these. */
const BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512];

/**
 * `values`, padded by repeating its last value to the next length in a short series (1, 2, 4 … 512), for
 * `where(column, 'in', …)` in hot reads: the statement's text then takes one of ten forms instead of one
 * per list length, and runs prepared. Longer lists and empty ones are returned as they are. Not for the
 * identity lookups of ingestion (several IN lists in a UNION): padded, PostgreSQL planned them 3x slower.
 */
export function bucketed<T>(values: readonly T[]): T[] {
  const n = values.length;
  const size = BUCKETS.find((b) => b >= n);
  const out = [...values];
  if (n === 0 || size === undefined) return out;
  const last = values[n - 1];
  while (out.length < size) out.push(last);
  return out;
}

type Query = (...args: unknown[]) => unknown;

/**
 * PostgreSQL's answer to a prepared `select *` whose table has gained or lost columns since (another
 * process migrated it: a rolling deploy). The statement stays broken on that connection for good.
 */
export function isStalePlan(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown } | null;
  return e?.code === '0A000' && typeof e.message === 'string' && e.message.includes('cached plan must not change result type');
}

/** Suffixes of replacement names, unique across connections. */
let generation = 0;

/**
 * Makes a pooled client send registered and repeated texts as named statements (pg then skips the Parse message once the
 * connection has prepared the name). Kysely calls `query(text, values)`; statements without parameters
 * (BEGIN, COMMIT, ANALYZE, migrations) and anything else pass as they are. A statement that failed as a
 * stale plan gets a new name on this connection, so its next run is prepared afresh (the failed
 * transaction is retried: see `transact`).
 */
export function nameRepeatedStatements(client: pg.ClientBase): void {
  const query = client.query.bind(client) as Query;
  const renamed = new Map<string, string>();
  const named: Query = (...args) => {
    const [text, values] = args;
    if (args.length === 2 && typeof text === 'string' && Array.isArray(values) && values.length > 0) {
      const statement = nameFor(text);
      if (statement !== undefined) {
        const result = query({ name: renamed.get(statement) ?? statement, text, values }) as Promise<unknown>;
        return result.catch((err: unknown) => {
          if (isStalePlan(err)) renamed.set(statement, `${statement}_${++generation}`);
          throw err;
        });
      }
    }
    return query(...args);
  };
  (client as unknown as { query: Query }).query = named;
}
