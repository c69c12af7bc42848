import type { Insertable } from 'kysely';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { PermanentProviderError, type OutboundMessage, type Provider } from '../src/channels/provider.js';
import { SandboxProvider } from '../src/channels/providers/sandbox.js';
import type { Clock } from '../src/engine/clock.js';
import { Outbox, outboundMessage } from '../src/engine/outbox.js';
import { migrate, openStore, type Store } from '../src/store/db.js';
import type { Write } from '../src/store/insert-rows.js';
import type { MessageTable } from '../src/store/schema.js';
import { DIALECTS } from './support/dialects.js';

// The outbox on a real database: a provider outside the database is called after a committed lease and
// its deliveries are marked afterwards; the sandbox, inside the database, delivers in the claiming
// transaction (the gate's own write, which stores a journey message `sent`, needs no capture from it).

const WS = 'ws_outbox';
const clock: Clock = { virtual: true, now: () => new Date(Date.UTC(2026, 0, 5, 9)) };
let seq = 0;

function queued(overrides: Partial<Insertable<MessageTable>> = {}): Insertable<MessageTable> & { id: string } {
  const id = `msg_outbox_${String(++seq).padStart(4, '0')}`;
  return {
    id,
    workspace_id: WS,
    profile_id: `prf_${seq}`,
    run_id: null,
    journey_id: null,
    journey_key: null,
    version: null,
    step: null,
    category: 'transactional',
    channel: 'email',
    provider: null,
    status: 'queued',
    reason: null,
    to_address: `c${seq}@example.com`,
    content: JSON.stringify({ subject: `hello ${seq}` }),
    created_at: 1_000 + seq,
    sent_at: null,
    updated_at: 1_000,
    lease_until: null,
    provider_message_id: null,
    topic: null,
    message_type: null,
    not_before: null,
    decision: null,
    idempotency_key: null,
    queued_at: 1_000,
    fallback_of: null,
    pending: null,
    ...overrides,
  };
}

/** A provider outside the database: records what it saw, and fails as told. */
class RemoteProvider implements Provider {
  readonly name = 'remote';
  calls: { id: string; idempotencyKey: string; statusDuringCall: string | undefined }[] = [];
  failures = new Map<string, Error>();
  constructor(private readonly store: Store) {}
  async send(message: OutboundMessage, idempotencyKey: string): Promise<{ providerMessageId: string }> {
    const row = await this.store.db.selectFrom('messages').select('status').where('id', '=', message.id).executeTakeFirst();
    this.calls.push({ id: message.id, idempotencyKey, statusDuringCall: row?.status });
    const err = this.failures.get(message.id);
    if (err) throw err;
    return { providerMessageId: `remote_${message.id}` };
  }
}

for (const dialect of DIALECTS) {
  describe.skipIf(!dialect.available)(`outbox on ${dialect.name}`, () => {
    let store: Store;
    let wall = 1_000_000;
    beforeAll(async () => {
      store = await openStore(dialect.fresh().config);
      await migrate(store);
    });
    afterAll(async () => store?.close());
    beforeEach(async () => {
      await store.db.deleteFrom('messages').execute();
      await store.db.deleteFrom('sandbox_messages').execute();
    });

    const get = (id: string) => store.db.selectFrom('messages').selectAll().where('id', '=', id).executeTakeFirstOrThrow();

    it('a provider outside the database is called on a committed lease, with the message id as idempotency key', async () => {
      const remote = new RemoteProvider(store);
      const outbox = new Outbox(store, clock, () => remote, () => wall);
      const a = queued();
      const b = queued();
      await store.db.insertInto('messages').values([a, b]).execute();
      expect(await outbox.drain()).toBe(2);
      expect(remote.calls).toEqual([
        { id: a.id, idempotencyKey: a.id, statusDuringCall: 'sending' },
        { id: b.id, idempotencyKey: b.id, statusDuringCall: 'sending' },
      ]);
      for (const m of [a, b]) {
        const row = await get(m.id);
        expect(row).toMatchObject({ status: 'sent', provider: 'remote', provider_message_id: `remote_${m.id}`, attempts: 1, lease_until: null });
        expect(Number(row.sent_at)).toBe(clock.now().getTime());
      }
    });

    it('a transient failure is retried after its backoff; a permanent one fails the message with the reason', async () => {
      const remote = new RemoteProvider(store);
      const outbox = new Outbox(store, clock, () => remote, () => wall);
      const flaky = queued();
      const bad = queued();
      await store.db.insertInto('messages').values([flaky, bad]).execute();
      remote.failures.set(flaky.id, new Error('503 from the provider'));
      remote.failures.set(bad.id, new PermanentProviderError('invalid address'));
      await outbox.drain();
      expect(await get(flaky.id)).toMatchObject({ status: 'retrying', attempts: 1, reason: 'provider remote failed (attempt 1): 503 from the provider' });
      expect(await get(bad.id)).toMatchObject({ status: 'failed', reason: 'provider remote failed (attempt 1): invalid address' });

      remote.failures.clear();
      expect(await outbox.drain()).toBe(0); // still backing off
      wall += 60_000;
      expect(await outbox.drain()).toBe(1);
      expect(await get(flaky.id)).toMatchObject({ status: 'sent', attempts: 2, provider_message_id: `remote_${flaky.id}` });
      expect(remote.calls.filter((c) => c.id === flaky.id).map((c) => c.idempotencyKey)).toEqual([flaky.id, flaky.id]);
    });

    it('a lease left by a dead process is claimed again once it expires, with the same idempotency key', async () => {
      const remote = new RemoteProvider(store);
      const outbox = new Outbox(store, clock, () => remote, () => wall);
      const m = queued({ status: 'sending', lease_until: wall + 10_000 });
      await store.db.insertInto('messages').values({ ...m, attempts: 1 }).execute();
      expect(await outbox.drain()).toBe(0);
      wall += 10_001;
      expect(await outbox.drain()).toBe(1);
      expect(remote.calls.map((c) => c.idempotencyKey)).toEqual([m.id]);
      expect(await get(m.id)).toMatchObject({ status: 'sent', attempts: 2 });
    });

    it('the sandbox delivers in the claiming transaction: capture and sent mark together, no lease', async () => {
      const sandbox = new SandboxProvider(store, () => clock.now());
      const outbox = new Outbox(store, clock, () => sandbox, () => wall);
      const rows = Array.from({ length: 7 }, () => queued({ channel: 'sms', to_address: '+15555550100' }));
      // One was leased by a process that died: it goes out once its lease expires, not before.
      rows[6] = { ...rows[6], status: 'sending', lease_until: wall + 5_000 };
      await store.db.insertInto('messages').values(rows).execute();
      expect(await outbox.drain()).toBe(6);
      wall += 5_001;
      expect(await outbox.drain()).toBe(1);
      for (const m of rows) {
        expect(await get(m.id)).toMatchObject({ status: 'sent', provider: 'sandbox', provider_message_id: `sandbox_${m.id}`, attempts: 1, lease_until: null });
      }
      const captured = await store.db.selectFrom('sandbox_messages').selectAll().orderBy('message_id').execute();
      expect(captured.map((c) => c.message_id)).toEqual(rows.map((r) => r.id));
      expect(JSON.parse(captured[0].content)).toEqual({ subject: `hello ${seq - 6}` });
      // Nothing left to do, and a second drain captures nothing twice.
      expect(await outbox.drain()).toBe(0);
      expect(await store.db.selectFrom('sandbox_messages').select('message_id').execute()).toHaveLength(7);
    });

    it('the sandbox adds nothing to the gate\'s write: the message row it stores `sent` is the delivery', async () => {
      const sandbox = new SandboxProvider(store, () => clock.now());
      const rows = [queued(), queued({ channel: 'sms', to_address: '+15555550100' })];
      const writes: Write[] = [];
      const results = await sandbox.deliverInTransaction(store.db, rows.map(outboundMessage), writes);
      expect(results).toEqual(rows.map((r) => ({ providerMessageId: `sandbox_${r.id}` })));
      expect(writes).toEqual([]);
      expect(await store.db.selectFrom('sandbox_messages').select('message_id').execute()).toEqual([]);
      // Without the gate's write (the outbox's claiming transaction), it captures, as a provider call would.
      await sandbox.deliverInTransaction(store.db, rows.map(outboundMessage));
      expect((await store.db.selectFrom('sandbox_messages').select('message_id').orderBy('message_id').execute()).map((c) => c.message_id)).toEqual(rows.map((r) => r.id));
    });
  });
}
