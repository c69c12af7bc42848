import { sql } from 'kysely';
import type { Logger } from 'pino';
import type { Store } from './db.js';

// PostgreSQL plans from table statistics that autovacuum's ANALYZE keeps fresh. With autovacuum off (some
// CI machines, some hand-tuned servers) Chorus's tables never get any, and the planner turns index lookups
// into filtered scans: "which profiles own these emails" read every email of the workspace (10 ms at 5,000
// customers, growing with each one). When autovacuum is off, Chorus analyzes its own tables: first on
// autovacuum's rule (after 50 + 10% of the table's rows have changed), then again when the table has grown
// or shrunk by 50 + 10% of its rows, or when as many rows as it holds have been written since.
//
// Autovacuum's rule counts every write, and most writes to `runs` and `waits` rewrite rows in place (a run's
// status at each step) or add and remove them (timers): in the journey benchmark it analyzed both at nearly
// every check (19 and 17 times in 40 s), 11% of the database's time in ANALYZE all told. Appending tables
// (messages, events) keep autovacuum's pace: their values move as they grow (a message's status, from sent
// to deferred for quiet hours), and the claim of deferred messages read the whole table for each batch when
// `messages` was analyzed only at each doubling.

const BASE_THRESHOLD = 50;
const SCALE = 0.1;
/** Rows written since the last analysis, as a multiple of the live rows, that call for another one. */
const TURNOVER = 1;
/**
 * Rows sampled per column are 300 × this. The lookups Chorus plans need row counts and rough
 * distributions, not fine histograms; PostgreSQL's default (100) made `ANALYZE messages` take ~0.7 s of
 * the database's CPU at 70,000 wide rows.
 */
const STATISTICS_TARGET = 10;

export interface PlannerStats {
  /** Analyzes the tables that changed enough since their last analysis; returns their names. */
  refresh(): Promise<string[]>;
  stop(): Promise<void>;
}

/**
 * The columns a table's indexes cover or filter on (partial-index predicates and expressions included):
 * the ones Chorus's lookups put in WHERE clauses. Only those get statistics. Sorting the sample of each
 * wide text column (a message's content and decision, an event's payload) was most of an ANALYZE's cost:
 * 11% of the database's time in the journey benchmark.
 */
async function indexedColumns(store: Store, table: string): Promise<string[]> {
  const { rows } = await sql<{ attname: string }>`
    select distinct a.attname from pg_index i
    join pg_class c on c.oid = i.indrelid
    join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
    where c.oid = to_regclass(${table})
      and (a.attnum = any(i.indkey::int2[])
        or coalesce(pg_get_expr(i.indpred, i.indrelid), '') ~ ('\\m' || a.attname || '\\M')
        or coalesce(pg_get_expr(i.indexprs, i.indrelid), '') ~ ('\\m' || a.attname || '\\M'))
    order by a.attname`.execute(store.db);
  return rows.map((r) => r.attname);
}

// Checked every 2 s: a fresh schema fills fast, and until its first ANALYZE every lookup is a scan.
export async function keepPlannerStats(store: Store, logger: Logger, intervalMs = 2_000): Promise<PlannerStats | null> {
  if (store.dialect !== 'postgres') return null;
  const { rows } = await sql<{ autovacuum: string }>`show autovacuum`.execute(store.db);
  if (rows[0]?.autovacuum === 'on') return null;
  logger.warn('PostgreSQL autovacuum is off: Chorus will ANALYZE its own tables as they change (turn autovacuum on to leave this to PostgreSQL)');

  /**
   * Rows changed (inserted, updated, deleted: cumulative) and live at this process's last ANALYZE of each
   * table. An ANALYZE of some columns doesn't reset PostgreSQL's own n_mod_since_analyze, so the count
   * since is kept here; a table not analyzed yet by this process goes by n_mod_since_analyze.
   */
  const atLastAnalyze = new Map<string, { changed: number; live: number }>();
  /** Indexed columns per table; indexes change only with a migration, which a restart runs. */
  const columnsOf = new Map<string, string[]>();
  let running: Promise<string[]> | undefined;
  const refresh = (): Promise<string[]> =>
    (running ??= (async () => {
      try {
        const tables = await sql<{ relname: string; live: number | string; changed: number | string; since: number | string }>`
          select relname, n_live_tup as live, n_tup_ins + n_tup_upd + n_tup_del as changed, n_mod_since_analyze as since
          from pg_stat_user_tables where schemaname = current_schema()`.execute(store.db);
        const stale = tables.rows.filter((t) => {
          const live = Number(t.live);
          const last = atLastAnalyze.get(t.relname);
          if (last === undefined) return Number(t.since) > BASE_THRESHOLD + SCALE * live;
          const resized = Math.abs(live - last.live) > BASE_THRESHOLD + SCALE * last.live;
          const turnedOver = Number(t.changed) - last.changed > BASE_THRESHOLD + TURNOVER * live;
          return resized || turnedOver;
        });
        // One table at a time: ANALYZE samples rows, it takes no lock that blocks reads or writes.
        for (const t of stale) {
          let columns = columnsOf.get(t.relname);
          if (!columns) columnsOf.set(t.relname, (columns = await indexedColumns(store, t.relname)));
          await store.db.transaction().execute(async (trx) => {
            await sql`set local default_statistics_target = ${sql.lit(STATISTICS_TARGET)}`.execute(trx);
            await sql`analyze ${sql.id(t.relname)} ${columns.length > 0 ? sql`(${sql.join(columns.map((c) => sql.id(c)))})` : sql``}`.execute(trx);
          });
          atLastAnalyze.set(t.relname, { changed: Number(t.changed), live: Number(t.live) });
        }
        return stale.map((t) => t.relname);
      } finally {
        running = undefined;
      }
    })());

  const timer = setInterval(() => {
    refresh().catch((err: unknown) => logger.warn({ err: (err as Error).message }, 'analyzing tables failed; retrying at the next interval'));
  }, intervalMs);
  timer.unref();
  return {
    refresh,
    async stop() {
      clearInterval(timer);
      await running?.catch(() => undefined);
    },
  };
}
