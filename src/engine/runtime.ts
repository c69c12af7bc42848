import { SandboxProvider } from '../channels/providers/sandbox.js';
import type { Store } from '../store/db.js';
import type { AfterIngest } from '../store/ingest.js';
import { ActiveJourneys } from '../store/journeys.js';
import { VirtualClock as VirtualClockImpl, type Clock, type VirtualClock } from './clock.js';
import type { Lane } from './claims.js';
import { Engine } from './engine.js';
import { Outbox } from './outbox.js';
import { Gate } from './gate.js';
import { SettingsCache } from '../store/settings.js';

export interface RuntimeOptions {
  /** How often the wall-clock loop looks for due timers and queued messages. */
  pollMs?: number;
  defaultTimeZone?: string;
  /**
   * PostgreSQL: transactions working due timers and deferred messages at once, on disjoint customers
   * (default 2), so the engine computes one batch while the database writes another. SQLite: always 1
   * (one writer).
   */
  lanes?: number;
  /** Due timers (or deferred messages) per transaction (default 500). */
  batchSize?: number;
}

/**
 * Wires the engine, the outbox and their loops. With the wall clock, a loop fires due timers and
 * delivers messages. With a virtual clock, timers fire only inside `advance`, which processes everything
 * due up to the target in time order before it returns.
 */
export class Runtime {
  readonly engine: Engine;
  readonly outbox: Outbox;
  readonly journeys: ActiveJourneys;
  readonly settings: SettingsCache;
  readonly gate: Gate;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  /** A kick came while the loop was running: run again at once instead of after the poll interval. */
  private kicked = false;
  private stopped = false;
  private lane: Promise<unknown> = Promise.resolve();
  private readonly lanes: Lane[];

  constructor(
    readonly store: Store,
    readonly clock: Clock,
    private readonly opts: RuntimeOptions = {},
  ) {
    this.journeys = new ActiveJourneys();
    this.settings = new SettingsCache();
    const sandbox = new SandboxProvider(store, () => clock.now());
    this.gate = new Gate(this.settings, () => sandbox);
    this.engine = new Engine(store, clock, this.journeys, this.gate, { defaultTimeZone: opts.defaultTimeZone, batchSize: opts.batchSize });
    this.outbox = new Outbox(store, clock, () => sandbox, () => Date.now());
    const count = store.dialect === 'postgres' ? Math.max(1, opts.lanes ?? 2) : 1;
    this.lanes = Array.from({ length: count }, (_, index) => ({ index, count }));
  }

  /** Runs `batch` in every lane until none finds work (or, for the loop, until stopped); returns how many items they handled. */
  private async drain(batch: (lane: Lane) => Promise<number>, untilStopped = false): Promise<number> {
    let total = 0;
    await Promise.all(
      this.lanes.map(async (lane) => {
        for (let n = await batch(lane); n > 0 && !(untilStopped && this.stopped); n = await batch(lane)) total += n;
      }),
    );
    return total;
  }

  /** The ingestion hook: match the stored events against triggers and open runs. */
  readonly afterIngest: AfterIngest = (trx, workspaceId, plan, profiles) =>
    this.engine.onEvents(trx, workspaceId, plan.events, plan.merges, profiles);

  /**
   * Starts the loop. SQLite has exactly one process, so its leases from before a crash are released; a
   * virtual clock first fires whatever was due at its saved time (a crash may have stopped an advance
   * after the clock moved and before its timers committed).
   */
  async start(): Promise<void> {
    this.stopped = false;
    if (this.store.dialect === 'sqlite') await this.outbox.releaseOrphanedLeases();
    if (this.clock instanceof VirtualClockImpl) await this.advance(this.clock, this.clock.now());
    this.schedule(0);
  }

  /** Asks the loop to run soon (after an ingest queued messages). */
  kick(): void {
    if (this.stopped) return;
    // The running pass may already be past the new messages: remember the kick for when it ends.
    if (this.running) this.kicked = true;
    else this.schedule(0);
  }

  private schedule(ms: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      if (this.stopped || this.running) return;
      this.kicked = false;
      this.running = this.exclusive(() => this.tick()).finally(() => {
        this.running = undefined;
        if (!this.stopped) this.schedule(this.kicked ? 0 : (this.opts.pollMs ?? 200));
      });
    }, ms);
  }

  /**
   * One lane for the loop and for clock advances, so an advance never answers while the loop still holds
   * messages it claimed (they would show as `sending`).
   */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lane.then(fn);
    this.lane = run.catch(() => undefined);
    return run;
  }

  private async tick(): Promise<void> {
    try {
      if (!this.clock.virtual) {
        await this.drain((lane) => this.engine.processDue(undefined, lane), true);
        await this.drain((lane) => this.engine.processDeferred(undefined, lane), true);
      }
      await this.outbox.drain();
    } catch {
      // A failed pass (database hiccup) is retried on the next tick; the work stays in the database.
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
    await this.lane;
  }

  /** Virtual clock only: moves time to `to`, firing every timer on the way at its own time. */
  advance(clock: VirtualClock, to: Date): Promise<Date> {
    return this.exclusive(async () => {
      for (;;) {
        const next = await this.engine.nextDue(to);
        if (next === null) break;
        await clock.set(next);
        let fired = await this.drain((lane) => this.engine.processDue(clock.now(), lane));
        fired += await this.drain((lane) => this.engine.processDeferred(clock.now(), lane));
        await this.outbox.drain();
        // Due rows that could not be claimed (locked elsewhere) must not spin this loop.
        if (fired === 0) break;
      }
      await clock.set(to);
      await this.outbox.drain();
      return clock.now();
    });
  }
}
