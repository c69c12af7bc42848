import { sql, type Kysely, type Migration } from 'kysely';

// The send gate: message priority, tags, topic, type, deferral, the decision trace, idempotency keys
// for the send API, and workspace settings (caps, quiet hours, suppression, channel rules).
export function gate(): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema.alterTable('messages').addColumn('priority', 'text', (c) => c.notNull().defaultTo('normal')).execute();
      await db.schema.alterTable('messages').addColumn('tags', 'text', (c) => c.notNull().defaultTo('[]')).execute();
      await db.schema.alterTable('messages').addColumn('topic', 'text').execute();
      await db.schema.alterTable('messages').addColumn('message_type', 'text').execute();
      await db.schema.alterTable('messages').addColumn('not_before', 'bigint').execute();
      await db.schema.alterTable('messages').addColumn('decision', 'text').execute();
      await db.schema.alterTable('messages').addColumn('override_caps', 'integer', (c) => c.notNull().defaultTo(0)).execute();
      await db.schema.alterTable('messages').addColumn('idempotency_key', 'text').execute();
      await db.schema.alterTable('messages').addColumn('source', 'text', (c) => c.notNull().defaultTo('journey')).execute();
      // When the gate decided to send: caps count a message in the window it went out in, which for a
      // deferred message is later than its creation.
      await db.schema.alterTable('messages').addColumn('queued_at', 'bigint').execute();
      await db.schema.createIndex('messages_profile_queued').on('messages').columns(['profile_id', 'queued_at']).execute();
      // Fallback hops: the message this one escalates from.
      await db.schema.alterTable('messages').addColumn('fallback_of', 'text').execute();
      await db.schema.createIndex('messages_fallback_of').on('messages').column('fallback_of').execute();
      // Delivery attempts, for retries with backoff after transient provider errors.
      await db.schema.alterTable('messages').addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0)).execute();
      // A deferred message keeps its templates and variables here and is rendered when it is released.
      await db.schema.alterTable('messages').addColumn('pending', 'text').execute();
      await db.schema
        .createIndex('messages_idempotency')
        .on('messages')
        .columns(['workspace_id', 'idempotency_key'])
        .unique()
        .where(sql.ref('idempotency_key'), 'is not', null)
        .execute();
      // Deferred messages waiting for their window: found by time, like timers.
      await db.schema
        .createIndex('messages_deferred')
        .on('messages')
        .columns(['not_before'])
        .where(sql.ref('status'), 'in', sql`('deferred', 'held')`)
        .execute();

      await db.schema
        .createTable('workspace_settings')
        .addColumn('workspace_id', 'text', (c) => c.primaryKey())
        .addColumn('settings', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable('workspace_settings').ifExists().execute();
    },
  };
}
