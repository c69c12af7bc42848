import { sql, type Selectable, type Transaction } from 'kysely';
import type { Dialect } from '../store/db.js';
import type { Database, MessageTable, WaitTable } from '../store/schema.js';

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

/** PostgreSQL: `column` hashes to the lane (hashtext is PostgreSQL's own; the mask keeps it non-negative). */
function inLane(dialect: Dialect, column: string, lane: Lane) {
  if (dialect !== 'postgres') throw new Error('lanes of due work need PostgreSQL (SQLite has one writer): use one lane');
  return sql<boolean>`(hashtext(${sql.ref(column)}) & 2147483647) % ${lane.count} = ${lane.index}`;
}

/**
 * How many of the earliest due rows a lane looks at: its share of them is about one batch. PostgreSQL
 * cannot estimate a hash condition (it guesses 0.5% of rows) and, given one, sorts every due row instead
 * of reading the index in order (66 ms instead of 4 ms with 300,000 waits). So a lane's claim takes the
 * earliest due rows from the index first (a materialized CTE) and then its own share of them. Rows beyond
 * the window wait for the next round (the clock's loop runs until nothing is due).
 */
const laneWindow = (batchSize: number, lane: Lane) => batchSize * lane.count * 2;

const shared = (lane: Lane | undefined): lane is Lane => lane !== undefined && lane.count > 1;

/** Up to `batchSize` waits due at or before `now`, outside paused journeys. */
export function claimDue(trx: Trx, dialect: Dialect, now: Date, batchSize: number, paused: Set<string>, lane?: Lane): Promise<WaitTable[]> {
  const at = now.getTime();
  if (!shared(lane)) {
    let q = trx.selectFrom('waits').selectAll().where('due_at', '<=', at);
    if (paused.size > 0) q = q.where('journey_id', 'not in', [...paused]);
    q = q.orderBy('due_at').orderBy('id').limit(batchSize);
    if (dialect === 'postgres') q = q.forUpdate().skipLocked();
    return q.execute();
  }
  return trx
    .with(
      (cte) => cte('due_window').materialized(),
      (db) => {
        let w = db.selectFrom('waits').select(['id', 'profile_id']).where('due_at', '<=', at);
        if (paused.size > 0) w = w.where('journey_id', 'not in', [...paused]);
        return w.orderBy('due_at').orderBy('id').limit(laneWindow(batchSize, lane));
      },
    )
    .selectFrom('waits')
    .selectAll('waits')
    .where('waits.id', 'in', (eb) => eb.selectFrom('due_window').select('due_window.id').where(inLane(dialect, 'due_window.profile_id', lane)))
    .where('waits.due_at', '<=', at)
    .orderBy('waits.due_at')
    .orderBy('waits.id')
    .limit(batchSize)
    .forUpdate()
    .skipLocked()
    .execute();
}

/**
 * Up to `batchSize` deferred or held messages whose time has come: their ids and customers (the caller
 * reads every due message of those customers in full anyway, so the wide rows aren't read twice).
 */
export function claimDeferred(trx: Trx, dialect: Dialect, now: Date, batchSize: number, lane?: Lane): Promise<Pick<Selectable<MessageTable>, 'id' | 'profile_id'>[]> {
  const at = now.getTime();
  // Literal, so SQLite matches the partial index on deferred and held messages.
  const pending = sql<boolean>`status in ('deferred', 'held')`;
  if (!shared(lane)) {
    let q = trx.selectFrom('messages').select(['id', 'profile_id']).where(pending).where('not_before', '<=', at).orderBy('not_before').orderBy('id').limit(batchSize);
    if (dialect === 'postgres') q = q.forUpdate().skipLocked();
    return q.execute();
  }
  return trx
    .with(
      (cte) => cte('deferred_window').materialized(),
      (db) => db.selectFrom('messages').select(['id', 'profile_id']).where(pending).where('not_before', '<=', at).orderBy('not_before').orderBy('id').limit(laneWindow(batchSize, lane)),
    )
    .selectFrom('messages')
    .select(['messages.id', 'messages.profile_id'])
    .where('messages.id', 'in', (eb) => eb.selectFrom('deferred_window').select('deferred_window.id').where(inLane(dialect, 'deferred_window.profile_id', lane)))
    // Claimed rows must still be due: the window was read before their locks (re-checked after a wait).
    .where(pending)
    .where('messages.not_before', '<=', at)
    .orderBy('messages.not_before')
    .orderBy('messages.id')
    .limit(batchSize)
    .forUpdate()
    .skipLocked()
    .execute();
}
