import type { Store } from '../store/db.js';

/** The engine's only source of time (DESIGN invariant 1). */
export interface Clock {
  readonly virtual: boolean;
  now(): Date;
}

export class SystemClock implements Clock {
  readonly virtual = false;
  now(): Date {
    return new Date();
  }
}

/**
 * A clock that only moves when told. Its time is persisted, so a restarted process continues where the
 * last one stopped instead of jumping back to the start time.
 */
export class VirtualClock implements Clock {
  readonly virtual = true;
  private constructor(
    private readonly store: Store,
    private ms: number,
  ) {}

  static async open(store: Store, start: Date | undefined): Promise<VirtualClock> {
    const row = await store.db.selectFrom('clock').select('now_ms').where('id', '=', 'virtual').executeTakeFirst();
    if (row && start === undefined) return new VirtualClock(store, row.now_ms);
    const ms = (start ?? new Date()).getTime();
    const clock = new VirtualClock(store, row ? Math.max(row.now_ms, ms) : ms);
    await clock.persist();
    return clock;
  }

  now(): Date {
    return new Date(this.ms);
  }

  /** Moves forward only: time never runs backwards, even when asked to. */
  async set(to: Date): Promise<void> {
    if (to.getTime() <= this.ms) return;
    this.ms = to.getTime();
    await this.persist();
  }

  private async persist(): Promise<void> {
    await this.store.db
      .insertInto('clock')
      .values({ id: 'virtual', now_ms: this.ms })
      .onConflict((oc) => oc.column('id').doUpdateSet({ now_ms: this.ms }))
      .execute();
  }
}
