import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { parseProfileRef } from '../../core/identifiers.js';
import { parseJourneySpec, type SendStep } from '../../core/journey-spec.js';
import type { Clock } from '../../engine/clock.js';
import type { Gate } from '../../engine/gate.js';
import { GroupCommit } from '../../lib/group-commit.js';
import { transact, type Store } from '../../store/db.js';
import { acceptSends, type Accepted, type SendInput } from '../accept-sends.js';
import { requireSecretKey, type KeyRing } from '../auth.js';
import { invalid, type FieldError } from '../errors.js';

// POST /v1/messages: one message to one customer, through the same gate as journey sends.

const SEND_FIELDS = ['channel', 'category', 'topic', 'priority', 'type', 'tags', 'override_caps', 'fallback', 'content'] as const;

const bodySchema = z
  .object({
    to: z.string().min(1).describe('A profile ref: prf_… or kind:value such as user_id:42'),
    idempotencyKey: z.string().min(1).max(255).optional().describe('The same key returns the same message, never a second one'),
    data: z.record(z.string(), z.unknown()).optional().describe('Template variables: {{ data.order_id }}'),
    channel: z.unknown().optional().describe('A channel, an ordered list, or auto (default)'),
    category: z.unknown().optional(),
    topic: z.unknown().optional(),
    priority: z.unknown().optional(),
    type: z.unknown().optional(),
    tags: z.unknown().optional(),
    override_caps: z.unknown().optional(),
    fallback: z.unknown().optional().describe('Escalation hops: [{channel: sms, when: not_opened, after: PT1H}]'),
    content: z.unknown().describe('Per-channel Liquid templates, as in a journey send step'),
  })
  .strict();

/** Validates the send part with the journey spec's own rules, so both accept exactly the same sends. */
function parseSend(body: Record<string, unknown>): { ok: true; send: SendStep } | { ok: false; errors: FieldError[] } {
  const send: Record<string, unknown> = { channel: body.channel ?? 'auto' };
  for (const f of SEND_FIELDS) if (f !== 'channel' && body[f] !== undefined) send[f] = body[f];
  const parsed = parseJourneySpec({ key: 'api', name: 'api', trigger: { event: 'api' }, steps: { message: { send } } });
  if (parsed.ok) {
    const step = parsed.spec.steps.message;
    if (step.type === 'send') return { ok: true, send: step.send };
  }
  const prefix = 'steps.message.send';
  const errors = parsed.ok
    ? [{ path: '', message: 'not a valid send' }]
    : parsed.errors.map((e) => ({ path: e.path.startsWith(prefix) ? e.path.slice(prefix.length).replace(/^\./, '') : e.path, message: e.message }));
  return { ok: false, errors };
}

export function sendRoutes(app: FastifyInstance, store: Store, keys: KeyRing, gate: Gate, clock: Clock, committed: () => void): void {
  // Group commit: requests that arrive while a transaction runs are accepted together in the next one, so
  // concurrent sends share one durable commit. Each is answered only after that commit.
  const sends = new GroupCommit<SendInput, Accepted>(
    async (group) => {
      const now = clock.now();
      const accepted = await transact(store, (trx) => acceptSends(trx, store.dialect, gate, group, now));
      // Committed: nothing after this point may throw, or the group would be accepted a second time.
      try {
        committed();
      } catch {
        // Only a wake-up call; the outbox's poll finds the queued messages anyway.
      }
      return accepted;
    },
    // PostgreSQL: a few groups at once from the pool; SQLite has one writer.
    { maxGroup: 200, concurrency: store.dialect === 'postgres' ? 4 : 1 },
  );

  const r = app.withTypeProvider<ZodTypeProvider>();
  r.post('/v1/messages', {
    onRequest: requireSecretKey(keys),
    schema: {
      tags: ['messages'],
      summary: 'Send one message; the gate decides channel, timing or suppression and answers with its decision',
      body: bodySchema,
    },
    handler: async (req, reply) => {
      const body = req.body;
      const ref = parseProfileRef(body.to);
      if ('error' in ref) throw invalid([{ path: 'to', message: ref.error }], 'send');
      const parsed = parseSend(body as Record<string, unknown>);
      if (!parsed.ok) throw invalid(parsed.errors, 'send');
      const result = await sends.submit({
        workspaceId: req.workspaceId,
        to: body.to,
        ref,
        send: parsed.send,
        data: body.data ?? {},
        idempotencyKey: body.idempotencyKey ?? null,
        receivedAt: clock.now().getTime(),
      });
      void reply.code(result.replayed ? 200 : 201);
      if (result.replayed) void reply.header('idempotent-replayed', 'true');
      return result.message;
    },
  });
}
