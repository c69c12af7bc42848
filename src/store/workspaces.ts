import { createHash } from 'node:crypto';
import { newApiKey, newId } from '../lib/ids.js';
import type { Store } from './db.js';

export type KeyKind = 'write' | 'secret';

export interface Workspace {
  id: string;
  name: string;
  createdAt: string;
}

/** Keys are shown once, at creation; only their hashes are stored. */
export interface CreatedWorkspace {
  workspace: Workspace;
  writeKey: string;
  secretKey: string;
}

export function hashKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

function hint(key: string): string {
  return `${key.slice(0, 7)}…`;
}

export class WorkspaceExistsError extends Error {}

export async function createWorkspace(
  store: Store,
  name: string,
  keys: { writeKey?: string; secretKey?: string } = {},
): Promise<CreatedWorkspace> {
  const existing = await store.db.selectFrom('workspaces').select('id').where('name', '=', name).executeTakeFirst();
  if (existing) throw new WorkspaceExistsError(`a workspace named "${name}" already exists`);
  const now = Date.now();
  const workspace = { id: newId('ws', now), name, created_at: now };
  const writeKey = keys.writeKey ?? newApiKey('wk');
  const secretKey = keys.secretKey ?? newApiKey('sk');
  await store.db.transaction().execute(async (trx) => {
    await trx.insertInto('workspaces').values(workspace).execute();
    await trx
      .insertInto('api_keys')
      .values([
        { id: newId('key', now), workspace_id: workspace.id, kind: 'write', key_hash: hashKey(writeKey), hint: hint(writeKey), created_at: now, revoked_at: null },
        { id: newId('key', now), workspace_id: workspace.id, kind: 'secret', key_hash: hashKey(secretKey), hint: hint(secretKey), created_at: now, revoked_at: null },
      ])
      .execute();
  });
  return { workspace: { id: workspace.id, name, createdAt: new Date(now).toISOString() }, writeKey, secretKey };
}

/** Adds a key to a workspace unless that exact key is already registered (to this workspace). */
export async function ensureKey(store: Store, workspaceId: string, kind: KeyKind, key: string): Promise<void> {
  const hash = hashKey(key);
  const row = await store.db.selectFrom('api_keys').select(['workspace_id', 'kind']).where('key_hash', '=', hash).executeTakeFirst();
  if (row) {
    if (row.workspace_id !== workspaceId || row.kind !== kind) {
      throw new Error(`the configured ${kind} key is already registered to another workspace or as another kind of key`);
    }
    return;
  }
  const now = Date.now();
  await store.db
    .insertInto('api_keys')
    .values({ id: newId('key', now), workspace_id: workspaceId, kind, key_hash: hash, hint: hint(key), created_at: now, revoked_at: null })
    .execute();
}

export const DEFAULT_WORKSPACE = 'default';

/**
 * First start: creates the default workspace. CHORUS_WRITE_KEY / CHORUS_SECRET_KEY, when set, are
 * registered on it (so deployments and tests know their keys); otherwise random keys are made and
 * returned so the caller can print them once.
 */
export async function bootstrapDefaultWorkspace(
  store: Store,
  keys: { writeKey?: string; secretKey?: string },
): Promise<CreatedWorkspace | null> {
  const existing = await store.db.selectFrom('workspaces').select('id').where('name', '=', DEFAULT_WORKSPACE).executeTakeFirst();
  if (!existing) {
    try {
      return await createWorkspace(store, DEFAULT_WORKSPACE, keys);
    } catch (err) {
      // Another process bootstrapping the same database won the race; fall through to ensureKey.
      if (!(err instanceof WorkspaceExistsError) && !isUniqueViolation(err)) throw err;
    }
  }
  const ws = await store.db.selectFrom('workspaces').select('id').where('name', '=', DEFAULT_WORKSPACE).executeTakeFirstOrThrow();
  if (keys.writeKey) await ensureKeyTolerant(store, ws.id, 'write', keys.writeKey);
  if (keys.secretKey) await ensureKeyTolerant(store, ws.id, 'secret', keys.secretKey);
  return null;
}

async function ensureKeyTolerant(store: Store, workspaceId: string, kind: KeyKind, key: string): Promise<void> {
  try {
    await ensureKey(store, workspaceId, kind, key);
  } catch (err) {
    if (!isUniqueViolation(err)) throw err;
  }
}

function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string; message?: string } | null;
  return e?.code === '23505' || e?.code === 'SQLITE_CONSTRAINT_UNIQUE' || e?.code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}

/** The workspace a key belongs to, or null for an unknown, revoked or wrong-kind key. */
export async function authenticate(store: Store, kind: KeyKind, key: string): Promise<string | null> {
  const row = await store.db
    .selectFrom('api_keys')
    .select(['workspace_id', 'kind', 'revoked_at'])
    .where('key_hash', '=', hashKey(key))
    .executeTakeFirst();
  if (!row || row.revoked_at !== null || row.kind !== kind) return null;
  return row.workspace_id;
}

export async function listWorkspaces(store: Store): Promise<Workspace[]> {
  const rows = await store.db.selectFrom('workspaces').selectAll().orderBy('created_at').execute();
  return rows.map((r) => ({ id: r.id, name: r.name, createdAt: new Date(r.created_at).toISOString() }));
}
