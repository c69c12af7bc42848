import type { Transaction } from 'kysely';
import { deriveFacts } from '../core/facts.js';
import { aliasPreviousId, idKey, resolveBatch, type IdentitySnapshot, type ResolutionPlan } from '../core/resolve.js';
import { pushIdentifierKind, type Identifier, type IncomingEvent, type ProfileFacts, type ProfileState } from '../core/types.js';
import { newId } from '../lib/ids.js';
import { transact, type Store } from './db.js';
import { writeAll, type Write } from './insert-rows.js';
import { asKind, chunks, ms, profileFromRow, profileToRow } from './rows.js';
import type { Database, ProfileTable } from './schema.js';
import { bucketed } from './prepared.js';

type Trx = Transaction<Database>;

export interface IngestResult {
  stored: number;
  duplicates: number;
  /** For each stored event (in input order, duplicates left out): its messageId and profile. */
  events: { messageId: string; profileId: string }[];
}

// Payload fields that have their own place in the stored event; the rest of the call is kept as `extra`.
const KNOWN_FIELDS = new Set([
  'type', 'userId', 'anonymousId', 'previousId', 'groupId', 'event', 'name', 'properties', 'traits',
  'context', 'timestamp', 'originalTimestamp', 'sentAt', 'messageId', 'receivedAt', 'writeKey',
]);

/** A live profile as stored, and whether it holds a user id. */
export interface StoredProfile {
  state: ProfileState;
  hasUserId: boolean;
}

/**
 * Runs inside the ingestion transaction after the events are stored: the journey engine hooks in here.
 * `profiles`, when given, holds every profile of the plan's events as now stored (saves reading them back).
 */
export type AfterIngest = (trx: Trx, workspaceId: string, plan: ResolutionPlan, profiles?: ReadonlyMap<string, StoredProfile>) => Promise<void>;

/**
 * Stores a batch of validated events atomically: deduplicates by messageId, resolves identities,
 * merges profiles, updates traits, and appends the events, all in one transaction, so the batch is
 * durable (or absent) before the caller answers.
 */
export async function ingestEvents(store: Store, workspaceId: string, input: IncomingEvent[], after?: AfterIngest): Promise<IngestResult> {
  return transact(store, async (trx) => {
    const events = await withoutDuplicates(trx, workspaceId, input);
    if (events.length === 0) return { stored: 0, duplicates: input.length, events: [] };
    const facts = events.map(deriveFacts);
    const keys = identifierKeys(events, facts);
    const snapshot = await loadSnapshot(trx, store.dialect === 'postgres', workspaceId, keys);
    const now = Date.now();
    const plan = resolveBatch(snapshot, events, () => newId('prf', now), facts);
    const written = await applyPlan(trx, workspaceId, plan, now);
    if (after) await after(trx, workspaceId, plan, storedProfiles(snapshot, plan, written));
    return {
      stored: events.length,
      duplicates: input.length - events.length,
      events: plan.events.map((e) => ({ messageId: e.event.messageId, profileId: e.profileId })),
    };
  });
}

/**
 * Stores an event that Chorus itself observed about a known profile (delivery and engagement), without
 * identity resolution, and lets the engine see it like any ingested event.
 */
export async function ingestToProfile(store: Store, workspaceId: string, profileId: string, e: IncomingEvent, after?: AfterIngest): Promise<boolean> {
  return transact(store, async (trx) => {
    const fresh = await withoutDuplicates(trx, workspaceId, [e]);
    if (fresh.length === 0) return false;
    const lock = trx.selectFrom('profiles').select('id').where('workspace_id', '=', workspaceId).where('id', '=', profileId);
    if (!(await (store.dialect === 'postgres' ? lock.forUpdate() : lock).executeTakeFirst())) return false;
    const plan: ResolutionPlan = { profiles: [], merges: [], conflicts: [], newIdentifiers: [], movedIdentifiers: [], events: [{ event: e, profileId, rejected: [] }] };
    await applyPlan(trx, workspaceId, plan, Date.now());
    if (after) await after(trx, workspaceId, plan);
    return true;
  });
}

async function withoutDuplicates(trx: Trx, workspaceId: string, input: IncomingEvent[]): Promise<IncomingEvent[]> {
  const seen = new Set<string>();
  const unique = input.filter((e) => (seen.has(e.messageId) ? false : (seen.add(e.messageId), true)));
  const stored = new Set<string>();
  for (const part of chunks(unique, 1)) {
    const rows = await trx
      .selectFrom('events')
      .select('message_id')
      .where('workspace_id', '=', workspaceId)
      .where('message_id', 'in', bucketed(part.map((e) => e.messageId)))
      .execute();
    for (const r of rows) stored.add(r.message_id);
  }
  return unique.filter((e) => !stored.has(e.messageId));
}

/** Every identifier the batch could link, so the resolver sees their current owners. */
function identifierKeys(events: IncomingEvent[], allFacts: ProfileFacts[]): Identifier[] {
  const out = new Map<string, Identifier>();
  const add = (i: Identifier) => out.set(idKey(i), i);
  for (const [n, e] of events.entries()) {
    const facts = allFacts[n];
    facts.identifiers.forEach(add);
    for (const t of facts.pushTokens) {
      add({ kind: pushIdentifierKind(t.provider), value: t.token });
    }
    const previousId = aliasPreviousId(e);
    if (previousId !== null) {
      add({ kind: 'user_id', value: previousId });
      add({ kind: 'anonymous_id', value: previousId });
    }
  }
  return [...out.values()];
}

async function readOwners(trx: Trx, workspaceId: string, keys: Identifier[]): Promise<Map<string, string>> {
  const owners = new Map<string, string>();
  // One round trip for all kinds, each branch a full primary-key lookup:
  // select … where kind = a and value in (…) union all select … where kind = b and value in (…) …
  for (const part of chunks(keys, 1)) {
    const groups = new Map<string, string[]>();
    for (const k of part) groups.set(k.kind, [...(groups.get(k.kind) ?? []), k.value]);
    const selects = [...groups].map(([kind, values]) =>
      trx
        .selectFrom('identifiers')
        .select(['kind', 'value', 'profile_id'])
        .where('workspace_id', '=', workspaceId)
        .where('kind', '=', kind)
        .where('value', 'in', values),
    );
    if (selects.length === 0) continue;
    const query = selects.slice(1).reduce((q, next) => q.unionAll(next), selects[0]);
    for (const r of await query.execute()) owners.set(`${r.kind}:${r.value}`, r.profile_id);
  }
  return owners;
}

/**
 * Reads the identity graph around the batch. On PostgreSQL the profiles are locked (FOR UPDATE, in id
 * order) and, after each lock, the owners re-read until they are stable, so no concurrent merge can move
 * an identifier out from under this transaction (DESIGN invariant 3). A batch whose identifiers nobody
 * owns (new customers) locks nothing and reads them once.
 */
async function loadSnapshot(trx: Trx, lock: boolean, workspaceId: string, keys: Identifier[]): Promise<IdentitySnapshot> {
  let owners = await readOwners(trx, workspaceId, keys);
  let profileIds = new Set(owners.values());
  // The locking read returns the rows as they are once locked: no second read of those profiles.
  const lockedRows = new Map<string, ProfileTable>();
  if (lock) {
    const locked = new Set<string>();
    for (;;) {
      const toLock = [...profileIds].filter((id) => !locked.has(id)).sort();
      // Every owner is locked (or there is none: a batch of new customers): nothing can move. Identifiers
      // nobody owns yet may be claimed by a concurrent batch after any read; the loser of that race hits
      // the identifiers' unique key and its transaction is retried (db.ts), so no re-read is needed.
      if (toLock.length === 0) break;
      for (const r of await trx.selectFrom('profiles').selectAll().where('id', 'in', bucketed(toLock)).orderBy('id').forUpdate().execute()) lockedRows.set(r.id, r);
      toLock.forEach((id) => locked.add(id));
      const again = await readOwners(trx, workspaceId, keys);
      const ids = new Set(again.values());
      const stable = [...ids].every((id) => locked.has(id));
      owners = again;
      profileIds = ids;
      if (stable) break;
    }
  }
  const snapshot: IdentitySnapshot = { owners, profiles: new Map() };
  const idList = [...profileIds];
  if (idList.length === 0) return snapshot;
  for (const part of chunks(idList, 1)) {
    const unread = part.filter((id) => !lockedRows.has(id));
    const rows = unread.length === 0 ? [] : await trx.selectFrom('profiles').selectAll().where('id', 'in', bucketed(unread)).execute();
    for (const id of part) if (lockedRows.has(id)) rows.push(lockedRows.get(id)!);
    for (const r of rows) {
      if (r.merged_into !== null) {
        throw new Error(`identifier points at merged profile ${r.id}; the identity graph is inconsistent`);
      }
      snapshot.profiles.set(r.id, { state: profileFromRow(r), identifiers: [] });
    }
    const ids = await trx
      .selectFrom('identifiers')
      .select(['kind', 'value', 'profile_id'])
      .where('workspace_id', '=', workspaceId)
      .where('profile_id', 'in', bucketed(part))
      .execute();
    for (const i of ids) {
      snapshot.profiles.get(i.profile_id)?.identifiers.push({ kind: asKind(i.kind), value: i.value });
      snapshot.owners.set(`${i.kind}:${i.value}`, i.profile_id);
    }
  }
  return snapshot;
}

/**
 * The batch's live profiles as they are stored now: the snapshot's, with the rows the plan wrote, and
 * whether each holds a user id. Undefined after a merge or a moved identifier (rows then change hands in
 * SQL): the engine reads those batches back.
 */
function storedProfiles(snapshot: IdentitySnapshot, plan: ResolutionPlan, written: ProfileTable[]): Map<string, StoredProfile> | undefined {
  if (plan.merges.length > 0 || plan.movedIdentifiers.length > 0) return undefined;
  const out = new Map<string, StoredProfile>();
  for (const [id, p] of snapshot.profiles) out.set(id, { state: p.state, hasUserId: p.identifiers.some((i) => i.kind === 'user_id') });
  // Read back from the written row, as a fresh read would, so the engine sees exactly what is stored.
  for (const row of written) out.set(row.id, { state: profileFromRow(row), hasUserId: out.get(row.id)?.hasUserId ?? false });
  for (const n of plan.newIdentifiers) {
    const p = out.get(n.profileId);
    if (p && n.identifier.kind === 'user_id') p.hasUserId = true;
  }
  return out;
}

/** The columns a profile upsert takes from the new row (all but id, workspace and merged_into). */
const PROFILE_UPSERT = ['traits', 'field_times', 'contact_points', 'consent', 'timezone', 'locale', 'preferred_channel', 'created_at', 'updated_at'];

/** Writes the plan; returns the profile rows it wrote. */
async function applyPlan(trx: Trx, workspaceId: string, plan: ResolutionPlan, now: number): Promise<ProfileTable[]> {
  const profileRows = plan.profiles.map((p) => profileToRow(p.state, workspaceId));
  const identifierRows = plan.newIdentifiers.map((n) => ({
    workspace_id: workspaceId, kind: n.identifier.kind, value: n.identifier.value, profile_id: n.profileId, created_at: now,
  }));
  const eventRows = plan.events.map(({ event: e, profileId, rejected }) => ({
    id: newId('evt', ms(e.receivedAt)),
    workspace_id: workspaceId,
    message_id: e.messageId,
    profile_id: profileId,
    type: e.type,
    name: e.event,
    user_id: e.userId,
    anonymous_id: e.anonymousId,
    timestamp: ms(e.timestamp),
    received_at: ms(e.receivedAt),
    payload: JSON.stringify(toPayload(e, rejected)),
  }));
  // Multi-row statements of a few fixed shapes (insert-rows.ts): Kysely would build and the database
  // prepare a new statement for every batch size.
  const profiles: Write = { kind: 'insert', table: 'profiles', rows: profileRows, conflict: { column: 'id', update: PROFILE_UPSERT } };
  const identifiers: Write = { kind: 'insert', table: 'identifiers', rows: identifierRows };
  const events: Write = { kind: 'insert', table: 'events', rows: eventRows };
  if (plan.merges.length === 0 && plan.conflicts.length === 0 && plan.movedIdentifiers.length === 0) {
    // Nothing changes hands (most batches): new rows of three tables, one statement on PostgreSQL.
    await writeAll(trx, [profiles, identifiers, events]);
    return profileRows;
  }

  await writeAll(trx, [profiles]);
  for (const m of plan.merges) {
    if (!m.absorbedIsNew) await absorb(trx, workspaceId, m.survivorId, m.absorbedId);
  }
  const log = [
    ...plan.merges.map((m) => ({
      workspace_id: workspaceId, profile_id: m.survivorId, other_profile_id: m.absorbedId, kind: 'merge' as const,
      reason: m.reason, identifier_kind: null, identifier_value: null, message_id: m.messageId, created_at: now,
    })),
    ...plan.conflicts.map((c) => ({
      workspace_id: workspaceId, profile_id: c.profileId, other_profile_id: c.otherProfileId, kind: 'conflict' as const,
      reason: c.reason, identifier_kind: c.identifier.kind, identifier_value: c.identifier.value, message_id: c.messageId,
      created_at: now,
    })),
  ];
  for (const part of chunks(log, 9)) await trx.insertInto('identity_log').values(part).execute();
  await writeAll(trx, [identifiers]);
  for (const m of plan.movedIdentifiers) {
    await trx
      .updateTable('identifiers')
      .set({ profile_id: m.profileId })
      .where('workspace_id', '=', workspaceId)
      .where('kind', '=', m.identifier.kind)
      .where('value', '=', m.identifier.value)
      .execute();
  }
  await writeAll(trx, [events]);
  return profileRows;
}

/** Moves everything of `absorbed` onto `survivor`; the absorbed row remains as a pointer. */
async function absorb(trx: Trx, workspaceId: string, survivorId: string, absorbedId: string): Promise<void> {
  await trx.updateTable('identifiers').set({ profile_id: survivorId })
    .where('workspace_id', '=', workspaceId).where('profile_id', '=', absorbedId).execute();
  await trx.updateTable('events').set({ profile_id: survivorId })
    .where('workspace_id', '=', workspaceId).where('profile_id', '=', absorbedId).execute();
  await trx.updateTable('profiles')
    .set({ merged_into: survivorId, traits: '{}', field_times: '{}', contact_points: '{"push":[]}', consent: '{"channels":{},"topics":{}}', timezone: null, locale: null, preferred_channel: null })
    .where('workspace_id', '=', workspaceId).where('id', '=', absorbedId).execute();
  // Earlier aliases of the absorbed profile now point straight at the survivor.
  await trx.updateTable('profiles').set({ merged_into: survivorId })
    .where('workspace_id', '=', workspaceId).where('merged_into', '=', absorbedId).execute();
}

export interface StoredPayload {
  type: string;
  messageId: string;
  userId: string | null;
  anonymousId: string | null;
  previousId?: string;
  groupId?: string;
  event?: string;
  properties: Record<string, unknown>;
  traits: Record<string, unknown>;
  context: Record<string, unknown>;
  timestamp: string;
  originalTimestamp: string | null;
  sentAt: string | null;
  receivedAt: string;
  extra?: Record<string, unknown>;
  /** Convention values in this call that could not be used (e.g. an invalid phone), with the reason. */
  rejected?: { field: string; value: unknown; reason: string }[];
}

function toPayload(e: IncomingEvent, rejected: StoredPayload['rejected'] = []): StoredPayload {
  const extra: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(e.raw)) if (!KNOWN_FIELDS.has(k)) extra[k] = v;
  return {
    type: e.type,
    messageId: e.messageId,
    userId: e.userId,
    anonymousId: e.anonymousId,
    ...(e.previousId ? { previousId: e.previousId } : {}),
    ...(e.groupId ? { groupId: e.groupId } : {}),
    ...(e.event !== null ? { event: e.event } : {}),
    properties: e.properties,
    traits: e.traits,
    context: e.context,
    timestamp: e.timestamp,
    originalTimestamp: e.originalTimestamp,
    sentAt: e.sentAt,
    receivedAt: e.receivedAt,
    ...(Object.keys(extra).length > 0 ? { extra } : {}),
    ...(rejected.length > 0 ? { rejected } : {}),
  };
}
