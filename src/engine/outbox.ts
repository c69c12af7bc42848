import { PermanentProviderError, type OutboundMessage, type Provider } from '../channels/provider.js';
import type { Channel } from '../core/types.js';
import { sql, type Transaction } from 'kysely';
import { transact, type Store } from '../store/db.js';
import type { Database } from '../store/schema.js';
import type { Clock } from './clock.js';

const LEASE_MS = 30_000;
/** Transient failures are retried with exponential backoff, then the message fails for good. */
const MAX_ATTEMPTS = 6;
const backoffMs = (attempt: number) => Math.min(15 * 60_000, 2_000 * 4 ** (attempt - 1));

type SentMark = { id: string; provider: string; providerMessageId: string };
type MessageRow = { id: string; workspace_id: string; channel?: string | null; to_address?: string | null; content?: string | null; category: string };
type Claimed = MessageRow & { attempts: number };
type Outbound = { row: Claimed; message: OutboundMessage };

/** A ledger row as a provider sees it. */
export const outboundMessage = (m: MessageRow): OutboundMessage => ({
  id: m.id,
  workspaceId: m.workspace_id,
  channel: m.channel as Channel,
  to: m.to_address ?? '',
  content: JSON.parse(m.content ?? '{}') as Record<string, unknown>,
  category: m.category,
});

const outbound = (m: Claimed): Outbound => ({ row: m, message: outboundMessage(m) });

/**
 * Delivers queued messages. A message is leased (status `sending`) before its provider is called and
 * marked `sent` after; a process that dies in between leaves the lease to expire, and the retry carries
 * the same idempotency key (the message id), so the provider delivers it once.
 *
 * While draining, the `sent` marks of one batch are written in the transaction that leases the next batch
 * (the last, empty lease writes the last marks), so a busy outbox commits twice per batch, not three times.
 * A provider that lives in the database (the sandbox) needs no lease: it delivers in the claiming
 * transaction, and the delivery and its `sent` mark commit together (one commit per batch).
 */
export class Outbox {
  /** Deliveries made but not yet marked `sent`: written by the next lease transaction, or by `flush`. */
  private unmarked: SentMark[] = [];

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly providers: (channel: Channel) => Provider,
    /** Wall time for leases only: a lease must expire even while a virtual clock stands still. */
    private readonly wallNow: () => number,
  ) {}

  /** Delivers up to `limit` due messages and records them; returns how many it handled. */
  async dispatch(limit = 200): Promise<number> {
    const n = await this.pass(limit);
    await this.flush();
    return n;
  }

  /** Dispatches until nothing is queued; every delivery is marked `sent` when it returns. */
  async drain(): Promise<number> {
    let total = 0;
    for (;;) {
      const n = await this.pass(500);
      total += n;
      if (n === 0) break;
    }
    await this.flush();
    return total;
  }

  /** Writes the `sent` marks still held in memory. */
  async flush(): Promise<void> {
    if (this.unmarked.length === 0) return;
    const marks = this.unmarked;
    await transact(this.store, (trx) => this.markSent(trx, marks, 'leased'));
    this.unmarked = this.unmarked.slice(marks.length);
  }

  /**
   * One batch, in one transaction: marks the previous batch's deliveries `sent`, claims up to `limit` due
   * messages, delivers those whose provider lives in the database (and marks them `sent`), and leases the
   * rest. After the commit it calls the other providers; their deliveries are left in `unmarked`.
   */
  private async pass(limit: number): Promise<number> {
    const wall = this.wallNow();
    const marks = this.unmarked;
    const { claimed, leased } = await transact(this.store, async (trx) => {
      await this.markSent(trx, marks, 'leased');
      let q = trx
        .selectFrom('messages')
        .select(['id', 'workspace_id', 'channel', 'to_address', 'content', 'category', 'attempts'])
        // The first condition is the outbox index's own predicate, so the planner uses that small index
        // instead of scanning every message ever sent.
        // (written as SQL text: a bound parameter would hide the match from SQLite's planner).
        .where(sql<boolean>`status in ('queued', 'sending', 'retrying')`)
        .where((eb) => eb.or([eb('status', '=', 'queued'), eb('lease_until', '<', wall)]))
        .orderBy('created_at')
        .limit(limit);
      if (this.store.dialect === 'postgres') q = q.forUpdate().skipLocked();
      const rows = (await q.execute()).map(outbound);
      const remote: Outbound[] = [];
      for (const [provider, items] of this.byProvider(rows)) {
        if (!provider.deliverInTransaction) {
          remote.push(...items);
          continue;
        }
        const results = await provider.deliverInTransaction(trx, items.map((i) => i.message));
        await this.markSent(trx, items.map((i, n) => ({ id: i.row.id, provider: provider.name, providerMessageId: results[n].providerMessageId })), 'due');
      }
      if (remote.length > 0) {
        await trx
          .updateTable('messages')
          .set((eb) => ({ status: 'sending', lease_until: wall + LEASE_MS, attempts: eb('attempts', '+', 1) }))
          .where('id', 'in', remote.map((r) => r.row.id))
          .execute();
      }
      return { claimed: rows.length, leased: remote };
    });
    // Committed: those marks are written. Passes run one at a time, so nothing was added meanwhile.
    this.unmarked = this.unmarked.slice(marks.length);
    // The ledger rows and their leases are on disk before anything leaves the database (invariant 2).
    if (leased.length > 0) await this.store.durable();
    for (const [provider, items] of this.byProvider(leased)) {
      if (provider.sendMany) {
        try {
          const results = await provider.sendMany(items.map((i) => i.message));
          items.forEach((i, n) => this.unmarked.push({ id: i.row.id, provider: provider.name, providerMessageId: results[n].providerMessageId }));
          continue;
        } catch {
          // Fall back to one call per message, so one bad message doesn't hold up the rest.
        }
      }
      for (const i of items) {
        try {
          const res = await provider.send(i.message, i.row.id);
          this.unmarked.push({ id: i.row.id, provider: provider.name, providerMessageId: res.providerMessageId });
        } catch (err) {
          await this.failed(i.row.id, i.row.attempts + 1, provider.name, err);
        }
      }
    }
    return claimed;
  }

  /** Groups by provider, so providers with a batch API get one call per batch. */
  private byProvider(items: Outbound[]): Map<Provider, Outbound[]> {
    const out = new Map<Provider, Outbound[]>();
    for (const o of items) {
      const p = this.providers(o.message.channel);
      const list = out.get(p);
      if (list) list.push(o);
      else out.set(p, [o]);
    }
    return out;
  }

  /**
   * At start-up of the only process (SQLite), leases left by a process that died are void: release them
   * now instead of waiting for them to expire. The provider call is idempotent on the message id, so a
   * message that did go out before the crash is not delivered twice.
   */
  async releaseOrphanedLeases(): Promise<number> {
    const res = await this.store.db
      .updateTable('messages')
      .set({ status: 'queued', lease_until: null })
      .where('status', '=', 'sending')
      .executeTakeFirst();
    return Number(res.numUpdatedRows);
  }

  /** Records a batch of deliveries, inside the caller's transaction; "if it fails" escalations are no longer needed. */
  private async markSent(trx: Transaction<Database>, sent: SentMark[], from: 'leased' | 'due'): Promise<void> {
    if (sent.length === 0) return;
    const now = this.clock.now().getTime();
    // One UPDATE per chunk: each row takes its own provider and provider message id through a CASE.
    for (let i = 0; i < sent.length; i += 300) {
      const chunk = sent.slice(i, i + 300);
      const each = (value: (s: SentMark) => string) => sql<string>`case ${sql.ref('id')} ${sql.join(chunk.map((s) => sql`when ${s.id} then ${value(s)}`), sql` `)} end`;
      await trx
        .updateTable('messages')
        .set((eb) => ({
          status: 'sent',
          sent_at: now,
          updated_at: now,
          lease_until: null,
          provider: each((s) => s.provider),
          provider_message_id: each((s) => s.providerMessageId),
          // A lease counted its attempt already.
          ...(from === 'due' ? { attempts: eb('attempts', '+', 1) } : {}),
        }))
        .where('id', 'in', chunk.map((s) => s.id))
        // A leased message is still ours only while `sending`; one delivered in the claiming transaction is locked.
        .where('status', 'in', from === 'leased' ? ['sending'] : ['queued', 'sending', 'retrying'])
        .execute();
    }
    const ids = sent.map((s) => s.id);
    for (let i = 0; i < ids.length; i += 500) {
      await trx
        .updateTable('messages')
        .set({ status: 'cancelled', reason: 'the message it escalates from was sent', pending: null, updated_at: now })
        .where('fallback_of', 'in', ids.slice(i, i + 500))
        .where('status', '=', 'held')
        .where('not_before', 'is', null)
        .execute();
    }
  }

  private async failed(id: string, attempt: number, providerName: string, err: unknown): Promise<void> {
    const now = this.clock.now().getTime();
    const permanent = err instanceof PermanentProviderError || attempt >= MAX_ATTEMPTS;
    const reason = `provider ${providerName} failed (attempt ${attempt}): ${(err as Error).message}`;
    // After a transient failure the message waits `retrying` until its backoff has passed.
    await this.store.db
      .updateTable('messages')
      .set(permanent ? { status: 'failed', reason, updated_at: now, lease_until: null } : { status: 'retrying', reason, updated_at: now, lease_until: this.wallNow() + backoffMs(attempt) })
      .where('id', '=', id)
      .execute();
    // A failure releases its "if it fails" escalation at once.
    if (permanent) {
      await this.store.db.updateTable('messages').set({ not_before: now }).where('fallback_of', '=', id).where('status', '=', 'held').where('not_before', 'is', null).execute();
    }
  }
}
