import { sql } from 'kysely';
import type { Logger } from 'pino';
import type { Store } from './db.js';

// PostgreSQL plans from table statistics that autovacuum's ANALYZE keeps fresh. With autovacuum off (some
// CI machines, some hand-tuned servers) Chorus's tables never get any, and the planner turns index lookups
// into filtered scans: "which profiles own these emails" read every email of the workspace (10 ms at 5,000
// customers, growing with each one). When autovacuum is off, Chorus analyzes its own tables on the same
// rule autovacuum would use: after 50 + 10% of the table's rows have changed.

const BASE_THRESHOLD = 50;
const SCALE = 0.1;
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

// Checked every 2 s: a fresh schema fills fast, and until its first ANALYZE every lookup is a scan.
export async function keepPlannerStats(store: Store, logger: Logger, intervalMs = 2_000): Promise<PlannerStats | null> {
  if (store.dialect !== 'postgres') return null;
  const { rows } = await sql<{ autovacuum: string }>`show autovacuum`.execute(store.db);
  if (rows[0]?.autovacuum === 'on') return null;
  logger.warn('PostgreSQL autovacuum is off: Chorus will ANALYZE its own tables as they change (turn autovacuum on to leave this to PostgreSQL)');

  let running: Promise<string[]> | undefined;
  const refresh = (): Promise<string[]> =>
    (running ??= (async () => {
      try {
        const stale = await sql<{ relname: string }>`
          select relname from pg_stat_user_tables
          where schemaname = current_schema() and n_mod_since_analyze > ${sql.lit(BASE_THRESHOLD)} + ${sql.lit(SCALE)} * n_live_tup`.execute(store.db);
        const names = stale.rows.map((r) => r.relname);
        // One table at a time: ANALYZE samples rows, it takes no lock that blocks reads or writes.
        for (const name of names) {
          await store.db.transaction().execute(async (trx) => {
            await sql`set local default_statistics_target = ${sql.lit(STATISTICS_TARGET)}`.execute(trx);
            await sql`analyze ${sql.id(name)}`.execute(trx);
          });
        }
        return names;
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
