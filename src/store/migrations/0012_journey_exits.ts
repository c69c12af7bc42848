import { sql, type Kysely, type Migration } from 'kysely';
import { newId } from '../../lib/ids.js';
import type { Dialect } from '../db.js';

// A journey's exit rules (`exit_when`) were a listener row per run in `waits`: written at every entry,
// read back with every run the engine loaded, deleted when the run ended, and never deleted when the run
// completed (in the journey benchmark 20,000 inserts per 20,000 customers, 14,000 of them left behind),
// for events that almost never come. They are now looked up by event name per published version
// (`journey_exits`, written at publish), and only when such an event arrives are that customer's runs
// read. `up` indexes the versions already published and drops the old listener rows; `down` gives every
// run still listening (active, waiting, or completed with its goal still tracked) its rows back.
export function journeyExits(dialect: Dialect): Migration {
  // Key columns compare bytes on PostgreSQL, as the other tables' (0011).
  const key = dialect === 'postgres' ? sql`text collate "C"` : sql`text`;
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('journey_exits')
        .addColumn('workspace_id', key, (c) => c.notNull())
        .addColumn('event_name', key, (c) => c.notNull())
        .addColumn('journey_id', key, (c) => c.notNull())
        .addColumn('version', 'integer', (c) => c.notNull())
        .addPrimaryKeyConstraint('journey_exits_pk', ['workspace_id', 'event_name', 'journey_id', 'version'])
        .execute();
      const versions = await sql<{ workspace_id: string; journey_id: string; version: number; spec: string }>`
        select workspace_id, journey_id, version, spec from journey_versions`.execute(db);
      for (const v of versions.rows) {
        for (const event of exitEvents(v.spec)) {
          await sql`insert into journey_exits (workspace_id, event_name, journey_id, version)
            values (${v.workspace_id}, ${event}, ${v.journey_id}, ${v.version})`.execute(db);
        }
      }
      await sql`delete from waits where kind = 'exit'`.execute(db);
    },
    async down(db: Kysely<unknown>) {
      const runs = await sql<{ id: string; workspace_id: string; journey_id: string; profile_id: string; entered_at: number; spec: string }>`
        select r.id, r.workspace_id, r.journey_id, r.profile_id, r.entered_at, v.spec
        from runs r join journey_versions v on v.journey_id = r.journey_id and v.version = r.version
        where r.status in ('active', 'waiting')
           or (r.status = 'completed' and exists (select 1 from waits w where w.run_id = r.id and w.kind = 'goal'))`.execute(db);
      for (const r of runs.rows) {
        const rules = exitRules(r.spec);
        for (let i = 0; i < rules.length; i++) {
          if (rules[i] === '') continue;
          const at = Number(r.entered_at);
          await sql`insert into waits (id, workspace_id, run_id, journey_id, profile_id, step, kind, event_name, due_at, created_at)
            values (${newId('wait', at)}, ${r.workspace_id}, ${r.id}, ${r.journey_id}, ${r.profile_id}, ${`$exit.${i}`}, 'exit', ${rules[i]}, null, ${at})`.execute(db);
        }
      }
      await db.schema.dropTable('journey_exits').execute();
    },
  };
}

/** The event of each `exit_when` rule of a stored spec, in order (the rule's index is its listener's step). */
function exitRules(spec: string): string[] {
  const parsed = JSON.parse(spec) as { exit_when?: unknown };
  if (!Array.isArray(parsed.exit_when)) return [];
  return parsed.exit_when.map((r: unknown) => (typeof r === 'object' && r !== null && typeof (r as { event?: unknown }).event === 'string' ? (r as { event: string }).event : ''));
}

function exitEvents(spec: string): Set<string> {
  return new Set(exitRules(spec).filter((e) => e !== ''));
}
