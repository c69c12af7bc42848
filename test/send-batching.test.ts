import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { acceptSends, type SendInput } from '../src/api/accept-sends.js';
import { HttpError } from '../src/api/errors.js';
import { parseProfileRef } from '../src/core/identifiers.js';
import { parseJourneySpec, type SendStep } from '../src/core/journey-spec.js';
import { GroupCommit, type Settled } from '../src/lib/group-commit.js';
import { transact } from '../src/store/db.js';
import { DIALECTS } from './support/dialects.js';
import { admin, ingest, startTestServer, type TestServer } from './support/server.js';

// Group commit of the send API (src/lib/group-commit.ts, src/api/accept-sends.ts): concurrent
// POST /v1/messages share one transaction, and each still gets exactly the answer it would get alone.
// No timing assertions: how requests fall into groups is up to the event loop, so the HTTP bursts check
// outcomes that hold for any grouping, and acceptSends is also called with a known group directly.
//
// Virtual clock: Monday 2026-01-05 15:00 UTC is 10:00 in New York.

const START = '2026-01-05T15:00:00.000Z';
const NO_QUIET_HOURS = { window: null, channels: {} };
const content = {
  email: { subject: 'Hi {{ profile.traits.first_name | default: "there" }}', text: 'Order {{ data.order | default: "-" }}' },
  sms: { text: 'Hi from Example' },
};

type Answer = { status: number; body: any };

describe('GroupCommit', () => {
  /** A processor that records its groups and fails a whole group when it holds a poison item. */
  function recorder(poison = new Set<number>()) {
    const groups: number[][] = [];
    const process = async (items: number[]): Promise<Settled<string>[]> => {
      groups.push([...items]);
      await new Promise((r) => setImmediate(r));
      if (items.length > 1 && items.some((i) => poison.has(i))) throw new Error('the group failed');
      return items.map((i) => (poison.has(i) ? { ok: false, error: new Error(`poison ${i}`) } : i % 10 === 9 ? { ok: false, error: new Error(`refused ${i}`) } : { ok: true, value: `done ${i}` }));
    };
    return { groups, process };
  }

  it('takes everything submitted together as one group, and what arrives meanwhile as the next, up to the cap', async () => {
    const r = recorder();
    const gc = new GroupCommit(r.process, { maxGroup: 4 });
    const first = Array.from({ length: 3 }, (_, i) => gc.submit(i));
    // Submitted while the first group runs: they wait and go in groups of at most 4.
    await new Promise((res) => setImmediate(res));
    const later = Array.from({ length: 6 }, (_, i) => gc.submit(10 + i));
    const results = await Promise.allSettled([...first, ...later]);
    expect(r.groups).toEqual([[0, 1, 2], [10, 11, 12, 13], [14, 15]]);
    expect(results.map((x) => (x.status === 'fulfilled' ? x.value : (x.reason as Error).message))).toEqual([
      'done 0', 'done 1', 'done 2', 'done 10', 'done 11', 'done 12', 'done 13', 'done 14', 'done 15',
    ]);
    expect(gc.pending).toEqual({ waiting: 0, running: 0 });
  });

  it('answers each item with its own value or error', async () => {
    const r = recorder();
    const gc = new GroupCommit(r.process);
    const results = await Promise.allSettled([7, 8, 9, 19].map((i) => gc.submit(i)));
    expect(r.groups).toEqual([[7, 8, 9, 19]]);
    expect(results.map((x) => (x.status === 'fulfilled' ? x.value : (x.reason as Error).message))).toEqual(['done 7', 'done 8', 'refused 9', 'refused 19']);
  });

  it('when a whole group throws, processes its items one by one: only the poison item fails', async () => {
    const r = recorder(new Set([3]));
    const gc = new GroupCommit(r.process);
    const results = await Promise.allSettled([1, 2, 3, 4].map((i) => gc.submit(i)));
    expect(r.groups).toEqual([[1, 2, 3, 4], [1], [2], [3], [4]]);
    expect(results.map((x) => (x.status === 'fulfilled' ? x.value : (x.reason as Error).message))).toEqual(['done 1', 'done 2', 'poison 3', 'done 4']);
  });

  it('runs up to `concurrency` groups at once', async () => {
    let running = 0;
    let most = 0;
    const gc = new GroupCommit<number, number>(
      async (items) => {
        running++;
        most = Math.max(most, running);
        await new Promise((res) => setTimeout(res, 5));
        running--;
        return items.map((i) => ({ ok: true, value: i }));
      },
      { maxGroup: 2, concurrency: 3 },
    );
    const values = await Promise.all(Array.from({ length: 12 }, (_, i) => gc.submit(i)));
    expect(values).toEqual(Array.from({ length: 12 }, (_, i) => i));
    expect(most).toBe(3);
  });
});

for (const dialect of DIALECTS) {
  describe.skipIf(!dialect.available)(`send API group commit on ${dialect.name}`, () => {
    let s: TestServer;
    let url: string;
    let workspaceId: string;
    let n = 0;

    beforeAll(async () => {
      s = await startTestServer(dialect, { CHORUS_VIRTUAL_CLOCK: START });
      url = s.url;
      workspaceId = (await s.server.store.db.selectFrom('workspaces').select('id').executeTakeFirstOrThrow()).id;
    });
    afterAll(async () => s?.close());

    /** `count` new customers with an email and a phone in New York, in one batch; returns their refs. */
    const customers = async (count: number): Promise<string[]> => {
      const ids = Array.from({ length: count }, () => `batch-${++n}`);
      const r = await ingest(url, 'batch', {
        batch: ids.map((id, k) => ({
          type: 'identify',
          userId: id,
          traits: { email: `${id}@example.com`, phone: `+1415555${String(1000 + ((n - count + k) % 9000)).padStart(4, '0')}`, timezone: 'America/New_York', first_name: 'Ann' },
        })),
      });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      return ids.map((id) => `user_id:${id}`);
    };
    const send = (to: string, extra: Record<string, unknown>) => admin(url, 'POST', '/v1/messages', { to, content, ...extra });
    const settings = async (doc: unknown) => {
      const r = await admin(url, 'PUT', '/v1/settings', doc);
      expect(r.status, JSON.stringify(r.body)).toBe(200);
    };
    const messagesOf = async (to: string) => {
      const r = await admin(url, 'GET', `/v1/messages?profile=${encodeURIComponent(to)}&limit=500`);
      expect(r.status).toBe(200);
      return r.body.data as { id: string; status: string; idempotencyKey: string | null }[];
    };
    const profileIdOf = async (to: string) => (await admin(url, 'GET', `/v1/profiles/${encodeURIComponent(to)}`)).body.id as string;

    it('100 concurrent sends: one each to 60 customers, and 40 racing for a capped customer (exactly 3 go out)', async () => {
      await settings({ quiet_hours: NO_QUIET_HOURS, caps: [{ id: 'promo-day', limit: 3, window: { calendar: 'day' }, categories: ['promotional'] }] });
      const many = await customers(60);
      const [capped] = await customers(1);
      const priorities = ['low', 'normal', 'high', 'urgent'];
      const calls: { kind: 'many' | 'capped'; to: string; order: string; go: () => Promise<Answer> }[] = [];
      many.forEach((to, k) => calls.push({ kind: 'many', to, order: `m${k}`, go: () => send(to, { channel: 'email', category: 'transactional', data: { order: `m${k}` } }) }));
      for (let k = 0; k < 40; k++) {
        calls.push({
          kind: 'capped',
          to: capped,
          order: `c${k}`,
          go: () => send(capped, { channel: k % 2 ? 'email' : 'sms', category: 'promotional', priority: priorities[k % 4], data: { order: `c${k}` } }),
        });
      }
      // Interleaved, all in flight at once.
      const order = calls.map((_, i) => i).sort((a, b) => (a * 37) % 101 - (b * 37) % 101);
      const answers = new Array<Answer>(calls.length);
      await Promise.all(order.map(async (i) => (answers[i] = await calls[i].go())));

      for (const [i, c] of calls.entries()) {
        const a = answers[i];
        expect(a.status, JSON.stringify(a.body)).toBe(201);
        expect(a.body.profileId).toBe(await profileIdOf(c.to));
        if (c.kind === 'many') {
          expect(a.body.status).toBe('queued');
          expect(a.body.channel).toBe('email');
          expect(a.body.content.text).toBe(`Order ${c.order}`);
        }
      }
      // Every customer of the 60 has exactly its one message.
      for (const to of many) expect(await messagesOf(to)).toHaveLength(1);
      // Delivered in batches, each message marked with its own provider message id.
      for (const to of many) {
        let m = (await messagesOf(to))[0] as { id: string; status: string; providerMessageId?: string | null };
        for (let i = 0; i < 100 && m.status !== 'sent'; i++) {
          await new Promise((r) => setTimeout(r, 50));
          m = (await messagesOf(to))[0];
        }
        expect(m.status).toBe('sent');
        expect(m.providerMessageId).toBe(`sandbox_${m.id}`);
      }

      const cappedAnswers = calls.map((c, i) => ({ c, a: answers[i] })).filter((x) => x.c.kind === 'capped').map((x) => x.a.body);
      expect(cappedAnswers.filter((m) => m.status === 'queued')).toHaveLength(3);
      const rest = cappedAnswers.filter((m) => m.status !== 'queued');
      expect(rest.map((m) => `${m.status} ${m.decision.rule}`)).toEqual(Array(37).fill('suppressed cap:promo-day'));
      expect(new Set(cappedAnswers.map((m) => m.id)).size).toBe(40);
      const stored = await messagesOf(capped);
      expect(stored).toHaveLength(40);
      expect(stored.filter((m) => m.status !== 'suppressed')).toHaveLength(3);
      await settings({});
    });

    it('the same idempotency key in one concurrent burst: exactly one message, every other answer a 200 replay', async () => {
      const [to] = await customers(1);
      const others = await customers(20);
      const key = `burst-${dialect.name}`;
      const calls: (() => Promise<Answer & { replayed?: string | null }>)[] = [];
      for (let k = 0; k < 20; k++) calls.push(() => send(to, { channel: 'email', category: 'transactional', idempotencyKey: key, data: { order: `k${k}` } }));
      others.forEach((o, k) => calls.push(() => send(o, { channel: 'email', category: 'transactional', idempotencyKey: `${key}-${k}` })));
      const answers = await Promise.all(calls.map((c) => c()));
      const same = answers.slice(0, 20);
      expect(same.filter((a) => a.status === 201)).toHaveLength(1);
      expect(same.filter((a) => a.status === 200)).toHaveLength(19);
      expect(new Set(same.map((a) => a.body.id)).size).toBe(1);
      expect(same.every((a) => a.body.idempotencyKey === key && a.body.status === 'queued')).toBe(true);
      const stored = await messagesOf(to);
      expect(stored.map((m) => m.idempotencyKey)).toEqual([key]);
      for (const a of answers.slice(20)) expect(a.status).toBe(201);
      expect(new Set(answers.slice(20).map((a) => a.body.id)).size).toBe(20);
      // And afterwards, the key still answers with the same message.
      const again = await send(to, { channel: 'email', category: 'transactional', idempotencyKey: key });
      expect(again.status).toBe(200);
      expect(again.body.id).toBe(same[0].body.id);
    });

    it('a burst mixing unknown profiles with good ones answers each one correctly', async () => {
      const good = await customers(30);
      const calls: { to: string; known: boolean }[] = [];
      good.forEach((to, k) => {
        calls.push({ to, known: true });
        if (k % 3 === 0) calls.push({ to: `user_id:nobody-${dialect.name}-${k}`, known: false });
        if (k % 5 === 0) calls.push({ to: `prf_doesnotexist${k}`, known: false });
        if (k % 7 === 0) calls.push({ to: `email:nobody-${k}@example.com`, known: false });
      });
      const answers = await Promise.all(calls.map((c) => send(c.to, { channel: 'email', category: 'operational' })));
      calls.forEach((c, i) => {
        const a = answers[i];
        if (c.known) {
          expect(a.status, JSON.stringify(a.body)).toBe(201);
          expect(a.body.status).toBe('queued');
        } else {
          expect(a.status).toBe(404);
          expect(a.body.error).toBe('not_found');
          expect(a.body.message).toBe(`no profile matches "${c.to}"; identify the customer first`);
        }
      });
      for (const to of good) expect(await messagesOf(to)).toHaveLength(1);
    });

    // ---- One known group, straight through acceptSends -------------------------------------------------

    const sendStep = (send: Record<string, unknown>): SendStep => {
      const parsed = parseJourneySpec({ key: 'api', name: 'api', trigger: { event: 'api' }, steps: { message: { send } } });
      if (!parsed.ok || parsed.spec.steps.message.type !== 'send') throw new Error(`bad send: ${JSON.stringify(parsed)}`);
      return parsed.spec.steps.message.send;
    };
    const input = (to: string, send: Record<string, unknown>, idempotencyKey: string | null = null, receivedAt = Date.parse(START)): SendInput => {
      const ref = parseProfileRef(to);
      if ('error' in ref) throw new Error(ref.error);
      return { workspaceId, to, ref, send: sendStep({ content, ...send }), data: {}, idempotencyKey, receivedAt };
    };
    const outcome = (r: Settled<{ message: { id: string; status: string } | null; replayed: boolean }>) =>
      r.ok ? `${r.value.replayed ? 'replay' : 'new'} ${r.value.message?.status}` : `${(r.error as HttpError).statusCode}`;

    it('one group: per-request 404s, a duplicate key answered as a replay, and one customer decided by priority', async () => {
      await settings({ quiet_hours: NO_QUIET_HOURS, caps: [{ id: 'promo-day', limit: 1, window: { calendar: 'day' }, categories: ['promotional'] }] });
      const [a, b] = await customers(2);
      const { store, runtime } = s.server;
      const group = [
        input(a, { channel: 'email', category: 'promotional', priority: 'low' }),
        input('user_id:no-such-customer', { channel: 'email' }),
        input(b, { channel: 'email', category: 'transactional' }, 'grp-key'),
        input(b, { channel: 'sms', category: 'transactional' }, 'grp-key'),
        // Same customer, same cap: the later, higher-priority message takes the only slot.
        input(a, { channel: 'email', category: 'promotional', priority: 'high' }),
      ];
      const results = await transact(store, (trx) => acceptSends(trx, store.dialect, runtime.gate, group, runtime.clock.now()));
      expect(results.map(outcome)).toEqual(['new suppressed', '404', 'new queued', 'replay queued', 'new queued']);
      const [low, , first, replay, high] = results.map((r) => (r.ok ? r.value.message! : null));
      expect(replay!.id).toBe(first!.id);
      expect((low as any).decision.rule).toBe('cap:promo-day');
      expect((high as any).priority).toBe('high');
      expect(await messagesOf(b)).toHaveLength(1);
      expect(await messagesOf(a)).toHaveLength(2);
      await settings({});
    });

    it('the group function may run again after a rollback (as transact does on PostgreSQL): one outcome, no leftovers', async () => {
      const [a, b] = await customers(2);
      const { store, runtime } = s.server;
      const group = [input(a, { channel: 'email', category: 'transactional' }), input(b, { channel: 'email', category: 'transactional' }, 'rerun-key'), input(b, { channel: 'sms', category: 'transactional' })];
      let attempts = 0;
      const run = () =>
        store.db.transaction().execute(async (trx) => {
          const results = await acceptSends(trx, store.dialect, runtime.gate, group, runtime.clock.now());
          if (++attempts === 1) throw Object.assign(new Error('simulated serialization failure'), { code: '40001' });
          return results;
        });
      await expect(run()).rejects.toThrow('simulated');
      const results = await run();
      expect(results.map(outcome)).toEqual(['new queued', 'new queued', 'new queued']);
      expect(await messagesOf(a)).toHaveLength(1);
      expect((await messagesOf(b)).map((m) => m.idempotencyKey).sort()).toEqual([null, 'rerun-key']);
    });
  });
}
