import { Migrator, sql, type Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore, type Store } from '../src/store/db.js';
import { migrations } from '../src/store/migrations/index.js';
import { DIALECTS } from './support/dialects.js';

// Migrations that move data, run on a database holding rows in the old shape: up, then down again.

interface OldStep {
  workspace_id: string;
  run_id: string;
  step: string;
  type: string;
  at: number;
  outcome: string;
  detail: string | null;
}

const OLD_STEPS: OldStep[] = [
  { workspace_id: 'ws_1', run_id: 'run_a', step: '$entry', type: 'entry', at: 1_000, outcome: 'entered', detail: '{"event":"Signed Up","messageId":"m1"}' },
  { workspace_id: 'ws_1', run_id: 'run_b', step: '$entry', type: 'entry', at: 1_001, outcome: 'entered', detail: null },
  { workspace_id: 'ws_1', run_id: 'run_a', step: 'welcome', type: 'send', at: 1_000, outcome: 'to_gate', detail: '{"attempt":1,"channel":["email"]}' },
  { workspace_id: 'ws_1', run_id: 'run_a', step: 'day_3', type: 'wait', at: 1_000, outcome: 'waiting', detail: null },
];

for (const dialect of DIALECTS) {
  describe.skipIf(!dialect.available)(`migrations [${dialect.name}]`, () => {
    let store: Store;
    let migrator: Migrator;

    beforeAll(async () => {
      store = await openStore(dialect.fresh().config);
      const schema = dialect.name === 'postgres' ? (await sql<{ s: string }>`select current_schema() as s`.execute(store.db)).rows[0].s : undefined;
      migrator = new Migrator({ db: store.db, provider: migrations(dialect.name), migrationTableSchema: schema });
    });
    afterAll(async () => {
      await store?.close();
    });

    it('0009 moves each run_steps row into run_history, in order, and back down', async () => {
      const to8 = await migrator.migrateTo('0008_run_updates_in_place');
      expect(to8.error).toBeUndefined();
      const old = store.db as unknown as Kysely<{ run_steps: OldStep & { id?: number } }>;
      for (const s of OLD_STEPS) await old.insertInto('run_steps').values(s).execute();

      const up = await migrator.migrateTo('0009_run_history');
      expect(up.error).toBeUndefined();
      const rows = await store.db.selectFrom('run_history').select(['workspace_id', 'run_id', 'steps', 'step_count']).orderBy('id').execute();
      expect(rows.map((r) => ({ ...r, steps: JSON.parse(r.steps) as unknown }))).toEqual(
        OLD_STEPS.map((s) => ({
          workspace_id: s.workspace_id,
          run_id: s.run_id,
          steps: [[s.step, s.type, s.at, s.outcome, s.detail === null ? null : JSON.parse(s.detail)]],
          step_count: 1,
        })),
      );

      // A row the engine writes now (two steps) expands into two run_steps rows on the way down.
      await store.db
        .insertInto('run_history')
        .values({ workspace_id: 'ws_1', run_id: 'run_b', steps: JSON.stringify([['w', 'wait', 2_000, 'resumed', null], ['$goal', 'goal', 2_000, 'converted', { event: 'Activated' }]]), step_count: 2 })
        .execute();
      const down = await migrator.migrateTo('0008_run_updates_in_place');
      expect(down.error).toBeUndefined();
      const back = await old.selectFrom('run_steps').select(['workspace_id', 'run_id', 'step', 'type', 'at', 'outcome', 'detail']).orderBy('id').execute();
      expect(back.map((r) => ({ ...r, at: Number(r.at), detail: r.detail === null ? null : (JSON.parse(r.detail) as unknown) }))).toEqual(
        [
          ...OLD_STEPS,
          { workspace_id: 'ws_1', run_id: 'run_b', step: 'w', type: 'wait', at: 2_000, outcome: 'resumed', detail: null },
          { workspace_id: 'ws_1', run_id: 'run_b', step: '$goal', type: 'goal', at: 2_000, outcome: 'converted', detail: '{"event":"Activated"}' },
        ].map((s) => ({ ...s, detail: s.detail === null ? null : (JSON.parse(s.detail) as unknown) })),
      );

      const latest = await migrator.migrateToLatest();
      expect(latest.error).toBeUndefined();
    });

    /** The indexes a query would use (PostgreSQL: with sequential scans priced out, as on an empty table they win). */
    async function indexesFor(query: string): Promise<string> {
      if (dialect.name === 'sqlite') return (await sql<{ detail: string }>`explain query plan ${sql.raw(query)}`.execute(store.db)).rows.map((r) => r.detail).join('\n');
      return store.db.transaction().execute(async (trx) => {
        await sql`set local enable_seqscan = off`.execute(trx);
        return (await sql<{ 'QUERY PLAN': string }>`explain ${sql.raw(query)}`.execute(trx)).rows.map((r) => r['QUERY PLAN']).join('\n');
      });
    }

    it('0010 drops the run index of messages and keeps only merged profiles in profiles_merged_into; the lookups still use an index', async () => {
      const latest = await migrator.migrateToLatest();
      expect(latest.error).toBeUndefined();
      const runMessages = await indexesFor(`select status from messages where profile_id = 'prf_1' and run_id = 'run_1' and step = 's'`);
      expect(runMessages).toMatch(/messages_profile/);
      expect(runMessages).not.toMatch(/messages_run/);
      expect(await indexesFor(`select id from profiles where workspace_id = 'ws_1' and merged_into = 'prf_1'`)).toMatch(/profiles_merged_into/);
      const down = await migrator.migrateTo('0009_run_history');
      expect(down.error).toBeUndefined();
      expect(await indexesFor(`select status from messages where run_id = 'run_1'`)).toMatch(/messages_run/);
      expect((await migrator.migrateToLatest()).error).toBeUndefined();
    });

    it.skipIf(dialect.name !== 'postgres')('0011 (PostgreSQL): key columns compare bytes; lookups, joins and writes work as before, and back down', async () => {
      const collationOf = async (table: string, column: string) =>
        (
          await sql<{ c: string | null }>`select collation_name as c from information_schema.columns where table_schema = current_schema() and table_name = ${table} and column_name = ${column}`.execute(store.db)
        ).rows[0].c;
      expect((await migrator.migrateToLatest()).error).toBeUndefined();
      expect(await collationOf('identifiers', 'value')).toBe('C');
      expect(await collationOf('runs', 'id')).toBe('C');
      expect(await collationOf('profiles', 'traits')).toBeNull();
      // Byte order: uppercase before lowercase, whatever the database's own collation says.
      await sql`insert into workspaces (id, name, created_at) values ('ws_B', 'B', 1), ('ws_a', 'a', 1)`.execute(store.db);
      const names = await sql<{ name: string }>`select name from workspaces where id in ('ws_B', 'ws_a') order by name`.execute(store.db);
      expect(names.rows.map((r) => r.name)).toEqual(['B', 'a']);
      // A key column against a text of the database's collation (a JSON field): no collation conflict.
      const joined = await sql<{ id: string }>`select w.id from workspaces w join (select ${'{"id":"ws_a"}'}::jsonb->>'id' as id) v on v.id = w.id`.execute(store.db);
      expect(joined.rows).toEqual([{ id: 'ws_a' }]);
      expect((await migrator.migrateTo('0010_sparse_profile_indexes')).error).toBeUndefined();
      expect(await collationOf('identifiers', 'value')).toBeNull();
      expect((await migrator.migrateToLatest()).error).toBeUndefined();
      await sql`delete from workspaces where id in ('ws_B', 'ws_a')`.execute(store.db);
    });

    it('0012 indexes each published version\'s exit rules in journey_exits and drops the per-run exit listeners; down gives listening runs theirs back', async () => {
      expect((await migrator.migrateTo('0011_byte_order_keys')).error).toBeUndefined();
      const spec = (exits: string[]) => JSON.stringify({ key: 'j', name: 'J', trigger: { event: 'Go' }, exit_when: exits.map((event) => ({ event })), steps: { s: { wait: { duration: 'P1D' } } } });
      await store.db.insertInto('journey_versions').values([
        { journey_id: 'jny_x', version: 1, workspace_id: 'ws_x', spec: spec(['Quit', 'Gone', 'Quit']), published_at: 1 },
        { journey_id: 'jny_x', version: 2, workspace_id: 'ws_x', spec: spec(['Quit']), published_at: 2 },
        { journey_id: 'jny_y', version: 1, workspace_id: 'ws_x', spec: spec([]), published_at: 3 },
      ]).execute();
      const run = (id: string, status: string, version = 1) => ({
        id, workspace_id: 'ws_x', journey_id: 'jny_x', journey_key: 'j', version, profile_id: `prf_${id}`, status, entry_key: null, holdout: 0,
        entered_at: 1_000, goal_deadline: null, converted_at: null, ended_at: null, end_reason: null, trigger: '{}', visits: '{}', updated_at: 1_000,
      });
      await store.db.insertInto('runs').values([run('run_wait', 'waiting'), run('run_goal', 'completed', 2), run('run_done', 'completed'), run('run_exited', 'exited')]).execute();
      const wait = (id: string, runId: string, kind: string, step: string, event: string | null) => ({
        id, workspace_id: 'ws_x', run_id: runId, journey_id: 'jny_x', profile_id: `prf_${runId}`, step, kind, event_name: event, due_at: kind === 'exit' ? null : 5_000, created_at: 1_000,
      });
      await store.db.insertInto('waits').values([
        wait('wait_1', 'run_wait', 'exit', '$exit.0', 'Quit'),
        wait('wait_2', 'run_wait', 'exit', '$exit.1', 'Gone'),
        wait('wait_3', 'run_wait', 'wait', 's', null),
        wait('wait_4', 'run_goal', 'exit', '$exit.0', 'Quit'),
        wait('wait_5', 'run_goal', 'goal', '$goal', 'Done'),
        wait('wait_6', 'run_done', 'exit', '$exit.0', 'Quit'),
      ]).execute();

      expect((await migrator.migrateTo('0012_journey_exits')).error).toBeUndefined();
      const exits = await store.db.selectFrom('journey_exits').select(['workspace_id', 'event_name', 'journey_id', 'version']).orderBy('version').orderBy('event_name').execute();
      expect(exits).toEqual([
        { workspace_id: 'ws_x', event_name: 'Gone', journey_id: 'jny_x', version: 1 },
        { workspace_id: 'ws_x', event_name: 'Quit', journey_id: 'jny_x', version: 1 },
        { workspace_id: 'ws_x', event_name: 'Quit', journey_id: 'jny_x', version: 2 },
      ]);
      expect((await store.db.selectFrom('waits').select('id').orderBy('id').execute()).map((w) => w.id)).toEqual(['wait_3', 'wait_5']);

      expect((await migrator.migrateTo('0011_byte_order_keys')).error).toBeUndefined();
      const back = await store.db.selectFrom('waits').select(['run_id', 'step', 'kind', 'event_name', 'due_at']).where('kind', '=', 'exit').orderBy('run_id').orderBy('step').execute();
      // The run still waiting gets v1's three rules (indexes as in the spec); the completed one tracking its goal gets v2's; the others none.
      expect(back).toEqual([
        { run_id: 'run_goal', step: '$exit.0', kind: 'exit', event_name: 'Quit', due_at: null },
        { run_id: 'run_wait', step: '$exit.0', kind: 'exit', event_name: 'Quit', due_at: null },
        { run_id: 'run_wait', step: '$exit.1', kind: 'exit', event_name: 'Gone', due_at: null },
        { run_id: 'run_wait', step: '$exit.2', kind: 'exit', event_name: 'Quit', due_at: null },
      ]);
      expect((await migrator.migrateToLatest()).error).toBeUndefined();
      expect(await store.db.selectFrom('journey_exits').select('version').execute()).toHaveLength(3);
      for (const t of ['waits', 'runs', 'journey_versions', 'journey_exits'] as const) await store.db.deleteFrom(t).where('workspace_id', '=', 'ws_x').execute();
    });

    it('0013 indexes waits by customer: moving or erasing a customer\'s waits, their listeners and their runs\' waits use it; and back down', async () => {
      expect((await migrator.migrateToLatest()).error).toBeUndefined();
      // Moving a merged customer's waits read the whole table before (the partial index holds event waits only).
      expect(await indexesFor(`update waits set profile_id = 'prf_2' where workspace_id = 'ws_1' and profile_id = 'prf_1'`)).toMatch(/waits_profile/);
      expect(await indexesFor(`select id from waits where workspace_id = 'ws_1' and profile_id in ('prf_1', 'prf_2') and event_name in ('Activated')`)).toMatch(/waits_profile/);
      expect(await indexesFor(`select id, run_id, kind, step from waits where profile_id in ('prf_1', 'prf_2')`)).toMatch(/waits_profile/);
      expect((await migrator.migrateTo('0012_journey_exits')).error).toBeUndefined();
      expect(await indexesFor(`select id from waits where run_id = 'run_1'`)).toMatch(/waits_run/);
      expect(await indexesFor(`select id from waits where profile_id = 'prf_1' and event_name = 'Activated'`)).toMatch(/waits_listeners/);
      expect((await migrator.migrateToLatest()).error).toBeUndefined();
    });
  });
}
