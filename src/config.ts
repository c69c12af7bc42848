import path from 'node:path';

// Configuration comes from the environment only; a bad value stops start-up with a message that says what to fix.

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export type DatabaseConfig =
  | { dialect: 'sqlite'; file: string; synchronous: 'FULL' | 'NORMAL' }
  | {
      dialect: 'postgres';
      url: string;
      schema: string | undefined;
      poolSize: number;
      /** Named prepared statements for repeated texts (off for a pooler that can't keep them, e.g. PgBouncer in transaction mode before 1.21). */
      preparedStatements?: boolean;
    };

export interface Config {
  port: number;
  host: string;
  logLevel: LogLevel;
  dataDir: string;
  database: DatabaseConfig;
  writeKey: string | undefined;
  secretKey: string | undefined;
  /** Run the engine on a virtual clock starting here ('now' = the current time, or where it stopped). */
  virtualClock: Date | 'now' | null;
  /** Time zone for customers without one (quiet hours, "wait until 10:00"). */
  defaultTimeZone: string;
  pollMs: number;
  /** PostgreSQL: concurrent transactions working due timers and deferred messages (SQLite: always 1). */
  engineLanes: number;
  /** Due timers (or deferred messages) handled per transaction. */
  engineBatch: number;
}

export class ConfigError extends Error {}

type Env = Record<string, string | undefined>;

function int(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new ConfigError(`${name} must be an integer from ${min} to ${max}; got "${raw}"`);
  }
  return n;
}

function key(env: Env, name: string): string | undefined {
  const v = env[name];
  if (v === undefined || v === '') return undefined;
  if (v.length < 16 || /\s/.test(v)) {
    throw new ConfigError(`${name} must be at least 16 characters without spaces (use a long random string)`);
  }
  return v;
}

function database(env: Env, dataDir: string): DatabaseConfig {
  const url = env.DATABASE_URL;
  if (url === undefined || url === '') {
    const sync = (env.CHORUS_SQLITE_SYNCHRONOUS ?? 'FULL').toUpperCase();
    if (sync !== 'FULL' && sync !== 'NORMAL') {
      throw new ConfigError(`CHORUS_SQLITE_SYNCHRONOUS must be FULL or NORMAL; got "${env.CHORUS_SQLITE_SYNCHRONOUS}"`);
    }
    return { dialect: 'sqlite', file: path.join(dataDir, 'chorus.db'), synchronous: sync };
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigError('DATABASE_URL is not a valid URL; expected postgres://user:password@host:5432/database');
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new ConfigError(
      `DATABASE_URL must start with postgres:// (got "${parsed.protocol}//"); unset it to use the embedded SQLite database`,
    );
  }
  const schema = env.CHORUS_PG_SCHEMA || undefined;
  if (schema !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
    throw new ConfigError('CHORUS_PG_SCHEMA must be a lower-case SQL identifier such as chorus');
  }
  const prepared = (env.CHORUS_PG_PREPARED_STATEMENTS ?? 'on').toLowerCase();
  if (prepared !== 'on' && prepared !== 'off') {
    throw new ConfigError(`CHORUS_PG_PREPARED_STATEMENTS must be on or off; got "${env.CHORUS_PG_PREPARED_STATEMENTS}"`);
  }
  return { dialect: 'postgres', url, schema, poolSize: int(env, 'CHORUS_PG_POOL_SIZE', 10, 1, 200), preparedStatements: prepared === 'on' };
}

function virtualClock(env: Env): Date | 'now' | null {
  const raw = env.CHORUS_VIRTUAL_CLOCK;
  if (raw === undefined || raw === '' || raw === '0' || raw === 'false') return null;
  if (raw === '1' || raw === 'true' || raw === 'now') return 'now';
  const ms = Date.parse(raw);
  if (Number.isNaN(ms)) throw new ConfigError(`CHORUS_VIRTUAL_CLOCK must be true, now, or a start time such as 2026-01-01T09:00:00Z; got "${raw}"`);
  return new Date(ms);
}

function timeZone(env: Env): string {
  const zone = env.CHORUS_TIMEZONE || 'UTC';
  try {
    return new Intl.DateTimeFormat('en-US', { timeZone: zone }).resolvedOptions().timeZone;
  } catch {
    throw new ConfigError(`CHORUS_TIMEZONE must be an IANA time zone such as Europe/Paris; got "${zone}"`);
  }
}

export function loadConfig(env: Env = process.env): Config {
  const dataDir = path.resolve(env.CHORUS_DATA_DIR || '.chorus');
  const logLevel = (env.LOG_LEVEL || 'info').toLowerCase() as LogLevel;
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new ConfigError(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}; got "${env.LOG_LEVEL}"`);
  }
  return {
    port: int(env, 'PORT', 8080, 0, 65535),
    host: env.HOST || '0.0.0.0',
    logLevel,
    dataDir,
    database: database(env, dataDir),
    writeKey: key(env, 'CHORUS_WRITE_KEY'),
    secretKey: key(env, 'CHORUS_SECRET_KEY'),
    virtualClock: virtualClock(env),
    defaultTimeZone: timeZone(env),
    pollMs: int(env, 'CHORUS_POLL_MS', 200, 10, 60_000),
    engineLanes: int(env, 'CHORUS_ENGINE_LANES', 2, 1, 32),
    engineBatch: int(env, 'CHORUS_ENGINE_BATCH', 500, 1, 5000),
  };
}
