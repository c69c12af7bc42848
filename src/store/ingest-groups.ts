import type { IncomingEvent } from '../core/types.js';
import type { Store } from './db.js';
import { ingestEvents, type AfterIngest, type IngestResult } from './ingest.js';

// SQLite has one writer: concurrent ingestion requests wait for the connection one after another, and
// each pays its own transaction, whose commit writes every page it touched into the WAL (a quarter of the
// server's time at 100-event batches). Requests that arrive while a transaction runs are stored together
// in the next one, whole and in arrival order, so pages they share (index interior pages, the tails of
// the events table, a customer's profile) are written once. Each request is still atomic and durable
// before it is answered (the caller awaits `store.durable()`), and the result is as if the requests had
// run one after the other: a messageId seen earlier in the group is a duplicate for the later request.
// PostgreSQL runs concurrent transactions in parallel, so there each request keeps its own.

/** Events of one group at most: bounds the transaction's time and memory. */
const MAX_GROUP_EVENTS = 5_000;

interface Pending {
  workspaceId: string;
  events: IncomingEvent[];
  resolve: (r: IngestResult) => void;
  reject: (e: unknown) => void;
}

export class IngestGroups {
  private readonly queue: Pending[] = [];
  private draining = false;

  constructor(
    private readonly store: Store,
    private readonly after?: AfterIngest,
  ) {}

  ingest(workspaceId: string, events: IncomingEvent[]): Promise<IngestResult> {
    if (this.store.dialect !== 'sqlite') return ingestEvents(this.store, workspaceId, events, this.after);
    return new Promise<IngestResult>((resolve, reject) => {
      this.queue.push({ workspaceId, events, resolve, reject });
      if (this.draining) return;
      this.draining = true;
      // better-sqlite3 runs a whole transaction without yielding to I/O: requests that are still being
      // received or parsed get their turn first, so they can join this group.
      setImmediate(() => void this.drain());
    });
  }

  private async drain(): Promise<void> {
    try {
      while (this.queue.length > 0) await this.run(this.take());
    } finally {
      this.draining = false;
    }
  }

  /** The next requests in arrival order: of one workspace, up to MAX_GROUP_EVENTS events (at least one request). */
  private take(): Pending[] {
    const first = this.queue[0];
    let n = 1;
    let events = first.events.length;
    while (n < this.queue.length && this.queue[n].workspaceId === first.workspaceId && events + this.queue[n].events.length <= MAX_GROUP_EVENTS) {
      events += this.queue[n].events.length;
      n++;
    }
    return this.queue.splice(0, n);
  }

  private async run(group: Pending[]): Promise<void> {
    if (group.length > 1) {
      let combined: IngestResult | undefined;
      try {
        combined = await ingestEvents(this.store, group[0].workspaceId, group.flatMap((p) => p.events), this.after);
      } catch {
        // Nothing of the group was stored: each request alone, so one request's failure is its own.
      }
      if (combined) {
        const shares = splitResult(combined, group.map((p) => p.events));
        group.forEach((p, i) => p.resolve(shares[i]));
        return;
      }
    }
    for (const p of group) {
      try {
        p.resolve(await ingestEvents(this.store, p.workspaceId, p.events, this.after));
      } catch (err) {
        p.reject(err);
      }
    }
  }
}

/**
 * Each request's part of a group's result, as if the requests had run in order: an event counts as stored
 * for the first request that carried its messageId, and as a duplicate for any other.
 */
export function splitResult(combined: IngestResult, requests: IncomingEvent[][]): IngestResult[] {
  const stored = new Map(combined.events.map((e) => [e.messageId, e]));
  return requests.map((events) => {
    const mine: IngestResult['events'] = [];
    for (const e of events) {
      const s = stored.get(e.messageId);
      if (!s) continue;
      mine.push(s);
      stored.delete(e.messageId);
    }
    return { stored: mine.length, duplicates: events.length - mine.length, events: mine };
  });
}
