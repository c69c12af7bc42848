import { performance } from 'node:perf_hooks';
import { sql, type Insertable, type Kysely } from 'kysely';
import type { Channel, ContactPoints } from '../../src/core/types.js';
import { newId } from '../../src/lib/ids.js';
import { transact, type Store } from '../../src/store/db.js';
import type { Database, MessageTable } from '../../src/store/schema.js';
import { Rng } from './random.js';

// The gate bench's direct database work, outside the server:
// - a realistic send history, written straight into `messages` (the server is idle meanwhile): a few prior
//   messages per customer over the last 8 days, so caps, engagement scores and the workspace's own rates
//   have something to count;
// - the baseline: plain single-row INSERTs into a simple table of the same database, sequential, autocommit.

const DAY = 86_400_000;

export interface HistoryResult {
  customers: number;
  messages: number;
  seconds: number;
  byStatus: Record<string, number>;
}

const STATUSES: readonly (readonly [string, number])[] = [
  ['delivered', 50],
  ['opened', 15],
  ['clicked', 5],
  ['sent', 15],
  ['suppressed', 10],
  ['failed', 5],
];
const CATEGORIES: readonly (readonly [string, number])[] = [
  ['promotional', 65],
  ['operational', 20],
  ['transactional', 15],
];

function reachable(cp: ContactPoints): Channel[] {
  const out: Channel[] = [];
  if (cp.email) out.push('email');
  if (cp.sms) out.push('sms');
  if (cp.whatsapp) out.push('whatsapp');
  if (cp.push.length > 0) out.push('push');
  out.push('in_app');
  return out;
}

/** How many prior messages a customer has: most a few, some many (heavy users hit the caps). */
function historySize(r: Rng): number {
  const bucket = r.weighted([['light', 70], ['regular', 20], ['heavy', 10]] as const);
  if (bucket === 'light') return r.between(0, 4);
  if (bucket === 'regular') return r.between(3, 8);
  return r.between(8, 15);
}

/** Writes the history of every live profile; `now` is the wall clock the server will run on. */
export async function writeHistory(store: Store, seed: number, now: number, log: (s: string) => void): Promise<HistoryResult> {
  const started = performance.now();
  const byStatus: Record<string, number> = {};
  const r = new Rng(seed ^ 0x5eed);
  let after = '';
  let customers = 0;
  let messages = 0;
  const page = 2_000;
  for (;;) {
    const profiles = await store.db
      .selectFrom('profiles')
      .select(['id', 'workspace_id', 'contact_points'])
      .where('merged_into', 'is', null)
      .where('id', '>', after)
      .orderBy('id')
      .limit(page)
      .execute();
    if (profiles.length === 0) break;
    after = profiles[profiles.length - 1].id;
    const rows: Insertable<MessageTable>[] = [];
    for (const p of profiles) {
      const channels = reachable(JSON.parse(p.contact_points) as ContactPoints);
      const n = historySize(r);
      for (let i = 0; i < n; i++) {
        // Recent days are busier: a quarter of the history is from the last 24 hours.
        const at = Math.round(now - (r.chance(0.25) ? r.next() * DAY : DAY + r.next() * 7 * DAY));
        const status = r.weighted(STATUSES);
        const channel = status === 'suppressed' ? null : r.pick(channels);
        const category = r.weighted(CATEGORIES);
        byStatus[status] = (byStatus[status] ?? 0) + 1;
        rows.push({
          id: newId('msg', at),
          workspace_id: p.workspace_id,
          profile_id: p.id,
          run_id: null,
          journey_id: null,
          journey_key: null,
          version: null,
          step: null,
          channel,
          provider: channel ? 'sandbox' : null,
          category,
          status,
          reason: status === 'suppressed' ? 'cap promo-per-day: 3 of 3 in the window' : `${channel}: history`,
          to_address: channel ? 'history' : null,
          content: null,
          created_at: at,
          sent_at: status === 'suppressed' || status === 'failed' ? null : at + 1_000,
          updated_at: at + 1_000,
          lease_until: null,
          provider_message_id: channel ? `sandbox_hist_${customers}_${i}` : null,
          priority: r.pick(['low', 'normal', 'normal', 'high']),
          tags: '[]',
          topic: null,
          message_type: null,
          not_before: null,
          // When the gate decided to send it: what caps count (migration 0003).
          queued_at: channel ? at : null,
          decision: JSON.stringify({ outcome: status === 'suppressed' ? 'suppress' : 'send', rule: status === 'suppressed' ? 'cap:promo-per-day' : 'channel', reason: 'bench history' }),
          override_caps: 0,
          idempotency_key: null,
          source: r.chance(0.7) ? 'journey' : 'api',
          attempts: channel ? 1 : 0,
          fallback_of: null,
          pending: null,
        });
      }
      customers++;
    }
    // One transaction per page, 500-row INSERTs (33 columns: under SQLite's 32,766 bound parameters).
    await transact(store, async (trx) => {
      for (let i = 0; i < rows.length; i += 500) await trx.insertInto('messages').values(rows.slice(i, i + 500)).execute();
    });
    messages += rows.length;
    if (customers % 20_000 < page) log(`  history: ${customers.toLocaleString('en-US')} customers, ${messages.toLocaleString('en-US')} messages`);
  }
  if (store.dialect === 'postgres') await sql`analyze messages`.execute(store.db);
  return { customers, messages, seconds: (performance.now() - started) / 1000, byStatus };
}

// ---------------------------------------------------------------------------------------------------------
// Baseline

export const BASELINE_TABLE = 'gate_baseline';

interface BaselineTable {
  id: string;
  profile_id: string;
  created_at: number;
  body: string;
}

export interface BaselineResult {
  rows: number;
  seconds: number;
  rowsPerSecond: number;
  /** Per-INSERT latency, ms. */
  p50: number;
  p99: number;
}

/**
 * Plain single-row INSERTs, one after the other, each its own (autocommit) transaction, into a simple table
 * with a primary key and one secondary index: what one durable write costs on this database.
 */
export async function runBaseline(store: Store, rows: number, warmup: number): Promise<BaselineResult> {
  const db = store.db.withTables<{ gate_baseline: BaselineTable }>() as unknown as Kysely<Database & { gate_baseline: BaselineTable }>;
  await db.schema.dropTable(BASELINE_TABLE).ifExists().execute();
  await db.schema
    .createTable(BASELINE_TABLE)
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('profile_id', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('body', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('gate_baseline_profile').on(BASELINE_TABLE).columns(['profile_id', 'created_at']).execute();
  const body = JSON.stringify({ subject: 'Hi Ann', text: 'News for pro: 10% off' });
  // Each row durable before the next, as an acknowledged send is (on SQLite, the WAL fsync of wal-sync.ts).
  const insert = async (i: number) => {
    await db.insertInto('gate_baseline').values({ id: newId('msg'), profile_id: `prf_${i % 100_000}`, created_at: Date.now(), body }).execute();
    await store.durable();
  };
  for (let i = 0; i < warmup; i++) await insert(i);
  const lat: number[] = [];
  const started = performance.now();
  for (let i = 0; i < rows; i++) {
    const t0 = performance.now();
    await insert(i);
    lat.push(performance.now() - t0);
  }
  const seconds = (performance.now() - started) / 1000;
  lat.sort((a, b) => a - b);
  const at = (q: number) => lat[Math.min(lat.length - 1, Math.max(0, Math.ceil(q * lat.length) - 1))] ?? NaN;
  return { rows, seconds, rowsPerSecond: rows / seconds, p50: at(0.5), p99: at(0.99) };
}
