import { sql } from 'kysely';
import type { Logger } from 'pino';
import type { Store } from './db.js';

// PostgreSQL plans from table statistics that autovacuum's ANALYZE keeps fresh. With autovacuum off (some
// CI machines, some hand-tuned servers) Chorus's tables never get any, and the planner turns index lookups
// into filtered scans: "which profiles own these emails" read every email of the workspace (10 ms at 5,000
// customers, growing with each one). When autovacuum is off, Chorus analyzes its own tables: first on
// autovacuum's rule (after 50 + 10% of the table's rows have changed), then again when the table has
// doubled or halved, or when twice as many rows as it holds have been written since.
//
// Why so seldom: the planner scales a table's row count to its current size on its own (the statistics'
// rows per page times the pages there are now), so statistics only need to follow the values, and those
// of Chorus's tables move when a table doubles or turns over, not at every 10%. Autovacuum's rule counts
// every write, and most writes to `runs` and `waits` rewrite rows in place (a run's status at each step) or
// add and remove them (timers): in the journey benchmark it analyzed both at nearly every check (19 and 17
// times in 40 s), 11% of the database's time in ANALYZE all told; re-analyzing at 10% growth still took 85
// ANALYZEs and ~9% (2.0–2.6 s). Doubling: ~33 and 0.7 s. Claims of due work don't depend on statistics
// (claims.ts): planned from statistics taken before any message was deferred, a claim of deferred messages
// once re-read its window for every row.
//
// With autovacuum on, Chorus only gives a table its first statistics (see `staleTables`).

const BASE_THRESHOLD = 50;
/** autovacuum's analyze scale factor: the first analysis, after 50 + 10% of the rows have changed. */
const SCALE = 0.1;
/** Rows written since the last analysis, as a multiple of the live rows, that call for another one. */
const TURNOVER = 2;
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

/** One table's activity, as pg_stat_user_tables counts it. */
export interface TableActivity {
  name: string;
  live: number;
  /** Rows inserted, updated and deleted since the statistics were reset (cumulative). */
  changed: number;
  /** PostgreSQL's n_mod_since_analyze. */
  since: number;
  /** Analyzed at least once, by anyone (ANALYZE or autovacuum). */
  analyzed: boolean;
}

/** What a table looked like at this process's last ANALYZE of it. */
export interface AtAnalyze {
  changed: number;
  live: number;
}

/**
 * The tables to analyze now. With autovacuum on, only tables never analyzed by anyone, once enough rows
 * have arrived: autovacuum wakes up once a minute, and until its first ANALYZE of a fresh schema every
 * lookup is a scan (the duplicate check of each /v1/batch read every event: 39 ms a batch). After that
 * first analysis autovacuum keeps them.
 */
export function staleTables(tables: readonly TableActivity[], atLast: ReadonlyMap<string, AtAnalyze>, autovacuum: boolean): string[] {
  return tables
    .filter((t) => {
      const last = atLast.get(t.name);
      if (last === undefined) return (!autovacuum || !t.analyzed) && t.since > BASE_THRESHOLD + SCALE * t.live;
      if (autovacuum) return false;
      // Doubled or halved (50 rows of slack, so small tables aren't analyzed at every few rows).
      const resized = t.live > 2 * last.live + BASE_THRESHOLD || 2 * t.live + BASE_THRESHOLD < last.live;
      const turnedOver = t.changed - last.changed > BASE_THRESHOLD + TURNOVER * t.live;
      return resized || turnedOver;
    })
    .map((t) => t.name);
}

// Checked every 2 s: a fresh schema fills fast, and until its first ANALYZE every lookup is a scan.
export async function keepPlannerStats(store: Store, logger: Logger, intervalMs = 2_000): Promise<PlannerStats | null> {
  if (store.dialect !== 'postgres') return null;
  const { rows } = await sql<{ autovacuum: string }>`show autovacuum`.execute(store.db);
  const autovacuum = rows[0]?.autovacuum === 'on';
  if (!autovacuum) {
    logger.warn('PostgreSQL autovacuum is off: Chorus will ANALYZE its own tables as they change (turn autovacuum on to leave this to PostgreSQL)');
  }

  /**
   * Rows changed (inserted, updated, deleted: cumulative) and live at this process's last ANALYZE of each
   * table. An ANALYZE of some columns doesn't reset PostgreSQL's own n_mod_since_analyze, so the count
   * since is kept here; a table not analyzed yet by this process goes by n_mod_since_analyze.
   */
  const atLastAnalyze = new Map<string, AtAnalyze>();
  /** Indexed columns per table; indexes change only with a migration, which a restart runs. */
  const columnsOf = new Map<string, string[]>();
  let running: Promise<string[]> | undefined;
  const refresh = (): Promise<string[]> =>
    (running ??= (async () => {
      try {
        const result = await sql<{ relname: string; live: number | string; changed: number | string; since: number | string; analyzed: boolean }>`
          select relname, n_live_tup as live, n_tup_ins + n_tup_upd + n_tup_del as changed, n_mod_since_analyze as since,
            (last_analyze is not null or last_autoanalyze is not null) as analyzed
          from pg_stat_user_tables where schemaname = current_schema()`.execute(store.db);
        const tables = new Map(
          result.rows.map((t) => [t.relname, { name: t.relname, live: Number(t.live), changed: Number(t.changed), since: Number(t.since), analyzed: t.analyzed }]),
        );
        const stale = staleTables([...tables.values()], atLastAnalyze, autovacuum);
        // One table at a time: ANALYZE samples rows, it takes no lock that blocks reads or writes.
        for (const name of stale) {
          let columns = columnsOf.get(name);
          if (!columns) columnsOf.set(name, (columns = await indexedColumns(store, name)));
          await store.db.transaction().execute(async (trx) => {
            await sql`set local default_statistics_target = ${sql.lit(STATISTICS_TARGET)}`.execute(trx);
            await sql`analyze ${sql.id(name)} ${columns.length > 0 ? sql`(${sql.join(columns.map((c) => sql.id(c)))})` : sql``}`.execute(trx);
          });
          const t = tables.get(name)!;
          atLastAnalyze.set(name, { changed: t.changed, live: t.live });
        }
        return stale;
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
