import type { Kysely, Migration } from 'kysely';

// Conditions ask "did this customer do X since T" on every step that branches or waits. The timeline index
// (profile_id, timestamp) served that, but without workspace_id in it PostgreSQL's planner ANDed it with
// the workspace's message-id index, reading every event of the workspace per question. This index answers
// the question from its own entries, on both databases.
export function historyIndex(): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema.createIndex('events_profile_name').on('events').columns(['workspace_id', 'profile_id', 'name', 'timestamp']).execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropIndex('events_profile_name').execute();
    },
  };
}
