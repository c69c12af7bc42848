import { sql, type Kysely, type Migration } from 'kysely';

// Two b-tree writes per row that no query needed:
// - `messages_run`: a run's messages are read with its customer (`profile_id = ? and run_id …`), which
//   `messages_profile` finds; every message paid for a second index on its run (68,000 entries in the
//   20,000-customer journey benchmark).
// - `profiles_merged_into` indexed every live profile's NULL. Lookups are `merged_into = ?`, which implies
//   NOT NULL, so both databases use the sparse index that holds only merged profiles.
export function sparseProfileIndexes(): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema.dropIndex('messages_run').execute();
      await db.schema.dropIndex('profiles_merged_into').execute();
      await db.schema.createIndex('profiles_merged_into').on('profiles').column('merged_into').where(sql.ref('merged_into'), 'is not', null).execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropIndex('profiles_merged_into').execute();
      await db.schema.createIndex('profiles_merged_into').on('profiles').column('merged_into').execute();
      await db.schema.createIndex('messages_run').on('messages').column('run_id').execute();
    },
  };
}
