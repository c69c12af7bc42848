import { sql, type Selectable, type Transaction } from 'kysely';
import type { Dialect } from '../store/db.js';
import type { Database, MessageTable, WaitTable } from '../store/schema.js';
import { bucketed } from '../store/prepared.js';

// Claiming due work: the next batch of timers (waits) or of deferred and held messages, in due order,
// locked with SKIP LOCKED on PostgreSQL (SQLite has one writer), optionally for one lane.

type Trx = Transaction<Database>;

/**
 * One of `count` workers sharing the due work (PostgreSQL): each takes the customers whose id hashes to
 * its `index`, so concurrent transactions never wait on each other's customers.
 */
export interface Lane {
  index: number;
  count: number;
}

/** The lane a customer's work belongs to: FNV-1a over the id's UTF-16 code units, modulo the lane count. */
export function laneOf(profileId: string, count: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < profileId.length; i++) {
    h ^= profileId.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % count;
}

/**
 * How many of the earliest due rows a lane looks at: its share of them is about one batch. A lane's claim
 * reads the earliest due rows in index order (no lock), keeps its own customers' here, and locks those by
 * id. Asked of the database in one statement (a hash condition on a materialized window), the plan
 * depended on statistics: PostgreSQL cannot estimate a hash condition, and with statistics taken before
 * any message was deferred it re-read the window once per candidate row (77 ms a claim at 10,000 deferred
 * messages, 3.2 s of a journey benchmark). Rows beyond the window wait for the next round (the clock's
 * loop runs until nothing is due).
 */
const laneWindow = (batchSize: number, lane: Lane) => batchSize * lane.count * 2;

const shared = (lane: Lane | undefined): lane is Lane => lane !== undefined && lane.count > 1;

function lanesNeedPostgres(dialect: Dialect): void {
  if (dialect !== 'postgres') throw new Error('lanes of due work need PostgreSQL (SQLite has one writer): use one lane');
}

/** The ids of `rows` whose customer belongs to `lane`. */
const ofLane = (rows: { id: string; profile_id: string }[], lane: Lane) => rows.filter((r) => laneOf(r.profile_id, lane.count) === lane.index).map((r) => r.id);

/** Up to `batchSize` waits due at or before `now`, outside paused journeys. */
export async function claimDue(trx: Trx, dialect: Dialect, now: Date, batchSize: number, paused: Set<string>, lane?: Lane): Promise<WaitTable[]> {
  const at = now.getTime();
  if (!shared(lane)) {
    let q = trx.selectFrom('waits').selectAll().where('due_at', '<=', at);
    if (paused.size > 0) q = q.where('journey_id', 'not in', [...paused]);
    q = q.orderBy('due_at').orderBy('id').limit(batchSize);
    if (dialect === 'postgres') q = q.forUpdate().skipLocked();
    return q.execute();
  }
  lanesNeedPostgres(dialect);
  let w = trx.selectFrom('waits').select(['id', 'profile_id']).where('due_at', '<=', at);
  if (paused.size > 0) w = w.where('journey_id', 'not in', [...paused]);
  const mine = ofLane(await w.orderBy('due_at').orderBy('id').limit(laneWindow(batchSize, lane)).execute(), lane);
  if (mine.length === 0) return [];
  return (
    trx
      .selectFrom('waits')
      .selectAll()
      .where('id', 'in', bucketed(mine))
      // Claimed rows must still be due: the window was read before their locks.
      .where('due_at', '<=', at)
      .orderBy('due_at')
      .orderBy('id')
      .limit(batchSize)
      .forUpdate()
      .skipLocked()
      .execute()
  );
}

/**
 * Up to `batchSize` deferred or held messages whose time has come: their ids and customers (the caller
 * reads every due message of those customers in full anyway, so the wide rows aren't read twice).
 */
export async function claimDeferred(trx: Trx, dialect: Dialect, now: Date, batchSize: number, lane?: Lane): Promise<Pick<Selectable<MessageTable>, 'id' | 'profile_id'>[]> {
  const at = now.getTime();
  // Literal, so SQLite matches the partial index on deferred and held messages.
  const pending = sql<boolean>`status in ('deferred', 'held')`;
  if (!shared(lane)) {
    let q = trx.selectFrom('messages').select(['id', 'profile_id']).where(pending).where('not_before', '<=', at).orderBy('not_before').orderBy('id').limit(batchSize);
    if (dialect === 'postgres') q = q.forUpdate().skipLocked();
    return q.execute();
  }
  lanesNeedPostgres(dialect);
  const window = await trx.selectFrom('messages').select(['id', 'profile_id']).where(pending).where('not_before', '<=', at).orderBy('not_before').orderBy('id').limit(laneWindow(batchSize, lane)).execute();
  const mine = ofLane(window, lane);
  if (mine.length === 0) return [];
  return (
    trx
      .selectFrom('messages')
      .select(['id', 'profile_id'])
      .where('id', 'in', bucketed(mine))
      // Claimed rows must still be due: the window was read before their locks (re-checked after a wait).
      .where(pending)
      .where('not_before', '<=', at)
      .orderBy('not_before')
      .orderBy('id')
      .limit(batchSize)
      .forUpdate()
      .skipLocked()
      .execute()
  );
}
