import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DatabaseConfig } from '../src/config.js';
import { openStore, type Store } from '../src/store/db.js';
import { DIALECTS, postgres, type TestDialect } from './support/dialects.js';
import { admin, ingest, SECRET_KEY, spawnServer, startTestServer, WRITE_KEY, type ChildServer, type TestServer } from './support/server.js';

// Caps are exact under concurrency (docs/gate.md, "Frequency caps and priority"): 50 sends race for one
// customer — five journeys, each forking or chaining five promotional sends, plus 25 send-API calls — on
// PostgreSQL with two `chorus start` processes sharing one schema. Exactly the cap goes out; the rest is
// suppressed (or deferred) by the cap, with the rule on each message. Then: deferred messages released
// together compete by priority (ties: the older), on both dialects.
//
// Virtual clock: Monday 2026-01-05 15:00 UTC is 10:00 in New York. Quiet hours are switched off in these
// settings so the only rule in play is the cap (a release at New York midnight is not pushed to 08:00).

const START = '2026-01-05T15:00:00.000Z';
const DAY2_RELEASE = '2026-01-06T05:00:00.000Z'; // midnight in New York: the cap's calendar day reopens
const CAP = 3;
const JOURNEYS = 5;
const SENDS_PER_JOURNEY = 5;
const API_SENDS = 25;
const TOTAL = JOURNEYS * SENDS_PER_JOURNEY + API_SENDS; // 50

const NO_QUIET_HOURS = { window: null, channels: {} };
const capSettings = (onExceed: 'suppress' | 'defer') => ({
  quiet_hours: NO_QUIET_HOURS,
  caps: [{ id: 'promo-day', limit: CAP, window: { calendar: 'day' }, categories: ['promotional'], on_exceed: onExceed }],
});

const content = {
  email: { subject: 'Hi {{ profile.traits.first_name | default: "there" }}', text: 'A deal for you' },
  sms: { text: 'A deal for you' },
  whatsapp: { template: 'deal', language: 'en', parameters: [] },
};
/** Every way a send can name its channel; all of them reach a customer with an email and a phone. */
const CHANNEL_CHOICES: unknown[] = ['email', 'sms', ['sms', 'email'], 'auto', 'whatsapp', ['email', 'sms']];
const PRIORITY_CHOICES = ['normal', 'high', 'low', 'normal', 'urgent'];

/** Journey j: a fork into five parallel sends (odd j) or five sends in a row without waits (even j). */
function raceJourney(j: number): Record<string, unknown> {
  const send = (k: number) => ({
    channel: CHANNEL_CHOICES[(j + k) % CHANNEL_CHOICES.length],
    category: 'promotional',
    priority: PRIORITY_CHOICES[(j * 3 + k) % PRIORITY_CHOICES.length],
    content,
  });
  const ids = Array.from({ length: SENDS_PER_JOURNEY }, (_, k) => `send_${k + 1}`);
  const steps: Record<string, unknown> = {};
  ids.forEach((id, k) => {
    if (j % 2 === 1) steps[id] = k === 0 ? { send: send(k), next: ids.slice(1) } : { send: send(k), next: 'end' };
    else steps[id] = { send: send(k) };
  });
  return { key: `race-${j}`, name: `Race ${j}`, trigger: { event: `Race ${j}` }, steps };
}

async function publish(url: string, spec: Record<string, unknown>): Promise<void> {
  const saved = await admin(url, 'POST', '/v1/journeys', spec);
  expect(saved.status, JSON.stringify(saved.body)).toBe(201);
  const pub = await admin(url, 'POST', `/v1/journeys/${spec.key as string}/publish`);
  expect(pub.status, JSON.stringify(pub.body)).toBe(200);
}

interface Row {
  id: string;
  status: string;
  source: string;
  priority: string;
  created_at: number;
  not_before: number | null;
  decision: string | null;
  provider_message_id: string | null;
}

async function messagesOf(store: Store, profileId: string): Promise<Row[]> {
  return store.db
    .selectFrom('messages')
    .select(['id', 'status', 'source', 'priority', 'created_at', 'not_before', 'decision', 'provider_message_id'])
    .where('profile_id', '=', profileId)
    .orderBy('id')
    .execute();
}

const OUT = new Set(['queued', 'sending', 'retrying', 'sent']);
const ruleOf = (m: Row) => (m.decision ? (JSON.parse(m.decision) as { rule: string }).rule : null);
const RANK: Record<string, number> = { urgent: 3, high: 2, normal: 1, low: 0 };

/** Waits (bounded) until no message of the customer is still on its way to the provider. */
async function settled(store: Store, profileId: string): Promise<Row[]> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const rows = await messagesOf(store, profileId);
    if (!rows.some((m) => m.status === 'queued' || m.status === 'sending' || m.status === 'retrying')) return rows;
    if (Date.now() > deadline) return rows; // the assertions below say what is stuck
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Which of `rows` the provider (the sandbox) delivered, and how: a journey message in the gate's own write,
 * which stores it `sent` with the provider's message id (no capture); a send-API message through the
 * outbox, which captures it in `sandbox_messages` and then marks it `sent` with that id.
 */
async function deliveries(store: Store, rows: Row[]): Promise<{ delivered: string[]; captured: string[] }> {
  const delivered = rows.filter((m) => m.provider_message_id !== null).map((m) => m.id).sort();
  const ids = rows.map((m) => m.id);
  const captures = ids.length === 0 ? [] : await store.db.selectFrom('sandbox_messages').select('message_id').where('message_id', 'in', ids).execute();
  return { delivered, captured: captures.map((c) => c.message_id).sort() };
}

/** What `deliveries` must find when exactly `out` went out: each once, captured only if the outbox delivered it. */
function deliveredOnce(out: Row[]): { delivered: string[]; captured: string[] } {
  const ids = (rows: Row[]) => rows.map((m) => m.id).sort();
  return { delivered: ids(out), captured: ids(out.filter((m) => m.source === 'api')) };
}

function shuffle<T>(xs: T[]): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [xs[i], xs[j]] = [xs[j], xs[i]];
  }
  return xs;
}

describe.skipIf(!postgres.available)('caps are exact under concurrency: postgres, two server processes', () => {
  const servers: ChildServer[] = [];
  let store: Store;
  let urls: string[];
  let n = 0;

  beforeAll(async () => {
    const { env, config } = postgres.fresh();
    const common = { ...env, CHORUS_WRITE_KEY: WRITE_KEY, CHORUS_SECRET_KEY: SECRET_KEY, CHORUS_VIRTUAL_CLOCK: START };
    // One after the other: the first migrates the fresh schema.
    servers.push(await spawnServer(common));
    servers.push(await spawnServer(common));
    urls = servers.map((s) => s.url);
    store = await openStore({ ...config, poolSize: 2 } as DatabaseConfig);
    for (let j = 1; j <= JOURNEYS; j++) await publish(urls[0], raceJourney(j));
  }, 120_000);

  afterAll(async () => {
    await store?.close();
    await Promise.all(servers.map((s) => s.stop()));
  });

  /** Settings are cached per process: write them through both, so each drops its copy. */
  async function applySettings(doc: unknown): Promise<void> {
    for (const url of urls) {
      const r = await admin(url, 'PUT', '/v1/settings', doc);
      expect(r.status, JSON.stringify(r.body)).toBe(200);
    }
  }

  async function newCustomer(): Promise<{ userId: string; profileId: string }> {
    const userId = `racer-${++n}`;
    const r = await ingest(urls[0], 'identify', {
      userId,
      traits: { email: `${userId}@example.com`, phone: `+1415555${String(2600 + n).padStart(4, '0')}`, timezone: 'America/New_York', first_name: 'Ann', whatsapp: true },
    });
    expect(r.status).toBe(200);
    const p = await admin(urls[0], 'GET', `/v1/profiles/user_id:${userId}`);
    expect(p.status).toBe(200);
    return { userId, profileId: p.body.id as string };
  }

  /** Fires the five journey triggers and the 25 API sends at once, alternating between the servers. */
  async function race(userId: string): Promise<void> {
    const calls: (() => Promise<{ status: number; body: any }>)[] = [];
    for (let j = 1; j <= JOURNEYS; j++) {
      calls.push(() => ingest(urls[j % urls.length], 'track', { userId, event: `Race ${j}`, properties: { j } }));
    }
    for (let k = 0; k < API_SENDS; k++) {
      calls.push(() =>
        admin(urls[k % urls.length], 'POST', '/v1/messages', {
          to: `user_id:${userId}`,
          channel: CHANNEL_CHOICES[k % CHANNEL_CHOICES.length],
          category: 'promotional',
          priority: PRIORITY_CHOICES[k % PRIORITY_CHOICES.length],
          data: { k },
          content,
        }),
      );
    }
    const results = await Promise.all(shuffle(calls).map((c) => c()));
    const failed = results.filter((r) => r.status !== 200 && r.status !== 201);
    expect(failed).toEqual([]);
  }

  it('50 racing promotional sends to one customer: exactly 3 go out, 47 suppressed by cap:promo-day (3 rounds)', async () => {
    await applySettings(capSettings('suppress'));
    for (let round = 0; round < 3; round++) {
      const { userId, profileId } = await newCustomer();
      await race(userId);
      const rows = await settled(store, profileId);
      expect(rows).toHaveLength(TOTAL);
      expect(rows.filter((m) => m.source === 'journey')).toHaveLength(JOURNEYS * SENDS_PER_JOURNEY);
      const out = rows.filter((m) => OUT.has(m.status));
      expect(out.map((m) => m.status)).toEqual(['sent', 'sent', 'sent']);
      const rest = rows.filter((m) => !OUT.has(m.status));
      expect(rest.map((m) => `${m.status} ${ruleOf(m)}`)).toEqual(Array(TOTAL - CAP).fill('suppressed cap:promo-day'));
      // The provider delivered exactly the three, once each.
      expect(await deliveries(store, rows)).toEqual(deliveredOnce(out));
    }
  }, 120_000);

  it('with on_exceed defer: exactly 3 go out, 47 wait for the next day; then exactly 3 more, by priority', async () => {
    await applySettings(capSettings('defer'));
    const { userId, profileId } = await newCustomer();
    await race(userId);
    const day1 = await settled(store, profileId);
    expect(day1).toHaveLength(TOTAL);
    expect(day1.filter((m) => OUT.has(m.status)).map((m) => m.status)).toEqual(['sent', 'sent', 'sent']);
    const deferred = day1.filter((m) => !OUT.has(m.status));
    expect(deferred.map((m) => `${m.status} ${ruleOf(m)} ${m.not_before === null ? null : new Date(m.not_before).toISOString()}`)).toEqual(
      Array(TOTAL - CAP).fill(`deferred cap:promo-day ${DAY2_RELEASE}`),
    );

    // One process moves the clock to 10:00 the next day in New York; the window reopened at midnight.
    // Every deferred message is released in the same step, so they compete by priority, then age, then id.
    const adv = await admin(urls[0], 'POST', '/v1/clock/advance', { to: '2026-01-06T15:00:00.000Z' });
    expect(adv.status, JSON.stringify(adv.body)).toBe(200);
    const day2 = await settled(store, profileId);
    const sentIds = new Set(day1.filter((m) => OUT.has(m.status)).map((m) => m.id));
    const released = day2.filter((m) => OUT.has(m.status) && !sentIds.has(m.id));
    expect(released.map((m) => m.status)).toEqual(['sent', 'sent', 'sent']);
    const expected = [...deferred]
      .sort((a, b) => RANK[b.priority] - RANK[a.priority] || a.created_at - b.created_at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
      .slice(0, CAP)
      .map((m) => m.id)
      .sort();
    expect(released.map((m) => m.id).sort()).toEqual(expected);
    const still = day2.filter((m) => !OUT.has(m.status));
    expect(still).toHaveLength(TOTAL - 2 * CAP);
    expect(new Set(still.map((m) => `${m.status} ${ruleOf(m)}`))).toEqual(new Set(['deferred cap:promo-day']));
    expect(await deliveries(store, day2)).toEqual(deliveredOnce(day2.filter((m) => OUT.has(m.status))));
  }, 120_000);
});

// ---------------------------------------------------------------------------------------------------------
// Priority among deferred messages released together (one process is enough), on both dialects.

for (const dialect of DIALECTS) {
  describe.skipIf(!dialect.available)(`deferred messages compete by priority on ${dialect.name}`, () => {
    let s: TestServer;
    let url: string;
    let n = 0;

    beforeAll(async () => {
      s = await startTestServer(dialect, { CHORUS_VIRTUAL_CLOCK: START });
      url = s.url;
    });
    afterAll(async () => s?.close());

    const customer = async () => {
      const id = `prio-${++n}`;
      const r = await ingest(url, 'identify', { userId: id, traits: { email: `${id}@example.com`, timezone: 'America/New_York' } });
      expect(r.status).toBe(200);
      return `user_id:${id}`;
    };
    const send = async (to: string, priority: string, label: string) => {
      const r = await admin(url, 'POST', '/v1/messages', { to, channel: 'email', category: 'promotional', priority, data: { label }, content: { email: { subject: label, text: label } } });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      return r.body as { id: string; status: string; notBefore: string | null };
    };
    const statusOf = async (id: string) => (await admin(url, 'GET', `/v1/messages/${id}`)).body.status as string;
    const advanceTo = async (iso: string) => {
      const r = await admin(url, 'POST', '/v1/clock/advance', { to: iso });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
    };

    it('cap 1 a day, on_exceed defer: each day the highest priority goes out; ties go to the older message', async () => {
      const settings = await admin(url, 'PUT', '/v1/settings', {
        quiet_hours: NO_QUIET_HOURS,
        caps: [{ id: 'one-a-day', limit: 1, window: { calendar: 'day' }, categories: ['promotional'], on_exceed: 'defer' }],
      });
      expect(settings.status, JSON.stringify(settings.body)).toBe(200);
      const to = await customer();
      expect((await send(to, 'normal', 'first')).status).toBe('queued');
      // Five messages wait for tomorrow, created at different times: older ones first in each pair.
      const made: Record<string, { id: string; status: string; notBefore: string | null }> = {};
      made.low1 = await send(to, 'low', 'low1');
      made.normal1 = await send(to, 'normal', 'normal1');
      await advanceTo('2026-01-05T15:10:00.000Z');
      made.high1 = await send(to, 'high', 'high1');
      await advanceTo('2026-01-05T15:20:00.000Z');
      made.normal2 = await send(to, 'normal', 'normal2');
      made.high2 = await send(to, 'high', 'high2');
      made.low2 = await send(to, 'low', 'low2');
      for (const m of Object.values(made)) {
        expect(m.status).toBe('deferred');
        expect(m.notBefore).toBe(DAY2_RELEASE);
      }
      // Each day at noon in New York, exactly one more has gone out: high1, high2, normal1, normal2, low1, low2.
      const order = ['high1', 'high2', 'normal1', 'normal2', 'low1', 'low2'];
      for (const [day, winner] of order.entries()) {
        await advanceTo(new Date(Date.parse('2026-01-06T17:00:00.000Z') + day * 86_400_000).toISOString());
        const statuses = Object.fromEntries(await Promise.all(order.map(async (k) => [k, await statusOf(made[k].id)] as const)));
        const expected = Object.fromEntries(order.map((k, i) => [k, i <= day ? 'sent' : 'deferred']));
        expect(statuses, `day ${day + 2}: ${winner} should have won`).toEqual(expected);
      }
    });

    it('more deferred messages than one release batch (200): the highest priority still wins', async () => {
      const settings = await admin(url, 'PUT', '/v1/settings', {
        quiet_hours: NO_QUIET_HOURS,
        caps: [{ id: 'one-a-day', limit: 1, window: { calendar: 'day' }, categories: ['promotional'], on_exceed: 'defer' }],
      });
      expect(settings.status).toBe(200);
      const to = await customer();
      expect((await send(to, 'normal', 'today')).status).toBe('queued');
      // 204 low-priority messages, then (a minute later, so its id sorts last) one high-priority message,
      // all deferred to the same moment: the next midnight in New York.
      const lows: string[] = [];
      for (let i = 0; i < 204; i++) {
        const m = await send(to, 'low', `low ${i}`);
        expect(m.status).toBe('deferred');
        lows.push(m.id);
      }
      const now = new Date((await admin(url, 'GET', '/v1/clock')).body.now as string);
      await advanceTo(new Date(now.getTime() + 60_000).toISOString());
      const high = await send(to, 'high', 'high');
      expect(high.status).toBe('deferred');
      const releaseAt = high.notBefore!;
      // 10:00 in New York that day: everything deferred to midnight has been released, all together.
      await advanceTo(new Date(Date.parse(releaseAt) + 10 * 3_600_000).toISOString());
      expect(await statusOf(high.id), 'the high-priority message should win the only slot of the day').toBe('sent');
    });

    it('a deferred message sent on a later day counts against that day\'s cap', async () => {
      const settings = await admin(url, 'PUT', '/v1/settings', {
        quiet_hours: NO_QUIET_HOURS,
        caps: [{ id: 'one-a-day', limit: 1, window: { calendar: 'day' }, categories: ['promotional'], on_exceed: 'defer' }],
      });
      expect(settings.status).toBe(200);
      const now = new Date((await admin(url, 'GET', '/v1/clock')).body.now as string);
      const to = await customer();
      expect((await send(to, 'normal', 'today')).status).toBe('queued');
      const waiting = await send(to, 'normal', 'tomorrow');
      expect(waiting.status).toBe('deferred');
      // The next day, 10:00 in New York: the deferred message goes out and takes that day's only slot.
      const nextDay10 = new Date(Date.parse(waiting.notBefore!) + 10 * 3_600_000).toISOString();
      expect(Date.parse(nextDay10)).toBeGreaterThan(now.getTime());
      await advanceTo(nextDay10);
      expect(await statusOf(waiting.id)).toBe('sent');
      const late = await send(to, 'normal', 'same day, later');
      expect(late.status, 'the cap already holds the message released today').toBe('deferred');
    });
  });
}
