import type { Kysely, Selectable } from 'kysely';
import type { Database, MessageTable } from './schema.js';
import { isoTime } from '../core/iso-time.js';

// Reading the message ledger.

export interface MessageView {
  id: string;
  profileId: string;
  channel: string | null;
  provider: string | null;
  /** The provider's own id for the message, once it accepted it. */
  providerMessageId: string | null;
  category: string;
  status: string;
  /** Why this channel, or why suppressed or failed. */
  reason: string | null;
  to: string | null;
  journey: { key: string; version: number | null } | null;
  step: string | null;
  runId: string | null;
  content: Record<string, unknown> | null;
  priority: string;
  tags: string[];
  topic: string | null;
  type: string | null;
  source: string;
  /** Deferred until (status deferred). */
  notBefore: string | null;
  /** The gate's decision: outcome, the rule that decided, and the trace of every check and candidate. */
  decision: unknown;
  overrideCaps: boolean;
  idempotencyKey: string | null;
  createdAt: string;
  sentAt: string | null;
  updatedAt: string;
}

const iso = (ms: number | null) => (ms === null ? null : isoTime(ms));

export function messageView(m: Selectable<MessageTable>): MessageView {
  return {
    id: m.id,
    profileId: m.profile_id,
    channel: m.channel,
    provider: m.provider,
    providerMessageId: m.provider_message_id,
    category: m.category,
    status: m.status,
    reason: m.reason,
    to: m.to_address,
    journey: m.journey_key ? { key: m.journey_key, version: m.version } : null,
    step: m.step,
    runId: m.run_id,
    content: m.content ? (JSON.parse(m.content) as Record<string, unknown>) : null,
    priority: m.priority,
    tags: JSON.parse(m.tags) as string[],
    topic: m.topic,
    type: m.message_type,
    source: m.source,
    notBefore: iso(m.not_before),
    decision: m.decision ? (JSON.parse(m.decision) as unknown) : null,
    overrideCaps: m.override_caps === 1,
    idempotencyKey: m.idempotency_key,
    createdAt: isoTime(m.created_at),
    sentAt: iso(m.sent_at),
    updatedAt: isoTime(m.updated_at),
  };
}

export async function listMessages(db: Kysely<Database>, workspaceId: string, profileId: string, limit: number, before?: [number, string]): Promise<{ data: MessageView[]; nextCursor: string | null }> {
  let q = db.selectFrom('messages').selectAll().where('workspace_id', '=', workspaceId).where('profile_id', '=', profileId);
  if (before) {
    const [ts, id] = before;
    q = q.where((eb) => eb.or([eb('created_at', '<', ts), eb.and([eb('created_at', '=', ts), eb('id', '<', id)])]));
  }
  const rows = await q.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(limit + 1).execute();
  const page = rows.slice(0, limit);
  const last = page[page.length - 1];
  return {
    data: page.map(messageView),
    nextCursor: rows.length > limit && last ? Buffer.from(JSON.stringify([last.created_at, last.id])).toString('base64url') : null,
  };
}

export async function getMessage(db: Kysely<Database>, workspaceId: string, id: string): Promise<MessageView | null> {
  const row = await db.selectFrom('messages').selectAll().where('workspace_id', '=', workspaceId).where('id', '=', id).executeTakeFirst();
  return row ? messageView(row) : null;
}
