import type { EventLike } from '../core/condition-eval.js';
import { BatchHistory } from './batch-history.js';
import { historyOf, type Db } from './run-store.js';
import { writeAll } from '../store/insert-rows.js';
import type { RunTable, WaitTable } from '../store/schema.js';
import { bucketed } from '../store/prepared.js';

// The runs, waits and step history that one engine transaction touches, kept in memory and written back
// in a few multi-row statements at `flush`. One fired timer used to cost about seven single-row
// statements (delete the wait, load the run, look for pending waits, insert history, insert waits, update
// the run); a batch of 200 timers now costs a handful. Reads of runs and their waits go through the
// ledger, so the engine always sees its own unflushed writes.

/** Runs read per statement: well under SQLite's and PostgreSQL's bound-parameter limits. */
const CHUNK = 400;

/**
 * What the ledger keeps of a run's waits: enough to tell whether the run still waits and to remove them.
 * Read with only these columns: turning rows into JavaScript objects, one string per text column, costs
 * several times the index lookups (a batch of 500 runs reads ~2,000 waits).
 */
export type LedgerWait = Pick<WaitTable, 'id' | 'run_id' | 'kind' | 'step'>;

/** One step of a run's history as `run_history.steps` holds it: step, type, at (epoch ms), outcome, detail. */
export type HistoryStep = [step: string, type: string, at: number, outcome: string, detail: Record<string, unknown> | null];

/** What changes in a run after it is created. */
const RUN_STATE = ['status', 'converted_at', 'ended_at', 'end_reason', 'visits', 'updated_at'] as const;

export class RunLedger {
  private readonly runs = new Map<string, RunTable>();
  /** Every wait of each loaded run, by run id: what the database holds plus this ledger's changes. */
  private readonly waitsByRun = new Map<string, Map<string, LedgerWait>>();
  private readonly dirtyRuns = new Set<string>();
  /** Dirty runs not yet in the database: inserted at flush, where the others are updated. */
  private readonly newRuns = new Set<string>();
  private readonly newWaits = new Map<string, WaitTable>();
  private readonly goneWaits = new Set<string>();
  /** Steps taken since the last flush, by run: one history row per run at flush. */
  private taken = new Map<string, { workspaceId: string; steps: HistoryStep[] }>();
  private readonly histories = new Map<string, BatchHistory>();

  constructor(private readonly db: Db) {}

  /** Answers this batch's history questions together for these customers (see batch-history.ts). */
  shareHistory(workspaceId: string, profileIds: Iterable<string>): void {
    this.histories.set(workspaceId, new BatchHistory(this.db, workspaceId, profileIds));
  }

  history(workspaceId: string, profileId: string): (name: string, since: Date | undefined) => Promise<EventLike[]> {
    return this.histories.get(workspaceId)?.of(profileId) ?? historyOf(this.db, workspaceId, profileId);
  }

  /** Loads runs and all their waits in two queries; runs already known are kept as they are. */
  async load(runIds: Iterable<string>): Promise<void> {
    const missing = [...new Set(runIds)].filter((id) => !this.runs.has(id));
    for (let i = 0; i < missing.length; i += CHUNK) {
      const ids = missing.slice(i, i + CHUNK);
      const rows = await this.db.selectFrom('runs').selectAll().where('id', 'in', bucketed(ids)).execute();
      const loaded = new Set<string>();
      for (const r of rows) {
        this.runs.set(r.id, r);
        this.waitsByRun.set(r.id, new Map());
        loaded.add(r.id);
      }
      if (rows.length === 0) continue;
      // Through the customers (waits are indexed by customer, as messages are): their other runs' waits
      // are left out; so are waits of runs this ledger already had (it holds their current state).
      const customers = [...new Set(rows.map((r) => r.profile_id))];
      const waits = await this.db.selectFrom('waits').select(['id', 'run_id', 'kind', 'step']).where('profile_id', 'in', bucketed(customers)).execute();
      for (const w of waits) if (loaded.has(w.run_id) && !this.goneWaits.has(w.id)) this.waitsByRun.get(w.run_id)!.set(w.id, w);
    }
  }

  async run(id: string): Promise<RunTable | undefined> {
    if (!this.runs.has(id)) await this.load([id]);
    return this.runs.get(id);
  }

  /** Every run of this customer the ledger holds (loaded or created in it), in its current state. */
  runsOf(profileId: string): RunTable[] {
    const out: RunTable[] = [];
    for (const r of this.runs.values()) if (r.profile_id === profileId) out.push(r);
    return out;
  }

  /** Runs of this customer and journey created in this ledger and not yet written. */
  unwrittenRuns(profileId: string, journeyId: string): RunTable[] {
    const out: RunTable[] = [];
    for (const id of this.dirtyRuns) {
      const r = this.runs.get(id)!;
      if (r.profile_id === profileId && r.journey_id === journeyId) out.push(r);
    }
    return out;
  }

  /** Records a run's new state (or a new run), written at flush. */
  putRun(row: RunTable, isNew = false): void {
    this.runs.set(row.id, row);
    if (isNew) {
      this.waitsByRun.set(row.id, new Map());
      this.newRuns.add(row.id);
    }
    this.dirtyRuns.add(row.id);
  }

  waitsOf(runId: string): LedgerWait[] {
    return [...(this.waitsByRun.get(runId)?.values() ?? [])];
  }

  hasWait(runId: string, waitId: string): boolean {
    return this.waitsByRun.get(runId)?.has(waitId) ?? false;
  }

  addWaits(rows: WaitTable[]): void {
    for (const w of rows) {
      this.newWaits.set(w.id, w);
      this.waitsByRun.get(w.run_id)?.set(w.id, w);
    }
  }

  /** Removes one wait; false when it is already gone (fired or cleared earlier in this transaction). */
  deleteWait(runId: string, waitId: string): boolean {
    const mine = this.waitsByRun.get(runId);
    if (!mine?.has(waitId)) return false;
    mine.delete(waitId);
    if (!this.newWaits.delete(waitId)) this.goneWaits.add(waitId);
    return true;
  }

  deleteWaitsOf(runId: string): void {
    for (const w of this.waitsOf(runId)) this.deleteWait(runId, w.id);
  }

  step(workspaceId: string, runId: string, step: HistoryStep): void {
    const taken = this.taken.get(runId);
    if (taken) taken.steps.push(step);
    else this.taken.set(runId, { workspaceId, steps: [step] });
  }

  /**
   * Writes everything pending, in one statement on PostgreSQL (`writeAll`: the runs created and changed,
   * timers removed and added, and the history are disjoint rows); the ledger stays usable (and its cache
   * valid) afterwards.
   */
  async flush(): Promise<void> {
    const created: RunTable[] = [];
    const changed: RunTable[] = [];
    for (const id of this.dirtyRuns) (this.newRuns.has(id) ? created : changed).push(this.runs.get(id)!);
    const gone = [...this.goneWaits];
    const waits = [...this.newWaits.values()];
    const history = [...this.taken].map(([runId, { workspaceId, steps }]) => ({
      workspace_id: workspaceId,
      run_id: runId,
      steps: JSON.stringify(steps),
      step_count: steps.length,
    }));
    this.dirtyRuns.clear();
    this.newRuns.clear();
    this.goneWaits.clear();
    this.newWaits.clear();
    this.taken = new Map();
    await writeAll(this.db, [
      { kind: 'insert', table: 'runs', rows: created, conflict: { column: 'id', update: RUN_STATE } },
      { kind: 'update', table: 'runs', key: 'id', columns: RUN_STATE, rows: changed },
      { kind: 'delete', table: 'waits', column: 'id', values: gone },
      { kind: 'insert', table: 'waits', rows: waits },
      { kind: 'insert', table: 'run_history', rows: history },
    ]);
  }
}
