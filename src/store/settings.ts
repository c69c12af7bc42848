import type { Kysely, Transaction } from 'kysely';
import { DEFAULT_SETTINGS, parseSettings, type GateSettings } from '../core/gate/settings.js';
import type { Database } from './schema.js';

type Db = Kysely<Database> | Transaction<Database>;

// Workspace settings for the send gate. The stored document is what the user wrote; defaults are
// merged in when it is read, so new defaults reach old workspaces.

export async function readSettingsDocument(db: Db, workspaceId: string): Promise<unknown> {
  const row = await db.selectFrom('workspace_settings').select('settings').where('workspace_id', '=', workspaceId).executeTakeFirst();
  return row ? (JSON.parse(row.settings) as unknown) : {};
}

export async function writeSettings(db: Db, workspaceId: string, document: unknown, now: number): Promise<void> {
  const text = JSON.stringify(document);
  await db
    .insertInto('workspace_settings')
    .values({ workspace_id: workspaceId, settings: text, updated_at: now })
    .onConflict((oc) => oc.column('workspace_id').doUpdateSet({ settings: text, updated_at: now }))
    .execute();
}

/** Effective settings per workspace, re-read at most every `ttlMs` (and at once after a change here). */
export class SettingsCache {
  private cache = new Map<string, { at: number; settings: GateSettings }>();
  constructor(private readonly ttlMs = 1000) {}

  invalidate(workspaceId: string): void {
    this.cache.delete(workspaceId);
  }

  async get(db: Db, workspaceId: string): Promise<GateSettings> {
    const hit = this.cache.get(workspaceId);
    const now = performance.now();
    if (hit && now - hit.at < this.ttlMs) return hit.settings;
    const parsed = parseSettings(await readSettingsDocument(db, workspaceId));
    // A stored document was valid when written; if a later version tightened validation, fall back to
    // the defaults rather than stop sending, and say so in the decision trace via the settings object.
    const settings = parsed.ok ? parsed.settings : DEFAULT_SETTINGS;
    this.cache.set(workspaceId, { at: now, settings });
    return settings;
  }
}
