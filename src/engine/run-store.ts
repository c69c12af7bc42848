import { sha256Hex } from '../lib/sha256.js';
import { sql, type Kysely, type Transaction } from 'kysely';
import type { EventLike, SendOutcome } from '../core/condition-eval.js';
import type { JourneySpec } from '../core/journey-spec.js';
import type { ProfileState } from '../core/types.js';
import { templateVars, type RunInfo, type WalkResult } from '../core/walk.js';
import type { Outgoing } from './gate.js';
import { newId } from '../lib/ids.js';
import { profileFromRow, profileToRow } from '../store/rows.js';
import type { Database, RunTable } from '../store/schema.js';
import type { RunLedger } from './run-ledger.js';
import { bucketed } from '../store/prepared.js';
import { isoTime } from '../core/iso-time.js';

// Database side of runs: loading what the interpreter needs and applying what it decided, always inside
// the caller's transaction (the customer's serialized step).

export type Db = Kysely<Database> | Transaction<Database>;

/**
 * Deterministic message id: the same run, step and attempt always yield the same id (DESIGN invariant 2).
 * It starts with the run's own id, so a batch's messages (runs advanced together were created together)
 * land side by side in the id index instead of one random page each.
 */
export function messageId(runId: string, stepId: string, attempt: number): string {
  const hash = sha256Hex(`${runId}\u0000${stepId}\u0000${attempt}`);
  return `msg_${runId.slice(runId.indexOf('_') + 1)}${hash.slice(0, 16)}`;
}

/** The id messages had before ids started with their run's (stored rows keep it). */
export function legacyMessageId(runId: string, stepId: string, attempt: number): string {
  return `msg_${sha256Hex(`${runId}\u0000${stepId}\u0000${attempt}`).slice(0, 32)}`;
}

export interface LoadedProfile {
  state: ProfileState;
  hasUserId: boolean;
}

/** What a profile read for decisions needs: every column but the field times (see loadProfiles). */
const DECISION_COLUMNS = ['id', 'workspace_id', 'merged_into', 'traits', 'contact_points', 'consent', 'timezone', 'locale', 'preferred_channel', 'created_at', 'updated_at'] as const;

/**
 * `lock` (PostgreSQL): lock the profiles read, in id order (the order every transaction locks customers
 * in). `fieldTimes: false` leaves out when each field last changed, which only changing the profile needs
 * (an `update_profile` step): ~40% of a profile row's bytes, read for every customer of every timer batch.
 * Such a profile throws if asked for them; `loadFieldTimes` adds them.
 */
export async function loadProfiles(db: Db, workspaceId: string, ids: string[], opts: { lock?: boolean; fieldTimes?: boolean } = {}): Promise<Map<string, LoadedProfile>> {
  const out = new Map<string, LoadedProfile>();
  if (ids.length === 0) return out;
  const columns = (opts.fieldTimes === false ? DECISION_COLUMNS : [...DECISION_COLUMNS, 'field_times' as const]).map((c) => `profiles.${c}` as const);
  // Whether each customer has a user id, asked per row in the same query: a scalar subquery runs as one
  // probe of (workspace_id, profile_id, kind) per profile whatever the statistics (as a join, a stale
  // plan once read every user id of the workspace), and answers one flag instead of every identifier
  // of every customer (~4 rows each) in a second round trip.
  const rows = await db
    .selectFrom('profiles')
    .select(columns)
    .select((eb) =>
      eb
        .selectFrom('identifiers')
        .select(sql.lit(1).as('one'))
        .whereRef('identifiers.workspace_id', '=', 'profiles.workspace_id')
        .whereRef('identifiers.profile_id', '=', 'profiles.id')
        .where('identifiers.kind', '=', 'user_id')
        .limit(1)
        .as('has_user_id'),
    )
    .where('profiles.workspace_id', '=', workspaceId)
    .where('profiles.id', 'in', bucketed(ids))
    .$if(opts.lock === true, (q) => q.orderBy('profiles.id').forUpdate('profiles'))
    .execute();
  for (const r of rows) out.set(r.id, { state: profileFromRow(r), hasUserId: r.has_user_id !== null });
  return out;
}

/** Adds the field times to profiles read without them (before a step changes them). */
export async function loadFieldTimes(db: Db, profiles: Map<string, LoadedProfile>): Promise<void> {
  const ids = [...profiles.keys()];
  for (let i = 0; i < ids.length; i += 500) {
    const rows = await db.selectFrom('profiles').select(['id', 'field_times']).where('id', 'in', bucketed(ids.slice(i, i + 500))).execute();
    for (const r of rows) {
      const p = profiles.get(r.id);
      if (p) p.state.fieldTimes = JSON.parse(r.field_times) as Record<string, string>;
    }
  }
}

/** Whether a version has steps that change the profile (and so need its field times). */
export function changesProfiles(spec: JourneySpec): boolean {
  let known = profileChanges.get(spec);
  if (known === undefined) {
    known = Object.values(spec.steps).some((s) => s.type === 'update_profile');
    profileChanges.set(spec, known);
  }
  return known;
}
const profileChanges = new WeakMap<JourneySpec, boolean>();

export async function saveProfile(db: Db, workspaceId: string, p: ProfileState): Promise<void> {
  const r = profileToRow(p, workspaceId);
  await db
    .updateTable('profiles')
    .set({ traits: r.traits, field_times: r.field_times, updated_at: r.updated_at })
    .where('workspace_id', '=', workspaceId)
    .where('id', '=', p.id)
    .execute();
}

/** The customer's `track` events with this name since a time, oldest first. */
export function historyOf(db: Db, workspaceId: string, profileId: string) {
  return async (name: string, since: Date | undefined): Promise<EventLike[]> => {
    let q = db
      .selectFrom('events')
      .select(['name', 'timestamp', 'payload'])
      .where('workspace_id', '=', workspaceId)
      .where('profile_id', '=', profileId)
      .where('type', '=', 'track')
      .where('name', '=', name);
    if (since) q = q.where('timestamp', '>=', since.getTime());
    const rows = await q.orderBy('timestamp').execute();
    return rows.map((r) => historyEvent(r.name, r.timestamp, r.payload));
  };
}

/** Most history checks only ask whether or when an event happened: parse its payload when read. */
export function historyEvent(name: string | null, timestamp: number, payload: string): EventLike {
  let properties: Record<string, unknown> | undefined;
  return {
    name,
    timestamp: isoTime(timestamp),
    get properties() {
      properties ??= (JSON.parse(payload) as { properties?: Record<string, unknown> }).properties ?? {};
      return properties;
    },
  };
}

const STATUS_RANK: Record<string, number> = { sent: 1, delivered: 2, opened: 3, clicked: 4, replied: 5 };

export function messageStatusOf(db: Db, run: { id: string; profile_id: string }, outgoing: Outgoing[] = []) {
  const runId = run.id;
  return async (stepId: string): Promise<SendOutcome | null> => {
    // By customer first: a run's messages are its customer's (merges move both), and that index exists.
    const rows = await db.selectFrom('messages').select('status').where('profile_id', '=', run.profile_id).where('run_id', '=', runId).where('step', '=', stepId).execute();
    // A message still on its way to the gate in this step counts as sent, like a queued one.
    if (rows.length === 0) return outgoing.some((o) => o.run?.id === runId && o.run.stepId === stepId) ? 'sent' : null;
    let best: SendOutcome | null = null;
    let committed = false;
    for (const { status } of rows) {
      if (status === 'queued' || status === 'sending' || status === 'retrying') committed = true;
      if (status === 'queued' || status === 'sending' || status === 'retrying' || status === 'deferred') continue;
      if (status in STATUS_RANK) {
        if (best === null || !(best in STATUS_RANK) || STATUS_RANK[status] > STATUS_RANK[best]) best = status as SendOutcome;
      } else if (best === null) best = status as SendOutcome;
    }
    // A queued message counts as sent for "did we message them": its ledger row is the commitment.
    return best ?? (committed ? 'sent' : null);
  };
}

export function runInfo(row: RunTable, spec: JourneySpec): RunInfo {
  return {
    id: row.id,
    journeyKey: row.journey_key,
    journeyName: spec.name,
    version: row.version,
    profileId: row.profile_id,
    enteredAt: new Date(row.entered_at),
    holdout: row.holdout === 1,
    trigger: JSON.parse(row.trigger) as EventLike,
  };
}

export function visitsOf(row: RunTable): Map<string, number> {
  return new Map(Object.entries(JSON.parse(row.visits) as Record<string, number>));
}

/**
 * Writes a walk's decisions: history, waits and the run's new status. Its messages join `outgoing`, which
 * the send gate decides together, by priority, at the end of the customer's step.
 */
export function applyWalk(
  ledger: RunLedger,
  row: RunTable,
  spec: JourneySpec,
  result: WalkResult,
  now: Date,
  visits: Map<string, number>,
  profile: LoadedProfile,
  outgoing: Outgoing[],
  run: RunInfo = runInfo(row, spec),
): RunTable {
  const at = now.getTime();
  for (const r of result.records) {
    visits.set(r.stepId, (visits.get(r.stepId) ?? 0) + 1);
    ledger.step(row.workspace_id, row.id, [r.stepId, r.type, at, r.outcome, r.detail ?? null]);
  }
  if (result.messages.length > 0) {
    const vars = templateVars({ spec, run, profile: profile.state });
    for (const m of result.messages) {
      outgoing.push({
        id: messageId(row.id, m.stepId, m.attempt),
        workspaceId: row.workspace_id,
        profile,
        run: { id: row.id, journeyId: row.journey_id, journeyKey: row.journey_key, version: row.version, stepId: m.stepId },
        request: m.request,
        templates: m.templates,
        vars,
        holdout: row.holdout === 1,
        createdAt: at,
        source: 'journey',
        idempotencyKey: null,
        existing: false,
      });
    }
  }
  // A run waits at a step at most once: a path that reaches a step where the run already waits (since an
  // earlier walk, or by another path of this one) joins that wait. Parallel paths that loop back into a
  // wait (s2: wait, next [s0, s2]; s0 -> s2) used to double the run's timers at every lap, without end.
  let waits = result.waits;
  if (waits.length > 0) {
    const waitingAt = new Set(ledger.waitsOf(row.id).filter((w) => w.kind === 'wait' || w.kind === 'wait_for').map((w) => w.step));
    waits = waits.filter((w) => !waitingAt.has(w.stepId) && waitingAt.add(w.stepId));
  }
  if (waits.length > 0 && result.exit === null) {
    ledger.addWaits(
      waits.map((w) => ({
        id: newId('wait', at),
        workspace_id: row.workspace_id,
        run_id: row.id,
        journey_id: row.journey_id,
        profile_id: row.profile_id,
        step: w.stepId,
        kind: w.kind,
        event_name: w.eventName,
        due_at: w.dueAt.getTime(),
        created_at: at,
      })),
    );
  }
  if (result.exit !== null) return endRun(ledger, row, 'exited', result.exit, now, visits);
  return settleStatus(ledger, { ...row, visits: JSON.stringify(Object.fromEntries(visits)) }, now);
}

/** waiting while any path waits; completed when none does (its goal may still be tracked). */
export function settleStatus(ledger: RunLedger, row: RunTable, now: Date): RunTable {
  const pending = ledger.waitsOf(row.id).some((w) => w.kind === 'wait' || w.kind === 'wait_for');
  const ended = row.status === 'converted' || row.status === 'exited' || row.status === 'completed';
  let status = row.status;
  let endedAt = row.ended_at;
  let endReason = row.end_reason;
  if (!ended) {
    if (pending) status = 'waiting';
    else {
      status = row.converted_at !== null ? 'converted' : 'completed';
      endedAt = now.getTime();
      endReason = 'every path ended';
    }
  }
  const next = { ...row, status, ended_at: endedAt, end_reason: endReason, updated_at: now.getTime() };
  ledger.putRun(next);
  return next;
}

/** Ends a run now: no more steps, no more listeners (the goal included). */
export function endRun(ledger: RunLedger, row: RunTable, status: 'exited' | 'converted', reason: string, now: Date, visits?: Map<string, number>): RunTable {
  ledger.deleteWaitsOf(row.id);
  const at = now.getTime();
  const next: RunTable = {
    ...row,
    status,
    ended_at: row.ended_at ?? at,
    end_reason: reason,
    updated_at: at,
    visits: visits ? JSON.stringify(Object.fromEntries(visits)) : row.visits,
  };
  ledger.putRun(next);
  return next;
}

export function record(ledger: RunLedger, row: RunTable, step: string, type: string, outcome: string, now: Date, detail?: Record<string, unknown>): void {
  ledger.step(row.workspace_id, row.id, [step, type, now.getTime(), outcome, detail ?? null]);
}
