import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { DIALECTS } from './support/dialects.js';
import { sendText, VIRTUAL_ENV } from './support/journeys.js';
import { admin, call, SECRET_KEY, startTestServer, type TestServer } from './support/server.js';

// The journeys admin API (definitions, versions, lifecycle), the clock endpoints, and the `chorus journeys`
// CLI.

const ROOT = path.resolve(import.meta.dirname, '..');
const ONBOARDING = path.join(ROOT, 'examples/journeys/onboarding.yaml');
// Each CLI run starts Node with tsx; on a loaded machine that takes seconds. A budget, not an assertion.
const CLI_BUDGET = 180_000;

function spec(key: string, subject = 'Hello', extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    key,
    name: `Journey ${key}`,
    trigger: { event: 'Signed Up' },
    steps: { hi: { send: { channel: 'email', content: { email: { subject, text: 'Hi' } } } } },
    ...extra,
  };
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function chorus(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const clean = { ...process.env };
  for (const k of ['DATABASE_URL', 'PORT', 'HOST', 'CHORUS_DATA_DIR', 'CHORUS_URL', 'CHORUS_SECRET_KEY', 'CHORUS_PG_SCHEMA']) delete clean[k];
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts'), ...args], {
    cwd: ROOT,
    env: { ...clean, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

for (const d of DIALECTS) {
  describe.skipIf(!d.available)(`journeys API (${d.name})`, () => {
    let s: TestServer;
    let url: string;
    beforeAll(async () => {
      s = await startTestServer(d, VIRTUAL_ENV);
      url = s.url;
    });
    afterAll(async () => s?.close());

    it('needs the secret key', async () => {
      expect((await call(url, 'GET', '/v1/journeys')).status).toBe(401);
      expect((await call(url, 'POST', '/v1/journeys', { body: spec('nokey') })).status).toBe(401);
    });

    it('validation errors name the path of every problem', async () => {
      const bad = {
        ...spec('broken'),
        steps: {
          hi: { send: { channel: 'email', content: { email: { subject: 'Hi', text: 'x' } } } },
          nudge: { wait: { duration: 'three days' } },
          oops: { send: { channel: 'sms', content: { email: { subject: 'x', text: 'y' } } }, next: 'nowhere' },
        },
      };
      const r = await admin(url, 'POST', '/v1/journeys', bad);
      expect(r.status).toBe(400);
      expect(r.body.error).toBe('invalid_request');
      const fields = r.body.fields as { path: string; message: string }[];
      expect(fields.find((f) => f.path === 'steps.nudge.wait.duration')?.message).toMatch(/ISO 8601 duration/);
      expect(fields.find((f) => f.path === 'steps.oops.next')?.message).toMatch(/unknown step "nowhere"/);
      expect(fields.find((f) => f.path === 'steps.oops.send.content.sms')?.message).toMatch(/missing content for sms/);
      expect(r.body.message).toMatch(/steps\.nudge\.wait\.duration|steps\.oops/);
      // Nothing was created.
      expect((await admin(url, 'GET', '/v1/journeys/broken')).status).toBe(404);
    });

    it('validation errors in a YAML body name the path too', async () => {
      const yaml = ['key: broken_yaml', 'name: Broken', 'trigger: { event: Signed Up }', 'steps:', '  nudge:', '    wait: { duration: soon }', ''].join('\n');
      const r = await sendText(url, 'POST', '/v1/journeys', yaml);
      expect(r.status).toBe(400);
      expect(r.body.fields).toContainEqual({ path: 'steps.nudge.wait.duration', message: expect.stringMatching(/ISO 8601 duration/) });
    });

    it('a YAML syntax error is a 400', async () => {
      const r = await sendText(url, 'POST', '/v1/journeys', 'key: x\nsteps: [unclosed\n  - : :\n');
      expect(r.status).toBe(400);
      expect(r.body.error).toBe('invalid_request');
      expect(JSON.stringify(r.body)).toMatch(/YAML/);
    });

    it('creates from YAML (the onboarding example) and from JSON; a duplicate create is a 409', async () => {
      const yaml = fs.readFileSync(ONBOARDING, 'utf8');
      const created = await sendText(url, 'POST', '/v1/journeys', yaml);
      expect(created.status).toBe(201);
      expect(created.body).toMatchObject({ key: 'onboarding', name: 'Onboarding', status: 'draft', latestVersion: null, versions: [], draftChanged: true });
      expect(Object.keys(created.body.draft.steps)).toEqual(['welcome', 'first_login', 'in_app_tip', 'day_3', 'activated_by_day_3', 'whatsapp_nudge', 'day_7', 'activated_by_day_7', 'sms_nudge']);
      expect((await sendText(url, 'POST', '/v1/journeys', yaml)).status).toBe(409);

      const json = await admin(url, 'POST', '/v1/journeys', spec('dup'));
      expect(json.status).toBe(201);
      const again = await admin(url, 'POST', '/v1/journeys', spec('dup', 'Other'));
      expect(again.status).toBe(409);
      expect(again.body.error).toBe('conflict');
      // The draft is untouched by the refused create.
      expect((await admin(url, 'GET', '/v1/journeys/dup')).body.draft.steps.hi.send.content.email.subject).toBe('Hello');

      const list = await admin(url, 'GET', '/v1/journeys');
      expect(list.status).toBe(200);
      expect(list.body.data.map((j: { key: string }) => j.key)).toEqual(expect.arrayContaining(['dup', 'onboarding']));
    });

    it('PUT with a key that differs from the URL is a 400; PUT of an unknown journey is a 404', async () => {
      expect((await admin(url, 'POST', '/v1/journeys', spec('put_me'))).status).toBe(201);
      const r = await admin(url, 'PUT', '/v1/journeys/put_me', spec('other_key'));
      expect(r.status).toBe(400);
      expect(r.body.fields).toContainEqual({ path: 'key', message: expect.stringContaining('other_key') });
      expect((await admin(url, 'PUT', '/v1/journeys/ghost', spec('ghost'))).status).toBe(404);
      const bad = await admin(url, 'PUT', '/v1/journeys/put_me', { ...spec('put_me'), holdout: 150 });
      expect(bad.status).toBe(400);
      expect(bad.body.fields.map((f: { path: string }) => f.path)).toContain('holdout');
    });

    it('publish freezes versions: publishing again without changes keeps the version; published versions never change', async () => {
      expect((await admin(url, 'POST', '/v1/journeys', spec('ver', 'One'))).status).toBe(201);
      const p1 = await admin(url, 'POST', '/v1/journeys/ver/publish');
      expect(p1.status).toBe(200);
      expect(p1.body).toMatchObject({ version: 1, published: true, journey: { status: 'active', latestVersion: 1, draftChanged: false } });
      const p1again = await admin(url, 'POST', '/v1/journeys/ver/publish');
      expect(p1again.body).toMatchObject({ version: 1, published: false });

      const put = await admin(url, 'PUT', '/v1/journeys/ver', spec('ver', 'Two'));
      expect(put.status).toBe(200);
      expect(put.body).toMatchObject({ latestVersion: 1, draftChanged: true, status: 'active' });
      expect(put.body.versions.map((v: { version: number }) => v.version)).toEqual([1]);
      expect(put.body.draft.steps.hi.send.content.email.subject).toBe('Two');

      const p2 = await admin(url, 'POST', '/v1/journeys/ver/publish');
      expect(p2.body).toMatchObject({ version: 2, published: true });
      const p2again = await admin(url, 'POST', '/v1/journeys/ver/publish');
      expect(p2again.body).toMatchObject({ version: 2, published: false });
      const got = await admin(url, 'GET', '/v1/journeys/ver');
      expect(got.body.versions.map((v: { version: number }) => v.version)).toEqual([1, 2]);
      for (const v of got.body.versions) expect(Number.isNaN(Date.parse(v.publishedAt))).toBe(false);
      expect(got.body).toMatchObject({ latestVersion: 2, draftChanged: false });

      // Back to the first content: a new version, not a rewrite of version 1.
      await admin(url, 'PUT', '/v1/journeys/ver', spec('ver', 'One'));
      expect((await admin(url, 'POST', '/v1/journeys/ver/publish')).body).toMatchObject({ version: 3, published: true });
    });

    it('pause, resume and archive; invalid transitions are 409', async () => {
      expect((await admin(url, 'POST', '/v1/journeys', spec('life'))).status).toBe(201);
      // A draft that was never published can't be paused or resumed.
      expect((await admin(url, 'POST', '/v1/journeys/life/pause')).status).toBe(409);
      expect((await admin(url, 'POST', '/v1/journeys/life/resume')).status).toBe(409);
      expect((await admin(url, 'POST', '/v1/journeys/life/publish')).body.journey.status).toBe('active');

      const paused = await admin(url, 'POST', '/v1/journeys/life/pause');
      expect(paused.status).toBe(200);
      expect(paused.body.status).toBe('paused');
      // Publishing a new version while paused keeps it paused.
      await admin(url, 'PUT', '/v1/journeys/life', spec('life', 'Changed'));
      const pub = await admin(url, 'POST', '/v1/journeys/life/publish');
      expect(pub.body).toMatchObject({ version: 2, journey: { status: 'paused' } });
      const resumed = await admin(url, 'POST', '/v1/journeys/life/resume');
      expect(resumed.status).toBe(200);
      expect(resumed.body.status).toBe('active');

      const archived = await admin(url, 'POST', '/v1/journeys/life/archive');
      expect(archived.status).toBe(200);
      expect(archived.body.status).toBe('archived');
      for (const action of ['pause', 'resume', 'publish']) {
        const r = await admin(url, 'POST', `/v1/journeys/life/${action}`);
        expect(r.status, action).toBe(409);
        expect(r.body.error).toBe('conflict');
      }
      expect((await admin(url, 'PUT', '/v1/journeys/life', spec('life', 'Again'))).status).toBe(409);
      expect((await admin(url, 'GET', '/v1/journeys/life')).body).toMatchObject({ status: 'archived', latestVersion: 2 });

      // A draft can be archived directly.
      expect((await admin(url, 'POST', '/v1/journeys', spec('life_draft'))).status).toBe(201);
      expect((await admin(url, 'POST', '/v1/journeys/life_draft/archive')).body.status).toBe('archived');
    });

    it('404s for unknown journeys, messages and profiles', async () => {
      for (const [method, p] of [
        ['GET', '/v1/journeys/nope'],
        ['POST', '/v1/journeys/nope/publish'],
        ['POST', '/v1/journeys/nope/pause'],
        ['POST', '/v1/journeys/nope/resume'],
        ['POST', '/v1/journeys/nope/archive'],
        ['GET', '/v1/messages/msg_nope'],
        ['GET', '/v1/profiles/user_id:nobody/runs'],
        ['GET', '/v1/messages?profile=user_id:nobody'],
      ] as const) {
        const r = await admin(url, method, p);
        expect(r.status, `${method} ${p}`).toBe(404);
        expect(r.body.error, `${method} ${p}`).toBe('not_found');
      }
    });

    it('the virtual clock: GET, advance by or to; both, neither, a bad duration or a past time are 400', async () => {
      const now = await admin(url, 'GET', '/v1/clock');
      expect(now.status).toBe(200);
      expect(now.body).toEqual({ now: '2026-01-05T09:00:00.000Z', virtual: true });

      const by = await admin(url, 'POST', '/v1/clock/advance', { by: 'PT1H' });
      expect(by.body).toEqual({ from: '2026-01-05T09:00:00.000Z', now: '2026-01-05T10:00:00.000Z', virtual: true });
      const to = await admin(url, 'POST', '/v1/clock/advance', { to: '2026-01-06T00:00:00Z' });
      expect(to.body).toMatchObject({ now: '2026-01-06T00:00:00.000Z' });

      const both = await admin(url, 'POST', '/v1/clock/advance', { by: 'P1D', to: '2026-02-01T00:00:00Z' });
      expect(both.status).toBe(400);
      expect(both.body.message).toMatch(/exactly one/);
      expect((await admin(url, 'POST', '/v1/clock/advance', {})).status).toBe(400);
      const badBy = await admin(url, 'POST', '/v1/clock/advance', { by: 'three days' });
      expect(badBy.status).toBe(400);
      expect(badBy.body.fields).toContainEqual({ path: 'by', message: expect.stringMatching(/ISO 8601 duration/) });
      const past = await admin(url, 'POST', '/v1/clock/advance', { to: '2026-01-05T12:00:00Z' });
      expect(past.status).toBe(400);
      expect(past.body.fields).toContainEqual({ path: 'to', message: expect.stringMatching(/never runs backwards/) });
      expect((await admin(url, 'POST', '/v1/clock/advance', { to: 'tomorrow' })).status).toBe(400);
      // Nothing moved.
      expect((await admin(url, 'GET', '/v1/clock')).body.now).toBe('2026-01-06T00:00:00.000Z');
    });

    it('the clock endpoints answer 409 when the clock is real', async () => {
      const real = await startTestServer(d);
      try {
        const get = await admin(real.url, 'GET', '/v1/clock');
        expect(get.status).toBe(409);
        expect(get.body.error).toBe('clock_is_real');
        const adv = await admin(real.url, 'POST', '/v1/clock/advance', { by: 'P1D' });
        expect(adv.status).toBe(409);
        expect(adv.body.error).toBe('clock_is_real');
      } finally {
        await real.close();
      }
    });

    it(
      'chorus journeys apply publishes version 1, then reports unchanged',
      async () => {
        const env = { CHORUS_URL: url, CHORUS_SECRET_KEY: SECRET_KEY };
        const yaml = fs.readFileSync(ONBOARDING, 'utf8').replace(/^key: onboarding\b/m, 'key: onboarding_cli');
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chorus-apply-'));
        onTestFinished(() => fs.rmSync(dir, { recursive: true, force: true }));
        const file = path.join(dir, 'onboarding.yaml');
        fs.writeFileSync(file, yaml);
        const first = await chorus(['journeys', 'apply', file], env);
        expect(first.code, first.stderr + first.stdout).toBe(0);
        expect(first.stdout).toContain(`${file}: journey "onboarding_cli" published as version 1`);
        const second = await chorus(['journeys', 'apply', file], env);
        expect(second.code, second.stderr + second.stdout).toBe(0);
        expect(second.stdout).toContain('unchanged (version 1)');
        const j = await admin(url, 'GET', '/v1/journeys/onboarding_cli');
        expect(j.body).toMatchObject({ status: 'active', latestVersion: 1, draftChanged: false });
        expect(j.body.versions).toHaveLength(1);
      },
      CLI_BUDGET,
    );
  });
}

describe('chorus journeys validate', () => {
  it(
    'accepts the onboarding example',
    async () => {
      const r = await chorus(['journeys', 'validate', 'examples/journeys/onboarding.yaml']);
      expect(r.code, r.stderr + r.stdout).toBe(0);
      expect(r.stdout).toContain('examples/journeys/onboarding.yaml: ok: journey "onboarding"');
      expect(r.stdout).toContain('welcome → first_login');
    },
    CLI_BUDGET,
  );

  it(
    'rejects a broken file, printing the file and the path of each problem',
    async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chorus-validate-'));
      const file = path.join(dir, 'broken.yaml');
      fs.writeFileSync(file, ['key: broken', 'name: Broken', 'trigger: { event: Signed Up }', 'steps:', '  nudge:', '    wait: { duration: three days }', '    next: nowhere', ''].join('\n'));
      const r = await chorus(['journeys', 'validate', file]);
      expect(r.code).toBe(1);
      expect(r.stdout).toMatch(new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: steps\\.nudge\\.wait\\.duration: .*ISO 8601 duration`));
      expect(r.stdout).toContain('steps.nudge.next');
    },
    CLI_BUDGET,
  );

  it(
    'reports a YAML syntax error with exit code 1',
    async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chorus-validate-'));
      const file = path.join(dir, 'syntax.yaml');
      fs.writeFileSync(file, 'key: x\nsteps: [unclosed\n');
      const r = await chorus(['journeys', 'validate', file]);
      expect(r.code).toBe(1);
      expect(r.stdout).toContain(file);
      expect(r.stdout).toMatch(/YAML/);
    },
    CLI_BUDGET,
  );
});
