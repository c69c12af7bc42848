import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { EventType, IncomingEvent } from '../../core/types.js';
import { parseBatch, parseCall, segmentSchemas, MAX_BATCH_BYTES, MAX_EVENT_BYTES } from '../../ingest/segment.js';
import { newId } from '../../lib/ids.js';
import type { Store } from '../../store/db.js';
import { IngestGroups } from '../../store/ingest-groups.js';
import { requireWriteKey, type KeyRing } from '../auth.js';
import { invalid } from '../errors.js';
import type { Metrics } from '../metrics.js';
import type { AfterIngest } from '../../store/ingest.js';
import type { Clock } from '../../engine/clock.js';

// The Segment HTTP Tracking API: existing Segment, RudderStack and Jitsu clients post here unchanged.

const CALLS: EventType[] = ['identify', 'track', 'page', 'screen', 'group', 'alias'];
const ok = z.object({ success: z.literal(true) });
const errorBody = z.object({
  error: z.string(),
  message: z.string(),
  fields: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
});

// The schemas document the calls in /openapi.json; validation is parseCall/parseBatch, which reports
// every problem of a batch at once by index, so Fastify's own body validation is switched off here.
const documentationOnly = () => (data: unknown) => ({ value: data });

export interface IngestHooks {
  clock: Clock;
  /** Runs in the ingestion transaction (the journey engine). */
  after?: AfterIngest;
  /** Called after a commit (wakes the outbox). */
  committed?: () => void;
}

export function segmentRoutes(app: FastifyInstance, store: Store, keys: KeyRing, metrics: Metrics, hooks: IngestHooks): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const auth = requireWriteKey(keys);
  const eventId = () => newId('msg');
  const groups = new IngestGroups(store, hooks.after);

  async function store_(workspaceId: string, events: IncomingEvent[]): Promise<void> {
    const result = await groups.ingest(workspaceId, events);
    hooks.committed?.();
    for (const e of events) metrics.eventsIngested.inc({ type: e.type });
    metrics.eventsDuplicate.inc(result.duplicates);
  }

  for (const type of CALLS) {
    r.post(`/v1/${type}`, {
      bodyLimit: MAX_EVENT_BYTES,
      preValidation: auth,
      validatorCompiler: documentationOnly,
      schema: {
        tags: ['ingestion'],
        summary: `Segment ${type} call`,
        description: 'HTTP Basic auth with the write key as user name (empty password), or writeKey in the body.',
        body: segmentSchemas[type],
        response: { 200: ok, 400: errorBody, 401: errorBody, 413: errorBody },
      },
      handler: async (req) => {
        const parsed = parseCall(type, req.body, hooks.clock.now(), eventId);
        if (!parsed.ok) throw invalid(parsed.errors, `${type} call`);
        await store_(req.workspaceId, [parsed.value]);
        return { success: true as const };
      },
    });
  }

  r.post('/v1/batch', {
    bodyLimit: MAX_BATCH_BYTES,
    preValidation: auth,
    validatorCompiler: documentationOnly,
    schema: {
      tags: ['ingestion'],
      summary: 'Segment batch: up to 2,500 calls and 500 KB, stored atomically',
      body: segmentSchemas.batch,
      response: { 200: ok, 400: errorBody, 401: errorBody, 413: errorBody },
    },
    handler: async (req) => {
      const parsed = parseBatch(req.body, hooks.clock.now(), eventId);
      if (!parsed.ok) throw invalid(parsed.errors, 'batch (nothing was stored)');
      await store_(req.workspaceId, parsed.value);
      return { success: true as const };
    },
  });
}
