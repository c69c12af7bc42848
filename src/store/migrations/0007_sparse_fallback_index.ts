import { sql, type Kysely, type Migration } from 'kysely';

// Only escalation hops have `fallback_of`; every other message stored a NULL entry in its index, one more
// b-tree write per message. The lookups (`fallback_of = ?`, `fallback_of in (…)`) imply NOT NULL, so both
// databases still use the smaller index.
export function sparseFallbackIndex(): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema.dropIndex('messages_fallback_of').execute();
      await db.schema.createIndex('messages_fallback_of').on('messages').column('fallback_of').where(sql.ref('fallback_of'), 'is not', null).execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropIndex('messages_fallback_of').execute();
      await db.schema.createIndex('messages_fallback_of').on('messages').column('fallback_of').execute();
    },
  };
}
