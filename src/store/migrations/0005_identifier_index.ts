import type { Kysely, Migration } from 'kysely';

// "Which of these profiles have a user id" runs for every batch of customers the engine or the send API
// loads. The index on (workspace_id, profile_id) left `kind` to a filter, so without fresh statistics
// PostgreSQL preferred the primary key on (workspace_id, kind) and read every user id of the workspace
// (111 ms at 100,000 customers). With `kind` in the index every predicate is an index condition.
export function identifierIndex(): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema.createIndex('identifiers_profile_kind').on('identifiers').columns(['workspace_id', 'profile_id', 'kind']).execute();
      await db.schema.dropIndex('identifiers_profile').execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.createIndex('identifiers_profile').on('identifiers').columns(['workspace_id', 'profile_id']).execute();
      await db.schema.dropIndex('identifiers_profile_kind').execute();
    },
  };
}
