import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { parse as parseYaml } from 'yaml';
import { parseJourneySpec, parseJourneyText, type SpecResult } from '../../core/journey-spec.js';
import { storableText } from '../../core/text.js';
import type { Store } from '../../store/db.js';
import { getJourney, JourneyError, listJourneys, publish, saveDraft, transition, type ActiveJourneys } from '../../store/journeys.js';
import { requireSecretKey, type KeyRing } from '../auth.js';
import { HttpError, invalid } from '../errors.js';

// Journey definitions: create, list, get, update (the draft), publish, pause, resume, archive.

const keyParams = z.object({ key: z.string().min(1).describe('The journey key, e.g. onboarding') });

/** A body is a JSON spec, or YAML/JSON text sent as application/yaml or text/yaml. */
function parseBody(body: unknown): SpecResult {
  if (typeof body === 'string') return parseJourneyText(body);
  return parseJourneySpec(body);
}

function rawOf(body: unknown): unknown {
  if (typeof body !== 'string') return body;
  const parsed = parseJourneyText(body);
  // Store the document as data (JSON), whatever format it came in.
  return parsed.ok ? yamlToData(body) : body;
}

function yamlToData(text: string): unknown {
  return storableText(parseYaml(text));
}

function fail(err: unknown): never {
  if (err instanceof JourneyError) throw new HttpError(err.status, err.status === 404 ? 'not_found' : 'conflict', err.message);
  throw err;
}

export function journeyRoutes(app: FastifyInstance, store: Store, keys: KeyRing, active: ActiveJourneys): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const auth = requireSecretKey(keys);
  const tags = ['journeys'];
  for (const type of ['application/yaml', 'text/yaml', 'application/x-yaml']) {
    if (!app.hasContentTypeParser(type)) app.addContentTypeParser(type, { parseAs: 'string' }, (_req, body, done) => done(null, body));
  }

  const spec = (body: unknown) => {
    const parsed = parseBody(body);
    if (!parsed.ok) throw invalid(parsed.errors, 'journey spec');
    return parsed.spec;
  };

  r.post('/v1/journeys', {
    onRequest: auth,
    schema: { tags, summary: 'Create a journey (as a draft) from a JSON or YAML spec; see docs/journeys.md' },
    handler: async (req, reply) => {
      const s = spec(req.body);
      await saveDraft(store, req.workspaceId, s, rawOf(req.body), { create: 'only' }).catch(fail);
      void reply.code(201);
      return getJourney(store, req.workspaceId, s.key);
    },
  });

  r.get('/v1/journeys', {
    onRequest: auth,
    schema: { tags, summary: 'List journeys' },
    handler: async (req) => ({ data: await listJourneys(store, req.workspaceId) }),
  });

  r.get('/v1/journeys/:key', {
    onRequest: auth,
    schema: { tags, summary: 'Get a journey with its draft and versions', params: keyParams },
    handler: async (req) => {
      const j = await getJourney(store, req.workspaceId, req.params.key);
      if (!j) throw new HttpError(404, 'not_found', `no journey "${req.params.key}"; list them with GET /v1/journeys`);
      return j;
    },
  });

  r.put('/v1/journeys/:key', {
    onRequest: auth,
    schema: { tags, summary: "Replace the journey's draft (published versions never change)", params: keyParams },
    handler: async (req) => {
      const s = spec(req.body);
      if (s.key !== req.params.key) throw invalid([{ path: 'key', message: `the spec's key "${s.key}" differs from the URL's "${req.params.key}"` }], 'journey spec');
      await saveDraft(store, req.workspaceId, s, rawOf(req.body), { create: 'never' }).catch(fail);
      return getJourney(store, req.workspaceId, s.key);
    },
  });

  r.post('/v1/journeys/:key/publish', {
    onRequest: auth,
    schema: { tags, summary: 'Freeze the draft as the next version and make it live', params: keyParams },
    handler: async (req) => {
      const result = await publish(store, req.workspaceId, req.params.key).catch(fail);
      active.invalidate(req.workspaceId);
      return { ...result, journey: await getJourney(store, req.workspaceId, req.params.key) };
    },
  });

  for (const action of ['pause', 'resume', 'archive'] as const) {
    r.post(`/v1/journeys/:key/${action}`, {
      onRequest: auth,
      schema: { tags, summary: `${action[0].toUpperCase()}${action.slice(1)} the journey`, params: keyParams },
      handler: async (req) => {
        await transition(store, req.workspaceId, req.params.key, action).catch(fail);
        active.invalidate(req.workspaceId);
        return getJourney(store, req.workspaceId, req.params.key);
      },
    });
  }
}
