import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';

// Configuration comes from the environment; a bad value must stop start-up with a message naming the variable.

const ROOT = path.resolve(import.meta.dirname, '..');

function configError(env: Record<string, string | undefined>): ConfigError {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error(`expected a ConfigError for ${JSON.stringify(env)}`);
}

describe('loadConfig: defaults', () => {
  it('with an empty environment: port 8080 on all interfaces, info logs, SQLite under ./.chorus', () => {
    const config = loadConfig({});
    expect(config.port).toBe(8080);
    expect(config.host).toBe('0.0.0.0');
    expect(config.logLevel).toBe('info');
    expect(config.dataDir).toBe(path.resolve('.chorus'));
    expect(config.database).toEqual({ dialect: 'sqlite', file: path.join(path.resolve('.chorus'), 'chorus.db'), synchronous: 'FULL' });
    expect(config.writeKey).toBeUndefined();
    expect(config.secretKey).toBeUndefined();
  });

  it('empty strings count as unset', () => {
    const config = loadConfig({ PORT: '', HOST: '', LOG_LEVEL: '', DATABASE_URL: '', CHORUS_DATA_DIR: '', CHORUS_WRITE_KEY: '', CHORUS_SECRET_KEY: '' });
    expect(config.port).toBe(8080);
    expect(config.host).toBe('0.0.0.0');
    expect(config.logLevel).toBe('info');
    expect(config.database.dialect).toBe('sqlite');
    expect(config.writeKey).toBeUndefined();
  });

  it('reads explicit values', () => {
    const config = loadConfig({
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'WARN',
      CHORUS_DATA_DIR: '/var/lib/chorus',
      CHORUS_SQLITE_SYNCHRONOUS: 'normal',
      CHORUS_WRITE_KEY: 'wk_0123456789abcdef',
      CHORUS_SECRET_KEY: 'sk_0123456789abcdef',
    });
    expect(config.port).toBe(0);
    expect(config.host).toBe('127.0.0.1');
    expect(config.logLevel).toBe('warn');
    expect(config.dataDir).toBe('/var/lib/chorus');
    expect(config.database).toEqual({ dialect: 'sqlite', file: '/var/lib/chorus/chorus.db', synchronous: 'NORMAL' });
    expect(config.writeKey).toBe('wk_0123456789abcdef');
    expect(config.secretKey).toBe('sk_0123456789abcdef');
    expect(loadConfig({ PORT: '65535' }).port).toBe(65535);
  });

  it('a postgres:// or postgresql:// DATABASE_URL selects PostgreSQL', () => {
    expect(loadConfig({ DATABASE_URL: 'postgres://u:p@db:5432/chorus' }).database).toEqual({
      dialect: 'postgres',
      url: 'postgres://u:p@db:5432/chorus',
      schema: undefined,
      poolSize: 10,
      preparedStatements: true,
    });
    expect(
      loadConfig({ DATABASE_URL: 'postgresql://db/chorus', CHORUS_PG_SCHEMA: 'chorus', CHORUS_PG_POOL_SIZE: '20', CHORUS_PG_PREPARED_STATEMENTS: 'OFF' }).database,
    ).toEqual({
      dialect: 'postgres',
      url: 'postgresql://db/chorus',
      schema: 'chorus',
      poolSize: 20,
      preparedStatements: false,
    });
  });
});

describe('loadConfig: bad values name the variable', () => {
  const cases: { name: string; env: Record<string, string>; variable: string; also?: RegExp }[] = [
    { name: 'PORT not a number', env: { PORT: 'abc' }, variable: 'PORT', also: /abc/ },
    { name: 'PORT out of range', env: { PORT: '70000' }, variable: 'PORT', also: /70000/ },
    { name: 'PORT negative', env: { PORT: '-1' }, variable: 'PORT' },
    { name: 'PORT fractional', env: { PORT: '80.5' }, variable: 'PORT' },
    { name: 'LOG_LEVEL unknown', env: { LOG_LEVEL: 'loud' }, variable: 'LOG_LEVEL', also: /loud/ },
    { name: 'DATABASE_URL for MySQL', env: { DATABASE_URL: 'mysql://root@localhost/chorus' }, variable: 'DATABASE_URL', also: /postgres:\/\// },
    { name: 'DATABASE_URL not a URL', env: { DATABASE_URL: 'not a url at all' }, variable: 'DATABASE_URL' },
    { name: 'DATABASE_URL host:port only', env: { DATABASE_URL: '::::' }, variable: 'DATABASE_URL' },
    { name: 'CHORUS_WRITE_KEY too short', env: { CHORUS_WRITE_KEY: 'short' }, variable: 'CHORUS_WRITE_KEY' },
    { name: 'CHORUS_WRITE_KEY with spaces', env: { CHORUS_WRITE_KEY: 'a long key with spaces in it' }, variable: 'CHORUS_WRITE_KEY' },
    { name: 'CHORUS_SECRET_KEY too short', env: { CHORUS_SECRET_KEY: 'sk_123' }, variable: 'CHORUS_SECRET_KEY' },
    { name: 'CHORUS_SQLITE_SYNCHRONOUS unknown', env: { CHORUS_SQLITE_SYNCHRONOUS: 'OFF' }, variable: 'CHORUS_SQLITE_SYNCHRONOUS' },
    { name: 'CHORUS_PG_SCHEMA not an identifier', env: { DATABASE_URL: 'postgres://db/x', CHORUS_PG_SCHEMA: 'Bad-Schema' }, variable: 'CHORUS_PG_SCHEMA' },
    { name: 'CHORUS_PG_POOL_SIZE zero', env: { DATABASE_URL: 'postgres://db/x', CHORUS_PG_POOL_SIZE: '0' }, variable: 'CHORUS_PG_POOL_SIZE' },
    { name: 'CHORUS_PG_PREPARED_STATEMENTS not on/off', env: { DATABASE_URL: 'postgres://db/x', CHORUS_PG_PREPARED_STATEMENTS: 'yes' }, variable: 'CHORUS_PG_PREPARED_STATEMENTS' },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const err = configError(c.env);
      expect(err.message).toContain(c.variable);
      if (c.also) expect(err.message).toMatch(c.also);
    });
  }

  it('never echoes a rejected key or a database password', () => {
    expect(configError({ CHORUS_WRITE_KEY: 'tiny secret' }).message).not.toContain('tiny secret');
    expect(configError({ CHORUS_SECRET_KEY: 'hunter2' }).message).not.toContain('hunter2');
    expect(configError({ DATABASE_URL: 'mysql://root:hunter2@localhost/chorus' }).message).not.toContain('hunter2');
    expect(configError({ DATABASE_URL: 'http//:hunter2@' }).message).not.toContain('hunter2');
  });
});

function runCli(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const clean = { ...process.env };
  for (const k of ['DATABASE_URL', 'PORT', 'HOST', 'LOG_LEVEL', 'CHORUS_DATA_DIR', 'CHORUS_WRITE_KEY', 'CHORUS_SECRET_KEY', 'CHORUS_PG_SCHEMA']) delete clean[k];
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts'), ...args], {
    cwd: ROOT,
    env: { ...clean, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

// Each CLI run starts Node with tsx, which takes seconds on a loaded machine: a budget, not an assertion.
describe('chorus start with bad configuration', { timeout: 120_000 }, () => {
  it('PORT=abc: exits non-zero with a message naming PORT, without creating anything', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chorus-config-'));
    const dataDir = path.join(dir, 'data');
    const res = await runCli(['start'], { PORT: 'abc', CHORUS_DATA_DIR: dataDir });
    expect(res.code).not.toBe(0);
    expect(res.code).not.toBeNull();
    expect(res.stderr).toMatch(/PORT/);
    expect(res.stderr).toContain('abc');
    // One clear line, not a stack trace.
    expect(res.stderr).not.toMatch(/\n\s+at /);
    expect(res.stdout).not.toContain('chorus is listening');
    expect(fs.existsSync(dataDir)).toBe(false);
  });

  it('DATABASE_URL=mysql://…: exits non-zero naming DATABASE_URL', async () => {
    const res = await runCli(['start'], { DATABASE_URL: 'mysql://root@localhost/chorus', PORT: '0' });
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain('DATABASE_URL');
  });

  it('an unknown command exits non-zero and points at --help', async () => {
    const res = await runCli(['strat'], {});
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain('strat');
    expect(res.stderr).toContain('--help');
  });

  it('--help prints usage and exits 0', async () => {
    const res = await runCli(['--help'], {});
    expect(res.code).toBe(0);
    expect(res.stdout).toContain('chorus start');
    expect(res.stdout).toContain('DATABASE_URL');
  });
});
