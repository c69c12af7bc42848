import { sql, type Kysely, type Migration } from 'kysely';
import type { Dialect } from '../db.js';

// A run's history was one `run_steps` row per step: the most rows the engine wrote (a third of them in
// the journey benchmark), each with its index entries and row overhead. A run takes several steps in one
// transaction (entry, a send and the wait after it), so the history is now one `run_history` row per run
// and transaction, its steps a JSON array of `[step, type, at, outcome, detail]` in order. Existing steps
// move over one per row; `down` expands the rows back.
export function runHistory(dialect: Dialect): Migration {
  /** A table whose `id` numbers rows in insertion order: the order of a run's steps. */
  const serial = (db: Kysely<unknown>, table: string) =>
    db.schema.createTable(table).addColumn('id', dialect === 'postgres' ? 'bigserial' : 'integer', (c) => (dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement()));
  return {
    async up(db: Kysely<unknown>) {
      await serial(db, 'run_history')
        .addColumn('workspace_id', 'text', (c) => c.notNull())
        .addColumn('run_id', 'text', (c) => c.notNull())
        .addColumn('steps', 'text', (c) => c.notNull())
        .addColumn('step_count', 'integer', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('run_history_run').on('run_history').column('run_id').execute();
      const step =
        dialect === 'postgres'
          ? sql`json_build_array(step, type, at, outcome, detail::json)`
          : sql`json_array(step, type, at, outcome, json(detail))`;
      await sql`insert into run_history (workspace_id, run_id, steps, step_count)
        select workspace_id, run_id, ${dialect === 'postgres' ? sql`json_build_array(${step})::text` : sql`json_array(${step})`}, 1
        from run_steps order by id`.execute(db);
      await db.schema.dropTable('run_steps').execute();
    },
    async down(db: Kysely<unknown>) {
      await serial(db, 'run_steps')
        .addColumn('workspace_id', 'text', (c) => c.notNull())
        .addColumn('run_id', 'text', (c) => c.notNull())
        .addColumn('step', 'text', (c) => c.notNull())
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('at', 'bigint', (c) => c.notNull())
        .addColumn('outcome', 'text', (c) => c.notNull())
        .addColumn('detail', 'text')
        .execute();
      await db.schema.createIndex('run_steps_run').on('run_steps').column('run_id').execute();
      if (dialect === 'postgres') {
        await sql`insert into run_steps (workspace_id, run_id, step, type, at, outcome, detail)
          select h.workspace_id, h.run_id, s.value->>0, s.value->>1, (s.value->>2)::bigint, s.value->>3,
            case when jsonb_typeof(s.value->4) = 'null' then null else (s.value->4)::text end
          from run_history h cross join lateral jsonb_array_elements(h.steps::jsonb) with ordinality as s(value, n)
          order by h.id, s.n`.execute(db);
      } else {
        await sql`insert into run_steps (workspace_id, run_id, step, type, at, outcome, detail)
          select h.workspace_id, h.run_id, s.value->>0, s.value->>1, s.value->>2, s.value->>3,
            case when json_type(s.value, '$[4]') = 'null' then null else s.value->'$[4]' end
          from run_history h, json_each(h.steps) as s
          order by h.id, s.key`.execute(db);
      }
      await db.schema.dropTable('run_history').execute();
    },
  };
}
