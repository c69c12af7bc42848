import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { parseProfileRef } from '../../core/identifiers.js';
import { profilePatchSchema, validatePatch } from '../../core/profile.js';
import type { Store } from '../../store/db.js';
import {
  decodeCursor,
  deleteProfile,
  exportProfile,
  getProfile,
  ProfileConflictError,
  resolveRef,
  timeline,
  updateProfile,
  type ProfileRef,
} from '../../store/profiles.js';
import { requireSecretKey, type KeyRing } from '../auth.js';
import { HttpError, invalid } from '../errors.js';

// The admin API over unified profiles. Every query is scoped to the secret key's workspace.

const refParams = z.object({
  ref: z.string().min(1).describe('A profile id (prf_…) or kind:value, e.g. user_id:42, email:ann@example.com, phone:+15551234567'),
});

function ref(raw: string): ProfileRef {
  const parsed = parseProfileRef(raw);
  if ('error' in parsed) throw invalid([{ path: 'ref', message: parsed.error }], 'profile reference');
  return parsed;
}

function notFound(raw: string): HttpError {
  return new HttpError(404, 'not_found', `no profile matches "${raw}" in this workspace; refs are a profile id or kind:value such as email:ann@example.com`);
}

export function profileRoutes(app: FastifyInstance, store: Store, keys: KeyRing): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const auth = requireSecretKey(keys);
  const tags = ['profiles'];

  r.get('/v1/profiles/:ref', {
    onRequest: auth,
    schema: { tags, summary: 'Get the unified profile', params: refParams },
    handler: async (req) => {
      const profile = await getProfile(store, req.workspaceId, ref(req.params.ref));
      if (!profile) throw notFound(req.params.ref);
      return profile;
    },
  });

  r.get('/v1/profiles/:ref/events', {
    onRequest: auth,
    schema: {
      tags,
      summary: "The customer's timeline, newest first",
      params: refParams,
      querystring: z.object({
        limit: z.coerce.number().int().min(1).max(500).default(50),
        cursor: z.string().optional().describe('nextCursor from the previous page'),
      }),
    },
    handler: async (req) => {
      const id = await resolveRef(store.db, req.workspaceId, ref(req.params.ref));
      if (id === null) throw notFound(req.params.ref);
      let cursor: [number, string] | undefined;
      if (req.query.cursor !== undefined) {
        const decoded = decodeCursor(req.query.cursor);
        if (!decoded) throw invalid([{ path: 'query.cursor', message: 'not a cursor returned by this endpoint; omit it to start from the newest event' }]);
        cursor = decoded;
      }
      return timeline(store, req.workspaceId, id, { limit: req.query.limit, cursor });
    },
  });

  r.patch('/v1/profiles/:ref', {
    onRequest: auth,
    schema: { tags, summary: 'Set traits, contact points, consent and preferences', params: refParams, body: profilePatchSchema },
    handler: async (req) => {
      const patch = validatePatch(req.body);
      if (!patch.ok) throw invalid(patch.errors, 'profile patch');
      try {
        const profile = await updateProfile(store, req.workspaceId, ref(req.params.ref), patch.value);
        if (!profile) throw notFound(req.params.ref);
        return profile;
      } catch (err) {
        if (err instanceof ProfileConflictError) throw new HttpError(409, 'identifier_conflict', err.message, [{ path: err.field, message: err.message }]);
        throw err;
      }
    },
  });

  r.delete('/v1/profiles/:ref', {
    onRequest: auth,
    schema: { tags, summary: 'Erase the profile, its identifiers, events, journey runs and messages', params: refParams },
    handler: async (req) => {
      const erased = await deleteProfile(store, req.workspaceId, ref(req.params.ref));
      if (!erased) throw notFound(req.params.ref);
      return { deleted: true, ...erased };
    },
  });

  r.get('/v1/profiles/:ref/export', {
    onRequest: auth,
    schema: { tags, summary: 'Everything held on one customer (data-subject access)', params: refParams },
    handler: async (req, reply) => {
      const data = await exportProfile(store, req.workspaceId, ref(req.params.ref));
      if (!data) throw notFound(req.params.ref);
      void reply.header('content-disposition', `attachment; filename="profile-${data.profile.id}.json"`);
      return data;
    },
  });
}
