import type { Transaction } from 'kysely';
import { patchProfile, type ProfilePatch } from '../core/profile.js';
import { pushIdentifierKind, type Identifier, type ProfileState } from '../core/types.js';
import { transact, type Store } from './db.js';
import type { StoredPayload } from './ingest.js';
import { asKind, iso, profileFromRow, profileToRow } from './rows.js';
import type { Database } from './schema.js';
import { messageView, type MessageView } from './messages.js';
import { runsOfProfile, type RunView } from './runs.js';

type Reader = Store['db'] | Transaction<Database>;

export type ProfileRef = { profileId: string } | { identifier: Identifier };

export interface ProfileView extends ProfileState {
  identifiers: Identifier[];
  /** Ids of profiles merged into this one; they still resolve here. */
  mergedProfileIds: string[];
}

export interface TimelineEvent extends StoredPayload {
  id: string;
  profileId: string;
}

/** The live profile a ref points at (following merges), or null. */
export async function resolveRef(db: Reader, workspaceId: string, ref: ProfileRef): Promise<string | null> {
  if ('identifier' in ref) {
    const row = await db
      .selectFrom('identifiers')
      .select('profile_id')
      .where('workspace_id', '=', workspaceId)
      .where('kind', '=', ref.identifier.kind)
      .where('value', '=', ref.identifier.value)
      .executeTakeFirst();
    return row?.profile_id ?? null;
  }
  let id = ref.profileId;
  // Merges compress paths, so this is one hop; the bound only guards against a corrupt cycle.
  for (let hops = 0; hops < 16; hops++) {
    const row = await db
      .selectFrom('profiles')
      .select(['id', 'merged_into'])
      .where('workspace_id', '=', workspaceId)
      .where('id', '=', id)
      .executeTakeFirst();
    if (!row) return null;
    if (row.merged_into === null) return row.id;
    id = row.merged_into;
  }
  return null;
}

async function view(db: Reader, workspaceId: string, profileId: string): Promise<ProfileView | null> {
  const row = await db
    .selectFrom('profiles')
    .selectAll()
    .where('workspace_id', '=', workspaceId)
    .where('id', '=', profileId)
    .where('merged_into', 'is', null)
    .executeTakeFirst();
  if (!row) return null;
  const ids = await db
    .selectFrom('identifiers')
    .select(['kind', 'value'])
    .where('workspace_id', '=', workspaceId)
    .where('profile_id', '=', profileId)
    .orderBy('kind')
    .orderBy('created_at')
    .execute();
  const merged = await db
    .selectFrom('profiles')
    .select('id')
    .where('workspace_id', '=', workspaceId)
    .where('merged_into', '=', profileId)
    .orderBy('id')
    .execute();
  return {
    ...profileFromRow(row),
    identifiers: ids.map((i) => ({ kind: asKind(i.kind), value: i.value })),
    mergedProfileIds: merged.map((m) => m.id),
  };
}

export async function getProfile(store: Store, workspaceId: string, ref: ProfileRef): Promise<ProfileView | null> {
  const id = await resolveRef(store.db, workspaceId, ref);
  return id === null ? null : view(store.db, workspaceId, id);
}

export interface TimelinePage {
  data: TimelineEvent[];
  nextCursor: string | null;
}

function encodeCursor(ts: number, id: string): string {
  return Buffer.from(JSON.stringify([ts, id])).toString('base64url');
}

export function decodeCursor(cursor: string): [number, string] | null {
  try {
    const v: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(v) && v.length === 2 && Number.isFinite(v[0]) && typeof v[1] === 'string') return [v[0], v[1]];
  } catch {
    // fall through
  }
  return null;
}

/** The customer's events, newest first, with keyset pagination on (timestamp, id). */
export async function timeline(
  store: Store,
  workspaceId: string,
  profileId: string,
  opts: { limit: number; cursor?: [number, string] },
): Promise<TimelinePage> {
  let q = store.db
    .selectFrom('events')
    .select(['id', 'profile_id', 'timestamp', 'payload'])
    .where('workspace_id', '=', workspaceId)
    .where('profile_id', '=', profileId);
  if (opts.cursor) {
    const [ts, id] = opts.cursor;
    q = q.where((eb) => eb.or([eb('timestamp', '<', ts), eb.and([eb('timestamp', '=', ts), eb('id', '<', id)])]));
  }
  const rows = await q.orderBy('timestamp', 'desc').orderBy('id', 'desc').limit(opts.limit + 1).execute();
  const page = rows.slice(0, opts.limit);
  const last = page[page.length - 1];
  return {
    data: page.map((r) => ({ id: r.id, profileId: r.profile_id, ...(JSON.parse(r.payload) as StoredPayload) })),
    nextCursor: rows.length > opts.limit && last ? encodeCursor(last.timestamp, last.id) : null,
  };
}

export class ProfileConflictError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

/** Applies an admin edit. New email/phone/push identifiers join the profile; one held by another profile is refused. */
export async function updateProfile(
  store: Store,
  workspaceId: string,
  ref: ProfileRef,
  patch: ProfilePatch,
): Promise<ProfileView | null> {
  return transact(store, async (trx) => {
    const id = await resolveRef(trx, workspaceId, ref);
    if (id === null) return null;
    const q = trx.selectFrom('profiles').selectAll().where('workspace_id', '=', workspaceId).where('id', '=', id);
    const row = await (store.dialect === 'postgres' ? q.forUpdate() : q).executeTakeFirst();
    if (!row || row.merged_into !== null) return null;
    const now = new Date();
    const next = patchProfile(profileFromRow(row), patch, now.toISOString());
    const wanted: { field: string; identifier: Identifier; movable: boolean }[] = [];
    if (next.contactPoints.email) wanted.push({ field: 'contactPoints.email', identifier: { kind: 'email', value: next.contactPoints.email.address }, movable: false });
    if (next.contactPoints.sms) wanted.push({ field: 'contactPoints.sms', identifier: { kind: 'phone', value: next.contactPoints.sms.phone }, movable: false });
    for (const t of next.contactPoints.push) {
      const kind = pushIdentifierKind(t.provider);
      wanted.push({ field: 'contactPoints.push', identifier: { kind, value: t.token }, movable: true });
    }
    for (const w of wanted) {
      const owner = await resolveRef(trx, workspaceId, { identifier: w.identifier });
      if (owner === id) continue;
      if (owner !== null && !w.movable) {
        throw new ProfileConflictError(
          w.field,
          `${w.field}: ${w.identifier.value} already belongs to profile ${owner}; merge the profiles (alias) or delete that profile first`,
        );
      }
      if (owner !== null) {
        await trx.updateTable('identifiers').set({ profile_id: id }).where('workspace_id', '=', workspaceId)
          .where('kind', '=', w.identifier.kind).where('value', '=', w.identifier.value).execute();
      } else {
        await trx.insertInto('identifiers')
          .values({ workspace_id: workspaceId, kind: w.identifier.kind, value: w.identifier.value, profile_id: id, created_at: now.getTime() })
          .execute();
      }
    }
    const removedTokens = new Set(profileFromRow(row).contactPoints.push.map((t) => t.token));
    for (const t of next.contactPoints.push) removedTokens.delete(t.token);
    for (const token of removedTokens) {
      await trx.deleteFrom('identifiers').where('workspace_id', '=', workspaceId).where('profile_id', '=', id)
        .where('kind', 'in', ['fcm_token', 'apns_token', 'webpush_endpoint']).where('value', '=', token).execute();
    }
    const r = profileToRow(next, workspaceId);
    await trx.updateTable('profiles')
      .set({ traits: r.traits, field_times: r.field_times, contact_points: r.contact_points, consent: r.consent, timezone: r.timezone, locale: r.locale, preferred_channel: r.preferred_channel, updated_at: r.updated_at })
      .where('workspace_id', '=', workspaceId).where('id', '=', id).execute();
    return view(trx, workspaceId, id);
  });
}

export interface Erasure {
  profileId: string;
  events: number;
  identifiers: number;
  profiles: number;
  /** Journey runs (with their steps and timers): the customer leaves every journey at once. */
  runs: number;
  /** Messages, whatever their status (queued ones are never sent), with the sandbox's copies. */
  messages: number;
}

/**
 * Erases a profile, the profiles merged into it, their identifiers, events and identity log, and what the
 * journeys and the gate hold on the customer: runs, their steps and timers, and messages (addresses and
 * rendered content are personal data too). Merges moved every run and message to the survivor, so the
 * profile's own id finds them all.
 */
export async function deleteProfile(store: Store, workspaceId: string, ref: ProfileRef): Promise<Erasure | null> {
  return transact(store, async (trx) => {
    const id = await resolveRef(trx, workspaceId, ref);
    if (id === null) return null;
    const lock = trx.selectFrom('profiles').select('id').where('workspace_id', '=', workspaceId).where('id', '=', id);
    await (store.dialect === 'postgres' ? lock.forUpdate() : lock).execute();
    const aliases = await trx.selectFrom('profiles').select('id').where('workspace_id', '=', workspaceId).where('merged_into', '=', id).execute();
    const all = [id, ...aliases.map((a) => a.id)];
    const events = await trx.deleteFrom('events').where('workspace_id', '=', workspaceId).where('profile_id', '=', id).executeTakeFirst();
    const identifiers = await trx.deleteFrom('identifiers').where('workspace_id', '=', workspaceId).where('profile_id', '=', id).executeTakeFirst();
    await trx.deleteFrom('identity_log').where('workspace_id', '=', workspaceId)
      .where((eb) => eb.or([eb('profile_id', 'in', all), eb('other_profile_id', 'in', all)])).execute();
    const profiles = await trx.deleteFrom('profiles').where('workspace_id', '=', workspaceId).where('id', 'in', all).executeTakeFirst();
    const runIds = trx.selectFrom('runs').select('id').where('workspace_id', '=', workspaceId).where('profile_id', 'in', all);
    await trx.deleteFrom('run_history').where('workspace_id', '=', workspaceId).where('run_id', 'in', runIds).execute();
    await trx.deleteFrom('waits').where('workspace_id', '=', workspaceId).where('profile_id', 'in', all).execute();
    const runs = await trx.deleteFrom('runs').where('workspace_id', '=', workspaceId).where('profile_id', 'in', all).executeTakeFirst();
    const messageIds = trx.selectFrom('messages').select('id').where('workspace_id', '=', workspaceId).where('profile_id', 'in', all);
    await trx.deleteFrom('sandbox_messages').where('workspace_id', '=', workspaceId).where('message_id', 'in', messageIds).execute();
    const messages = await trx.deleteFrom('messages').where('workspace_id', '=', workspaceId).where('profile_id', 'in', all).executeTakeFirst();
    return {
      profileId: id,
      events: Number(events.numDeletedRows),
      identifiers: Number(identifiers.numDeletedRows),
      profiles: Number(profiles.numDeletedRows),
      runs: Number(runs.numDeletedRows),
      messages: Number(messages.numDeletedRows),
    };
  });
}

export interface ProfileExport {
  exportedAt: string;
  profile: ProfileView;
  identifiers: (Identifier & { createdAt: string })[];
  events: TimelineEvent[];
  identityLog: {
    kind: string;
    profileId: string;
    otherProfileId: string;
    reason: string;
    identifier: Identifier | null;
    messageId: string | null;
    createdAt: string;
  }[];
  /** Journey runs with their steps, newest first. */
  runs: RunView[];
  /** Every message to the customer (address, rendered content and the gate's decision), newest first. */
  messages: MessageView[];
}

/** Everything held on one customer, for data-subject access requests. */
export async function exportProfile(store: Store, workspaceId: string, ref: ProfileRef): Promise<ProfileExport | null> {
  const id = await resolveRef(store.db, workspaceId, ref);
  if (id === null) return null;
  const profile = await view(store.db, workspaceId, id);
  if (!profile) return null;
  const all = [id, ...profile.mergedProfileIds];
  const ids = await store.db.selectFrom('identifiers').select(['kind', 'value', 'created_at'])
    .where('workspace_id', '=', workspaceId).where('profile_id', '=', id).orderBy('created_at').execute();
  const events = await store.db.selectFrom('events').select(['id', 'profile_id', 'payload'])
    .where('workspace_id', '=', workspaceId).where('profile_id', '=', id).orderBy('timestamp').orderBy('id').execute();
  const log = await store.db.selectFrom('identity_log').selectAll().where('workspace_id', '=', workspaceId)
    .where((eb) => eb.or([eb('profile_id', 'in', all), eb('other_profile_id', 'in', all)])).orderBy('id').execute();
  const runs = await runsOfProfile(store.db, workspaceId, id);
  const messages = await store.db.selectFrom('messages').selectAll().where('workspace_id', '=', workspaceId).where('profile_id', '=', id)
    .orderBy('created_at', 'desc').orderBy('id', 'desc').execute();
  return {
    exportedAt: new Date().toISOString(),
    profile,
    identifiers: ids.map((i) => ({ kind: asKind(i.kind), value: i.value, createdAt: iso(i.created_at) })),
    events: events.map((r) => ({ id: r.id, profileId: r.profile_id, ...(JSON.parse(r.payload) as StoredPayload) })),
    identityLog: log.map((l) => ({
      kind: l.kind,
      profileId: l.profile_id,
      otherProfileId: l.other_profile_id,
      reason: l.reason,
      identifier: l.identifier_kind && l.identifier_value ? { kind: asKind(l.identifier_kind), value: l.identifier_value } : null,
      messageId: l.message_id,
      createdAt: iso(l.created_at),
    })),
    runs,
    messages: messages.map(messageView),
  };
}
