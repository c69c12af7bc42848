import { SandboxProvider } from '../channels/providers/sandbox.js';
import type { Store } from '../store/db.js';
import type { AfterIngest } from '../store/ingest.js';
import { ActiveJourneys } from '../store/journeys.js';
import type { Clock, VirtualClock } from './clock.js';
import { Engine } from './engine.js';
import { Outbox } from './outbox.js';

export interface RuntimeOptions {
  /** How often the wall-clock loop looks for due timers and queued messages. */
  pollMs?: number;
  defaultTimeZone?: string;
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
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private advancing: Promise<unknown> = Promise.resolve();

  constructor(
    readonly store: Store,
    readonly clock: Clock,
    private readonly opts: RuntimeOptions = {},
  ) {
    this.journeys = new ActiveJourneys();
    this.engine = new Engine(store, clock, this.journeys, { defaultTimeZone: opts.defaultTimeZone });
    const sandbox = new SandboxProvider(store, () => clock.now());
    this.outbox = new Outbox(store, clock, () => sandbox, () => Date.now());
  }

  /** The ingestion hook: match the stored events against triggers and open runs. */
  readonly afterIngest: AfterIngest = (trx, workspaceId, plan) =>
    this.engine.onEvents(trx, workspaceId, plan.events, plan.merges);

  start(): void {
    this.stopped = false;
    const tick = () => {
      if (this.stopped) return;
      this.running = this.tick().finally(() => {
        this.running = undefined;
        if (!this.stopped) this.timer = setTimeout(tick, this.opts.pollMs ?? 200);
      });
    };
    this.timer = setTimeout(tick, 0);
  }

  /** Asks the loop to deliver soon (after an ingest queued messages). */
  kick(): void {
    if (this.stopped || this.running) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      if (!this.running && !this.stopped) {
        this.running = this.tick().finally(() => {
          this.running = undefined;
          if (!this.stopped) this.timer = setTimeout(() => this.kick(), this.opts.pollMs ?? 200);
        });
      }
    }, 0);
  }

  private async tick(): Promise<void> {
    try {
      if (!this.clock.virtual) while ((await this.engine.processDue()) > 0 && !this.stopped);
      await this.outbox.drain();
    } catch {
      // A failed pass (database hiccup) is retried on the next tick; the work stays in the database.
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
    await this.advancing.catch(() => undefined);
  }

  /** Virtual clock only: moves time to `to`, firing every timer on the way at its own time. */
  advance(clock: VirtualClock, to: Date): Promise<Date> {
    const run = this.advancing.then(async () => {
      for (;;) {
        const next = await this.engine.nextDue(to);
        if (next === null) break;
        await clock.set(next);
        let fired = 0;
        for (let n = await this.engine.processDue(clock.now()); n > 0; n = await this.engine.processDue(clock.now())) fired += n;
        await this.outbox.drain();
        // Due rows that could not be claimed (locked elsewhere) must not spin this loop.
        if (fired === 0) break;
      }
      await clock.set(to);
      await this.outbox.drain();
      return clock.now();
    });
    this.advancing = run.catch(() => undefined);
    return run;
  }
}
