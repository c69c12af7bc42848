import { afterAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { openStore } from '../src/store/db.js';
import { DIALECTS, postgres, type TestDialect } from './support/dialects.js';
import { basic, call, SECRET_KEY, spawnServer, startTestServer, WRITE_KEY, type ChildServer } from './support/server.js';
import type { DatabaseConfig } from '../src/config.js';

// One customer, one line (DESIGN invariant 3): concurrent identify and alias calls touching the same
// identifiers must leave every identifier on exactly one live profile and every event on it.

const PEOPLE = 40;

function callsFor(i: number): { type: string; body: Record<string, unknown> }[] {
  const a = `anon-${i}`;
  const u = `user-${i}`;
  const e = `person${i}@example.com`;
  return [
    { type: 'track', body: { anonymousId: a, event: 'Viewed' } },
    { type: 'identify', body: { anonymousId: a, traits: { email: e } } },
    { type: 'identify', body: { userId: u, traits: { email: e, n: i } } },
    { type: 'alias', body: { previousId: a, userId: u } },
    { type: 'track', body: { userId: u, event: 'Bought' } },
    { type: 'identify', body: { userId: u, anonymousId: a } },
  ];
}

/** Fires every call at once, spread over the given servers, in a shuffled order. */
async function fireAll(urls: string[]): Promise<void> {
  const all = Array.from({ length: PEOPLE }, (_, i) => callsFor(i)).flat();
  for (let i = all.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [all[i], all[j]] = [all[j], all[i]];
  }
  const results = await Promise.all(
    all.map((c, n) => call(urls[n % urls.length], 'POST', `/v1/${c.type}`, { body: c.body, auth: basic(WRITE_KEY) })),
  );
  const failed = results.filter((r) => r.status !== 200);
  expect(failed).toEqual([]);
}

async function checkGraph(url: string, config: DatabaseConfig): Promise<void> {
  for (let i = 0; i < PEOPLE; i++) {
    const refs = [`user_id:user-${i}`, `anonymous_id:anon-${i}`, `email:person${i}@example.com`];
    const ids = await Promise.all(
      refs.map(async (r) => (await call(url, 'GET', `/v1/profiles/${r}`, { auth: `Bearer ${SECRET_KEY}` })).body.id as string),
    );
    expect(new Set(ids).size, `person ${i}: ${refs.join(', ')} → ${ids.join(', ')}`).toBe(1);
    const events = await call(url, 'GET', `/v1/profiles/user_id:user-${i}/events?limit=100`, { auth: `Bearer ${SECRET_KEY}` });
    expect(events.body.data).toHaveLength(6);
  }
  const store = await openStore(config);
  try {
    const live = await store.db.selectFrom('profiles').select(sql<number>`count(*)`.as('n')).where('merged_into', 'is', null).executeTakeFirstOrThrow();
    expect(Number(live.n)).toBe(PEOPLE);
    const orphanEvents = await sql<{ n: number }>`
      select count(*) as n from events e join profiles p on p.id = e.profile_id where p.merged_into is not null`.execute(store.db);
    expect(Number(orphanEvents.rows[0].n)).toBe(0);
    const orphanIds = await sql<{ n: number }>`
      select count(*) as n from identifiers i left join profiles p on p.id = i.profile_id
      where p.id is null or p.merged_into is not null`.execute(store.db);
    expect(Number(orphanIds.rows[0].n)).toBe(0);
    const events = await store.db.selectFrom('events').select(sql<number>`count(*)`.as('n')).executeTakeFirstOrThrow();
    expect(Number(events.n)).toBe(PEOPLE * 6);
  } finally {
    await store.close();
  }
}

for (const dialect of DIALECTS) {
  describe.skipIf(!dialect.available)(`concurrent identity resolution on ${dialect.name}`, () => {
    it('leaves one profile per person when identify and alias race', async () => {
      const s = await startTestServer(dialect);
      try {
        await fireAll([s.url]);
        await checkGraph(s.url, configOf(dialect, s.env));
      } finally {
        await s.close();
      }
    });
  });
}

function configOf(dialect: TestDialect, env: Record<string, string>): DatabaseConfig {
  if (dialect.name === 'sqlite') return { dialect: 'sqlite', file: `${env.CHORUS_DATA_DIR}/chorus.db`, synchronous: 'NORMAL' };
  return { dialect: 'postgres', url: env.DATABASE_URL, schema: env.CHORUS_PG_SCHEMA, poolSize: 2 };
}

describe.skipIf(!postgres.available)('concurrent identity resolution on postgres with two server processes', () => {
  const servers: ChildServer[] = [];
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
  });

  it('leaves one profile per person when two processes race', async () => {
    const { env } = postgres.fresh();
    const common = { ...env, CHORUS_WRITE_KEY: WRITE_KEY, CHORUS_SECRET_KEY: SECRET_KEY };
    servers.push(await spawnServer(common));
    servers.push(await spawnServer(common));
    await fireAll(servers.map((s) => s.url));
    await checkGraph(servers[0].url, configOf(postgres, env));
  });
});
