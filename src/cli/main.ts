import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '../config.js';
import { createLogger, startServer } from '../server.js';
import { migrate, openStore } from '../store/db.js';
import { createWorkspace, listWorkspaces, WorkspaceExistsError } from '../store/workspaces.js';
import { journeysCommand, settingsCommand } from './journeys.js';

const HELP = `chorus: omnichannel messaging orchestration

Usage:
  chorus start [--virtual-clock[=TIME]]
                                start the server (PORT, default 8080); with a virtual clock that
                                moves only via POST /v1/clock/advance
  chorus journeys validate FILE check a journey spec (YAML or JSON) and print its steps
  chorus journeys apply FILE…   create or update journeys on a running server and publish them
                                (CHORUS_URL, default http://localhost:8080; CHORUS_SECRET_KEY)
  chorus settings validate|apply FILE
                                check, or apply to a running server, the send gate settings
                                (caps, quiet hours, suppression, channel rules; docs/gate.md)
  chorus migrate                apply database migrations and exit
  chorus workspace create NAME  create a workspace and print its keys (shown once)
  chorus workspace list         list workspaces

Configuration (environment):
  DATABASE_URL        postgres://… to use PostgreSQL; unset for embedded SQLite
  CHORUS_DATA_DIR     where SQLite keeps its file (default ./.chorus)
  PORT, HOST          listen address (default 8080, 0.0.0.0)
  LOG_LEVEL           fatal|error|warn|info|debug|trace|silent (default info)
  CHORUS_WRITE_KEY    fixed write key for the default workspace
  CHORUS_SECRET_KEY   fixed secret key for the default workspace
`;

function printKeys(title: string, name: string, writeKey: string, secretKey: string): void {
  process.stdout.write(
    `\n${title}\n` +
      `  workspace:  ${name}\n` +
      `  write key:  ${writeKey}   (ingestion: HTTP Basic user name)\n` +
      `  secret key: ${secretKey}   (admin API: Authorization: Bearer …)\n` +
      `  These keys are shown only now; Chorus stores only their hashes.\n\n`,
  );
}

async function start(virtualClock: string | boolean | undefined): Promise<void> {
  const env = { ...process.env };
  if (virtualClock !== undefined && virtualClock !== false) env.CHORUS_VIRTUAL_CLOCK = virtualClock === true ? 'now' : virtualClock;
  const config = loadConfig(env);
  const logger = createLogger(config.logLevel);
  const server = await startServer(config, logger);
  if (server.created) {
    printKeys('Created the default workspace.', server.created.workspace.name, server.created.writeKey, server.created.secretKey);
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down: finishing in-flight requests');
    server.close().then(
      () => {
        logger.info('stopped');
        process.exit(0);
      },
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

async function withStore<T>(fn: (store: Awaited<ReturnType<typeof openStore>>) => Promise<T>, opts: { migrate: boolean } = { migrate: true }): Promise<T> {
  const config = loadConfig();
  const store = await openStore(config.database);
  try {
    if (opts.migrate) await migrate(store);
    return await fn(store);
  } finally {
    await store.close();
  }
}

async function main(argv: string[]): Promise<void> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: false,
    options: { help: { type: 'boolean', short: 'h' }, 'virtual-clock': { type: 'string' } },
  });
  const [command, sub, arg] = positionals;
  if (values.help || command === undefined || command === 'help') {
    process.stdout.write(HELP);
    return;
  }
  switch (command) {
    case 'start': {
      // `--virtual-clock` alone (no value) arrives as a boolean under strict: false.
      const vc = values['virtual-clock'] as string | boolean | undefined;
      return start(vc === '' ? true : vc);
    }
    case 'journeys':
      return journeysCommand(sub, positionals.slice(2));
    case 'settings':
      return settingsCommand(sub, positionals.slice(2));
    case 'migrate': {
      const applied = await withStore((store) => migrate(store), { migrate: false });
      process.stdout.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'already up to date\n');
      return;
    }
    case 'workspace':
      if (sub === 'create') {
        if (!arg || !/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$/.test(arg)) {
          throw new ConfigError('usage: chorus workspace create NAME (letters, digits, - _ . ; up to 64 characters)');
        }
        const created = await withStore((store) => createWorkspace(store, arg));
        printKeys('Created a workspace.', created.workspace.name, created.writeKey, created.secretKey);
        return;
      }
      if (sub === 'list') {
        const all = await withStore((store) => listWorkspaces(store));
        for (const w of all) process.stdout.write(`${w.id}  ${w.name}  ${w.createdAt}\n`);
        return;
      }
      throw new ConfigError('usage: chorus workspace create NAME | chorus workspace list');
    default:
      throw new ConfigError(`unknown command "${command}"; run chorus --help`);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof ConfigError || err instanceof WorkspaceExistsError) {
    process.stderr.write(`chorus: ${err.message}\n`);
  } else {
    process.stderr.write(`chorus: ${(err as Error).message ?? String(err)}\n`);
  }
  process.exit(1);
});
