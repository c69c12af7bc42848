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
import type { Channel } from '../../core/types.js';
import { transact } from '../../store/db.js';
import { profileFromRow, profileToRow } from '../../store/rows.js';
import type { IngestHooks } from './segment.js';

// The message ledger and customers' runs.

const ENGAGEMENT = ['delivered', 'opened', 'clicked', 'replied', 'failed', 'bounced', 'complained', 'stopped'] as const;
// A reply (inbound SMS/WhatsApp, an email reply) is the strongest engagement: ranked with clicks at the
// top, just above them so a reply after a click still shows (and a later click doesn't hide the reply).
const RANK: Record<string, number> = { queued: 0, sending: 0, retrying: 0, sent: 1, delivered: 2, opened: 3, clicked: 4, replied: 5 };
const EVENT_NAMES: Record<(typeof ENGAGEMENT)[number], string> = {
  delivered: 'Message Delivered',
  opened: 'Message Opened',
  clicked: 'Message Clicked',
  replied: 'Message Replied',
  failed: 'Message Failed',
  bounced: 'Message Bounced',
  complained: 'Message Complained',
  stopped: 'Message Stopped',
};

async function markContact(store: Store, workspaceId: string, profileId: string, channel: Channel, type: 'bounced' | 'complained' | 'stopped', at: string): Promise<void> {
  await transact(store, async (trx) => {
    const q = trx.selectFrom('profiles').selectAll().where('workspace_id', '=', workspaceId).where('id', '=', profileId);
    const row = await (store.dialect === 'postgres' ? q.forUpdate() : q).executeTakeFirst();
    if (!row) return;
    const p = profileFromRow(row);
    if (type === 'bounced') {
      const cp = p.contactPoints as unknown as Record<string, Record<string, unknown> | undefined>;
      if (cp[channel]) cp[channel] = { ...cp[channel], undeliverable: true, undeliverableAt: at };
    } else {
      p.consent.channels[channel] = { status: 'unsubscribed', source: type === 'stopped' ? 'hard:stop' : 'hard:complaint', updatedAt: at };
    }
    const r = profileToRow(p, workspaceId);
    await trx.updateTable('profiles').set({ contact_points: r.contact_points, consent: r.consent }).where('id', '=', profileId).execute();
  });
}

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
        'Moves the message status forward (sent → delivered → opened → clicked → replied; or failed) and records a "Message Delivered/Opened/Clicked/Replied/Failed" event on the customer, which journeys can wait for. Engagement (opened, clicked, replied: an inbound SMS/WhatsApp reply or an email reply) stops pending fallback hops and counts in the channel engagement score. bounced marks the contact point undeliverable; complained and stopped (an SMS STOP) are hard opt-outs on the channel, binding even transactional messages.',
      params: z.object({ id: z.string().min(1) }),
      body: z.object({ type: z.enum(ENGAGEMENT), at: z.string().datetime({ offset: true }).optional() }).strict(),
    },
    handler: async (req) => {
      const m = await getMessage(store.db, req.workspaceId, req.params.id);
      if (!m) throw new HttpError(404, 'not_found', `no message "${req.params.id}" in this workspace`);
      const { type } = req.body;
      const now = (hooks?.clock.now() ?? new Date()).getTime();
      if (type === 'bounced' || type === 'complained' || type === 'stopped') {
        // A bounce makes the contact point undeliverable; a complaint or an SMS STOP is a hard opt-out
        // that binds even transactional messages (docs/gate.md).
        if (m.channel) await markContact(store, req.workspaceId, m.profileId, m.channel as Channel, type, new Date(now).toISOString());
        if (type === 'bounced' && m.status !== 'failed') {
          await store.db.updateTable('messages').set({ status: 'failed', reason: 'bounced', updated_at: now }).where('workspace_id', '=', req.workspaceId).where('id', '=', m.id).execute();
        }
      } else {
        const forward = type === 'failed' ? m.status !== 'failed' : (RANK[type] ?? 0) > (RANK[m.status] ?? -1);
        if (forward) {
          await store.db.updateTable('messages').set({ status: type, updated_at: now }).where('workspace_id', '=', req.workspaceId).where('id', '=', m.id).execute();
        }
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
