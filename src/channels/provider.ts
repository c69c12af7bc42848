import type { Kysely } from 'kysely';
import type { Channel } from '../core/types.js';
import type { Database } from '../store/schema.js';
import type { Write } from '../store/insert-rows.js';

/** A message on its way out, as a provider adapter sees it. */
export interface OutboundMessage {
  id: string;
  workspaceId: string;
  channel: Channel;
  to: string;
  content: Record<string, unknown>;
  category: string;
}

/**
 * One interface per provider. `send` must be idempotent on `idempotencyKey` (the message id): a retry after
 * a crash between the call and the ledger update must not deliver twice (DESIGN invariant 2).
 */
export interface Provider {
  readonly name: string;
  send(message: OutboundMessage, idempotencyKey: string): Promise<{ providerMessageId: string }>;
  /** Optional bulk form (idempotent on each message id), for providers with a batch API. */
  sendMany?(messages: OutboundMessage[]): Promise<{ providerMessageId: string }[]>;
  /**
   * For a provider that lives in Chorus's own database (the sandbox): delivers inside the caller's
   * transaction (the gate's, or the outbox's), so the delivery and the message's `sent` mark commit
   * together and no lease is needed. With `writes` (the gate's), the caller writes each message's row
   * `sent`, with its address, rendered content and the returned provider message id, in one write together
   * with whatever the provider pushes onto `writes` (one round trip): a provider pushes there only what
   * that row doesn't already record (the sandbox: nothing).
   */
  deliverInTransaction?(trx: Kysely<Database>, messages: OutboundMessage[], writes?: Write[]): Promise<{ providerMessageId: string }[]>;
}

/** A provider refused the message for good (bad address, rejected content): don't retry it. */
export class PermanentProviderError extends Error {
  override name = 'PermanentProviderError';
}
