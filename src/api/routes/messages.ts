import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { parseProfileRef } from '../../core/identifiers.js';
import type { Store } from '../../store/db.js';
import { getMessage, listMessages } from '../../store/messages.js';
import { decodeCursor, resolveRef } from '../../store/profiles.js';
import { runsOfProfile } from '../../store/runs.js';
import { requireSecretKey, type KeyRing } from '../auth.js';
import { HttpError, invalid } from '../errors.js';
import type { IngestHooks } from './segment.js';

// The message ledger and customers' runs.

const ENGAGEMENT = ['delivered', 'opened', 'clicked', 'failed'] as const;
const RANK: Record<string, number> = { queued: 0, sending: 0, retrying: 0, sent: 1, delivered: 2, opened: 3, clicked: 4 };
const EVENT_NAMES: Record<(typeof ENGAGEMENT)[number], string> = {
  delivered: 'Message Delivered',
  opened: 'Message Opened',
  clicked: 'Message Clicked',
  failed: 'Message Failed',
};

export function messageRoutes(app: FastifyInstance, store: Store, keys: KeyRing, hooks?: IngestHooks): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const auth = requireSecretKey(keys);

  async function profileId(workspaceId: string, raw: string, field: string): Promise<string> {
    const ref = parseProfileRef(raw);
    if ('error' in ref) throw invalid([{ path: field, message: ref.error }], 'profile reference');
    const id = await resolveRef(store.db, workspaceId, ref);
    if (id === null) throw new HttpError(404, 'not_found', `no profile matches "${raw}" in this workspace`);
    return id;
  }

  r.get('/v1/messages', {
    onRequest: auth,
    schema: {
      tags: ['messages'],
      summary: "A customer's messages, newest first",
      querystring: z.object({
        profile: z.string().min(1).describe('A profile ref: prf_… or kind:value such as user_id:42'),
        limit: z.coerce.number().int().min(1).max(500).default(50),
        cursor: z.string().optional(),
      }),
    },
    handler: async (req) => {
      const id = await profileId(req.workspaceId, req.query.profile, 'query.profile');
      let before: [number, string] | undefined;
      if (req.query.cursor !== undefined) {
        const c = decodeCursor(req.query.cursor);
        if (!c) throw invalid([{ path: 'query.cursor', message: 'not a cursor returned by this endpoint' }]);
        before = c;
      }
      return listMessages(store.db, req.workspaceId, id, req.query.limit, before);
    },
  });

  r.get('/v1/messages/:id', {
    onRequest: auth,
    schema: { tags: ['messages'], summary: 'One message with its decision and content', params: z.object({ id: z.string().min(1) }) },
    handler: async (req) => {
      const m = await getMessage(store.db, req.workspaceId, req.params.id);
      if (!m) throw new HttpError(404, 'not_found', `no message "${req.params.id}" in this workspace`);
      return m;
    },
  });

  r.post('/v1/messages/:id/engagement', {
    onRequest: auth,
    schema: {
      tags: ['messages'],
      summary: 'Report delivery or engagement for a message (provider-agnostic webhook)',
      description:
        'Moves the message status forward (sent → delivered → opened → clicked; or failed) and records a "Message Delivered/Opened/Clicked/Failed" event on the customer, which journeys can wait for. Engagement stops pending fallback hops.',
      params: z.object({ id: z.string().min(1) }),
      body: z.object({ type: z.enum(ENGAGEMENT), at: z.string().datetime({ offset: true }).optional() }).strict(),
    },
    handler: async (req) => {
      const m = await getMessage(store.db, req.workspaceId, req.params.id);
      if (!m) throw new HttpError(404, 'not_found', `no message "${req.params.id}" in this workspace`);
      const { type } = req.body;
      const now = (hooks?.clock.now() ?? new Date()).getTime();
      const forward = type === 'failed' ? m.status !== 'failed' : (RANK[type] ?? 0) > (RANK[m.status] ?? -1);
      if (forward) {
        await store.db.updateTable('messages').set({ status: type, updated_at: now }).where('workspace_id', '=', req.workspaceId).where('id', '=', m.id).execute();
      }
      const ingest = await import('../../store/ingest.js');
      const event = {
        messageId: `engagement:${m.id}:${type}`,
        type: 'track' as const,
        userId: null,
        anonymousId: null,
        previousId: null,
        groupId: null,
        event: EVENT_NAMES[type],
        properties: { message_id: m.id, channel: m.channel, journey: m.journey?.key ?? null, step: m.step },
        traits: {},
        context: {},
        timestamp: new Date(req.body.at ? Date.parse(req.body.at) : now).toISOString(),
        originalTimestamp: null,
        sentAt: null,
        receivedAt: new Date(now).toISOString(),
        raw: {},
      };
      await ingest.ingestToProfile(store, req.workspaceId, m.profileId, event, hooks?.after);
      hooks?.committed?.();
      return getMessage(store.db, req.workspaceId, m.id);
    },
  });

  r.get('/v1/profiles/:ref/runs', {
    onRequest: auth,
    schema: { tags: ['profiles'], summary: "The customer's journey runs with the steps taken", params: z.object({ ref: z.string().min(1) }) },
    handler: async (req) => ({ data: await runsOfProfile(store.db, req.workspaceId, await profileId(req.workspaceId, req.params.ref, 'ref')) }),
  });
}
