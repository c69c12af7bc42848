import { once } from 'node:events';
import net from 'node:net';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { startServer } from '../src/server.js';
import { DIALECTS } from './support/dialects.js';
import {
  admin,
  basic,
  call,
  ingest,
  SECRET_KEY,
  spawnServer,
  startTestServer,
  WRITE_KEY,
  type ChildServer,
  type TestServer,
} from './support/server.js';

// Operating the server: probes, metrics, the OpenAPI document, 404s, and graceful shutdown.

// Liveness bounds, not timing assertions: a correct server exits within milliseconds once nothing is in
// flight; these only turn a hang (e.g. waiting out Fastify's 72 s keep-alive timeout) into a clear failure.
const EXIT_BOUND = 45_000;
const SHUTDOWN_TEST_BUDGET = 240_000;

for (const d of DIALECTS) {
  describe.skipIf(!d.available)(`operational endpoints (${d.name})`, () => {
    let server: TestServer;
    beforeAll(async () => {
      server = await startTestServer(d);
    });
    afterAll(async () => {
      await server?.close();
    });

    it('GET /healthz answers 200', async () => {
      const res = await call(server.url, 'GET', '/healthz');
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ status: 'ok' });
    });

    it('GET /readyz answers 200 when the database is reachable', async () => {
      const res = await call(server.url, 'GET', '/readyz');
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ status: 'ready' });
    });

    it('GET /metrics exposes ingestion counters and request durations in Prometheus text format', async () => {
      const before = await fetch(`${server.url}/metrics`);
      expect(before.status).toBe(200);
      expect(before.headers.get('content-type')).toMatch(/^text\/plain/);

      expect((await ingest(server.url, 'track', { userId: 'metrics-user', event: 'Metered' })).status).toBe(200);
      expect((await ingest(server.url, 'identify', { userId: 'metrics-user', traits: { plan: 'pro' } })).status).toBe(200);
      const batch = await ingest(server.url, 'batch', {
        batch: [
          { type: 'track', userId: 'metrics-user', event: 'One' },
          { type: 'track', userId: 'metrics-user', event: 'Two' },
        ],
      });
      expect(batch.status).toBe(200);

      const res = await fetch(`${server.url}/metrics`);
      expect(res.status).toBe(200);
      const text = await res.text();
      expect(text).toContain('# TYPE chorus_events_ingested_total counter');
      expect(text).toMatch(/^chorus_events_ingested_total\{type="track"\} 3$/m);
      expect(text).toMatch(/^chorus_events_ingested_total\{type="identify"\} 1$/m);
      expect(text).toContain('# TYPE chorus_http_request_duration_seconds histogram');
      expect(text).toMatch(/^chorus_http_request_duration_seconds_count\{[^}]*route="\/v1\/track"[^}]*status="200"[^}]*\} 1$/m);
      expect(text).toMatch(/^chorus_http_request_duration_seconds_count\{[^}]*route="\/v1\/batch"[^}]*\} 1$/m);
      // Default process metrics carry the prefix too.
      expect(text).toMatch(/^chorus_process_cpu_user_seconds_total /m);
      // No credential ever shows up in metrics.
      expect(text).not.toContain(WRITE_KEY);
      expect(text).not.toContain(SECRET_KEY);
    });

    it('GET /openapi.json is an OpenAPI 3 document covering ingestion and profiles', async () => {
      const res = await call(server.url, 'GET', '/openapi.json');
      expect(res.status).toBe(200);
      const doc = res.body;
      expect(doc.openapi).toMatch(/^3\./);
      expect(doc.info).toMatchObject({ title: 'Chorus' });
      const paths = Object.keys(doc.paths);
      for (const p of ['/v1/batch', '/v1/track', '/v1/identify', '/v1/page', '/v1/screen', '/v1/group', '/v1/alias']) {
        expect(paths, p).toContain(p);
        expect(doc.paths[p].post, p).toBeDefined();
      }
      // Fastify's `:ref` is rendered as an OpenAPI path template.
      expect(paths).toContain('/v1/profiles/{ref}');
      expect(paths).toContain('/v1/profiles/{ref}/events');
      expect(paths.some((p) => p.includes(':'))).toBe(false);
      const profile = doc.paths['/v1/profiles/{ref}'];
      expect(Object.keys(profile).sort()).toEqual(expect.arrayContaining(['delete', 'get', 'patch']));
      expect(profile.get.parameters).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'ref', in: 'path', required: true })]));
      expect(doc.paths['/v1/batch'].post.requestBody).toBeDefined();
      expect(doc.components.securitySchemes).toMatchObject({ writeKey: { scheme: 'basic' }, secretKey: { scheme: 'bearer' } });
      // Probes are hidden from the API document.
      expect(paths).not.toContain('/healthz');
      expect(paths).not.toContain('/metrics');
    });

    it('an unknown route answers 404 with a JSON error body', async () => {
      for (const [method, p] of [
        ['GET', '/nope'],
        ['POST', '/v1/nope'],
        ['GET', '/v2/profiles/user_id:1?x=1'],
      ] as const) {
        const res = await call(server.url, method, p, method === 'POST' ? { body: {} } : {});
        expect(res.status, `${method} ${p}`).toBe(404);
        expect(res.body, `${method} ${p}`).toMatchObject({ error: 'not_found', message: expect.any(String) });
        expect(res.body.message).not.toContain('?x=1');
      }
    });

    it('/readyz answers 503 once the server is draining (run last: it drains this server)', async () => {
      server.server.app.drain();
      const res = await call(server.url, 'GET', '/readyz');
      expect(res.status).toBe(503);
      expect(res.body).toEqual({ status: 'draining' });
      // Liveness is unaffected.
      expect((await call(server.url, 'GET', '/healthz')).status).toBe(200);
    });
  });

  describe.skipIf(!d.available)(`graceful shutdown of \`chorus start\` (${d.name})`, () => {
    const children: ChildServer[] = [];
    afterAll(async () => {
      for (const c of children) if (c.process.exitCode === null && c.process.signalCode === null) await c.stop('SIGKILL');
    });

    async function start(): Promise<{ child: ChildServer; url: string; env: Record<string, string> }> {
      const { env: dbEnv } = d.fresh();
      const env = { ...dbEnv, CHORUS_WRITE_KEY: WRITE_KEY, CHORUS_SECRET_KEY: SECRET_KEY };
      const child = await spawnServer(env);
      children.push(child);
      return { child, url: child.url.replace('0.0.0.0', '127.0.0.1'), env };
    }

    /** Restarts in-process on the same database and returns the stored timeline of one user. */
    async function storedEvents(env: Record<string, string>, userId: string): Promise<{ properties: Record<string, unknown>; event?: string }[]> {
      const restarted = await startServer(
        loadConfig({ ...env, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'silent' }),
        pino({ level: 'silent' }),
      );
      try {
        const timeline = await admin(restarted.url, 'GET', `/v1/profiles/user_id:${userId}/events?limit=500`);
        expect(timeline.status).toBe(200);
        expect(timeline.body.nextCursor).toBeNull();
        // The restarted server is fully usable.
        expect((await ingest(restarted.url, 'track', { userId: 'after-restart', event: 'After Restart' })).status).toBe(200);
        return timeline.body.data;
      } finally {
        await restarted.close();
      }
    }

    it('SIGTERM while ~200 requests are in flight: exit 0 and every acknowledged event is stored exactly once', async () => {
      const { child, url, env } = await start();
      const userId = 'shutdown-user';
      const N = 200;
      type Outcome = { n: number; status: number | 'network-error' };
      let firstOk!: () => void;
      const sawOk = new Promise<void>((resolve) => (firstOk = resolve));
      const requests: Promise<Outcome>[] = [];
      for (let n = 0; n < N; n++) {
        requests.push(
          fetch(`${url}/v1/track`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', authorization: basic(WRITE_KEY) },
            // No messageId: the server assigns one, so a double insert could not be hidden by deduplication.
            body: JSON.stringify({ userId, event: 'Shutdown Probe', properties: { n } }),
          }).then(
            async (res) => {
              await res.arrayBuffer();
              if (res.status === 200) firstOk();
              return { n, status: res.status };
            },
            () => ({ n, status: 'network-error' as const }),
          ),
        );
      }
      // Wait until the server has acknowledged at least one request, then stop it mid-stream.
      await Promise.race([sawOk, Promise.all(requests)]);
      child.process.kill('SIGTERM');
      const outcomes = await Promise.all(requests);

      // Every request has been answered (or cut off), so nothing is in flight any more: the server must
      // now exit on its own, even though the client still holds idle keep-alive connections.
      const code = await exitWithin(child, EXIT_BOUND);
      expect.soft(code, `exit after SIGTERM; output:\n${tail(child)}`).toBe(0);
      if (code === 'still running') await child.stop('SIGKILL');
      const log = child.output.join('\n');
      expect(log).toContain('shutting down');

      const acknowledged = outcomes.filter((o) => o.status === 200).map((o) => o.n);
      expect(acknowledged.length).toBeGreaterThan(0);
      // Refused or cut-off requests are never reported as success, and the server never failed one
      // with a 5xx other than "closing" (503): no request ran against a closed database.
      for (const o of outcomes) {
        if (o.status !== 200 && o.status !== 'network-error') expect(o.status, `request ${o.n}`).toBe(503);
      }

      const stored = (await storedEvents(env, userId)).map((e) => e.properties.n as number);
      const counts = new Map<number, number>();
      for (const n of stored) counts.set(n, (counts.get(n) ?? 0) + 1);
      // Exactly once: nothing stored twice ...
      expect([...counts.entries()].filter(([, c]) => c !== 1)).toEqual([]);
      // ... and nothing acknowledged is lost.
      expect(acknowledged.filter((n) => !counts.has(n))).toEqual([]);
      // Only requests that were actually sent can have been stored.
      expect(stored.every((n) => Number.isInteger(n) && n >= 0 && n < N)).toBe(true);
    }, SHUTDOWN_TEST_BUDGET);

    it('a request already received when SIGTERM lands is finished (200, stored), its connection closed, and the server exits 0', async () => {
      const { child, url, env } = await start();
      const { hostname, port } = new URL(url);
      const body = JSON.stringify({ userId: 'slow-body-user', event: 'Slow Body', properties: { ok: true } });

      // One raw HTTP/1.1 keep-alive connection whose body arrives in two parts, around the SIGTERM.
      const socket = net.connect(Number(port), hostname);
      await once(socket, 'connect');
      let response = '';
      socket.on('data', (chunk: Buffer) => (response += chunk.toString('utf8')));
      const socketClosed = once(socket, 'close');
      socket.write(
        `POST /v1/track HTTP/1.1\r\nHost: ${hostname}\r\nContent-Type: application/json\r\n` +
          `Authorization: ${basic(WRITE_KEY)}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body.slice(0, 10)}`,
      );
      // The server has routed the request (Fastify logs "incoming request" when it starts one).
      await until(() => child.output.some((l) => l.includes('incoming request') && l.includes('/v1/track')), 'request start log');

      child.process.kill('SIGTERM');
      // Shutdown has begun for certain once the listener refuses new connections.
      await until(() => refusesConnections(Number(port), hostname), 'listener closed');
      socket.write(body.slice(10));

      await until(() => response.includes('\r\n\r\n{'), 'response');
      expect(response).toMatch(/^HTTP\/1\.1 200 /);
      expect(response).toContain('{"success":true}');

      // Once its response is sent, nothing keeps the server alive: it closes the connection and exits.
      const closed = await Promise.race([socketClosed.then(() => true), sleep(EXIT_BOUND).then(() => false)]);
      expect.soft(closed, `the server kept the idle keep-alive connection open after shutdown began; response was:\n${response}`).toBe(true);
      socket.destroy();
      const code = await exitWithin(child, EXIT_BOUND);
      expect.soft(code, `exit after SIGTERM; output:\n${tail(child)}`).toBe(0);
      if (code === 'still running') await child.stop('SIGKILL');

      const stored = await storedEvents(env, 'slow-body-user');
      expect(stored.map((e) => e.event)).toEqual(['Slow Body']);
    }, SHUTDOWN_TEST_BUDGET);
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls a condition (an event we cannot await directly); the bound only turns a hang into a clear failure. */
async function until(check: () => boolean | Promise<boolean>, what: string, bound = EXIT_BOUND): Promise<void> {
  const deadline = Date.now() + bound;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for: ${what}`);
    await sleep(10);
  }
}

function refusesConnections(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, host);
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(true));
  });
}

/** The child's exit code, or 'still running' if it has not exited within the bound (a hang, not a slow exit). */
async function exitWithin(child: ChildServer, bound: number): Promise<number | null | 'still running'> {
  if (child.process.exitCode !== null) return child.process.exitCode;
  const exited = once(child.process, 'exit').then(([code]) => code as number | null);
  return Promise.race([exited, sleep(bound).then(() => 'still running' as const)]);
}

function tail(child: ChildServer): string {
  return child.output
    .filter((l) => !l.includes('"incoming request"') && !l.includes('"request completed"'))
    .slice(-15)
    .join('\n');
}
