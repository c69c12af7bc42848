import type { Kysely } from 'kysely';
import type { Store } from '../../store/db.js';
import { insertRows, type Write } from '../../store/insert-rows.js';
import type { Database } from '../../store/schema.js';
import type { OutboundMessage, Provider } from '../provider.js';

/**
 * The default provider for every channel: captures the rendered message in the database instead of
 * delivering it, so Chorus works with no credentials. Idempotent by message id, like a real provider's
 * idempotency key. Being in the database, it delivers inside the caller's transaction (the gate's or the
 * outbox's).
 */
export class SandboxProvider implements Provider {
  readonly name = 'sandbox';
  constructor(
    private readonly store: Store,
    private readonly now: () => Date,
  ) {}

  async send(message: OutboundMessage, idempotencyKey: string): Promise<{ providerMessageId: string }> {
    const [result] = await this.sendMany([{ ...message, id: idempotencyKey }]);
    return result;
  }

  sendMany(messages: OutboundMessage[]): Promise<{ providerMessageId: string }[]> {
    return this.capture(this.store.db, messages);
  }

  deliverInTransaction(trx: Kysely<Database>, messages: OutboundMessage[], writes?: Write[]): Promise<{ providerMessageId: string }[]> {
    return this.capture(trx, messages, writes);
  }

  /** One write per 500 messages (or rows handed to the caller's `writes`); idempotent on each message id. */
  private async capture(db: Kysely<Database>, messages: OutboundMessage[], writes?: Write[]): Promise<{ providerMessageId: string }[]> {
    const at = this.now().getTime();
    const rows = messages.map((m) => ({
      message_id: m.id,
      workspace_id: m.workspaceId,
      channel: m.channel,
      to_address: m.to,
      content: JSON.stringify(m.content),
      captured_at: at,
    }));
    const conflict = { column: 'message_id' };
    if (writes) writes.push({ kind: 'insert', table: 'sandbox_messages', rows, conflict });
    else for (let i = 0; i < rows.length; i += 500) await insertRows(db, 'sandbox_messages', rows.slice(i, i + 500), conflict);
    return messages.map((m) => ({ providerMessageId: `sandbox_${m.id}` }));
  }
}
