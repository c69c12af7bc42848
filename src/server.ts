import pino, { type Logger } from 'pino';
import { buildApp, type App } from './api/app.js';
import type { Config } from './config.js';
import { migrate, openStore, redact, type Store } from './store/db.js';
import { bootstrapDefaultWorkspace, type CreatedWorkspace } from './store/workspaces.js';

export interface Server {
  app: App;
  store: Store;
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
    const app = await buildApp({ store, logger });
    const address = await app.fastify.listen({ port: config.port, host: config.host });
    const where = config.database.dialect === 'sqlite' ? config.database.file : redact(config.database.url);
    logger.info({ address, database: config.database.dialect, where }, 'chorus is listening');
    let closing: Promise<void> | undefined;
    return {
      app,
      store,
      url: address.replace('0.0.0.0', '127.0.0.1').replace('[::]', '127.0.0.1'),
      created,
      close: () =>
        (closing ??= (async () => {
          app.drain();
          // Stops accepting connections and waits for in-flight requests, so nothing accepted is lost.
          await app.fastify.close();
          await store.close();
        })()),
    };
  } catch (err) {
    await store.close();
    throw err;
  }
}
