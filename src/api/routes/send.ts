import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { parseProfileRef } from '../../core/identifiers.js';
import { parseJourneySpec, type SendStep } from '../../core/journey-spec.js';
import { profileVars, sendRequest } from '../../core/walk.js';
import type { Clock } from '../../engine/clock.js';
import { apiMessageId, type Gate } from '../../engine/gate.js';
import { loadProfiles } from '../../engine/run-store.js';
import { newId } from '../../lib/ids.js';
import { transact, type Store } from '../../store/db.js';
import { getMessage } from '../../store/messages.js';
import { resolveRef } from '../../store/profiles.js';
import { requireSecretKey, type KeyRing } from '../auth.js';
import { HttpError, invalid, type FieldError } from '../errors.js';

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
      const ws = req.workspaceId;
      const key = body.idempotencyKey ?? null;
      const now = clock.now();

      const result = await transact(store, async (trx) => {
        const profileId = await resolveRef(trx, ws, ref);
        if (profileId === null) throw new HttpError(404, 'not_found', `no profile matches "${body.to}"; identify the customer first`);
        // The customer's line: caps and idempotency are decided under the profile's lock.
        const lock = trx.selectFrom('profiles').select('id').where('id', '=', profileId);
        await (store.dialect === 'postgres' ? lock.forUpdate() : lock).execute();
        if (key !== null) {
          const existing = await trx.selectFrom('messages').select('id').where('workspace_id', '=', ws).where('idempotency_key', '=', key).executeTakeFirst();
          if (existing) return { message: await getMessage(trx, ws, existing.id), replayed: true };
        }
        const profile = (await loadProfiles(trx, ws, [profileId])).get(profileId)!;
        const id = apiMessageId(ws, key, newId('msg', now.getTime()));
        await gate.record(
          trx,
          [
            {
              id,
              workspaceId: ws,
              profile,
              run: null,
              request: sendRequest(parsed.send),
              templates: parsed.send.content,
              vars: { profile: profileVars(profile.state), event: null, journey: null, run: null, data: body.data ?? {} },
              holdout: false,
              createdAt: now.getTime(),
              source: 'api',
              idempotencyKey: key,
              existing: false,
            },
          ],
          now,
        );
        // Read inside the transaction: the answer is the message as accepted, before the outbox can lease it.
        return { message: await getMessage(trx, ws, id), replayed: false };
      });
      committed();
      const message = result.message;
      void reply.code(result.replayed ? 200 : 201);
      if (result.replayed) void reply.header('idempotent-replayed', 'true');
      return message;
    },
  });
}
