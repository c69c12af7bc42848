import { CompiledQuery, sql, type Insertable, type Kysely, type Transaction } from 'kysely';
import type { Database } from './schema.js';

// Multi-row INSERTs of the engine's hot paths (run history, runs, waits, messages, events), written as SQL
// text directly. Kysely turns every value of a 400-row insert into a frozen operation node, then compiles
// the tree back to text: ~8% of the engine's CPU in a profile. The statement is the same; only the way to
// it is shorter. Every row must name the same columns (checked), as multi-row VALUES need anyway.

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

export async function insertRows<T extends keyof Database & string>(db: Db, table: T, rows: readonly Insertable<Database[T]>[], conflict?: OnConflict): Promise<void> {
  if (rows.length === 0) return;
  const columns = Object.keys(rows[0]);
  const dollar = numbered(db);
  const params: unknown[] = [];
  const tuples: string[] = [];
  for (const row of rows) {
    const values = row as Record<string, unknown>;
    if (Object.keys(values).length !== columns.length) {
      throw new Error(`insertRows(${table}): every row must name the same ${columns.length} columns (${columns.join(', ')})`);
    }
    let tuple = '(';
    for (let i = 0; i < columns.length; i++) {
      params.push(values[columns[i]] ?? null);
      tuple += (i > 0 ? ', ' : '') + (dollar ? `$${params.length}` : '?');
    }
    tuples.push(`${tuple})`);
  }
  let text = `insert into ${quote(table)} (${columns.map(quote).join(', ')}) values ${tuples.join(', ')}`;
  if (conflict) {
    text += ` on conflict (${quote(conflict.column)}) `;
    text += conflict.update?.length ? `do update set ${conflict.update.map((c) => `${quote(c)} = excluded.${quote(c)}`).join(', ')}` : 'do nothing';
  }
  await db.executeQuery(CompiledQuery.raw(text, params));
}
