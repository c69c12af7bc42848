import { type Kysely, type Migration } from 'kysely';
import type { Dialect } from '../db.js';

// Workspaces, keys, profiles, the identity graph, the event log and the identity audit log.
export function foundation(dialect: Dialect): Migration {
  const time = 'bigint';
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('workspaces')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull().unique())
        .addColumn('created_at', time, (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('api_keys')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('workspace_id', 'text', (c) => c.notNull().references('workspaces.id'))
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('key_hash', 'text', (c) => c.notNull().unique())
        .addColumn('hint', 'text', (c) => c.notNull())
        .addColumn('created_at', time, (c) => c.notNull())
        .addColumn('revoked_at', time)
        .execute();

      await db.schema
        .createTable('profiles')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('workspace_id', 'text', (c) => c.notNull())
        .addColumn('merged_into', 'text')
        .addColumn('traits', 'text', (c) => c.notNull())
        .addColumn('field_times', 'text', (c) => c.notNull())
        .addColumn('contact_points', 'text', (c) => c.notNull())
        .addColumn('consent', 'text', (c) => c.notNull())
        .addColumn('timezone', 'text')
        .addColumn('locale', 'text')
        .addColumn('preferred_channel', 'text')
        .addColumn('created_at', time, (c) => c.notNull())
        .addColumn('updated_at', time, (c) => c.notNull())
        .execute();
      await db.schema.createIndex('profiles_merged_into').on('profiles').column('merged_into').execute();

      await db.schema
        .createTable('identifiers')
        .addColumn('workspace_id', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('value', 'text', (c) => c.notNull())
        .addColumn('profile_id', 'text', (c) => c.notNull())
        .addColumn('created_at', time, (c) => c.notNull())
        // One identifier, one profile: the primary key is what makes a split identity impossible.
        .addPrimaryKeyConstraint('identifiers_pk', ['workspace_id', 'kind', 'value'])
        .execute();
      await db.schema.createIndex('identifiers_profile').on('identifiers').columns(['workspace_id', 'profile_id']).execute();

      await db.schema
        .createTable('events')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('workspace_id', 'text', (c) => c.notNull())
        .addColumn('message_id', 'text', (c) => c.notNull())
        .addColumn('profile_id', 'text', (c) => c.notNull())
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('name', 'text')
        .addColumn('user_id', 'text')
        .addColumn('anonymous_id', 'text')
        .addColumn('timestamp', time, (c) => c.notNull())
        .addColumn('received_at', time, (c) => c.notNull())
        .addColumn('payload', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('events_message_id')
        .on('events')
        .columns(['workspace_id', 'message_id'])
        .unique()
        .execute();
      await db.schema
        .createIndex('events_profile_timeline')
        .on('events')
        .columns(['profile_id', 'timestamp', 'id'])
        .execute();

      await db.schema
        .createTable('identity_log')
        .addColumn('id', dialect === 'postgres' ? 'bigserial' : 'integer', (c) =>
          dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement(),
        )
        .addColumn('workspace_id', 'text', (c) => c.notNull())
        .addColumn('profile_id', 'text', (c) => c.notNull())
        .addColumn('other_profile_id', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('reason', 'text', (c) => c.notNull())
        .addColumn('identifier_kind', 'text')
        .addColumn('identifier_value', 'text')
        .addColumn('message_id', 'text')
        .addColumn('created_at', time, (c) => c.notNull())
        .execute();
      await db.schema.createIndex('identity_log_profile').on('identity_log').column('profile_id').execute();
      await db.schema.createIndex('identity_log_other').on('identity_log').column('other_profile_id').execute();
    },
    async down(db: Kysely<unknown>) {
      for (const t of ['identity_log', 'events', 'identifiers', 'profiles', 'api_keys', 'workspaces']) {
        await db.schema.dropTable(t).ifExists().execute();
      }
    },
  };
}
