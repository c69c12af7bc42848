import type pg from 'pg';

// PostgreSQL: the engine's multi-row writes have a few fixed texts, run thousands of times per hour (one
// statement per batch of runs, timers, messages). Sent as named prepared statements, the server parses
// and plans each once per connection instead of on every call (planning alone was ~0.6 ms a statement,
// 2–3% of the database's time in the journey benchmark). Only texts registered here are named: a text
// built per call (an IN list of any length) would fill the server's memory with one-off statements.

const names = new Map<string, string>();
/** More distinct texts than the engine has shapes: a bound, in case a caller registers texts it builds. */
const MAX_NAMES = 2000;

/** Registers `text` to run as a named prepared statement on PostgreSQL; returns it unchanged. */
export function prepared(text: string): string {
  if (!names.has(text) && names.size < MAX_NAMES) names.set(text, `chorus_${names.size + 1}`);
  return text;
}

/** The statement name of a registered text. */
export function preparedName(text: string): string | undefined {
  return names.get(text);
}

type Query = (...args: unknown[]) => unknown;

/**
 * Makes a pooled client send registered texts as named statements (pg then skips the Parse message once
 * the connection has prepared the name). Kysely calls `query(text, values)`; anything else passes as is.
 */
export function nameRegisteredStatements(client: pg.ClientBase): void {
  const query = client.query.bind(client) as Query;
  const named: Query = (...args) => {
    const [text, values] = args;
    if (args.length === 2 && typeof text === 'string' && Array.isArray(values)) {
      const name = names.get(text);
      if (name !== undefined) return query({ name, text, values });
    }
    return query(...args);
  };
  (client as unknown as { query: Query }).query = named;
}
