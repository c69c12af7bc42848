import { sql, type Kysely, type Migration } from 'kysely';

// Timers and deferred messages are claimed in (time, id) order. With only the time in the index, SQLite
// read and sorted every row sharing the earliest time before returning one batch: a whole cohort waiting
// "3 days after sign-up" shares one time on the virtual clock, so each batch of 500 re-read 100,000 rows.
// With the id in the index the order is the index order and a batch reads only itself.
export function dueOrder(): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema.dropIndex('waits_due').execute();
      await db.schema.createIndex('waits_due').on('waits').columns(['due_at', 'id']).where(sql.ref('due_at'), 'is not', null).execute();
      await db.schema.dropIndex('messages_deferred').execute();
      await db.schema
        .createIndex('messages_deferred')
        .on('messages')
        .columns(['not_before', 'id'])
        .where(sql.ref('status'), 'in', sql`('deferred', 'held')`)
        .execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropIndex('waits_due').execute();
      await db.schema.createIndex('waits_due').on('waits').columns(['due_at']).where(sql.ref('due_at'), 'is not', null).execute();
      await db.schema.dropIndex('messages_deferred').execute();
      await db.schema
        .createIndex('messages_deferred')
        .on('messages')
        .columns(['not_before'])
        .where(sql.ref('status'), 'in', sql`('deferred', 'held')`)
        .execute();
    },
  };
}
