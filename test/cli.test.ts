import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { startServer, type Server } from '../src/server.js';
import { DIALECTS, PG_URL } from './support/dialects.js';
import { basic, call, SECRET_KEY, WRITE_KEY } from './support/server.js';

// The operator's CLI: migrations and workspaces, against the same database a server then uses.

const ROOT = path.resolve(import.meta.dirname, '..');
// Each CLI run starts Node with tsx; on a loaded machine that takes seconds. A budget, not an assertion.
const CLI_BUDGET = 180_000;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function chorus(args: string[], env: Record<string, string>): Promise<Run> {
  const clean = { ...process.env };
  for (const k of ['DATABASE_URL', 'PORT', 'HOST', 'LOG_LEVEL', 'CHORUS_DATA_DIR', 'CHORUS_WRITE_KEY', 'CHORUS_SECRET_KEY', 'CHORUS_PG_SCHEMA']) delete clean[k];
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts'), ...args], {
    cwd: ROOT,
    env: { ...clean, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

function printedKeys(stdout: string): { writeKey: string; secretKey: string } {
  const writeKey = /write key:\s+(\S+)/.exec(stdout)?.[1];
  const secretKey = /secret key:\s+(\S+)/.exec(stdout)?.[1];
  if (!writeKey || !secretKey) throw new Error(`no keys in output:\n${stdout}`);
  return { writeKey, secretKey };
}

const bearer = (key: string) => `Bearer ${key}`;

for (const d of DIALECTS) {
  describe.skipIf(!d.available)(`chorus CLI (${d.name})`, () => {
    let env: Record<string, string>;
    let migrate1: Run;
    let migrate2: Run;
    let created: Run;
    let acme: { writeKey: string; secretKey: string };
    let server: Server;
    let url: string;

    beforeAll(async () => {
      env = d.fresh().env;
      migrate1 = await chorus(['migrate'], env);
      migrate2 = await chorus(['migrate'], env);
      created = await chorus(['workspace', 'create', 'acme'], env);
      acme = printedKeys(created.stdout);
      // A server on the same database; the default workspace gets the fixed test keys.
      server = await startServer(
        loadConfig({ ...env, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'silent', CHORUS_WRITE_KEY: WRITE_KEY, CHORUS_SECRET_KEY: SECRET_KEY }),
        pino({ level: 'silent' }),
      );
      url = server.url;
    }, CLI_BUDGET);
    afterAll(async () => {
      await server?.close();
    });

    it('`chorus migrate` applies the migrations, then reports being up to date; both exit 0', () => {
      expect(migrate1.code, migrate1.stderr).toBe(0);
      expect(migrate1.stdout).toContain('0001_foundation');
      expect(migrate2.code, migrate2.stderr).toBe(0);
      expect(migrate2.stdout.trim().length).toBeGreaterThan(0);
      expect(migrate2.stdout).not.toContain('0001_foundation');
    });

    it('`chorus workspace create acme` prints a write key and a secret key', () => {
      expect(created.code, created.stderr).toBe(0);
      expect(created.stdout).toContain('acme');
      expect(acme.writeKey).toMatch(/^wk_[0-9a-z]{32}$/);
      expect(acme.secretKey).toMatch(/^sk_[0-9a-z]{32}$/);
      expect(acme.writeKey).not.toBe(acme.secretKey);
    });

    it("acme's keys work against a server on the same database", async () => {
      const ingested = await call(url, 'POST', '/v1/identify', {
        body: { userId: 'acme-only', traits: { company: 'Acme', email: 'ann@acme.example' } },
        auth: basic(acme.writeKey),
      });
      expect(ingested.status, JSON.stringify(ingested.body)).toBe(200);
      const batch = await call(url, 'POST', '/v1/batch', {
        body: { batch: [{ type: 'track', userId: 'acme-only', event: 'Anvil Ordered' }] },
        auth: basic(acme.writeKey),
      });
      expect(batch.status).toBe(200);
      // The Segment body form of the key works too.
      const inBody = await call(url, 'POST', '/v1/track', { body: { writeKey: acme.writeKey, userId: 'acme-only', event: 'Rocket Ordered' } });
      expect(inBody.status).toBe(200);

      const profile = await call(url, 'GET', '/v1/profiles/user_id:acme-only', { auth: bearer(acme.secretKey) });
      expect(profile.status).toBe(200);
      expect(profile.body.traits).toMatchObject({ company: 'Acme' });
      const byEmail = await call(url, 'GET', '/v1/profiles/email:ann@acme.example', { auth: bearer(acme.secretKey) });
      expect(byEmail.status).toBe(200);
      expect(byEmail.body.id).toBe(profile.body.id);
      const events = await call(url, 'GET', '/v1/profiles/user_id:acme-only/events', { auth: bearer(acme.secretKey) });
      expect(events.status).toBe(200);
      expect(events.body.data).toHaveLength(3);
    });

    it('workspaces are isolated: keys only reach their own workspace', async () => {
      // The same user id and email exist in both workspaces, as two unrelated profiles.
      for (const [key, company] of [
        [acme.writeKey, 'Acme'],
        [WRITE_KEY, 'Default Inc'],
      ] as const) {
        const res = await call(url, 'POST', '/v1/identify', {
          body: { userId: 'shared-user', traits: { company, email: 'shared@example.com' } },
          auth: basic(key),
        });
        expect(res.status).toBe(200);
      }
      expect((await call(url, 'POST', '/v1/track', { body: { userId: 'default-only', event: 'Hello' }, auth: basic(WRITE_KEY) })).status).toBe(200);
      expect((await call(url, 'POST', '/v1/track', { body: { userId: 'acme-only', event: 'Hello' }, auth: basic(acme.writeKey) })).status).toBe(200);

      // The default workspace's secret key cannot see acme's profile ...
      const defaultSeesAcme = await call(url, 'GET', '/v1/profiles/user_id:acme-only', { auth: bearer(SECRET_KEY) });
      expect(defaultSeesAcme.status).toBe(404);
      expect(defaultSeesAcme.body.error).toBe('not_found');
      expect((await call(url, 'GET', '/v1/profiles/email:ann@acme.example', { auth: bearer(SECRET_KEY) })).status).toBe(404);
      expect((await call(url, 'GET', '/v1/profiles/user_id:acme-only/events', { auth: bearer(SECRET_KEY) })).status).toBe(404);
      // ... not even by its profile id.
      const acmeProfile = await call(url, 'GET', '/v1/profiles/user_id:acme-only', { auth: bearer(acme.secretKey) });
      expect(acmeProfile.status).toBe(200);
      expect((await call(url, 'GET', `/v1/profiles/${acmeProfile.body.id}`, { auth: bearer(SECRET_KEY) })).status).toBe(404);
      expect((await call(url, 'GET', `/v1/profiles/${acmeProfile.body.id}/events`, { auth: bearer(SECRET_KEY) })).status).toBe(404);
      expect((await call(url, 'DELETE', `/v1/profiles/${acmeProfile.body.id}`, { auth: bearer(SECRET_KEY) })).status).toBe(404);
      expect((await call(url, 'GET', '/v1/profiles/user_id:acme-only', { auth: bearer(acme.secretKey) })).status).toBe(200);

      // ... and acme's secret key cannot read the default workspace's profile.
      const acmeSeesDefault = await call(url, 'GET', '/v1/profiles/user_id:default-only', { auth: bearer(acme.secretKey) });
      expect(acmeSeesDefault.status).toBe(404);
      const defaultProfile = await call(url, 'GET', '/v1/profiles/user_id:default-only', { auth: bearer(SECRET_KEY) });
      expect(defaultProfile.status).toBe(200);
      expect((await call(url, 'GET', `/v1/profiles/${defaultProfile.body.id}`, { auth: bearer(acme.secretKey) })).status).toBe(404);

      // Same identifiers, two workspaces: two profiles, each with its own traits and events.
      const sharedAcme = await call(url, 'GET', '/v1/profiles/email:shared@example.com', { auth: bearer(acme.secretKey) });
      const sharedDefault = await call(url, 'GET', '/v1/profiles/email:shared@example.com', { auth: bearer(SECRET_KEY) });
      expect(sharedAcme.status).toBe(200);
      expect(sharedDefault.status).toBe(200);
      expect(sharedAcme.body.id).not.toBe(sharedDefault.body.id);
      expect(sharedAcme.body.traits.company).toBe('Acme');
      expect(sharedDefault.body.traits.company).toBe('Default Inc');
      const acmeTimeline = await call(url, 'GET', '/v1/profiles/user_id:shared-user/events', { auth: bearer(acme.secretKey) });
      expect(acmeTimeline.body.data).toHaveLength(1);
      expect(acmeTimeline.body.data[0].traits.company).toBe('Acme');
    });

    it('a key only works as its own kind', async () => {
      // acme's write key is not a secret key.
      const writeAsSecret = await call(url, 'GET', '/v1/profiles/user_id:acme-only', { auth: bearer(acme.writeKey) });
      expect(writeAsSecret.status).toBe(401);
      expect(writeAsSecret.body.error).toBe('unauthorized');
      // acme's secret key is not a write key.
      const secretAsWrite = await call(url, 'POST', '/v1/track', { body: { userId: 'x', event: 'E' }, auth: basic(acme.secretKey) });
      expect(secretAsWrite.status).toBe(401);
      expect((await call(url, 'GET', '/v1/profiles/user_id:default-only', { auth: bearer(WRITE_KEY) })).status).toBe(401);
      // A made-up key of the right shape is refused.
      expect((await call(url, 'GET', '/v1/profiles/user_id:acme-only', { auth: bearer(`sk_${'a'.repeat(32)}`) })).status).toBe(401);
    });

    it('the database stores no plaintext key', async () => {
      const keys = [acme.writeKey, acme.secretKey, WRITE_KEY, SECRET_KEY];
      let rows: Record<string, unknown>[];
      if (d.name === 'sqlite') {
        const db = new Database(path.join(env.CHORUS_DATA_DIR, 'chorus.db'), { readonly: true, fileMustExist: true });
        try {
          rows = db.prepare('select * from api_keys').all() as Record<string, unknown>[];
        } finally {
          db.close();
        }
        // Nowhere in the database files either (main file and write-ahead log).
        for (const file of fs.readdirSync(env.CHORUS_DATA_DIR).filter((f) => f.startsWith('chorus.db'))) {
          const bytes = fs.readFileSync(path.join(env.CHORUS_DATA_DIR, file)).toString('latin1');
          for (const key of keys) expect(bytes.includes(key), `${key} in ${file}`).toBe(false);
        }
      } else {
        const client = new pg.Client({ connectionString: PG_URL });
        await client.connect();
        try {
          rows = (await client.query(`select * from "${env.CHORUS_PG_SCHEMA}".api_keys`)).rows as Record<string, unknown>[];
        } finally {
          await client.end();
        }
      }
      // Two workspaces, a write and a secret key each.
      expect(rows).toHaveLength(4);
      const text = JSON.stringify(rows);
      for (const key of keys) expect(text.includes(key), key).toBe(false);
      expect(rows.map((r) => r.key_hash).every((h) => typeof h === 'string' && /^[0-9a-f]{64}$/.test(h))).toBe(true);
    });

    it('creating the same workspace twice exits non-zero with a clear message, and changes nothing', async () => {
      const again = await chorus(['workspace', 'create', 'acme'], env);
      expect(again.code).not.toBe(0);
      expect(again.code).not.toBeNull();
      expect(again.stderr).toMatch(/acme/);
      expect(again.stderr).toMatch(/already exists/);
      expect(again.stderr).not.toMatch(/\n\s+at /);
      expect(again.stdout).not.toMatch(/write key:/);
      // The original keys still work.
      expect((await call(url, 'GET', '/v1/profiles/user_id:acme-only', { auth: bearer(acme.secretKey) })).status).toBe(200);

      const list = await chorus(['workspace', 'list'], env);
      expect(list.code, list.stderr).toBe(0);
      const names = list.stdout
        .trim()
        .split('\n')
        .map((l) => l.trim().split(/\s+/)[1]);
      expect(names.sort()).toEqual(['acme', 'default']);
    }, CLI_BUDGET);

    it('an invalid workspace name is refused with the usage', async () => {
      const bad = await chorus(['workspace', 'create', 'no spaces allowed!'], env);
      expect(bad.code).not.toBe(0);
      expect(bad.stderr).toContain('usage: chorus workspace create NAME');
      const missing = await chorus(['workspace', 'create'], env);
      expect(missing.code).not.toBe(0);
      expect(missing.stderr).toContain('usage');
    }, CLI_BUDGET);
  });
}
