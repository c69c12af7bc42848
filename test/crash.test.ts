import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { messageId } from '../src/engine/run-store.js';
import { openStore, type Store } from '../src/store/db.js';
import { DIALECTS } from './support/dialects.js';
import { CrashableServer, prng, sleep } from './support/crash.js';
import { basic, SECRET_KEY, WRITE_KEY } from './support/server.js';

// Exactly-once effect per message (DESIGN invariant 2), under crashes. The server runs as a child process
// on a virtual clock; while 1,000 customers sign up and then move through a three-message journey day by
// day, the test SIGKILLs it at random moments and restarts it on the same database each time. The
// clients do what real ones do: retry whatever failed (batches carry fixed messageIds, so a retried batch
// dedupes; clock advances name their target time, so a retried advance is idempotent). In the end every
// message that was due exists once in the ledger, under its deterministic id, and was delivered once: a
// journey message for the sandbox is delivered in the gate's own write, which stores it `sent` with the
// sandbox's message id (that row is the delivery); a message the outbox delivers to the sandbox also
// leaves a capture in `sandbox_messages`, exactly one, matching its row.

const CUSTOMERS = 1000;
const CUSTOMERS_PER_BATCH = 50; // two calls each: 100 events per /v1/batch
const START = '2026-01-05T09:00:00.000Z';
const DAY = 86_400_000;
const DAYS = 3; // day 1: sms, day 2: tips, day 3: nothing more is due
const PHASE1_KILLS = 3;
/** The outbox lease (src/engine/outbox.ts LEASE_MS) plus slack: a message leased by a killed process waits this long. */
const DRAIN_BOUND_MS = 45_000;

const SEED = Number(process.env.CHORUS_CRASH_SEED ?? Math.floor(Math.random() * 2 ** 31));
const WRITE = basic(WRITE_KEY);
const ADMIN = `Bearer ${SECRET_KEY}`;

const JOURNEY = {
  key: 'crash_onboarding',
  name: 'Crash-test onboarding',
  trigger: { event: 'Signed Up' },
  steps: {
    welcome: {
      send: {
        channel: 'email',
        category: 'transactional',
        content: { email: { subject: 'Welcome, {{ profile.traits.first_name }}', text: 'You are on the {{ event.properties.plan }} plan.' } },
      },
    },
    day_1: { wait: { duration: 'P1D' } },
    day_1_sms: { send: { channel: 'sms', content: { sms: { text: 'Day one, {{ profile.traits.first_name }}: how is it going?' } } } },
    day_2: { wait: { duration: 'P1D' } },
    by_plan: { branch: { cases: [{ when: { trait: 'plan', op: 'eq', value: 'pro' }, next: 'pro_tips' }], default: 'basic_tips' } },
    pro_tips: { send: { channel: 'email', content: { email: { subject: 'Pro tips', text: 'Hi {{ profile.traits.first_name }}, pro tips.' } } }, next: 'end' },
    basic_tips: { send: { channel: 'email', content: { email: { subject: 'Tips', text: 'Hi {{ profile.traits.first_name }}, tips.' } } } },
  },
};

interface Customer {
  userId: string;
  email: string;
  phone: string;
  plan: 'pro' | 'basic';
}

const customers: Customer[] = Array.from({ length: CUSTOMERS }, (_, i) => ({
  userId: `crash-user-${i}`,
  email: `crash${i}@example.com`,
  phone: `+3361${String(i).padStart(7, '0')}`,
  plan: i % 3 === 0 ? 'pro' : 'basic',
}));

/** What each customer must have received, by step: [channel, address]. */
function expectedFor(c: Customer): Record<string, [string, string]> {
  return {
    welcome: ['email', c.email],
    day_1_sms: ['sms', c.phone],
    [c.plan === 'pro' ? 'pro_tips' : 'basic_tips']: ['email', c.email],
  };
}

function batches(): { batch: Record<string, unknown>[] }[] {
  const out: { batch: Record<string, unknown>[] }[] = [];
  for (let i = 0; i < customers.length; i += CUSTOMERS_PER_BATCH) {
    const batch = customers.slice(i, i + CUSTOMERS_PER_BATCH).flatMap((c) => [
      { type: 'identify', messageId: `crash-identify-${c.userId}`, userId: c.userId, traits: { email: c.email, phone: c.phone, first_name: `Ada ${c.userId}`, plan: c.plan } },
      { type: 'track', messageId: `crash-signup-${c.userId}`, userId: c.userId, event: 'Signed Up', properties: { plan: c.plan } },
    ]);
    out.push({ batch });
  }
  return out;
}

const n = (v: unknown) => Number(v);
const canonical = (x: Record<string, unknown[]>) =>
  Object.keys(x)
    .sort()
    .map((k) => `${k}=${x[k].join(' ')}`)
    .join(', ');

async function countBy(store: Store, table: 'messages', column: 'status'): Promise<Record<string, number>> {
  const rows = await store.db.selectFrom(table).select([column, sql<number>`count(*)`.as('n')]).groupBy(column).execute();
  return Object.fromEntries(rows.map((r) => [r[column], n(r.n)]));
}

/** What the dead process left behind, for the run's log: how the ledger looked at the moment of the kill. */
async function describeLedger(store: Store): Promise<string> {
  const byStatus = await countBy(store, 'messages', 'status');
  const captures = await store.db.selectFrom('sandbox_messages').select(sql<number>`count(*)`.as('n')).executeTakeFirstOrThrow();
  const clock = await store.db.selectFrom('clock').select('now_ms').where('id', '=', 'virtual').executeTakeFirst();
  const runs = await store.db.selectFrom('runs').select(sql<number>`count(*)`.as('n')).executeTakeFirstOrThrow();
  const overdue = clock
    ? await store.db.selectFrom('waits').select(sql<number>`count(*)`.as('n')).where('due_at', '<=', clock.now_ms).executeTakeFirstOrThrow()
    : { n: 0 };
  return (
    `runs=${n(runs.n)} messages=${JSON.stringify(byStatus)} sandbox captures=${n(captures.n)} ` +
    `clock=${clock ? new Date(clock.now_ms).toISOString() : '-'} timers due but unfired=${n(overdue.n)}`
  );
}

/** A number that grows whenever the server commits work: stored events, ledger rows, deliveries. */
async function progressMark(store: Store): Promise<number> {
  const row = await store.db
    .selectFrom('messages')
    .select([sql<number>`count(*)`.as('n'), sql<number>`sum(case when status = 'sent' then 1 else 0 end)`.as('sent')])
    .executeTakeFirstOrThrow();
  const events = await store.db.selectFrom('events').select(sql<number>`count(*)`.as('n')).executeTakeFirstOrThrow();
  return n(row.n) + n(row.sent ?? 0) + n(events.n);
}

for (const d of DIALECTS) {
  describe.skipIf(!d.available)(`crash safety: SIGKILL at random moments (${d.name})`, () => {
    const { config, env: dbEnv } = d.fresh();
    const env = {
      ...dbEnv,
      CHORUS_VIRTUAL_CLOCK: START,
      CHORUS_WRITE_KEY: WRITE_KEY,
      CHORUS_SECRET_KEY: SECRET_KEY,
      LOG_LEVEL: 'info',
    };
    let server: CrashableServer | undefined;
    let store: Store | undefined;

    afterAll(async () => {
      await server?.stop();
      await store?.close();
    });

    it(
      `every due message of ${CUSTOMERS} customers is produced exactly once across kills and restarts`,
      async () => {
        const t0 = Date.now();
        const random = prng(SEED + (d.name === 'sqlite' ? 0 : 1));
        const delay = () => 20 + Math.floor(random() * 400);
        server = new CrashableServer(env);
        await server.server(); // migrated and listening: the database exists from here on
        store = await openStore(config);
        const s = server;
        const st = store;
        const db = st.db;
        const kills = s.kills;
        /**
         * Kills the server `count` times while `running()` holds. Before kill i it waits until `ready(i)`
         * when given (the ingest phase spreads its kills over the batches, so a fast server can't finish
         * before the last one); otherwise it sometimes first waits for the live process to commit some work
         * (so kills also land mid-way through a phase, not only before its first commit) and then a random
         * 20–420 ms. Then SIGKILL.
         */
        const killer = async (phase: string, count: number, running: () => boolean, ready?: (i: number) => boolean) => {
          for (let i = 0; i < count && running(); i++) {
            if (ready) {
              while (running() && !ready(i)) await sleep(5);
              await sleep(Math.floor(random() * 10));
              if (!running()) break;
              await s.kill(phase, () => describeLedger(st));
              continue;
            }
            if (random() < 0.6) {
              const mark = await progressMark(st);
              while (running() && (await progressMark(st)) === mark) await sleep(50);
            }
            await sleep(delay());
            if (!running()) break;
            await s.kill(phase, () => describeLedger(st));
          }
        };
        /** Runs `body` with a killer alongside; the killer stops when `body` ends, whichever way. */
        const withKills = async <T>(phase: string, count: number, body: () => Promise<T>, ready?: (i: number) => boolean): Promise<T> => {
          let running = true;
          const stopped = killer(phase, count, () => running, ready).then(
            () => null,
            (err: unknown) => err,
          );
          let result: T;
          try {
            result = await body();
          } finally {
            running = false;
            const err = await stopped;
            if (err) throw err;
          }
          return result;
        };

        // The journey, published before the chaos starts.
        const created = await s.request('POST', '/v1/journeys', ADMIN, JOURNEY);
        expect(created.status, JSON.stringify(created.body)).toBe(201);
        const published = await s.request('POST', `/v1/journeys/${JOURNEY.key}/publish`, ADMIN);
        expect(published.status, JSON.stringify(published.body)).toBe(200);

        // ---- Phase 1: 1,000 customers sign up in batches of 100 events while the server is killed.
        const queue = batches();
        const total = queue.length;
        // Kill i lands after a random batch of its own stretch of the phase, while later batches are in flight.
        const killAfter = Array.from({ length: PHASE1_KILLS }, (_, i) => Math.floor(((i + random()) * (total - 4)) / PHASE1_KILLS));
        let acknowledged = 0;
        let retriedBatches = 0;
        const worker = async () => {
          for (let b = queue.shift(); b; b = queue.shift()) {
            const res = await s.request('POST', '/v1/batch', WRITE, b);
            if (res.status !== 200) expect.fail(`batch answered ${res.status} ${JSON.stringify(res.body)}\n${await s.errors()}`);
            if (res.attempts > 1) retriedBatches++;
            acknowledged++;
          }
        };
        await withKills('ingest', PHASE1_KILLS, () => Promise.all([worker(), worker()]), (i) => acknowledged >= killAfter[i]);
        const ingestMs = Date.now() - t0;

        // Every customer entered the journey once and was queued the welcome email (the sends may still be going out).
        const runsAfterIngest = await db.selectFrom('runs').select(sql<number>`count(*)`.as('n')).executeTakeFirstOrThrow();
        expect(n(runsAfterIngest.n)).toBe(CUSTOMERS);

        // ---- Phase 2: the clock moves day by day; a kill lands during each advance, which is re-issued
        // with the same target time (a retried `{ to }` is idempotent; the clock never runs backwards).
        let retriedAdvances = 0;
        const afterAdvance: string[] = [];
        for (let day = 1; day <= DAYS; day++) {
          const to = new Date(Date.parse(START) + day * DAY).toISOString();
          // One kill per advance, at a random moment (if the advance is still running by then).
          await withKills(`advance to day ${day}`, 1, async () => {
            const res = await s.request('POST', '/v1/clock/advance', ADMIN, { to });
            if (res.status !== 200) expect.fail(`advance answered ${res.status} ${JSON.stringify(res.body)}\n${await s.errors()}`);
            expect(res.body.now).toBe(to);
            if (res.attempts > 1) retriedAdvances++;
          });
          // Not asserted: what the answered advance left undelivered (messages leased by a killed process).
          const left = await db.selectFrom('messages').select(sql<number>`count(*)`.as('n')).where('status', 'in', ['queued', 'sending']).executeTakeFirstOrThrow();
          afterAdvance.push(`day ${day}: ${n(left.n)} undelivered`);
        }
        expect(kills.length).toBeGreaterThanOrEqual(3);

        // ---- The last server runs undisturbed. Re-issue the final advance (idempotent: the clock is already
        // there), then wait for the outbox to empty. A message leased by a killed process stays `sending`
        // until its 30 s wall-clock lease expires (src/engine/outbox.ts), hence the bound.
        const final = new Date(Date.parse(START) + DAYS * DAY).toISOString();
        const again = await s.request('POST', '/v1/clock/advance', ADMIN, { to: final });
        expect(again.status, JSON.stringify(again.body)).toBe(200);
        const drainStart = Date.now();
        let pending = -1;
        while (Date.now() - drainStart < DRAIN_BOUND_MS) {
          const row = await db.selectFrom('messages').select(sql<number>`count(*)`.as('n')).where('status', 'in', ['queued', 'sending']).executeTakeFirstOrThrow();
          pending = n(row.n);
          if (pending === 0) break;
          await sleep(250);
        }
        const drainMs = Date.now() - drainStart;
        await s.stop();

        // ---- Checks, straight from the database.
        const byStatus = await countBy(st, 'messages', 'status');
        expect(pending, `messages still queued or sending ${DRAIN_BOUND_MS} ms after the final advance: ${JSON.stringify(byStatus)}`).toBe(0);

        // Events: each stored once despite the retried batches.
        const events = await db.selectFrom('events').select(sql<number>`count(*)`.as('n')).executeTakeFirstOrThrow();
        expect(n(events.n)).toBe(2 * CUSTOMERS);

        // Runs: exactly one per customer, all finished.
        const runs = await db
          .selectFrom('runs')
          .innerJoin('identifiers', (j) => j.onRef('identifiers.profile_id', '=', 'runs.profile_id').on('identifiers.kind', '=', 'user_id'))
          .select(['runs.id', 'runs.status', 'identifiers.value as user_id'])
          .execute();
        expect(runs).toHaveLength(CUSTOMERS);
        const runOf = new Map<string, string>();
        for (const r of runs) {
          expect(runOf.has(r.user_id), `${r.user_id} has two runs`).toBe(false);
          runOf.set(r.user_id, r.id);
        }
        expect(runs.filter((r) => r.status !== 'completed').map((r) => `${r.user_id}: ${r.status}`)).toEqual([]);
        const waits = await db.selectFrom('waits').select(sql<number>`count(*)`.as('n')).executeTakeFirstOrThrow();
        expect(n(waits.n)).toBe(0);

        // Messages: exactly the three due ones per customer, once each, all sent.
        expect(byStatus).toEqual({ sent: 3 * CUSTOMERS });
        const dupes = await db
          .selectFrom('messages')
          .select(['run_id', 'step', sql<number>`count(*)`.as('n')])
          .groupBy(['run_id', 'step'])
          .having(sql<number>`count(*)`, '>', 1)
          .execute();
        expect(dupes).toEqual([]);
        const messages = await db
          .selectFrom('messages')
          .select(['id', 'run_id', 'step', 'channel', 'to_address', 'content', 'status', 'source', 'provider', 'provider_message_id'])
          .execute();
        const byRun = new Map<string, Map<string, (typeof messages)[number]>>();
        for (const m of messages) {
          const steps = byRun.get(m.run_id!) ?? new Map();
          steps.set(m.step!, m);
          byRun.set(m.run_id!, steps);
        }
        const wrong: string[] = [];
        for (const c of customers) {
          const got = byRun.get(runOf.get(c.userId)!) ?? new Map();
          const want = expectedFor(c);
          const gotSummary = canonical(Object.fromEntries([...got].map(([step, m]) => [step, [m.channel, m.to_address]])));
          if (gotSummary !== canonical(want)) wrong.push(`${c.userId}: want ${canonical(want)}, got ${gotSummary}`);
        }
        expect(wrong.slice(0, 10), `${wrong.length} customers with the wrong messages`).toEqual([]);

        // Deliveries. Every message has the id of its run, step and attempt 1 (each step runs once), so a step
        // run again after a kill cannot have added a row unnoticed. Every row was sent by the sandbox, with the
        // sandbox's id for it: stored so by the gate's own write (a journey message: that row is the delivery)
        // or by the outbox after capturing it (any other message). Captures: exactly one per message the
        // outbox delivered, matching its row; none for a message the gate delivered (that would be a second
        // delivery) nor for one missing from the ledger.
        const captures = await db.selectFrom('sandbox_messages').select(['message_id', 'channel', 'to_address', 'content']).execute();
        const viaOutbox = (m: (typeof messages)[number]) => m.source !== 'journey';
        const ledger = new Map(messages.map((m) => [m.id, m]));
        const captured = new Set<string>();
        const mismatched: string[] = [];
        for (const m of messages) {
          if (m.id !== messageId(m.run_id!, m.step!, 1)) mismatched.push(`${m.id}: not the id of run ${m.run_id}, step ${m.step}, attempt 1`);
          if (m.provider !== 'sandbox' || m.provider_message_id !== `sandbox_${m.id}`) mismatched.push(`${m.id}: ${m.status} with provider ${m.provider} and provider message id ${m.provider_message_id}`);
        }
        for (const x of captures) {
          const m = ledger.get(x.message_id);
          if (!m) mismatched.push(`${x.message_id}: captured but not in the ledger`);
          else if (!viaOutbox(m)) mismatched.push(`${x.message_id}: captured, but the gate delivered it in its own write`);
          else if (m.channel !== x.channel || m.to_address !== x.to_address || m.content !== x.content) mismatched.push(`${x.message_id}: ${x.channel} ${x.to_address} vs ${m.channel} ${m.to_address}`);
          if (captured.has(x.message_id)) mismatched.push(`${x.message_id}: captured twice`);
          captured.add(x.message_id);
        }
        for (const m of messages) if (viaOutbox(m) && !captured.has(m.id)) mismatched.push(`${m.id}: delivered by the outbox but never captured`);
        expect(mismatched.slice(0, 10), `${mismatched.length} mismatches`).toEqual([]);

        const lines = kills.map((k) => `  kill ${k.n} (${k.phase}) after ${k.uptimeMs} ms up, ${k.inFlight} request(s) in flight; left: ${k.note}`);
        console.log(
          `[crash ${d.name}] seed=${SEED} kills=${kills.length} customers=${CUSTOMERS} messages=${messages.length} ` +
            `retried batches=${retriedBatches} retried advances=${retriedAdvances} ingest=${ingestMs} ms drain wait=${drainMs} ms total=${Date.now() - t0} ms\n` +
            `  after each advance answered: ${afterAdvance.join('; ')}\n${lines.join('\n')}`,
        );
      },
      400_000,
    );
  });
}
