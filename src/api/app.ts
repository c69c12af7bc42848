import { createGunzip, createInflate } from 'node:zlib';
import fastifySwagger from '@fastify/swagger';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { jsonSchemaTransform, serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import type { Logger } from 'pino';
import { sql } from 'kysely';
import type { Store } from '../store/db.js';
import { KeyRing } from './auth.js';
import { guardRequestText } from './request-text.js';
import { errorHandler, notFound } from './errors.js';
import { createMetrics, type Metrics } from './metrics.js';
import { profileRoutes } from './routes/profiles.js';
import { segmentRoutes } from './routes/segment.js';
import { journeyRoutes } from './routes/journeys.js';
import { messageRoutes } from './routes/messages.js';
import { clockRoutes } from './routes/clock.js';
import { settingsRoutes } from './routes/settings.js';
import { sendRoutes } from './routes/send.js';
import type { Runtime } from '../engine/runtime.js';

export interface AppOptions {
  store: Store;
  runtime: Runtime;
  logger: Logger;
  version?: string;
}

export interface App {
  fastify: FastifyInstance;
  metrics: Metrics;
  /** Marks the app as draining: /readyz answers 503 so load balancers stop sending. */
  drain(): void;
}

export async function buildApp(opts: AppOptions): Promise<App> {
  const { store } = opts;
  const app = Fastify({
    loggerInstance: opts.logger as FastifyBaseLogger,
    bodyLimit: 512 * 1024,
    return503OnClosing: true,
  });
  app.decorateRequest('workspaceId', '');
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler(notFound);

  guardRequestText(app);
  // Some SDKs compress their batches. The body limit applies to the inflated bytes.
  app.addHook('preParsing', async (req, _reply, payload) => {
    const encoding = req.headers['content-encoding'];
    if (encoding === 'gzip') return payload.pipe(createGunzip());
    if (encoding === 'deflate') return payload.pipe(createInflate());
    return payload;
  });

  const metrics = createMetrics();
  app.addHook('onResponse', async (req, reply) => {
    metrics.httpDuration.observe(
      { method: req.method, route: req.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
    if (reply.statusCode >= 500) req.log.warn({ url: req.url, status: reply.statusCode }, 'request failed');
  });

  await app.register(fastifySwagger, {
    openapi: {
      info: { title: 'Chorus', description: 'Omnichannel messaging orchestration engine', version: opts.version ?? '0.1.0' },
      components: {
        securitySchemes: {
          writeKey: { type: 'http', scheme: 'basic', description: 'Write key as the user name, empty password' },
          secretKey: { type: 'http', scheme: 'bearer', description: 'Workspace secret key' },
        },
      },
    },
    transform: jsonSchemaTransform,
  });

  let draining = false;
  // While draining, answer with Connection: close so keep-alive clients don't hold shutdown open.
  app.addHook('onSend', async (req, reply, payload) => {
    if (draining) void reply.header('connection', 'close');
    // An acknowledged write is durable (DESIGN invariant 6): on SQLite this waits for the shared WAL fsync.
    if (req.method !== 'GET' && req.method !== 'HEAD' && req.method !== 'OPTIONS') await store.durable();
    return payload;
  });
  app.get('/healthz', { schema: { hide: true } }, async () => ({ status: 'ok' }));
  app.get('/readyz', { schema: { hide: true } }, async (_req, reply) => {
    if (draining) return reply.code(503).send({ status: 'draining' });
    try {
      await sql`select 1`.execute(store.db);
      return { status: 'ready' };
    } catch {
      return reply.code(503).send({ status: 'database unavailable' });
    }
  });
  app.get('/metrics', { schema: { hide: true } }, async (_req, reply) => {
    void reply.header('content-type', metrics.registry.contentType);
    return metrics.registry.metrics();
  });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  const keys = new KeyRing(store);
  const { runtime } = opts;
  segmentRoutes(app, store, keys, metrics, { clock: runtime.clock, after: runtime.afterIngest, committed: () => runtime.kick() });
  profileRoutes(app, store, keys);
  journeyRoutes(app, store, keys, runtime.journeys);
  messageRoutes(app, store, keys, { clock: runtime.clock, after: runtime.afterIngest, committed: () => runtime.kick() });
  clockRoutes(app, runtime.clock, runtime, keys);
  settingsRoutes(app, store, keys, runtime.settings);
  sendRoutes(app, store, keys, runtime.gate, runtime.clock, () => runtime.kick());

  await app.ready();
  return { fastify: app, metrics, drain: () => void (draining = true) };
}
