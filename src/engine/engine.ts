import { sql, type Transaction } from 'kysely';
import { evaluate, holdsOutsideRun, readPath, type ConditionContext, type EventLike } from '../core/condition-eval.js';
import type { JourneySpec } from '../core/journey-spec.js';
import { chooseChannel } from '../core/reach.js';
import type { Merge } from '../core/resolve.js';
import { addDuration } from '../core/time.js';
import type { IncomingEvent } from '../core/types.js';
import { isHoldout, walk, type WalkInput } from '../core/walk.js';
import { newId } from '../lib/ids.js';
import { transact, type Store } from '../store/db.js';
import { exitVersions, loadVersion, pausedJourneyIds, type ActiveJourneys } from '../store/journeys.js';
import type { Database, RunTable, WaitTable } from '../store/schema.js';
import type { Clock } from './clock.js';
import type { Gate, HeldHop, Outgoing } from './gate.js';
import { claimDeferred, claimDue, type Lane } from './claims.js';
import { RunLedger } from './run-ledger.js';
import {
  applyWalk,
  changesProfiles,
  endRun,
  loadFieldTimes,
  loadProfiles,
  messageStatusOf,
  record,
  runInfo,
  saveProfile,
  settleStatus,
  visitsOf,
  type Db,
  type LoadedProfile,
} from './run-store.js';
import { bucketed } from '../store/prepared.js';

type Trx = Transaction<Database>;

/** Runs customers already had in the journeys their events trigger, by `profileId \0 journeyId`. */
type EarlierRuns = Map<string, { entered_at: number; entry_key: string | null }[]>;

/** One query per batch for the entry rules, instead of one per triggering event. */
async function earlierRuns(trx: Trx, workspaceId: string, journeyIds: string[], profileIds: string[]): Promise<EarlierRuns> {
  const out: EarlierRuns = new Map();
  if (journeyIds.length === 0) return out;
  for (let i = 0; i < profileIds.length; i += 500) {
    const rows = await trx
      .selectFrom('runs')
      .select(['profile_id', 'journey_id', 'entered_at', 'entry_key'])
      .where('profile_id', 'in', bucketed(profileIds.slice(i, i + 500)))
      .where('journey_id', 'in', journeyIds)
      .where('workspace_id', '=', workspaceId)
      .execute();
    for (const r of rows) {
      const key = `${r.profile_id}\u0000${r.journey_id}`;
      out.set(key, [...(out.get(key) ?? []), { entered_at: r.entered_at, entry_key: r.entry_key }]);
    }
  }
  return out;
}

export interface EngineOptions {
  defaultTimeZone?: string;
  /** Due waits handled per transaction. */
  batchSize?: number;
}

/**
 * The journey engine. `onEvents` runs inside the ingestion transaction, so triggers, waits, goals and
 * exits see an event in the same serialized step that stores it. `processDue` fires timers.
 */
export class Engine {
  readonly defaultTimeZone: string;
  private readonly batchSize: number;

  constructor(
    readonly store: Store,
    readonly clock: Clock,
    readonly journeys: ActiveJourneys,
    readonly gate: Gate,
    opts: EngineOptions = {},
  ) {
    this.defaultTimeZone = opts.defaultTimeZone ?? 'UTC';
    this.batchSize = opts.batchSize ?? 500;
  }

  // ------------------------------------------------------------------ events

  /** `stored`: the events' profiles as ingestion just stored them, if it has them (else they are read). */
  async onEvents(
    trx: Trx,
    workspaceId: string,
    events: { event: IncomingEvent; profileId: string }[],
    merges: Merge[],
    stored?: ReadonlyMap<string, LoadedProfile>,
  ): Promise<void> {
    const now = this.clock.now();
    const ledger = new RunLedger(trx);
    for (const m of merges) if (!m.absorbedIsNew) await this.moveRuns(trx, ledger, workspaceId, m.survivorId, m.absorbedId, now);
    await ledger.flush();

    const active = await this.journeys.list(trx, workspaceId);
    const tracks = events.filter((e) => e.event.type === 'track' && e.event.event !== null);
    if (tracks.length === 0) return;
    const triggerNames = new Set(active.map((j) => j.spec.trigger.event));
    const profileIds = [...new Set(tracks.map((e) => e.profileId))];
    const names = [...new Set(tracks.map((e) => e.event.event!))];
    const listeners = await trx
      .selectFrom('waits')
      .selectAll()
      .where('workspace_id', '=', workspaceId)
      .where('profile_id', 'in', bucketed(profileIds))
      .where('event_name', 'in', names)
      .execute();
    const exits = await exitVersions(trx, workspaceId, names);
    if (listeners.length === 0 && exits.size === 0 && !names.some((n) => triggerNames.has(n))) return;
    await ledger.load(listeners.map((l) => l.run_id));
    if (exits.size > 0) await this.loadExitable(trx, ledger, workspaceId, tracks, exits);
    ledger.shareHistory(workspaceId, profileIds);

    const profiles = stored && profileIds.every((id) => stored.has(id)) ? stored : await loadProfiles(trx, workspaceId, profileIds);
    const outgoing: Outgoing[] = [];
    const changed = new Set<string>();
    // Read when an event meets a wait_for listener (not for every batch: goals and exits ignore pauses).
    let paused: Set<string> | undefined;
    const earlier = await earlierRuns(trx, workspaceId, active.filter((j) => names.includes(j.spec.trigger.event)).map((j) => j.journeyId), profileIds);
    const handled = new Set<string>();
    for (const { event, profileId } of tracks) {
      const profile = profiles.get(profileId);
      if (!profile) continue;
      const ev: EventLike = { name: event.event, properties: event.properties, timestamp: event.timestamp };
      if (changed.has(profileId)) {
        // Runs created or advanced by earlier events of this batch may listen for this one.
        await ledger.flush();
        const fresh = await trx.selectFrom('waits').selectAll().where('profile_id', '=', profileId).where('event_name', 'in', names).execute();
        for (const f of fresh) if (!listeners.some((l) => l.id === f.id)) listeners.push(f);
        changed.delete(profileId);
      }
      // Exits first, then goals, then waits: an Unsubscribed that is also awaited still ends the run.
      const exitable = exits.get(event.event!);
      if (exitable) {
        for (const row of ledger.runsOf(profileId)) {
          if (exitable.has(`${row.journey_id}@${row.version}`) && (await this.onExitEvent(trx, ledger, row, ev, event, profile, now, outgoing))) changed.add(profileId);
        }
      }
      // A paused journey holds its steps (wait_for), but goals and exits still count.
      const heard = listeners.filter((l) => l.profile_id === profileId && l.event_name === event.event && !handled.has(l.id));
      if (paused === undefined && heard.some((l) => l.kind === 'wait_for')) paused = await pausedJourneyIds(trx, workspaceId);
      const mine = heard.filter((l) => !(l.kind === 'wait_for' && paused?.has(l.journey_id) === true));
      const order = { goal: 0, wait_for: 1 } as Record<string, number>;
      mine.sort((a, b) => (order[a.kind] ?? 9) - (order[b.kind] ?? 9));
      for (const l of mine) {
        handled.add(l.id);
        await this.onListener(trx, ledger, l, ev, event, profile, now, outgoing);
        changed.add(profileId);
      }
      for (const j of active) {
        if (j.spec.trigger.event !== event.event) continue;
        if (await this.maybeEnter(trx, ledger, earlier, workspaceId, j.journeyId, j.version, j.spec, event, ev, profile, now, outgoing)) changed.add(profileId);
      }
    }
    await ledger.flush();
    await this.gate.record(trx, outgoing, now);
  }

  private conditionContext(ledger: RunLedger, workspaceId: string, profile: LoadedProfile, now: Date, event: EventLike | undefined, enteredAt?: Date): ConditionContext {
    return {
      now,
      profile: profile.state,
      event,
      enteredAt,
      history: ledger.history(workspaceId, profile.state.id),
      reachable: (channel) => chooseChannel([channel], profile.state, profile.hasUserId, 'promotional').ok,
    };
  }

  private async maybeEnter(
    trx: Trx,
    ledger: RunLedger,
    earlier: EarlierRuns,
    workspaceId: string,
    journeyId: string,
    version: number,
    spec: JourneySpec,
    event: IncomingEvent,
    ev: EventLike,
    profile: LoadedProfile,
    now: Date,
    outgoing: Outgoing[],
  ): Promise<boolean> {
    const ctx = this.conditionContext(ledger, workspaceId, profile, now, ev);
    if (spec.trigger.where && !(await holdsOutsideRun(spec.trigger.where, ctx))) return false;
    if (spec.audience && !(await holdsOutsideRun(spec.audience, { ...ctx, event: undefined }))) return false;
    const key = `${profile.state.id}\u0000${journeyId}`;
    // `earlier` holds the stored runs and every run this batch entered, written or not.
    const previous = [...(earlier.get(key) ?? [])].sort((a, b) => b.entered_at - a.entered_at);
    let entryKey: string | null = null;
    const entry = spec.entry;
    if (entry.mode === 'once' && previous.length > 0) return false;
    if (entry.mode === 'cooldown' && previous.length > 0) {
      if (addDuration(new Date(previous[0].entered_at), entry.cooldown).getTime() > now.getTime()) return false;
    }
    if (entry.mode === 'per_key') {
      const value = readPath({ ...event, properties: event.properties, context: event.context }, entry.key);
      if (value === undefined || value === null || typeof value === 'object') return false;
      entryKey = String(value);
      if (previous.some((p) => p.entry_key === entryKey)) return false;
    }
    const at = now.getTime();
    const row: RunTable = {
      id: newId('run', at),
      workspace_id: workspaceId,
      journey_id: journeyId,
      journey_key: spec.key,
      version,
      profile_id: profile.state.id,
      status: 'active',
      entry_key: entryKey,
      holdout: isHoldout(spec, profile.state.id) ? 1 : 0,
      entered_at: at,
      goal_deadline: spec.goal ? addDuration(now, spec.goal.within).getTime() : null,
      converted_at: null,
      ended_at: null,
      end_reason: null,
      trigger: JSON.stringify({ name: ev.name, properties: ev.properties, timestamp: ev.timestamp, messageId: event.messageId }),
      visits: '{}',
      updated_at: at,
    };
    ledger.putRun(row, true);
    // Later events of this batch see this run even after the ledger has written it.
    earlier.set(key, [...(earlier.get(key) ?? []), { entered_at: row.entered_at, entry_key: row.entry_key }]);
    record(ledger, row, '$entry', 'entry', row.holdout ? 'entered (holdout)' : 'entered', now, { event: ev.name, messageId: event.messageId });
    // The goal is a listener with a deadline (its window); exit rules are the version's (journey_exits).
    if (spec.goal && row.goal_deadline !== null) {
      ledger.addWaits([{ id: newId('wait', at), workspace_id: workspaceId, run_id: row.id, journey_id: journeyId, profile_id: row.profile_id, step: '$goal', kind: 'goal', event_name: spec.goal.event, due_at: row.goal_deadline, created_at: at }]);
    }
    const first = Object.keys(spec.steps)[0];
    await this.advance(trx, ledger, row, spec, profile, now, first ? [first] : [], outgoing);
    return true;
  }

  private async advance(trx: Db, ledger: RunLedger, row: RunTable, spec: JourneySpec, profile: LoadedProfile, now: Date, start: string[], outgoing: Outgoing[]): Promise<RunTable> {
    const visits = visitsOf(row);
    const input: WalkInput = {
      spec,
      run: runInfo(row, spec),
      profile: profile.state,
      hasUserId: profile.hasUserId,
      now,
      defaultTimeZone: this.defaultTimeZone,
      history: ledger.history(row.workspace_id, row.profile_id),
      messageStatus: messageStatusOf(trx, row, outgoing),
      visits,
    };
    const result = await walk(input, start);
    if (result.profile) {
      profile.state = result.profile;
      await saveProfile(trx, row.workspace_id, result.profile);
    }
    return applyWalk(ledger, row, spec, result, now, visits, profile, outgoing, input.run);
  }

  private async onListener(trx: Trx, ledger: RunLedger, l: WaitTable, ev: EventLike, event: IncomingEvent, profile: LoadedProfile, now: Date, outgoing: Outgoing[]): Promise<void> {
    const row = await ledger.run(l.run_id);
    // Gone when an earlier event of this step ended the run or fired this listener.
    if (!row || !ledger.hasWait(row.id, l.id)) return;
    const spec = await loadVersion(trx, row.journey_id, row.version);
    // A listener belongs to a run: its conditions may ask about the run's messages too.
    const ctx = { ...this.conditionContext(ledger, row.workspace_id, profile, now, ev, new Date(row.entered_at)), messageStatus: messageStatusOf(trx, row, outgoing) };
    if (l.kind === 'goal') {
      const goal = spec.goal;
      if (!goal || (goal.where && !(await evaluate(goal.where, ctx)))) return;
      ledger.deleteWait(row.id, l.id);
      record(ledger, row, '$goal', 'goal', 'converted', now, { event: ev.name, messageId: event.messageId });
      const converted = { ...row, converted_at: now.getTime() };
      ledger.putRun(converted);
      const finished = row.status === 'completed';
      if (goal.on_reach === 'exit' || finished) {
        endRun(ledger, converted, 'converted', `goal ${goal.event} reached`, now);
      }
      return;
    }
    if (l.kind === 'wait_for') {
      const step = spec.steps[l.step];
      if (!step || step.type !== 'wait_for') return;
      if (step.wait_for.where && !(await evaluate(step.wait_for.where, ctx))) return;
      ledger.deleteWait(row.id, l.id);
      record(ledger, row, l.step, 'wait_for', 'event_received', now, { event: ev.name, messageId: event.messageId });
      await this.advance(trx, ledger, { ...row, status: 'active' }, spec, profile, now, step.onEvent, outgoing);
    }
  }

  /**
   * Puts in the ledger the runs that an exit event of this batch may end: those of the customers who sent
   * one, in a version that exits on it, still open or still tracking their goal. Runs this batch enters
   * join the ledger as they are created.
   */
  private async loadExitable(trx: Trx, ledger: RunLedger, workspaceId: string, tracks: { event: IncomingEvent; profileId: string }[], exits: Map<string, Set<string>>): Promise<void> {
    const who = [...new Set(tracks.filter((t) => exits.has(t.event.event!)).map((t) => t.profileId))];
    const journeyIds = [...new Set([...exits.values()].flatMap((set) => [...set].map((v) => v.slice(0, v.lastIndexOf('@')))))];
    for (let i = 0; i < who.length; i += 500) {
      const rows = await trx
        .selectFrom('runs')
        .select('id')
        .where('workspace_id', '=', workspaceId)
        .where('profile_id', 'in', who.slice(i, i + 500))
        .where('journey_id', 'in', journeyIds)
        .where('status', 'in', ['active', 'waiting', 'completed'])
        .execute();
      await ledger.load(rows.map((r) => r.id));
    }
  }

  /**
   * An event that this run's version exits on (`exit_when`): the first rule whose conditions hold ends the
   * run at once, with its goal. A completed run still tracking its goal ends too; one whose goal window
   * has closed (or that ended otherwise) is over and stays as it is. True when the run ended.
   */
  private async onExitEvent(trx: Trx, ledger: RunLedger, row: RunTable, ev: EventLike, event: IncomingEvent, profile: LoadedProfile, now: Date, outgoing: Outgoing[]): Promise<boolean> {
    const listening = row.status === 'active' || row.status === 'waiting' || (row.status === 'completed' && ledger.waitsOf(row.id).some((w) => w.kind === 'goal'));
    if (!listening) return false;
    const spec = await loadVersion(trx, row.journey_id, row.version);
    const ctx = { ...this.conditionContext(ledger, row.workspace_id, profile, now, ev, new Date(row.entered_at)), messageStatus: messageStatusOf(trx, row, outgoing) };
    for (const [i, rule] of spec.exit_when.entries()) {
      if (rule.event !== ev.name) continue;
      if (rule.where && !(await evaluate(rule.where, ctx))) continue;
      record(ledger, row, `$exit.${i}`, 'exit', 'exited', now, { event: ev.name, messageId: event.messageId });
      endRun(ledger, row, 'exited', `exit event ${ev.name}`, now);
      return true;
    }
    return false;
  }

  /** After a merge: the absorbed profile's runs, waits and messages belong to the survivor; one run per journey continues. */
  private async moveRuns(trx: Trx, ledger: RunLedger, workspaceId: string, survivorId: string, absorbedId: string, now: Date): Promise<void> {
    for (const table of ['runs', 'waits', 'messages'] as const) {
      await trx.updateTable(table).set({ profile_id: survivorId }).where('workspace_id', '=', workspaceId).where('profile_id', '=', absorbedId).execute();
    }
    const open = await trx
      .selectFrom('runs')
      .selectAll()
      .where('profile_id', '=', survivorId)
      .where('status', 'in', ['active', 'waiting'])
      .orderBy('entered_at')
      .orderBy('id')
      .execute();
    const seen = new Set<string>();
    await ledger.load(open.map((r) => r.id));
    for (const r of open) {
      if (!seen.has(r.journey_id)) {
        seen.add(r.journey_id);
        continue;
      }
      // The run that entered first continues; the later duplicate ends.
      record(ledger, r, '$merge', 'merge', 'exited', now, { survivor: survivorId, absorbed: absorbedId });
      endRun(ledger, r, 'exited', 'merged: the customer already had an earlier run of this journey', now);
    }
  }

  // ------------------------------------------------------------------ timers

  /** Fires up to one batch of waits due at or before `now` (of one lane's customers); returns how many fired. */
  async processDue(now: Date = this.clock.now(), lane?: Lane): Promise<number> {
    const paused = await pausedJourneyIds(this.store.db);
    return transact(this.store, async (trx) => {
      const due = await claimDue(trx, this.store.dialect, now, this.batchSize, paused, lane);
      if (due.length === 0) return 0;
      const profileIds = [...new Set(due.map((d) => d.profile_id))].sort();
      const byWorkspace = new Map<string, string[]>();
      for (const d of due) byWorkspace.set(d.workspace_id, [...(byWorkspace.get(d.workspace_id) ?? []), d.profile_id]);
      const profiles = new Map<string, LoadedProfile>();
      const postgres = this.store.dialect === 'postgres';
      if (postgres && byWorkspace.size === 1) {
        // One workspace, the usual case: the customers are locked (in id order) by the read of them.
        const [workspaceId] = byWorkspace.keys();
        for (const [id, p] of await loadProfiles(trx, workspaceId, profileIds, { lock: true, fieldTimes: false })) profiles.set(id, p);
      } else {
        if (postgres) await trx.selectFrom('profiles').select('id').where('id', 'in', bucketed(profileIds)).orderBy('id').forUpdate().execute();
        for (const [ws, ids] of byWorkspace) for (const [id, p] of await loadProfiles(trx, ws, [...new Set(ids)], { fieldTimes: false })) profiles.set(id, p);
      }
      const outgoing: Outgoing[] = [];
      const ledger = new RunLedger(trx);
      for (const [ws, ids] of byWorkspace) ledger.shareHistory(ws, ids);
      await ledger.load(due.map((d) => d.run_id));
      // Field times only for a batch with a version that may change a profile (update_profile).
      if (await this.mayChangeProfiles(trx, ledger, due)) await loadFieldTimes(trx, profiles);
      for (const d of due) await this.fire(trx, ledger, d, profiles, now, outgoing);
      await ledger.flush();
      await this.gate.record(trx, outgoing, now);
      return due.length;
    });
  }

  private async mayChangeProfiles(trx: Trx, ledger: RunLedger, due: WaitTable[]): Promise<boolean> {
    const versions = new Set<string>();
    for (const d of due) {
      const row = await ledger.run(d.run_id);
      if (!row || versions.has(`${row.journey_id}@${row.version}`)) continue;
      versions.add(`${row.journey_id}@${row.version}`);
      if (changesProfiles(await loadVersion(trx, row.journey_id, row.version))) return true;
    }
    return false;
  }

  private async fire(trx: Trx, ledger: RunLedger, w: WaitTable, profiles: Map<string, LoadedProfile>, now: Date, outgoing: Outgoing[]): Promise<void> {
    const at = now;
    const row = await ledger.run(w.run_id);
    if (!row) {
      await trx.deleteFrom('waits').where('id', '=', w.id).execute(); // an orphan: never fire it again
      return;
    }
    // False when an earlier timer of this batch ended the run (and cleared its waits).
    if (!ledger.deleteWait(w.run_id, w.id)) return;
    const profile = profiles.get(w.profile_id);
    if (!profile) return;
    const spec = await loadVersion(trx, row.journey_id, row.version);
    if (w.kind === 'goal') {
      record(ledger, row, '$goal', 'goal', 'window closed', at);
      return;
    }
    const step = spec.steps[w.step];
    if (!step) return;
    if (w.kind === 'wait' && step.type === 'wait') {
      record(ledger, row, w.step, 'wait', 'resumed', at);
      await this.advance(trx, ledger, { ...row, status: 'active' }, spec, profile, at, step.next, outgoing);
    } else if (w.kind === 'wait_for' && step.type === 'wait_for') {
      record(ledger, row, w.step, 'wait_for', 'timed_out', at);
      await this.advance(trx, ledger, { ...row, status: 'active' }, spec, profile, at, step.onTimeout, outgoing);
    } else {
      settleStatus(ledger, row, at);
    }
  }

  /** Deferred messages whose time has come pass the gate again, with whatever else waits for that customer. */
  async processDeferred(now: Date = this.clock.now(), lane?: Lane): Promise<number> {
    return transact(this.store, async (trx) => {
      const batch = await claimDeferred(trx, this.store.dialect, now, this.batchSize, lane);
      if (batch.length === 0) return 0;
      const customers = [...new Set(batch.map((d) => d.profile_id))].sort();
      if (this.store.dialect === 'postgres') {
        await trx.selectFrom('profiles').select('id').where('id', 'in', bucketed(customers)).orderBy('id').forUpdate().execute();
      }
      // Everything due for these customers competes together, by priority, even beyond one batch.
      const due = await trx
        .selectFrom('messages')
        // What a new gate pass needs (not the earlier decision, reason or tags: wide text, read for nothing).
        .select(['id', 'workspace_id', 'profile_id', 'status', 'pending', 'fallback_of', 'run_id', 'journey_id', 'journey_key', 'version', 'step', 'created_at', 'source', 'idempotency_key'])
        .where('profile_id', 'in', bucketed(customers))
        .where('status', 'in', ['deferred', 'held'])
        .where('not_before', '<=', now.getTime())
        .execute();
      const profiles = new Map<string, LoadedProfile>();
      for (const ws of new Set(due.map((d) => d.workspace_id))) {
        const ids = [...new Set(due.filter((d) => d.workspace_id === ws).map((d) => d.profile_id))];
        // The gate decides and sends; nothing here changes a profile.
        for (const [id, p] of await loadProfiles(trx, ws, ids, { fieldTimes: false })) profiles.set(id, p);
      }
      const items: Outgoing[] = [];
      for (const m of due) {
        const profile = profiles.get(m.profile_id);
        if (!profile || !m.pending) continue;
        const pending = JSON.parse(m.pending) as HeldHop;
        let fallback: Outgoing['fallback'];
        if (m.status === 'held') {
          const verdict = await hopVerdict(trx, m.fallback_of ?? '', pending.hop.when);
          if (!verdict.fire) {
            await trx.updateTable('messages').set({ status: 'cancelled', reason: verdict.because, pending: null, updated_at: now.getTime() }).where('id', '=', m.id).execute();
            continue;
          }
          fallback = { of: m.fallback_of ?? '', because: verdict.because };
        }
        const item: Outgoing = {
          id: m.id,
          workspaceId: m.workspace_id,
          profile,
          run: m.run_id && m.journey_id && m.journey_key && m.version !== null && m.step ? { id: m.run_id, journeyId: m.journey_id, journeyKey: m.journey_key, version: m.version, stepId: m.step } : null,
          templates: pending.templates,
          vars: pending.vars,
          request: pending.request,
          holdout: false,
          createdAt: m.created_at,
          source: m.source === 'api' ? 'api' : 'journey',
          idempotencyKey: m.idempotency_key,
          existing: true,
        };
        if (fallback) item.fallback = fallback;
        items.push(item);
      }
      await this.gate.record(trx, items, now);
      return due.length;
    });
  }

  /** The earliest pending timer or deferred message at or before `limit`, skipping paused journeys. */
  async nextDue(limit: Date): Promise<Date | null> {
    const paused = await pausedJourneyIds(this.store.db);
    let q = this.store.db.selectFrom('waits').select('due_at').where('due_at', '<=', limit.getTime());
    if (paused.size > 0) q = q.where('journey_id', 'not in', [...paused]);
    const row = await q.orderBy('due_at').limit(1).executeTakeFirst();
    const deferred = await this.store.db
      .selectFrom('messages')
      .select('not_before')
      .where(sql<boolean>`status in ('deferred', 'held')`)
      .where('not_before', '<=', limit.getTime())
      .orderBy('not_before')
      .limit(1)
      .executeTakeFirst();
    const times = [row?.due_at, deferred?.not_before].filter((t): t is number => typeof t === 'number');
    return times.length > 0 ? new Date(Math.min(...times)) : null;
  }
}

const REACHED: Record<string, number> = { sent: 1, delivered: 2, opened: 3, clicked: 4, replied: 5 };
const NEEDS: Record<string, number> = { not_delivered: 2, not_opened: 3, not_clicked: 4 };

/**
 * Should an escalation hop go out? Engagement with any message of the chain (the customer opened or
 * clicked the email) stops every pending hop; otherwise the hop fires when the previous message did not
 * reach the status its condition asks for.
 */
async function hopVerdict(trx: Trx, parentId: string, when: string): Promise<{ fire: boolean; because: string }> {
  const chain: { id: string; status: string; channel: string | null; fallback_of: string | null }[] = [];
  for (let id: string | null = parentId; id && chain.length < 20; ) {
    const row = await trx.selectFrom('messages').select(['id', 'status', 'channel', 'fallback_of']).where('id', '=', id).executeTakeFirst();
    if (!row) break;
    chain.push(row);
    id = row.fallback_of;
  }
  const parent = chain[0];
  if (!parent) return { fire: false, because: `the message it escalates from (${parentId}) no longer exists` };
  const engaged = chain.find((m) => (REACHED[m.status] ?? 0) >= 3);
  if (engaged) return { fire: false, because: `the customer engaged with ${engaged.channel} message ${engaged.id} (${engaged.status})` };
  if (when === 'failed') {
    return parent.status === 'failed'
      ? { fire: true, because: `${parent.channel} message ${parent.id} failed` }
      : { fire: false, because: `${parent.channel} message ${parent.id} did not fail (${parent.status})` };
  }
  const reached = REACHED[parent.status] ?? 0;
  return reached >= NEEDS[when]
    ? { fire: false, because: `${parent.channel} message ${parent.id} was ${parent.status}` }
    : { fire: true, because: `${parent.channel} message ${parent.id} was ${when.replace('_', ' ')} in time (${parent.status})` };
}
