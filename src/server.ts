import pino, { type Logger } from 'pino';
import { buildApp, type App } from './api/app.js';
import type { Config } from './config.js';
import { migrate, openStore, redact, type Store } from './store/db.js';
import { bootstrapDefaultWorkspace, type CreatedWorkspace } from './store/workspaces.js';
import { SystemClock, VirtualClock, type Clock } from './engine/clock.js';
import { Runtime } from './engine/runtime.js';
import { keepPlannerStats } from './store/planner-stats.js';

export interface Server {
  app: App;
  store: Store;
  runtime: Runtime;
  url: string;
  /** Set only on the very first start, when the default workspace's keys were generated. */
  created: CreatedWorkspace | null;
  close(): Promise<void>;
}

export function createLogger(level: Config['logLevel']): Logger {
  return pino({
    level,
    // Defence in depth: never log credentials even if a request object is logged whole.
    redact: ['req.headers.authorization', 'headers.authorization', '*.writeKey', 'writeKey'],
  });
}

/** Opens storage, migrates, makes sure the default workspace exists, and starts listening. */
export async function startServer(config: Config, logger: Logger = createLogger(config.logLevel)): Promise<Server> {
  const store = await openStore(config.database);
  try {
    const applied = await migrate(store);
    if (applied.length > 0) logger.info({ migrations: applied }, 'database migrated');
    const created = await bootstrapDefaultWorkspace(store, { writeKey: config.writeKey, secretKey: config.secretKey });
    const clock: Clock =
      config.virtualClock === null ? new SystemClock() : await VirtualClock.open(store, config.virtualClock === 'now' ? undefined : config.virtualClock);
    const runtime = new Runtime(store, clock, { pollMs: config.pollMs, defaultTimeZone: config.defaultTimeZone, lanes: config.engineLanes, batchSize: config.engineBatch });
    const app = await buildApp({ store, logger, runtime });
    const address = await app.fastify.listen({ port: config.port, host: config.host });
    const where = config.database.dialect === 'sqlite' ? config.database.file : redact(config.database.url);
    await runtime.start();
    const plannerStats = await keepPlannerStats(store, logger);
    logger.info({ address, database: config.database.dialect, where, clock: clock.virtual ? `virtual ${clock.now().toISOString()}` : 'wall' }, 'chorus is listening');
    let closing: Promise<void> | undefined;
    return {
      app,
      store,
      runtime,
      url: address.replace('0.0.0.0', '127.0.0.1').replace('[::]', '127.0.0.1'),
      created,
      close: () =>
        (closing ??= (async () => {
          app.drain();
          // Stops accepting connections and waits for in-flight requests, so nothing accepted is lost.
          // Connections that go idle after their last response are closed as they do.
          const idle = setInterval(() => app.fastify.server.closeIdleConnections(), 50);
          try {
            await app.fastify.close();
          } finally {
            clearInterval(idle);
          }
          await runtime.stop();
          await plannerStats?.stop();
          await store.close();
        })()),
    };
  } catch (err) {
    await store.close();
    throw err;
  }
}
