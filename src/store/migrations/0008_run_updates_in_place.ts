import { sql, type Kysely, type Migration } from 'kysely';
import type { Dialect } from '../db.js';

// A run's row changes at nearly every step (status, visits, updated_at). `runs_journey_status` indexed
// one of those columns and no query used it, so every status change wrote a new entry in each of the
// table's indexes. Without it no index covers a changing column, and on PostgreSQL, with room left on
// each page (fillfactor 75), an update is written in place of the old version (a HOT update) with no
// index entry at all.
export function runUpdatesInPlace(dialect: Dialect): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema.dropIndex('runs_journey_status').execute();
      if (dialect === 'postgres') await sql`alter table runs set (fillfactor = 75)`.execute(db);
    },
    async down(db: Kysely<unknown>) {
      if (dialect === 'postgres') await sql`alter table runs reset (fillfactor)`.execute(db);
      await db.schema.createIndex('runs_journey_status').on('runs').columns(['journey_id', 'status']).execute();
    },
  };
}
