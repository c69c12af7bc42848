import type SQLite from 'better-sqlite3';

// better-sqlite3 makes each result row into an object in C++, one property at a time: for the engine's
// batch reads (500 runs of 17 columns, 2,000 waits) that was ~40% of the statement's time, more than
// finding the rows. In raw mode it returns arrays, which a function made once per column list turns into
// objects with one fixed shape, so callers (Kysely) see exactly the rows they saw before.

type Row = Record<string, unknown>;
type Build = (values: unknown[]) => Row;

/**
 * A function `values => ({ [names[0]]: values[0], … })`. Generated source, because an object literal with
 * the keys spelled out is the fastest way V8 has to make an object (a loop of assignments takes ~60% longer).
 * The keys are column names of Chorus's own SQL, quoted with JSON.stringify; a later duplicate name wins,
 * as in better-sqlite3's own rows.
 */
export function rowBuilder(names: readonly string[]): Build {
  const fields = names.map((name, i) => `${JSON.stringify(name)}: v[${i}]`).join(', ');
  return new Function('v', `return { ${fields} };`) as Build;
}

/** Makes a reader statement return its rows through `rowBuilder`; other statements are left alone. */
export function fastRows(stmt: SQLite.Statement): void {
  if (!stmt.reader) return;
  const names = stmt.columns().map((c) => c.name);
  // An object literal would read this key as the prototype, not as a column.
  if (names.includes('__proto__')) return;
  let width = names.length;
  let made = rowBuilder(names);
  // SQLite prepares a statement again after a schema change (a migration run by another process): a
  // `select *` may then have another column list, so rows of another width rebuild the builder.
  const build = (values: unknown[]): Row => {
    if (values.length !== width) {
      const now = stmt.columns().map((c) => c.name);
      width = now.length;
      made = rowBuilder(now);
    }
    return made(values);
  };
  stmt.raw(true);
  const target = stmt as unknown as Record<string, (...args: unknown[]) => unknown>;
  const all = target.all.bind(stmt);
  const get = target.get.bind(stmt);
  const iterate = target.iterate.bind(stmt) as (...args: unknown[]) => IterableIterator<unknown[]>;
  target.all = (...args) => (all(...args) as unknown[][]).map(build);
  target.get = (...args) => {
    const values = get(...args) as unknown[] | undefined;
    return values === undefined ? undefined : build(values);
  };
  target.iterate = function* rows(...args: unknown[]) {
    for (const values of iterate(...args)) yield build(values);
  };
  // Asking for another row mode (pluck, expand, raw) hands the statement back to better-sqlite3 as it was.
  for (const mode of ['pluck', 'expand', 'raw'] as const) {
    const set = target[mode].bind(stmt);
    target[mode] = (...args) => {
      for (const own of ['all', 'get', 'iterate', 'pluck', 'expand', 'raw']) delete target[own];
      stmt.raw(false);
      set(...args);
      return stmt;
    };
  }
}
