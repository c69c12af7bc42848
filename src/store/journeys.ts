import { parseJourneySpec, type JourneySpec } from '../core/journey-spec.js';
import { newId } from '../lib/ids.js';
import type { Kysely, Transaction } from 'kysely';
import { transact, type Store } from './db.js';
import type { Database } from './schema.js';

type Db = Kysely<Database> | Transaction<Database>;

// Journey definitions: a mutable draft and immutable published versions.

export type JourneyStatus = 'draft' | 'active' | 'paused' | 'archived';

export interface JourneyView {
  id: string;
  key: string;
  name: string;
  status: JourneyStatus;
  latestVersion: number | null;
  /** true when the draft differs from the latest published version */
  draftChanged: boolean;
  draft: unknown;
  versions: { version: number; publishedAt: string }[];
  createdAt: string;
  updatedAt: string;
}

export class JourneyError extends Error {
  constructor(
    readonly status: 404 | 409,
    message: string,
  ) {
    super(message);
  }
}

export interface ActiveJourney {
  journeyId: string;
  key: string;
  version: number;
  spec: JourneySpec;
}

const specCache = new Map<string, JourneySpec>();

function parseStored(text: string): JourneySpec {
  const parsed = parseJourneySpec(JSON.parse(text));
  if (!parsed.ok) throw new Error(`a stored journey spec no longer validates: ${parsed.errors.map((e) => `${e.path}: ${e.message}`).join('; ')}`);
  return parsed.spec;
}

/** A published version's spec; versions are immutable, so they are cached forever. */
export async function loadVersion(db: Db, journeyId: string, version: number): Promise<JourneySpec> {
  const cacheKey = `${journeyId}@${version}`;
  const hit = specCache.get(cacheKey);
  if (hit) return hit;
  const row = await db
    .selectFrom('journey_versions')
    .select('spec')
    .where('journey_id', '=', journeyId)
    .where('version', '=', version)
    .executeTakeFirstOrThrow();
  const spec = parseStored(row.spec);
  if (specCache.size > 5000) specCache.clear();
  specCache.set(cacheKey, spec);
  return spec;
}

/** Journeys accepting new entries, per workspace, refreshed at most every `ttlMs` (and at once after a change here). */
export class ActiveJourneys {
  private cache = new Map<string, { at: number; list: ActiveJourney[] }>();
  constructor(private readonly ttlMs = 1000) {}

  invalidate(workspaceId: string): void {
    this.cache.delete(workspaceId);
  }

  /** `db` is the caller's transaction when there is one (SQLite has a single connection). */
  async list(db: Db, workspaceId: string): Promise<ActiveJourney[]> {
    const hit = this.cache.get(workspaceId);
    const now = performance.now();
    if (hit && now - hit.at < this.ttlMs) return hit.list;
    const rows = await db
      .selectFrom('journeys')
      .select(['id', 'key', 'latest_version'])
      .where('workspace_id', '=', workspaceId)
      .where('status', '=', 'active')
      .execute();
    const list: ActiveJourney[] = [];
    for (const r of rows) {
      if (r.latest_version === null) continue;
      list.push({ journeyId: r.id, key: r.key, version: r.latest_version, spec: await loadVersion(db, r.id, r.latest_version) });
    }
    this.cache.set(workspaceId, { at: now, list });
    return list;
  }
}

/**
 * The published versions that end a run at once on each of these events (their `exit_when`), as
 * `journeyId@version` by event name. Read in the caller's transaction, not cached: a run can only be on a
 * version whose row is committed, so no exit rule is missed in a process that hasn't seen the version yet.
 */
export async function exitVersions(db: Db, workspaceId: string, names: readonly string[]): Promise<Map<string, Set<string>>> {
  const out = new Map<string, Set<string>>();
  if (names.length === 0) return out;
  const rows = await db.selectFrom('journey_exits').select(['event_name', 'journey_id', 'version']).where('workspace_id', '=', workspaceId).where('event_name', 'in', names).execute();
  for (const r of rows) {
    const set = out.get(r.event_name) ?? new Set<string>();
    set.add(`${r.journey_id}@${r.version}`);
    out.set(r.event_name, set);
  }
  return out;
}

export async function pausedJourneyIds(db: Db, workspaceId?: string): Promise<Set<string>> {
  let q = db.selectFrom('journeys').select('id').where('status', '=', 'paused');
  if (workspaceId) q = q.where('workspace_id', '=', workspaceId);
  return new Set((await q.execute()).map((r) => r.id));
}

export async function getJourney(store: Store, workspaceId: string, key: string): Promise<JourneyView | null> {
  const row = await store.db.selectFrom('journeys').selectAll().where('workspace_id', '=', workspaceId).where('key', '=', key).executeTakeFirst();
  if (!row) return null;
  const versions = await store.db
    .selectFrom('journey_versions')
    .select(['version', 'published_at', 'spec'])
    .where('journey_id', '=', row.id)
    .orderBy('version')
    .execute();
  const latest = versions[versions.length - 1];
  return {
    id: row.id,
    key: row.key,
    name: row.name,
    status: row.status as JourneyStatus,
    latestVersion: row.latest_version,
    draftChanged: !latest || latest.spec !== row.draft_spec,
    draft: JSON.parse(row.draft_spec),
    versions: versions.map((v) => ({ version: v.version, publishedAt: new Date(v.published_at).toISOString() })),
    createdAt: new Date(row.created_at).toISOString(),
    updatedAt: new Date(row.updated_at).toISOString(),
  };
}

export async function listJourneys(store: Store, workspaceId: string): Promise<JourneyView[]> {
  const rows = await store.db.selectFrom('journeys').select('key').where('workspace_id', '=', workspaceId).orderBy('key').execute();
  const out: JourneyView[] = [];
  for (const r of rows) {
    const j = await getJourney(store, workspaceId, r.key);
    if (j) out.push(j);
  }
  return out;
}

/** Creates the journey, or replaces its draft when it exists (apply semantics). Returns whether it was created. */
export async function saveDraft(store: Store, workspaceId: string, spec: JourneySpec, raw: unknown, opts: { create: 'only' | 'upsert' | 'never' }): Promise<boolean> {
  const text = JSON.stringify(raw);
  const now = Date.now();
  return transact(store, async (trx) => {
    const row = await trx.selectFrom('journeys').select(['id', 'status']).where('workspace_id', '=', workspaceId).where('key', '=', spec.key).executeTakeFirst();
    if (row) {
      if (opts.create === 'only') throw new JourneyError(409, `journey "${spec.key}" already exists; update it with PUT /v1/journeys/${spec.key}`);
      if (row.status === 'archived') throw new JourneyError(409, `journey "${spec.key}" is archived and can't change; use a new key`);
      await trx.updateTable('journeys').set({ draft_spec: text, name: spec.name, updated_at: now }).where('id', '=', row.id).execute();
      return false;
    }
    if (opts.create === 'never') throw new JourneyError(404, `no journey "${spec.key}"; create it with POST /v1/journeys`);
    await trx
      .insertInto('journeys')
      .values({ id: newId('jny', now), workspace_id: workspaceId, key: spec.key, name: spec.name, status: 'draft', draft_spec: text, latest_version: null, created_at: now, updated_at: now })
      .execute();
    return true;
  });
}

/** Freezes the draft as the next version and makes the journey live. Publishing an unchanged draft is a no-op. */
export async function publish(store: Store, workspaceId: string, key: string): Promise<{ version: number; published: boolean }> {
  const now = Date.now();
  return transact(store, async (trx) => {
    const row = await trx.selectFrom('journeys').selectAll().where('workspace_id', '=', workspaceId).where('key', '=', key).executeTakeFirst();
    if (!row) throw new JourneyError(404, `no journey "${key}"`);
    if (row.status === 'archived') throw new JourneyError(409, `journey "${key}" is archived; it can't be published again`);
    if (row.latest_version !== null) {
      const latest = await trx.selectFrom('journey_versions').select('spec').where('journey_id', '=', row.id).where('version', '=', row.latest_version).executeTakeFirstOrThrow();
      if (latest.spec === row.draft_spec) {
        if (row.status === 'draft') await trx.updateTable('journeys').set({ status: 'active', updated_at: now }).where('id', '=', row.id).execute();
        return { version: row.latest_version, published: false };
      }
    }
    const version = (row.latest_version ?? 0) + 1;
    await trx.insertInto('journey_versions').values({ journey_id: row.id, version, workspace_id: workspaceId, spec: row.draft_spec, published_at: now }).execute();
    const exits = [...new Set(parseStored(row.draft_spec).exit_when.map((x) => x.event))];
    if (exits.length > 0) {
      await trx.insertInto('journey_exits').values(exits.map((event_name) => ({ workspace_id: workspaceId, event_name, journey_id: row.id, version }))).execute();
    }
    const status = row.status === 'paused' ? 'paused' : 'active';
    await trx.updateTable('journeys').set({ latest_version: version, status, updated_at: now }).where('id', '=', row.id).execute();
    return { version, published: true };
  });
}

const TRANSITIONS: Record<'pause' | 'resume' | 'archive', { from: JourneyStatus[]; to: JourneyStatus }> = {
  pause: { from: ['active'], to: 'paused' },
  resume: { from: ['paused'], to: 'active' },
  archive: { from: ['draft', 'active', 'paused'], to: 'archived' },
};

export async function transition(store: Store, workspaceId: string, key: string, action: 'pause' | 'resume' | 'archive'): Promise<JourneyStatus> {
  const row = await store.db.selectFrom('journeys').select(['id', 'status']).where('workspace_id', '=', workspaceId).where('key', '=', key).executeTakeFirst();
  if (!row) throw new JourneyError(404, `no journey "${key}"`);
  const t = TRANSITIONS[action];
  if (row.status === t.to) return t.to;
  if (!t.from.includes(row.status as JourneyStatus)) {
    throw new JourneyError(409, `can't ${action} journey "${key}" while it is ${row.status}; allowed from: ${t.from.join(', ')}`);
  }
  await store.db.updateTable('journeys').set({ status: t.to, updated_at: Date.now() }).where('id', '=', row.id).execute();
  return t.to;
}
