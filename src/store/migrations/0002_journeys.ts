import { sql, type Kysely, type Migration } from 'kysely';
import type { Dialect } from '../db.js';

// Journeys, their immutable versions, runs, what runs wait on, the message ledger, the sandbox
// provider's capture, and the persisted virtual clock.
export function journeys(dialect: Dialect): Migration {
  const time = 'bigint';
  const serial = (db: Kysely<unknown>, table: string) =>
    db.schema.createTable(table).addColumn('id', dialect === 'postgres' ? 'bigserial' : 'integer', (c) =>
      dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement(),
    );
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('journeys')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('workspace_id', 'text', (c) => c.notNull())
        .addColumn('key', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('draft_spec', 'text', (c) => c.notNull())
        .addColumn('latest_version', 'integer')
        .addColumn('created_at', time, (c) => c.notNull())
        .addColumn('updated_at', time, (c) => c.notNull())
        .addUniqueConstraint('journeys_workspace_key', ['workspace_id', 'key'])
        .execute();

      await db.schema
        .createTable('journey_versions')
        .addColumn('journey_id', 'text', (c) => c.notNull())
        .addColumn('version', 'integer', (c) => c.notNull())
        .addColumn('workspace_id', 'text', (c) => c.notNull())
        .addColumn('spec', 'text', (c) => c.notNull())
        .addColumn('published_at', time, (c) => c.notNull())
        .addPrimaryKeyConstraint('journey_versions_pk', ['journey_id', 'version'])
        .execute();

      await db.schema
        .createTable('runs')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('workspace_id', 'text', (c) => c.notNull())
        .addColumn('journey_id', 'text', (c) => c.notNull())
        .addColumn('journey_key', 'text', (c) => c.notNull())
        .addColumn('version', 'integer', (c) => c.notNull())
        .addColumn('profile_id', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('entry_key', 'text')
        .addColumn('holdout', 'integer', (c) => c.notNull())
        .addColumn('entered_at', time, (c) => c.notNull())
        .addColumn('goal_deadline', time)
        .addColumn('converted_at', time)
        .addColumn('ended_at', time)
        .addColumn('end_reason', 'text')
        .addColumn('trigger', 'text', (c) => c.notNull())
        .addColumn('visits', 'text', (c) => c.notNull())
        .addColumn('updated_at', time, (c) => c.notNull())
        .execute();
      await db.schema.createIndex('runs_profile_journey').on('runs').columns(['profile_id', 'journey_id']).execute();
      await db.schema.createIndex('runs_journey_status').on('runs').columns(['journey_id', 'status']).execute();

      await serial(db, 'run_steps')
        .addColumn('workspace_id', 'text', (c) => c.notNull())
        .addColumn('run_id', 'text', (c) => c.notNull())
        .addColumn('step', 'text', (c) => c.notNull())
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('at', time, (c) => c.notNull())
        .addColumn('outcome', 'text', (c) => c.notNull())
        .addColumn('detail', 'text')
        .execute();
      await db.schema.createIndex('run_steps_run').on('run_steps').column('run_id').execute();

      await db.schema
        .createTable('waits')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('workspace_id', 'text', (c) => c.notNull())
        .addColumn('run_id', 'text', (c) => c.notNull())
        .addColumn('journey_id', 'text', (c) => c.notNull())
        .addColumn('profile_id', 'text', (c) => c.notNull())
        .addColumn('step', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('event_name', 'text')
        .addColumn('due_at', time)
        .addColumn('created_at', time, (c) => c.notNull())
        .execute();
      await db.schema.createIndex('waits_run').on('waits').column('run_id').execute();
      // Event listeners of one customer's runs, found in the same step that stores the event.
      await db.schema
        .createIndex('waits_listeners')
        .on('waits')
        .columns(['profile_id', 'event_name'])
        .where(sql.ref('event_name'), 'is not', null)
        .execute();
      // Due timers: a partial index, so claiming stays fast however many runs wait on events only.
      await db.schema
        .createIndex('waits_due')
        .on('waits')
        .columns(['due_at'])
        .where(sql.ref('due_at'), 'is not', null)
        .execute();

      await db.schema
        .createTable('messages')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('workspace_id', 'text', (c) => c.notNull())
        .addColumn('profile_id', 'text', (c) => c.notNull())
        .addColumn('run_id', 'text')
        .addColumn('journey_id', 'text')
        .addColumn('journey_key', 'text')
        .addColumn('version', 'integer')
        .addColumn('step', 'text')
        .addColumn('category', 'text', (c) => c.notNull())
        .addColumn('channel', 'text')
        .addColumn('provider', 'text')
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('reason', 'text')
        .addColumn('to_address', 'text')
        .addColumn('content', 'text')
        .addColumn('created_at', time, (c) => c.notNull())
        .addColumn('sent_at', time)
        .addColumn('updated_at', time, (c) => c.notNull())
        .addColumn('lease_until', time)
        .addColumn('provider_message_id', 'text')
        .execute();
      await db.schema.createIndex('messages_profile').on('messages').columns(['profile_id', 'created_at']).execute();
      await db.schema.createIndex('messages_run').on('messages').columns(['run_id']).execute();
      // The outbox: only undelivered messages are in this index.
      await db.schema
        .createIndex('messages_outbox')
        .on('messages')
        .columns(['created_at'])
        .where(sql.ref('status'), 'in', sql`('queued', 'sending', 'retrying')`)
        .execute();

      await db.schema
        .createTable('sandbox_messages')
        .addColumn('message_id', 'text', (c) => c.primaryKey())
        .addColumn('workspace_id', 'text', (c) => c.notNull())
        .addColumn('channel', 'text', (c) => c.notNull())
        .addColumn('to_address', 'text', (c) => c.notNull())
        .addColumn('content', 'text', (c) => c.notNull())
        .addColumn('captured_at', time, (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('clock')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('now_ms', time, (c) => c.notNull())
        .execute();
    },
    async down(db: Kysely<unknown>) {
      for (const t of ['clock', 'sandbox_messages', 'messages', 'waits', 'run_steps', 'runs', 'journey_versions', 'journeys']) {
        await db.schema.dropTable(t).ifExists().execute();
      }
    },
  };
}
