import type { EventLike } from '../core/condition-eval.js';
import { historyEvent, historyOf, type Db } from './run-store.js';
import { bucketed } from '../store/prepared.js';

// Conditions ask "did this customer do X since T" once per run and condition: 54,000 single-row queries
// for 20,000 customers in the onboarding journey, each a round trip on PostgreSQL. A batch of runs mostly
// asks the same question with similar times (a cohort that entered together), so the first question for
// an event name loads that name for every customer of the batch, and later questions are answered from
// memory. The batch's transaction inserts no events while it runs, so the answers are what the database
// holds. A question about an earlier time than what was loaded loads again from that time; after a few
// such reloads, or for questions about all of history, the batch asks per customer as before.

const MAX_RELOADS = 2;
/** Customers per query: well under both databases' bound-parameter limits. */
const CHUNK = 500;

interface Loaded {
  since: number;
  byProfile: Map<string, { timestamp: number; name: string | null; payload: string }[]>;
}

export class BatchHistory {
  private readonly profiles: Set<string>;
  private readonly loaded = new Map<string, Promise<Loaded>>();
  private readonly reloads = new Map<string, number>();

  constructor(
    private readonly db: Db,
    private readonly workspaceId: string,
    profileIds: Iterable<string>,
  ) {
    this.profiles = new Set(profileIds);
  }

  /** The `history` function of one customer's condition context. */
  of(profileId: string): (name: string, since: Date | undefined) => Promise<EventLike[]> {
    const direct = historyOf(this.db, this.workspaceId, profileId);
    if (!this.profiles.has(profileId)) return direct;
    return async (name, since) => {
      if (since === undefined || (this.reloads.get(name) ?? 0) > MAX_RELOADS) return direct(name, since);
      const from = since.getTime();
      let entry = this.loaded.get(name);
      if (!entry || (await entry).since > from) {
        this.reloads.set(name, (this.reloads.get(name) ?? -1) + 1);
        entry = this.load(name, from);
        this.loaded.set(name, entry);
      }
      const rows = (await entry).byProfile.get(profileId) ?? [];
      return rows.filter((r) => r.timestamp >= from).map((r) => historyEvent(r.name, r.timestamp, r.payload));
    };
  }

  private async load(name: string, since: number): Promise<Loaded> {
    const byProfile: Loaded['byProfile'] = new Map();
    const ids = [...this.profiles];
    for (let i = 0; i < ids.length; i += CHUNK) {
      const rows = await this.db
        .selectFrom('events')
        .select(['profile_id', 'name', 'timestamp', 'payload'])
        .where('workspace_id', '=', this.workspaceId)
        .where('profile_id', 'in', bucketed(ids.slice(i, i + CHUNK)))
        .where('name', '=', name)
        .where('timestamp', '>=', since)
        .where('type', '=', 'track')
        .orderBy('timestamp')
        .execute();
      for (const r of rows) {
        const list = byProfile.get(r.profile_id);
        if (list) list.push(r);
        else byProfile.set(r.profile_id, [r]);
      }
    }
    return { since, byProfile };
  }
}
