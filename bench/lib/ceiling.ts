import { performance } from 'node:perf_hooks';
import type { Kysely } from 'kysely';
import type { Store } from '../../src/store/db.js';
import type { Database, EventTable } from '../../src/store/schema.js';

// The raw-insert ceiling: the rows ingestion stored, copied with plain multi-row INSERTs into a fresh
// table shaped exactly like `events` (same columns, same indexes as migration 0001), one transaction
// per statement, i.e. the commit granularity of one /v1/batch request, with no identity resolution.

type CeilingDb = Kysely<Database & { events_ceiling: EventTable }>;

export const CEILING_TABLE = 'events_ceiling';

export async function createCeilingTable(store: Store): Promise<CeilingDb> {
  const db = store.db.withTables<{ events_ceiling: EventTable }>();
  const time = 'bigint';
  await db.schema.dropTable(CEILING_TABLE).ifExists().execute();
  await db.schema
    .createTable(CEILING_TABLE)
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('message_id', 'text', (c) => c.notNull())
    .addColumn('profile_id', 'text', (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('name', 'text')
    .addColumn('user_id', 'text')
    .addColumn('anonymous_id', 'text')
    .addColumn('timestamp', time, (c) => c.notNull())
    .addColumn('received_at', time, (c) => c.notNull())
    .addColumn('payload', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('events_ceiling_message_id').on(CEILING_TABLE).columns(['workspace_id', 'message_id']).unique().execute();
  await db.schema.createIndex('events_ceiling_profile_timeline').on(CEILING_TABLE).columns(['profile_id', 'timestamp', 'id']).execute();
  return db;
}

export interface CeilingOptions {
  /** Rows inserted first, untimed (the counterpart of the ingest warm-up). */
  warmupRows: number;
  /** Rows inserted and timed. */
  rows: number;
  /** Rows per INSERT statement (and per transaction). */
  batch: number;
  /**
   * PostgreSQL: transactions in flight. SQLite runs one at a time (one writer), each durable (its WAL
   * fsync, src/store/wal-sync.ts) before the next: the ceiling as it was defined with `synchronous=FULL`.
   */
  concurrency: number;
  /** Rows read from `events` at a time, outside the timed part. */
  pageSize?: number;
}

export interface CeilingResult {
  rows: number;
  seconds: number;
  rowsPerSecond: number;
  statements: number;
  /** CPU time of this process during the timed inserts (on SQLite that includes SQLite's own work). */
  cpuSeconds: number;
}

/** Copies rows of `events` (in id order) into the ceiling table; times only the inserts. */
export async function runCeiling(store: Store, db: CeilingDb, opts: CeilingOptions): Promise<CeilingResult> {
  const pageSize = opts.pageSize ?? 5_000;
  let after = '';
  let copied = 0;
  let timedRows = 0;
  let timedMs = 0;
  let statements = 0;
  let cpuMicros = 0;
  const total = opts.warmupRows + opts.rows;
  while (copied < total) {
    const rows = await db
      .selectFrom('events')
      .selectAll()
      .where('id', '>', after)
      .orderBy('id')
      .limit(Math.min(pageSize, total - copied))
      .execute();
    if (rows.length === 0) throw new Error(`events holds only ${copied} rows; the ceiling needs ${total}`);
    after = rows[rows.length - 1].id;
    // Keep the untimed warm-up and the timed part apart, even inside one page.
    const untimed = Math.max(0, Math.min(rows.length, opts.warmupRows - copied));
    if (untimed > 0) await insertAll(store, db, rows.slice(0, untimed), opts);
    const timed = rows.slice(untimed);
    if (timed.length > 0) {
      const t0 = performance.now();
      const cpu0 = process.cpuUsage();
      statements += await insertAll(store, db, timed, opts);
      const cpu = process.cpuUsage(cpu0);
      timedMs += performance.now() - t0;
      cpuMicros += cpu.user + cpu.system;
      timedRows += timed.length;
    }
    copied += rows.length;
  }
  const seconds = timedMs / 1000;
  return { rows: timedRows, seconds, rowsPerSecond: timedRows / seconds, statements, cpuSeconds: cpuMicros / 1e6 };
}

async function insertAll(store: Store, db: CeilingDb, rows: EventTable[], opts: CeilingOptions): Promise<number> {
  const parts: EventTable[][] = [];
  for (let i = 0; i < rows.length; i += opts.batch) parts.push(rows.slice(i, i + opts.batch));
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < parts.length; i = next++) {
      const part = parts[i];
      await db.transaction().execute((trx) => trx.insertInto(CEILING_TABLE).values(part).execute());
      // Durable as an acknowledged request is (a no-op on PostgreSQL, which fsyncs at commit).
      await store.durable();
    }
  };
  const lanes = store.dialect === 'sqlite' ? 1 : Math.max(1, opts.concurrency);
  await Promise.all(Array.from({ length: Math.min(lanes, parts.length) }, worker));
  return parts.length;
}
