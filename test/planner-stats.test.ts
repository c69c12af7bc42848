import { sql } from 'kysely';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate, openStore, type Store } from '../src/store/db.js';
import fc from 'fast-check';
import { keepPlannerStats, staleTables, type AtAnalyze, type PlannerStats, type TableActivity } from '../src/store/planner-stats.js';
import { DIALECTS } from './support/dialects.js';

// With PostgreSQL's autovacuum off, Chorus analyzes its own tables once they have changed enough, so the
// planner has statistics. With it on (or on SQLite) Chorus leaves statistics alone.

const quiet = pino({ level: 'silent' });

/**
 * Refreshes until `name` is analyzed (or 15 s pass), returning the last refresh's tables: a backend reports
 * its row counts to the statistics system shortly after its transaction ends.
 */
async function refreshUntil(keeper: PlannerStats, name: string): Promise<string[]> {
  let analyzed: string[] = [];
  for (let i = 0; i < 60 && !analyzed.includes(name); i++) {
    analyzed = await keeper.refresh();
    if (!analyzed.includes(name)) await new Promise((r) => setTimeout(r, 250));
  }
  return analyzed;
}

const table = (over: Partial<TableActivity> = {}): TableActivity => ({ name: 't', live: 1_000, changed: 1_000, since: 1_000, analyzed: false, ...over });

describe('staleTables', () => {
  it('autovacuum off: first on autovacuum\'s rule, then when it doubles, halves or turns over twice', () => {
    const none = new Map<string, AtAnalyze>();
    expect(staleTables([table({ since: 150, live: 1_000 })], none, false)).toEqual([]);
    expect(staleTables([table({ since: 151, live: 1_000 })], none, false)).toEqual(['t']);
    // Analyzed by someone else before this process started: still analyzed on the same rule.
    expect(staleTables([table({ since: 151, analyzed: true })], none, false)).toEqual(['t']);
    const last = new Map([['t', { changed: 10_000, live: 1_000 }]]);
    // Growth: more than twice the rows of the last analysis, plus 50.
    expect(staleTables([table({ live: 2_050, changed: 11_050 })], last, false)).toEqual([]);
    expect(staleTables([table({ live: 2_051, changed: 11_051 })], last, false)).toEqual(['t']);
    // Shrinkage: fewer than half, less 25.
    expect(staleTables([table({ live: 475, changed: 10_525 })], last, false)).toEqual([]);
    expect(staleTables([table({ live: 474, changed: 10_526 })], last, false)).toEqual(['t']);
    // Rewritten in place: the same size, analyzed again only once twice as many rows as it holds were written.
    expect(staleTables([table({ live: 1_000, changed: 12_050 })], last, false)).toEqual([]);
    expect(staleTables([table({ live: 1_000, changed: 12_051 })], last, false)).toEqual(['t']);
  });

  it('autovacuum off: never again before the table has changed by at least half its rows', () => {
    fc.assert(
      fc.property(fc.nat(1_000_000), fc.nat(1_000_000), fc.nat(1_000_000), fc.nat(1_000_000), (lastLive, lastChanged, live, written) => {
        const stale = staleTables([table({ live, changed: lastChanged + written })], new Map([['t', { changed: lastChanged, live: lastLive }]]), false).length > 0;
        // Any reason to analyze again means at least as many writes as half the rows then or now.
        if (stale) expect(Math.max(written, Math.abs(live - lastLive))).toBeGreaterThan(Math.min(lastLive, live) / 2);
        // Nothing written and the size unchanged: never.
        if (written === 0 && live === lastLive) expect(stale).toBe(false);
      }),
    );
  });

  it('autovacuum on: only a table nobody has analyzed, once, then never again', () => {
    fc.assert(
      fc.property(fc.nat(1_000_000), fc.nat(1_000_000), fc.nat(1_000_000), fc.boolean(), fc.option(fc.record({ changed: fc.nat(1_000_000), live: fc.nat(1_000_000) }), { nil: undefined }), (live, changed, since, analyzed, last) => {
        const t = table({ live, changed, since, analyzed });
        const stale = staleTables([t], new Map(last ? [['t', last]] : []), true).length > 0;
        expect(stale).toBe(!analyzed && last === undefined && since > 50 + 0.1 * live);
        // Never analyzes more than with autovacuum off would.
        if (stale) expect(staleTables([t], new Map(last ? [['t', last]] : []), false)).toEqual(['t']);
      }),
    );
  });
});

for (const dialect of DIALECTS) {
  describe.skipIf(!dialect.available)(`planner statistics on ${dialect.name}`, () => {
    let store: Store;
    beforeAll(async () => {
      store = await openStore(dialect.fresh().config);
      await migrate(store);
    });
    afterAll(async () => store?.close());

    it('analyzes its tables as they change with autovacuum off; with it on, only a fresh table\'s first statistics', async () => {
      const keeper = await keepPlannerStats(store, quiet, 60_000);
      if (dialect.name === 'sqlite') {
        expect(keeper).toBeNull();
        return;
      }
      expect(keeper).not.toBeNull();
      const { rows } = await sql<{ autovacuum: string }>`show autovacuum`.execute(store.db);
      if (rows[0].autovacuum === 'on') {
        // A fresh table gets its first statistics from Chorus, then belongs to autovacuum.
        await sql`insert into workspaces (id, name, created_at) select 'ws_' || g, 'analyze ' || g, 0 from generate_series(1, 300) g`.execute(store.db);
        const first = await refreshUntil(keeper!, 'workspaces');
        expect(first).toContain('workspaces');
        await sql`insert into workspaces (id, name, created_at) select 'wx_' || g, 'more ' || g, 0 from generate_series(1, 600) g`.execute(store.db);
        await new Promise((r) => setTimeout(r, 600));
        expect(await keeper!.refresh()).not.toContain('workspaces');
        await keeper!.stop();
        return;
      }
      await sql`insert into workspaces (id, name, created_at) select 'ws_' || g, 'analyze ' || g, 0 from generate_series(1, 300) g`.execute(store.db);
      const analyzed = await refreshUntil(keeper!, 'workspaces');
      expect(analyzed).toContain('workspaces');
      expect(analyzed).not.toContain('journeys');
      const stats = await sql<{ last_analyze: Date | null; n_mod_since_analyze: number }>`
        select last_analyze, n_mod_since_analyze from pg_stat_user_tables where schemaname = current_schema() and relname = 'workspaces'`.execute(store.db);
      expect(stats.rows[0].last_analyze).not.toBeNull();
      expect(await keeper!.refresh()).not.toContain('workspaces');
      // Statistics for the columns lookups filter on (the indexed id and name), not the others.
      const columns = await sql<{ attname: string }>`
        select attname from pg_stats where schemaname = current_schema() and tablename = 'workspaces' order by attname`.execute(store.db);
      expect(columns.rows.map((r) => r.attname)).toEqual(['id', 'name']);
      // n_mod_since_analyze isn't reset by an ANALYZE of some columns: the keeper counts changes itself.
      await sql`update workspaces set created_at = 1 where id in (select id from workspaces order by id limit 10)`.execute(store.db);
      await new Promise((r) => setTimeout(r, 600));
      expect(await keeper!.refresh()).not.toContain('workspaces');
      // Rewriting every row once, then twice, keeps the table's size: not yet (Chorus's runs and timers change
      // in place all the time).
      for (const value of [2, 3]) {
        await sql`update workspaces set created_at = ${value} where id like 'ws_%'`.execute(store.db);
        await new Promise((r) => setTimeout(r, 600));
        expect(await keeper!.refresh()).not.toContain('workspaces');
      }
      // More than twice as many writes as rows (10 + 3 × 300 > 50 + 2 × 300): the values have moved on.
      await sql`update workspaces set created_at = 4 where id like 'ws_%'`.execute(store.db);
      const again = await refreshUntil(keeper!, 'workspaces');
      expect(again).toContain('workspaces');
      // Growth: more than twice the 300 rows of the last analysis, plus 50.
      await sql`insert into workspaces (id, name, created_at) select 'wg_' || g, 'grown ' || g, 0 from generate_series(1, 350) g`.execute(store.db);
      await new Promise((r) => setTimeout(r, 600));
      expect(await keeper!.refresh()).not.toContain('workspaces');
      await sql`insert into workspaces (id, name, created_at) select 'wh_' || g, 'grown more ' || g, 0 from generate_series(1, 20) g`.execute(store.db);
      const grown = await refreshUntil(keeper!, 'workspaces');
      expect(grown).toContain('workspaces');
      await keeper!.stop();
    });

    it.runIf(dialect.name === 'postgres')('finds a batch of customers\' identifiers through the index, not by reading the table', async () => {
      // 20,000 customers with four identifiers each, analyzed but never vacuumed (as with autovacuum off):
      // at the default random_page_cost (4) the planner scanned the whole table for 500 customers.
      await sql`insert into identifiers (workspace_id, kind, value, profile_id, created_at)
        select 'ws_plan', k.kind, k.kind || ':' || g, 'prof_' || g, 0 from generate_series(1, 20000) g
        cross join (values ('user_id'), ('email'), ('phone'), ('anonymous_id')) k(kind)`.execute(store.db);
      await sql`analyze identifiers`.execute(store.db);
      const ids = Array.from({ length: 500 }, (_, i) => `prof_${1 + i * 37}`);
      const plan = await sql<{ 'QUERY PLAN': string }>`explain select kind, value, profile_id from identifiers
        where workspace_id = 'ws_plan' and profile_id in (${sql.join(ids)})`.execute(store.db);
      const text = plan.rows.map((r) => r['QUERY PLAN']).join('\n');
      expect(text).toContain('identifiers_profile_kind');
      expect(text).not.toMatch(/Seq Scan on identifiers/);
    });
  });
}
