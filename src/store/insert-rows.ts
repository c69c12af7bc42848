import { CompiledQuery, sql, type Insertable, type Kysely, type Transaction } from 'kysely';
import type { Database } from './schema.js';
import { prepared } from './prepared.js';

// Multi-row INSERTs of the engine's hot paths (run history, runs, waits, messages, events), written as SQL
// text directly. Kysely turns every value of a 400-row insert into a frozen operation node, then compiles
// the tree back to text: ~8% of the engine's CPU in a profile. The statement is the same; only the way to
// it is shorter. Every row must name the same columns (checked), as multi-row VALUES need anyway. On
// PostgreSQL each column travels as one text of its values (see `rowsAsText`).

type Db = Kysely<Database> | Transaction<Database>;

export interface OnConflict {
  /** The unique column that decides a conflict. */
  column: string;
  /** Columns set from the new row on conflict; none: the existing row is kept (DO NOTHING). */
  update?: readonly string[];
}

const quote = (name: string) => `"${name.replace(/"/g, '""')}"`;

/** PostgreSQL numbers its placeholders ($1, $2, …), SQLite takes `?`: ask the database's own compiler. */
function numbered(db: Db): boolean {
  return sql`${0}`.compile(db).sql.startsWith('$');
}

/** PostgreSQL: each column's type (`udt_name`, e.g. `int8`), per table, for the casts of `unnest`. */
const columnTypes = new Map<string, Map<string, string>>();

async function typesOf(db: Db, table: string): Promise<Map<string, string>> {
  let types = columnTypes.get(table);
  if (!types) {
    const res = await db.executeQuery<{ column_name: string; udt_name: string }>(
      CompiledQuery.raw('select column_name, udt_name from information_schema.columns where table_schema = current_schema() and table_name = $1', [table]),
    );
    types = new Map(res.rows.map((r) => [r.column_name, r.udt_name]));
    // Empty when the table isn't in the current schema: don't remember that.
    if (types.size > 0) columnTypes.set(table, types);
  }
  return types;
}

function checkColumns(table: string, columns: readonly string[], row: Record<string, unknown>): void {
  if (Object.keys(row).length !== columns.length) {
    throw new Error(`insertRows(${table}): every row must name the same ${columns.length} columns (${columns.join(', ')})`);
  }
}

/**
 * SQLite: rows per statement. Every row count is a different statement text, and preparing a 500-row
 * VALUES list costs about as much as running it (0.75 ms); slices of a fixed size keep the shapes few, so
 * they stay prepared (the statement cache, db.ts).
 */
const SQLITE_SLICE = 64;

export async function insertRows<T extends keyof Database & string>(db: Db, table: T, rows: readonly Insertable<Database[T]>[], conflict?: OnConflict): Promise<void> {
  if (rows.length === 0) return;
  const dollar = numbered(db);
  if (!dollar && rows.length > SQLITE_SLICE) {
    // Several statements, atomic together like the one they replace.
    if (!db.isTransaction) return db.transaction().execute((trx) => insertRows(trx, table, rows, conflict));
    for (let i = 0; i < rows.length; i += SQLITE_SLICE) await insertRows(db, table, rows.slice(i, i + SQLITE_SLICE), conflict);
    return;
  }
  const columns = Object.keys(rows[0]);
  const types = dollar ? await typesOf(db, table) : null;
  let text: string;
  let params: unknown[];
  if (types !== null && columns.every((c) => types.has(c))) {
    // PostgreSQL. rowsAsText checks that every row names the same columns.
    const texts = rowsAsText(table, columns, rows as readonly Record<string, unknown>[]);
    if (texts !== null) {
      params = texts;
      text = textInsert(table, columns, types, conflict, 1);
    } else {
      // One array per column, unnested into rows: the statement stays small and the same for any number
      // of rows (400 rows of run history in 3.3 ms instead of 7.2 ms as VALUES, commit included).
      params = columnArrays(columns, rows as readonly Record<string, unknown>[]);
      text = `insert into ${quote(table)} (${columns.map(quote).join(', ')}) select * from ${unnest(columns, types)}${onConflict(conflict)}`;
    }
  } else {
    params = [];
    for (const row of rows) {
      const values = row as Record<string, unknown>;
      checkColumns(table, columns, values);
      for (let i = 0; i < columns.length; i++) params.push(values[columns[i]] ?? null);
    }
    text = valuesStatement(table, columns, rows.length, dollar, conflict);
  }
  await db.executeQuery(CompiledQuery.raw(text, params));
}

/**
 * Sets `columns` of rows that exist, found by `key`. The rows are whole rows (SQLite upserts them, as
 * insertRows does); PostgreSQL is sent only the key and those columns and runs an UPDATE: an upsert there
 * ships every column of the row and tries an insertion first. For the run ledger, 60,000 of 80,000
 * writes in the journey benchmark change a known run's status and visits: a third of the bytes.
 */
export async function updateRows<T extends keyof Database & string>(db: Db, table: T, key: string, columns: readonly string[], rows: readonly Insertable<Database[T]>[]): Promise<void> {
  if (rows.length === 0) return;
  const types = numbered(db) ? await typesOf(db, table) : null;
  const picked = [key, ...columns];
  if (types === null || !picked.every((c) => types.has(c))) return insertRows(db, table, rows, { column: key, update: columns });
  const whole = rows as readonly Record<string, unknown>[];
  const texts = rowsAsText(table, picked, whole, false);
  if (texts !== null) {
    await db.executeQuery(CompiledQuery.raw(textUpdate(table, key, columns, types, 1), texts));
    return;
  }
  const from = `${unnest(picked, types)} as v(${picked.map(quote).join(', ')})`;
  await db.executeQuery(CompiledQuery.raw(`update ${quote(table)} as t set ${setFromV(columns)} from ${from} where t.${quote(key)} = v.${quote(key)}`, columnArrays(picked, whole)));
}

/** `a = v.a, b = v.b, …`: an UPDATE's assignments from the rows aliased `v`. */
const setFromV = (columns: readonly string[]) => columns.map((c) => `${quote(c)} = v.${quote(c)}`).join(', ');

/** PostgreSQL: inserts the rows whose columns are the texts of parameters `param`, `param + 1`, … */
function textInsert(table: string, columns: readonly string[], types: Map<string, string>, conflict: OnConflict | undefined, param: number): string {
  return cached(`insert\u0000${table}\u0000${columns.join(',')}\u0000${conflictKey(conflict)}\u0000${param}`, () => {
    const list = columns.map(quote).join(', ');
    return prepared(`insert into ${quote(table)} (${list}) ${fromTexts(columns, types, param)}${onConflict(conflict)}`);
  });
}

/** PostgreSQL: sets `columns` of the rows (key first, then those columns) given as texts from parameter `param` on. */
function textUpdate(table: string, key: string, columns: readonly string[], types: Map<string, string>, param: number): string {
  return cached(
    `update\u0000${table}\u0000${key}\u0000${columns.join(',')}\u0000${param}`,
    () => prepared(`update ${quote(table)} as t set ${setFromV(columns)} from (${fromTexts([key, ...columns], types, param)}) as v where t.${quote(key)} = v.${quote(key)}`),
  );
}

/** One write of `writeAll`. */
export type Write =
  | { kind: 'insert'; table: keyof Database & string; rows: readonly object[]; conflict?: OnConflict }
  | { kind: 'update'; table: keyof Database & string; key: string; columns: readonly string[]; rows: readonly object[] }
  | { kind: 'delete'; table: keyof Database & string; column: string; values: readonly string[] };

/** Rows of a delete per statement on SQLite: under its bound-parameter limit. */
const DELETE_SLICE = 400;

/**
 * Runs several writes that touch disjoint rows (no row inserted, updated or deleted by two of them). On
 * PostgreSQL they go as one statement, each a data-modifying WITH query: one round trip instead of one
 * each. A statement waits for the server, and the server's process woken by it often takes the engine's
 * CPU for a while: a run ledger's flush (runs, timers, history) was five of a timer batch's ~16 round
 * trips. SQLite runs them one after another (same result: they are disjoint).
 */
export async function writeAll(db: Db, writes: readonly Write[]): Promise<void> {
  const todo = writes.filter((w) => (w.kind === 'delete' ? w.values.length : w.rows.length) > 0);
  if (todo.length === 0) return;
  if (!numbered(db) || todo.length === 1) {
    for (const w of todo) await writeOne(db, w);
    return;
  }
  const parts: string[] = [];
  const params: unknown[] = [];
  for (const w of todo) {
    const param = params.length + 1;
    if (w.kind === 'delete') {
      parts.push(cached(`delete\u0000${w.table}\u0000${w.column}\u0000${param}`, () => prepared(`delete from ${quote(w.table)} where ${quote(w.column)} = any($${param}::text[])`)));
      params.push(w.values);
      continue;
    }
    const types = await typesOf(db, w.table);
    const rows = w.rows as readonly Record<string, unknown>[];
    const columns = w.kind === 'update' ? [w.key, ...w.columns] : Object.keys(rows[0]);
    const texts = columns.every((c) => types.has(c)) ? rowsAsText(w.table, columns, rows, w.kind === 'insert') : null;
    // Rows the texts can't carry (see rowsAsText) or columns not in the current schema: on their own.
    if (texts === null) {
      await writeOne(db, w);
      continue;
    }
    parts.push(w.kind === 'insert' ? textInsert(w.table, columns, types, w.conflict, param) : textUpdate(w.table, w.key, w.columns, types, param));
    for (const t of texts) params.push(t);
  }
  if (parts.length === 0) return;
  if (parts.length === 1) {
    await db.executeQuery(CompiledQuery.raw(parts[0], params));
    return;
  }
  const text = parts.map((part, i) => `w${i} as (${part})`).join(', ');
  await db.executeQuery(CompiledQuery.raw(prepared(`with ${text} select 1`), params));
}

async function writeOne(db: Db, w: Write): Promise<void> {
  if (w.kind === 'insert') return insertRows(db, w.table, w.rows as Insertable<Database[typeof w.table]>[], w.conflict);
  if (w.kind === 'update') return updateRows(db, w.table, w.key, w.columns, w.rows as Insertable<Database[typeof w.table]>[]);
  const dollar = numbered(db);
  for (let i = 0; i < w.values.length; i += DELETE_SLICE) {
    const slice = w.values.slice(i, i + DELETE_SLICE);
    const marks = slice.map((_, n) => (dollar ? `$${n + 1}` : '?')).join(', ');
    await db.executeQuery(CompiledQuery.raw(`delete from ${quote(w.table)} where ${quote(w.column)} in (${marks})`, slice));
  }
}

/** One array per column (PostgreSQL's `unnest` way, for rows JSON can't carry). */
function columnArrays(columns: readonly string[], rows: readonly Record<string, unknown>[]): unknown[][] {
  return columns.map((c) => rows.map((r) => r[c] ?? null));
}

/** `unnest($1::type[], $2::type[], …)` over those arrays, typed by the table's columns. */
function unnest(columns: readonly string[], types: Map<string, string>): string {
  return `unnest(${columns.map((c, i) => `$${i + 1}::${types.get(c)}[]`).join(', ')})`;
}

/** Between two values in a column's text (so never inside one); NULL, as a whole value. */
const SEPARATOR = '\u0001';
const NULL_VALUE = '\u0002';

/**
 * The rows as one text per column: its values (numbers in decimal) joined by U+0001, NULL written as
 * U+0002; PostgreSQL splits them back with `string_to_array` and zips the columns with `unnest`. Nothing
 * is escaped on either side. Against one JSON text of all rows (the way before): PostgreSQL 15 reads JSON
 * strings a character at a time (6% of its CPU in the journey benchmark, gone), and the engine's cost of
 * turning rows into parameters (JSON.stringify escaping texts that are JSON themselves, then measuring
 * the result) fell by ~30%; bare inserts without indexes took 23% less server CPU per row. Null when the
 * texts can't carry the rows exactly: a value containing the separator or equal to the NULL mark, a value
 * that is neither text, number nor boolean, or a single row with an empty text (`string_to_array` of an
 * empty text has no element). Lone UTF-16 surrogates are stored as U+FFFD, as by the array path.
 */
function rowsAsText(table: string, columns: readonly string[], rows: readonly Record<string, unknown>[], exact = true): string[] | null {
  if (exact) for (const row of rows) checkColumns(table, columns, row);
  const texts: string[] = [];
  for (const column of columns) {
    const values: string[] = [];
    for (const row of rows) {
      const v = row[column];
      if (v === null || v === undefined) values.push(NULL_VALUE);
      else if (typeof v === 'string') {
        // string_to_array reads only a whole value equal to NULL_VALUE as NULL.
        if (v === NULL_VALUE || v.includes(SEPARATOR)) return null;
        values.push(v);
      } else if (typeof v === 'number') {
        if (!Number.isFinite(v)) throw new Error(`insertRows(${table}): ${column} is ${v}, not a finite number`);
        values.push(String(v));
      } else if (typeof v === 'boolean') values.push(String(v));
      else return null;
    }
    const text = values.join(SEPARATOR);
    if (text === '') return null;
    texts.push(text);
  }
  return texts;
}

/** The query that reads those texts (parameters `param`, `param + 1`, …) back as typed columns. */
function fromTexts(columns: readonly string[], types: Map<string, string>, param: number): string {
  const select = columns.map((c) => (types.get(c) === 'text' ? `r.${quote(c)}` : `r.${quote(c)}::${types.get(c)!} as ${quote(c)}`));
  const arrays = columns.map((_, i) => `string_to_array($${param + i}, chr(1), chr(2))`);
  return `select ${select.join(', ')} from unnest(${arrays.join(', ')}) as r(${columns.map(quote).join(', ')})`;
}

/**
 * Statement texts by shape, made once: the same string object every time, so the prepared-statement cache
 * (db.ts) finds it without hashing kilobytes of placeholders again, and no text is built per call.
 */
const statements = new Map<string, string>();
const MAX_STATEMENTS = 500;

function cached(key: string, make: () => string): string {
  const known = statements.get(key);
  if (known !== undefined) return known;
  const text = make();
  if (statements.size >= MAX_STATEMENTS) statements.clear();
  statements.set(key, text);
  return text;
}

const conflictKey = (conflict: OnConflict | undefined) => (conflict ? `${conflict.column}\u0000${conflict.update?.join(',') ?? ''}` : '');

function valuesStatement(table: string, columns: string[], count: number, dollar: boolean, conflict?: OnConflict): string {
  const key = `values\u0000${table}\u0000${columns.join(',')}\u0000${count}\u0000${dollar ? '$' : '?'}\u0000${conflictKey(conflict)}`;
  return cached(key, () => {
    const tuples: string[] = [];
    let n = 0;
    for (let r = 0; r < count; r++) {
      const marks: string[] = [];
      for (let i = 0; i < columns.length; i++) marks.push(dollar ? `$${++n}` : '?');
      tuples.push(`(${marks.join(', ')})`);
    }
    return `insert into ${quote(table)} (${columns.map(quote).join(', ')}) values ${tuples.join(', ')}${onConflict(conflict)}`;
  });
}

function onConflict(conflict: OnConflict | undefined): string {
  if (!conflict) return '';
  const action = conflict.update?.length ? `do update set ${conflict.update.map((c) => `${quote(c)} = excluded.${quote(c)}`).join(', ')}` : 'do nothing';
  return ` on conflict (${quote(conflict.column)}) ${action}`;
}
