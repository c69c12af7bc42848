import fs from 'node:fs';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import pg from 'pg';
import { Kysely, Migrator, PostgresDialect, SqliteDialect, sql, type Transaction } from 'kysely';
import type { DatabaseConfig } from '../config.js';
import type { Database } from './schema.js';
import { migrations } from './migrations/index.js';
import { WalSync } from './wal-sync.js';
import { startCheckpointer } from './checkpointer.js';
import { SqlStats } from './sql-stats.js';
import { fastRows } from './sqlite-rows.js';
import { isStalePlan, nameRepeatedStatements } from './prepared.js';

export type Dialect = 'sqlite' | 'postgres';

export interface Store {
  db: Kysely<Database>;
  dialect: Dialect;
  close(): Promise<void>;
  /**
   * Resolves once everything committed so far survives power loss. Await it before acknowledging a write
   * or calling a provider outside the database. PostgreSQL commits durably already; SQLite fsyncs its WAL,
   * shared by concurrent callers (wal-sync.ts).
   */
  durable(): Promise<void>;
}

// int8 (bigint) columns hold epoch milliseconds, which fit a JavaScript number exactly.
pg.types.setTypeParser(20, (v: string) => Number(v));

export async function openStore(cfg: DatabaseConfig): Promise<Store> {
  if (cfg.dialect === 'sqlite') return openSqlite(cfg.file, cfg.synchronous);
  return openPostgres(cfg.url, cfg.schema, cfg.poolSize, cfg.preparedStatements ?? true);
}

function openSqlite(file: string, synchronous: 'FULL' | 'NORMAL'): Store {
  if (file !== ':memory:') fs.mkdirSync(path.dirname(file), { recursive: true });
  let database: SQLite.Database;
  try {
    database = new SQLite(file);
  } catch (err) {
    throw new Error(`cannot open the SQLite database at ${file} (${(err as Error).message}); check CHORUS_DATA_DIR`);
  }
  database.pragma('journal_mode = WAL');
  // Commits don't wait for the disk (NORMAL: safe from a crash of the process). With FULL, the default,
  // what Chorus acknowledges survives power loss too: `durable()` fsyncs the WAL before each answer, one
  // fsync shared by every commit made meanwhile, off the event loop.
  database.pragma('synchronous = NORMAL');
  const walSync = synchronous === 'FULL' && file !== ':memory:' ? new WalSync(`${file}-wal`) : null;
  database.pragma('busy_timeout = 5000');
  // Identity lookups touch index pages all over the file: keep more of them in memory.
  database.pragma('cache_size = -65536');
  database.pragma('mmap_size = 268435456');
  database.pragma('temp_store = memory');
  // Checkpoints run in a background thread (checkpointer.ts). The connection's own automatic checkpoint
  // is the backstop at ~160 MB of WAL; once the WAL is checkpointed its file is cut back to 64 MB.
  const ownCheckpoints = () => {
    if (database.open) database.pragma('wal_autocheckpoint = 10000');
  };
  const checkpointer = file === ':memory:' ? null : startCheckpointer(file, synchronous, ownCheckpoints);
  if (checkpointer) database.pragma('wal_autocheckpoint = 40000');
  else ownCheckpoints();
  database.pragma('journal_size_limit = 67108864');
  const stats = SqlStats.fromEnv();
  cacheStatements(database, stats);
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database }) });
  return {
    db,
    dialect: 'sqlite',
    durable: () => walSync?.durable() ?? Promise.resolve(),
    close: async () => {
      await walSync?.durable();
      await walSync?.close();
      await checkpointer?.stop();
      await db.destroy();
      stats?.close();
    },
  };
}

/**
 * Kysely asks better-sqlite3 to prepare every query anew; preparing is ~10% of the engine's time. The
 * same SQL text reuses its prepared statement (bounded, since multi-row inserts vary in shape).
 */
function cacheStatements(database: SQLite.Database, stats: SqlStats | null): void {
  const prepare = database.prepare.bind(database);
  const cache = new Map<string, SQLite.Statement>();
  database.prepare = ((sql: string) => {
    let stmt = cache.get(sql);
    if (!stmt) {
      stmt = prepare(sql);
      fastRows(stmt);
      stats?.wrap(sql, stmt);
      if (cache.size >= 1000) cache.clear();
      cache.set(sql, stmt);
    }
    return stmt;
  }) as SQLite.Database['prepare'];
}

async function openPostgres(url: string, schema: string | undefined, max: number, preparedStatements: boolean): Promise<Store> {
  if (schema) {
    // Create the schema first with a one-off connection, then point every pooled connection at it.
    const client = new pg.Client({ connectionString: url });
    await connectOrExplain(client, url);
    await client.query(`create schema if not exists "${schema}"`);
    await client.end();
  }
  // No parallel plans: Chorus asks small indexed questions, and on a small machine starting the workers
  // cost more than the query (an identity lookup: 55 ms with two workers, 9 ms without).
  // Random reads priced as on SSD or in memory (1.1, the usual setting there, against the spinning-disk
  // default 4): a batch asks for the identifiers of 500 customers, and at the default the planner read the
  // whole table instead (14 ms against 4 ms through the index at 76,000 identifiers; the database's CPU
  // per journey step fell 15%). These settings are Chorus's own sessions', not the server's.
  const options = ['-c max_parallel_workers_per_gather=0', '-c random_page_cost=1.1', ...(schema ? [`-c search_path=${schema}`] : [])];
  const pool = new pg.Pool({ connectionString: url, max, options: options.join(' ') });
  if (preparedStatements) pool.on('connect', nameRepeatedStatements);
  const stats = SqlStats.fromEnv();
  const db = new Kysely<Database>({
    dialect: new PostgresDialect({ pool }),
    log: stats ? (event) => stats.record(event.query.sql, event.queryDurationMillis) : undefined,
  });
  try {
    await sql`select 1`.execute(db);
  } catch (err) {
    await db.destroy();
    throw new Error(`cannot connect to PostgreSQL at ${redact(url)}: ${(err as Error).message}; check DATABASE_URL`);
  }
  return {
    db,
    dialect: 'postgres',
    durable: () => Promise.resolve(),
    close: async () => {
      await db.destroy();
      stats?.close();
    },
  };
}

async function connectOrExplain(client: pg.Client, url: string): Promise<void> {
  try {
    await client.connect();
  } catch (err) {
    throw new Error(`cannot connect to PostgreSQL at ${redact(url)}: ${(err as Error).message}; check DATABASE_URL`);
  }
}

/** The URL without its password, for messages and logs. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable URL)';
  }
}

export async function migrate(store: Store): Promise<string[]> {
  // On PostgreSQL, name the schema: Kysely otherwise finds its bookkeeping tables in *any* schema
  // (another Chorus database in the same cluster) and skips creating its own.
  let migrationTableSchema: string | undefined;
  if (store.dialect === 'postgres') {
    const { rows } = await sql<{ schema: string }>`select current_schema() as schema`.execute(store.db);
    migrationTableSchema = rows[0]?.schema;
  }
  const migrator = new Migrator({ db: store.db, provider: migrations(store.dialect), migrationTableSchema });
  const { error, results } = await migrator.migrateToLatest();
  if (error) throw new Error(`migration failed: ${(error as Error).message ?? String(error)}`);
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

// PostgreSQL errors that mean "a concurrent transaction got there first; run again".
const RETRYABLE = new Set(['40001', '40P01', '23505']);

function isRetryable(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return (typeof code === 'string' && RETRYABLE.has(code)) || isStalePlan(err);
}

/**
 * Runs `fn` in a transaction. On PostgreSQL, a deadlock, serialization failure or unique violation
 * caused by a concurrent writer re-runs the whole transaction, which then sees the winner's rows; so does
 * a prepared statement gone stale under a migration made by another process (it is prepared again).
 * SQLite has a single writer, so there is nothing to retry.
 */
export async function transact<T>(store: Store, fn: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
  const attempts = store.dialect === 'postgres' ? 12 : 1;
  for (let attempt = 1; ; attempt++) {
    try {
      return await store.db.transaction().execute(fn);
    } catch (err) {
      if (attempt >= attempts || !isRetryable(err)) throw err;
      await new Promise((r) => setTimeout(r, Math.random() * 5 * attempt));
    }
  }
}
