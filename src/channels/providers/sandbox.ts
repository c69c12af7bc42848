import type { Store } from '../../store/db.js';
import type { OutboundMessage, Provider } from '../provider.js';

/**
 * The default provider for every channel: captures the rendered message in the database instead of
 * delivering it, so Chorus works with no credentials. Idempotent by message id, like a real provider's
 * idempotency key.
 */
export class SandboxProvider implements Provider {
  readonly name = 'sandbox';
  constructor(
    private readonly store: Store,
    private readonly now: () => Date,
  ) {}

  async send(message: OutboundMessage, idempotencyKey: string): Promise<{ providerMessageId: string }> {
    await this.store.db
      .insertInto('sandbox_messages')
      .values({
        message_id: idempotencyKey,
        workspace_id: message.workspaceId,
        channel: message.channel,
        to_address: message.to,
        content: JSON.stringify(message.content),
        captured_at: this.now().getTime(),
      })
      .onConflict((oc) => oc.column('message_id').doNothing())
      .execute();
    return { providerMessageId: `sandbox_${idempotencyKey}` };
  }
}
