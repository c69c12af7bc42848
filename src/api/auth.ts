import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Store } from '../store/db.js';
import { authenticate, type KeyKind } from '../store/workspaces.js';
import { HttpError } from './errors.js';

declare module 'fastify' {
  interface FastifyRequest {
    workspaceId: string;
  }
}

const CACHE_MS = 10_000;

/** Resolves keys to workspaces, remembering good keys briefly so ingestion doesn't pay a lookup per call. */
export class KeyRing {
  private cache = new Map<string, { workspaceId: string; until: number }>();
  /**
   * Lookups in progress. When a busy key's entry expires, every request that arrives before the lookup
   * answers waits for that one lookup instead of queueing a database read of its own (with SQLite, each
   * read waits its turn behind the writes, so hundreds of them took seconds).
   */
  private pending = new Map<string, Promise<string | null>>();
  constructor(private readonly store: Store) {}

  async workspaceFor(kind: KeyKind, key: string): Promise<string | null> {
    const cacheKey = `${kind}:${key}`;
    const hit = this.cache.get(cacheKey);
    const now = Date.now();
    if (hit && hit.until > now) return hit.workspaceId;
    let lookup = this.pending.get(cacheKey);
    if (!lookup) {
      lookup = authenticate(this.store, kind, key)
        .then((workspaceId) => {
          if (workspaceId) {
            if (this.cache.size > 1000) this.cache.clear();
            this.cache.set(cacheKey, { workspaceId, until: now + CACHE_MS });
          }
          return workspaceId;
        })
        .finally(() => this.pending.delete(cacheKey));
      this.pending.set(cacheKey, lookup);
    }
    return lookup;
  }
}

function basicUser(header: string | undefined): string | undefined {
  if (!header || !/^basic /i.test(header)) return undefined;
  const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon === -1 ? decoded : decoded.slice(0, colon);
}

/** Segment's scheme: HTTP Basic with the write key as user name, or `writeKey` in the JSON body. */
export function requireWriteKey(keys: KeyRing) {
  return async (req: FastifyRequest, _reply: FastifyReply): Promise<void> => {
    const fromBody = (req.body as { writeKey?: unknown } | null | undefined)?.writeKey;
    const key = basicUser(req.headers.authorization) || (typeof fromBody === 'string' ? fromBody : undefined);
    if (!key) {
      throw new HttpError(401, 'unauthorized', 'missing write key: send HTTP Basic auth with the write key as the user name and an empty password, or "writeKey" in the body');
    }
    const workspaceId = await keys.workspaceFor('write', key);
    if (!workspaceId) throw new HttpError(401, 'unauthorized', 'unknown write key: use a write key printed by `chorus start` or `chorus workspace create`');
    req.workspaceId = workspaceId;
  };
}

/** Admin API: `Authorization: Bearer <secret key>`. */
export function requireSecretKey(keys: KeyRing) {
  return async (req: FastifyRequest, _reply: FastifyReply): Promise<void> => {
    const header = req.headers.authorization;
    const key = header && /^bearer /i.test(header) ? header.slice(7).trim() : undefined;
    if (!key) throw new HttpError(401, 'unauthorized', 'missing secret key: send "Authorization: Bearer <secret key>"');
    const workspaceId = await keys.workspaceFor('secret', key);
    if (!workspaceId) throw new HttpError(401, 'unauthorized', 'unknown secret key: use a secret key printed by `chorus start` or `chorus workspace create`');
    req.workspaceId = workspaceId;
  };
}
