// Group commit: callers submit items one at a time; items that arrive while a group is being processed wait,
// and the next group takes everything waiting (up to a cap) in one call. With a durable commit costing an
// fsync, N concurrent requests then cost one commit instead of N, while a lone request still goes at once.

/** The outcome of one item of a group: its value, or the error that answers that item alone. */
export type Settled<O> = { ok: true; value: O } | { ok: false; error: unknown };

export interface GroupCommitOptions {
  /** Most items in one group (default 200). */
  maxGroup?: number;
  /** Groups processed at the same time (default 1; SQLite has one writer anyway). */
  concurrency?: number;
}

interface Waiting<I, O> {
  item: I;
  resolve: (value: O) => void;
  reject: (error: unknown) => void;
}

export class GroupCommit<I, O> {
  private readonly waiting: Waiting<I, O>[] = [];
  private running = 0;
  private scheduled = false;
  private readonly maxGroup: number;
  private readonly concurrency: number;

  /**
   * `processGroup` handles a whole group and answers one `Settled` per item, in order; its promise must
   * resolve only once the group is durable. If it throws instead, each item of the group is processed
   * again on its own, so one poison item fails only itself.
   */
  constructor(
    private readonly processGroup: (items: I[]) => Promise<Settled<O>[]>,
    opts: GroupCommitOptions = {},
  ) {
    this.maxGroup = Math.max(1, opts.maxGroup ?? 200);
    this.concurrency = Math.max(1, opts.concurrency ?? 1);
  }

  /** Resolves with the item's value once its group has been processed (committed), or rejects with its error. */
  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.waiting.push({ item, resolve, reject });
      this.schedule();
    });
  }

  /** Items waiting for a group, and groups being processed: for metrics and tests. */
  get pending(): { waiting: number; running: number } {
    return { waiting: this.waiting.length, running: this.running };
  }

  /**
   * Starts the next group on the next turn of the event loop rather than at once, so the requests read in
   * the same I/O pass join one group instead of the first one going alone.
   */
  private schedule(): void {
    if (this.scheduled || this.running >= this.concurrency) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    while (this.running < this.concurrency && this.waiting.length > 0) {
      const group = this.waiting.splice(0, this.maxGroup);
      this.running++;
      void this.run(group).finally(() => {
        this.running--;
        if (this.waiting.length > 0) this.schedule();
      });
    }
  }

  private async run(group: Waiting<I, O>[]): Promise<void> {
    let settled: Settled<O>[];
    try {
      settled = await this.processGroup(group.map((w) => w.item));
    } catch (err) {
      if (group.length === 1) {
        group[0].reject(err);
        return;
      }
      // The whole group failed: isolate the culprit by processing every item on its own.
      for (const w of group) await this.run([w]);
      return;
    }
    // The group is done (committed): from here on, answer; never process it again.
    group.forEach((w, n) => {
      const s = settled[n];
      if (s === undefined) w.reject(new Error(`group commit: no answer for item ${n} of ${group.length}`));
      else if (s.ok) w.resolve(s.value);
      else w.reject(s.error);
    });
  }
}
