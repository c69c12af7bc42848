import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import pino from 'pino';
import { loadConfig } from '../../src/config.js';
import { startServer, type Server } from '../../src/server.js';
import type { TestDialect } from './dialects.js';

export const WRITE_KEY = 'wk_test_write_key_0000000000';
export const SECRET_KEY = 'sk_test_secret_key_000000000';

export interface TestServer {
  url: string;
  server: Server;
  env: Record<string, string>;
  close(): Promise<void>;
}

/** Starts Chorus in this process on a random port with a fresh database of the given dialect. */
export async function startTestServer(dialect: TestDialect, extraEnv: Record<string, string> = {}): Promise<TestServer> {
  const { env } = dialect.fresh();
  const all = { ...env, PORT: '0', HOST: '127.0.0.1', CHORUS_WRITE_KEY: WRITE_KEY, CHORUS_SECRET_KEY: SECRET_KEY, LOG_LEVEL: 'silent', ...extraEnv };
  const server = await startServer(loadConfig(all), pino({ level: 'silent' }));
  return { url: server.url, server, env: all, close: () => server.close() };
}

export interface ChildServer {
  url: string;
  process: ChildProcess;
  output: string[];
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

const ROOT = path.resolve(import.meta.dirname, '../..');

/** Starts `chorus start` as a separate process (through tsx) and waits until it listens. */
export async function spawnServer(env: Record<string, string>): Promise<ChildServer> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts'), 'start'], {
    cwd: ROOT,
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  child.stderr!.on('data', (d: Buffer) => output.push(d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${output.join('')}`)), 30_000);
    readline.createInterface({ input: child.stdout! }).on('line', (line) => {
      output.push(line);
      if (line.includes('chorus is listening')) {
        clearTimeout(timer);
        const address = (JSON.parse(line) as { address: string }).address;
        resolve(address);
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code} before listening:\n${output.join('')}`));
    });
  });
  return {
    url,
    process: child,
    output,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode === null) child.kill(signal);
      return exited;
    },
  };
}

export function basic(key: string): string {
  return `Basic ${Buffer.from(`${key}:`).toString('base64')}`;
}

/** Small fetch wrapper for the tests: JSON in, status and JSON out. */
export async function call(
  url: string,
  method: string,
  pathname: string,
  opts: { body?: unknown; auth?: string; raw?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: any }> {
  const res = await fetch(url + pathname, {
    method,
    headers: {
      ...(opts.body !== undefined || opts.raw !== undefined ? { 'content-type': 'application/json' } : {}),
      ...(opts.auth ? { authorization: opts.auth } : {}),
      ...opts.headers,
    },
    body: opts.raw ?? (opts.body !== undefined ? JSON.stringify(opts.body) : undefined),
  });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, body };
}

export const ingest = (url: string, type: string, body: unknown) => call(url, 'POST', `/v1/${type}`, { body, auth: basic(WRITE_KEY) });
export const admin = (url: string, method: string, pathname: string, body?: unknown) =>
  call(url, method, pathname, { body, auth: `Bearer ${SECRET_KEY}` });
