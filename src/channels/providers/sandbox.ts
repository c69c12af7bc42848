import type { Kysely } from 'kysely';
import type { Store } from '../../store/db.js';
import { insertRows, type Write } from '../../store/insert-rows.js';
import type { Database } from '../../store/schema.js';
import type { OutboundMessage, Provider } from '../provider.js';

/** The sandbox's message id: derived from Chorus's, so a repeated delivery answers the same. */
const providerResult = (m: OutboundMessage): { providerMessageId: string } => ({ providerMessageId: `sandbox_${m.id}` });

/**
 * The default provider for every channel: records the rendered message in the database instead of
 * delivering it, so Chorus works with no credentials. Being in the database, it delivers inside the
 * caller's transaction (the gate's or the outbox's).
 *
 * Called like a provider outside Chorus (`send`, `sendMany`, or by the outbox), it captures the message in
 * `sandbox_messages`, idempotent by message id like a real provider's idempotency key. Delivering as part of
 * the gate's own write (`writes` given), it adds nothing: that write stores the message `sent`, with its
 * address, rendered content and provider message id, in the same statement, so the message row is the
 * record of the delivery and a capture would only copy it.
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

  /**
   * Without `writes` (the outbox's claiming transaction), captures as `sendMany` does. With `writes` (the
   * gate's write, which stores each message `sent` with this result), adds no row: the message row written
   * in that same statement already holds everything a capture would.
   */
  async deliverInTransaction(trx: Kysely<Database>, messages: OutboundMessage[], writes?: Write[]): Promise<{ providerMessageId: string }[]> {
    if (writes) return messages.map(providerResult);
    return this.capture(trx, messages);
  }

  /** One write per 500 messages; idempotent on each message id. */
  private async capture(db: Kysely<Database>, messages: OutboundMessage[]): Promise<{ providerMessageId: string }[]> {
    const at = this.now().getTime();
    const rows = messages.map((m) => ({
      message_id: m.id,
      workspace_id: m.workspaceId,
      channel: m.channel,
      to_address: m.to,
      content: JSON.stringify(m.content),
      captured_at: at,
    }));
    for (let i = 0; i < rows.length; i += 500) await insertRows(db, 'sandbox_messages', rows.slice(i, i + 500), { column: 'message_id' });
    return messages.map(providerResult);
  }
}
