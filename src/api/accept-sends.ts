import type { Transaction } from 'kysely';
import type { SendStep } from '../core/journey-spec.js';
import { profileVars, sendRequest } from '../core/walk.js';
import { apiMessageId, type Gate, type Outgoing } from '../engine/gate.js';
import { loadProfiles, type LoadedProfile } from '../engine/run-store.js';
import { newId } from '../lib/ids.js';
import type { Settled } from '../lib/group-commit.js';
import type { Dialect } from '../store/db.js';
import { messageView, type MessageView } from '../store/messages.js';
import { resolveRef, type ProfileRef } from '../store/profiles.js';
import type { Database } from '../store/schema.js';
import { HttpError } from './errors.js';

// The send API's transaction for a group of requests (POST /v1/messages): each request is resolved and
// checked on its own, in order, and then the gate decides all of them in one call, so several messages of
// one customer are decided together, highest priority first. A request that can't be accepted (an unknown
// profile) gets its own error and is left out; the others go on.
//
// Everything here is derived from the inputs inside `trx`, so `transact` may run it again from the start
// after a PostgreSQL serialization failure, deadlock or unique violation.

/** One validated POST /v1/messages. */
export interface SendInput {
  workspaceId: string;
  /** The ref as the caller wrote it, for the error message. */
  to: string;
  ref: ProfileRef;
  send: SendStep;
  data: Record<string, unknown>;
  idempotencyKey: string | null;
  /** When the request arrived (engine clock, ms): orders same-priority messages of one customer. */
  receivedAt: number;
}

export interface Accepted {
  /** The message as accepted, read inside the transaction (before the outbox can lease it). */
  message: MessageView | null;
  /** The idempotency key was already used: the existing message, nothing new. */
  replayed: boolean;
}

const refKey = (workspaceId: string, ref: ProfileRef) =>
  `${workspaceId}\u0000${'profileId' in ref ? `id:${ref.profileId}` : `${ref.identifier.kind}:${ref.identifier.value}`}`;
const idemKey = (workspaceId: string, key: string) => `${workspaceId}\u0000${key}`;

export async function acceptSends(trx: Transaction<Database>, dialect: Dialect, gate: Gate, sends: SendInput[], now: Date): Promise<Settled<Accepted>[]> {
  const profileOf = await resolveAll(trx, sends);
  // The customers' line: caps and idempotency are decided under their profiles' locks.
  if (dialect === 'postgres') await lockProfiles(trx, sends, profileOf);

  const existing = await existingByKey(trx, sends, profileOf);
  const profiles = await loadAll(trx, sends, profileOf, existing);

  type Plan = { error: HttpError } | { id: string; replayed: boolean };
  const claimed = new Map<string, string>();
  const outgoing: Outgoing[] = [];
  const plans: Plan[] = sends.map((s) => {
    const profileId = profileOf.get(refKey(s.workspaceId, s.ref)) ?? null;
    const unknown = () => ({ error: new HttpError(404, 'not_found', `no profile matches "${s.to}"; identify the customer first`) });
    if (profileId === null) return unknown();
    if (s.idempotencyKey !== null) {
      const k = idemKey(s.workspaceId, s.idempotencyKey);
      // Stored before this group, or taken by an earlier request of the same group: one message either way.
      const prior = existing.get(k) ?? claimed.get(k);
      if (prior !== undefined) return { id: prior, replayed: true };
    }
    const profile = profiles.get(profileId);
    if (!profile) return unknown();
    const id = apiMessageId(s.workspaceId, s.idempotencyKey, newId('msg', s.receivedAt));
    if (s.idempotencyKey !== null) claimed.set(idemKey(s.workspaceId, s.idempotencyKey), id);
    outgoing.push({
      id,
      workspaceId: s.workspaceId,
      profile,
      run: null,
      request: sendRequest(s.send),
      templates: s.send.content,
      vars: { profile: profileVars(profile.state), event: null, journey: null, run: null, data: s.data },
      holdout: false,
      createdAt: s.receivedAt,
      source: 'api',
      idempotencyKey: s.idempotencyKey,
      existing: false,
    });
    return { id, replayed: false };
  });

  if (outgoing.length > 0) await gate.record(trx, outgoing, now);

  // Read inside the transaction: each answer is its message as accepted.
  const ids = [...new Set(plans.flatMap((p) => ('id' in p ? [p.id] : [])))];
  const rows = ids.length === 0 ? [] : await trx.selectFrom('messages').selectAll().where('id', 'in', ids).execute();
  const byId = new Map(rows.map((r) => [r.id, r]));
  return plans.map((p, n) => {
    if ('error' in p) return { ok: false, error: p.error };
    const row = byId.get(p.id);
    const message = row && row.workspace_id === sends[n].workspaceId ? messageView(row) : null;
    return { ok: true, value: { message, replayed: p.replayed } };
  });
}

/** The profile id of every distinct ref of the group (null: no such profile), keyed by `refKey`. */
async function resolveAll(trx: Transaction<Database>, sends: SendInput[]): Promise<Map<string, string | null>> {
  const out = new Map<string, string | null>();
  for (const s of sends) {
    const k = refKey(s.workspaceId, s.ref);
    if (!out.has(k)) out.set(k, await resolveRef(trx, s.workspaceId, s.ref));
  }
  return out;
}

/**
 * PostgreSQL: locks every profile of the group in one statement, in id order (as ingestion and the timers
 * do), so concurrent groups can't deadlock. A profile merged away before its lock was granted sends its refs
 * to the survivor, which is locked in turn.
 */
async function lockProfiles(trx: Transaction<Database>, sends: SendInput[], profileOf: Map<string, string | null>): Promise<void> {
  const locked = new Set<string>();
  for (let round = 0; round < 16; round++) {
    const toLock = [...new Set([...profileOf.values()].filter((id): id is string => id !== null && !locked.has(id)))].sort();
    if (toLock.length === 0) return;
    const rows = await trx.selectFrom('profiles').select(['id', 'merged_into']).where('id', 'in', toLock).orderBy('id').forUpdate().execute();
    for (const id of toLock) locked.add(id);
    const merged = new Set(rows.filter((r) => r.merged_into !== null).map((r) => r.id));
    if (merged.size === 0) return;
    for (const s of sends) {
      const k = refKey(s.workspaceId, s.ref);
      const id = profileOf.get(k);
      if (id != null && merged.has(id)) profileOf.set(k, await resolveRef(trx, s.workspaceId, s.ref));
    }
  }
}

/** Messages already stored under the group's idempotency keys, keyed by `idemKey`. */
async function existingByKey(trx: Transaction<Database>, sends: SendInput[], profileOf: Map<string, string | null>): Promise<Map<string, string>> {
  const keysByWorkspace = new Map<string, Set<string>>();
  for (const s of sends) {
    if (s.idempotencyKey === null || profileOf.get(refKey(s.workspaceId, s.ref)) == null) continue;
    let keys = keysByWorkspace.get(s.workspaceId);
    if (!keys) keysByWorkspace.set(s.workspaceId, (keys = new Set()));
    keys.add(s.idempotencyKey);
  }
  const out = new Map<string, string>();
  for (const [ws, keys] of keysByWorkspace) {
    const rows = await trx.selectFrom('messages').select(['id', 'idempotency_key']).where('workspace_id', '=', ws).where('idempotency_key', 'in', [...keys]).execute();
    for (const r of rows) if (r.idempotency_key !== null) out.set(idemKey(ws, r.idempotency_key), r.id);
  }
  return out;
}

/** The profiles of the requests that will make a new message, one read per workspace. */
async function loadAll(
  trx: Transaction<Database>,
  sends: SendInput[],
  profileOf: Map<string, string | null>,
  existing: Map<string, string>,
): Promise<Map<string, LoadedProfile>> {
  const idsByWorkspace = new Map<string, Set<string>>();
  for (const s of sends) {
    const id = profileOf.get(refKey(s.workspaceId, s.ref));
    if (id == null) continue;
    if (s.idempotencyKey !== null && existing.has(idemKey(s.workspaceId, s.idempotencyKey))) continue;
    let ids = idsByWorkspace.get(s.workspaceId);
    if (!ids) idsByWorkspace.set(s.workspaceId, (ids = new Set()));
    ids.add(id);
  }
  const out = new Map<string, LoadedProfile>();
  for (const [ws, ids] of idsByWorkspace) for (const [id, p] of await loadProfiles(trx, ws, [...ids])) out.set(id, p);
  return out;
}
