import type { Provider } from '../channels/provider.js';
import type { Channel } from '../core/types.js';
import { transact, type Store } from '../store/db.js';
import type { Clock } from './clock.js';

const LEASE_MS = 30_000;

/**
 * Delivers queued messages. A message is leased (status `sending`) before its provider is called and
 * marked `sent` after; a process that dies in between leaves the lease to expire, and the retry carries
 * the same idempotency key (the message id), so the provider delivers it once.
 */
export class Outbox {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly providers: (channel: Channel) => Provider,
    /** Wall time for leases only: a lease must expire even while a virtual clock stands still. */
    private readonly wallNow: () => number,
  ) {}

  /** Delivers up to `limit` due messages; returns how many it handled. */
  async dispatch(limit = 200): Promise<number> {
    const wall = this.wallNow();
    const claimed = await transact(this.store, async (trx) => {
      let q = trx
        .selectFrom('messages')
        .select(['id', 'workspace_id', 'channel', 'to_address', 'content', 'category'])
        .where((eb) => eb.or([eb('status', '=', 'queued'), eb.and([eb('status', '=', 'sending'), eb('lease_until', '<', wall)])]))
        .orderBy('created_at')
        .limit(limit);
      if (this.store.dialect === 'postgres') q = q.forUpdate().skipLocked();
      const rows = await q.execute();
      if (rows.length === 0) return rows;
      await trx
        .updateTable('messages')
        .set({ status: 'sending', lease_until: wall + LEASE_MS })
        .where('id', 'in', rows.map((r) => r.id))
        .execute();
      return rows;
    });
    for (const m of claimed) {
      const channel = m.channel as Channel;
      const provider = this.providers(channel);
      try {
        const res = await provider.send(
          { id: m.id, workspaceId: m.workspace_id, channel, to: m.to_address ?? '', content: JSON.parse(m.content ?? '{}') as Record<string, unknown>, category: m.category },
          m.id,
        );
        const now = this.clock.now().getTime();
        await this.store.db
          .updateTable('messages')
          .set({ status: 'sent', sent_at: now, updated_at: now, lease_until: null, provider: provider.name, provider_message_id: res.providerMessageId })
          .where('id', '=', m.id)
          .where('status', '=', 'sending')
          .execute();
      } catch (err) {
        const now = this.clock.now().getTime();
        await this.store.db
          .updateTable('messages')
          .set({ status: 'failed', reason: `provider ${provider.name} failed: ${(err as Error).message}`, updated_at: now, lease_until: null })
          .where('id', '=', m.id)
          .execute();
      }
    }
    return claimed.length;
  }

  /** Dispatches until nothing is queued. */
  async drain(): Promise<number> {
    let total = 0;
    for (;;) {
      const n = await this.dispatch();
      total += n;
      if (n === 0) return total;
    }
  }
}
