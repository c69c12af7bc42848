import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { openStore, type Store } from '../src/store/db.js';
import { DIALECTS } from './support/dialects.js';
import { advance, email, identify, messagesOf, ok, publishJourney, runsOf, settledMessages, track, VIRTUAL_ENV } from './support/journeys.js';
import { admin, startTestServer, type TestServer } from './support/server.js';

// Erasing a customer (DELETE /v1/profiles/{ref}) takes what journeys and the gate hold on them too: runs,
// their steps and timers, and every message with its address and rendered content. The export shows them.

const JOURNEY = {
  key: 'erasure',
  name: 'Erasure',
  trigger: { event: 'Signed Up' },
  steps: {
    hello: email('Hello {{ profile.traits.first_name }}'),
    later: { wait: { duration: 'P1D' } },
    again: email('Still there?'),
  },
};

for (const d of DIALECTS) {
  describe.skipIf(!d.available)(`erasure of journey data (${d.name})`, () => {
    let s: TestServer;
    let store: Store;

    beforeAll(async () => {
      s = await startTestServer(d, VIRTUAL_ENV);
      expect(await publishJourney(s.url, JOURNEY)).toBe(1);
      store = await openStore(loadConfig(s.env).database);
    });
    afterAll(async () => {
      await store?.close();
      await s?.close();
    });

    /** Rows of the customer's journey data still in the database. */
    async function leftovers(profileId: string, messageIds: string[]): Promise<Record<string, number>> {
      const n = async (q: { executeTakeFirstOrThrow(): Promise<{ n: unknown }> }) => Number((await q.executeTakeFirstOrThrow()).n);
      const count = sql<number>`count(*)`.as('n');
      return {
        runs: await n(store.db.selectFrom('runs').select(count).where('profile_id', '=', profileId)),
        waits: await n(store.db.selectFrom('waits').select(count).where('profile_id', '=', profileId)),
        steps: await n(store.db.selectFrom('run_history').innerJoin('runs', 'runs.id', 'run_history.run_id').select(count).where('runs.profile_id', '=', profileId)),
        messages: await n(store.db.selectFrom('messages').select(count).where('profile_id', '=', profileId)),
        sandbox: messageIds.length === 0 ? 0 : await n(store.db.selectFrom('sandbox_messages').select(count).where('message_id', 'in', messageIds)),
      };
    }

    it('exports runs and messages, then erases them with the profile; its timers never fire', async () => {
      const ref = `user_id:erase-${d.name}`;
      await identify(s.url, { userId: `erase-${d.name}` }, { email: `erase-${d.name}@example.com`, first_name: 'Eve' });
      await track(s.url, { userId: `erase-${d.name}` }, 'Signed Up');
      const [hello] = await messagesOf(s.url, ref);
      expect(hello).toMatchObject({ step: 'hello', status: 'sent', to: `erase-${d.name}@example.com` });
      // A message sent through the API, outside any journey, is the customer's too.
      const receipt = await admin(s.url, 'POST', '/v1/messages', { to: ref, channel: 'email', category: 'transactional', content: { email: { subject: 'Receipt', text: 'Thanks' } } });
      expect(receipt.status).toBe(201);
      // Delivered by the outbox, so the sandbox captured it (the journey's message, delivered in the gate's
      // own write, has only its row): erased after it was sent, that capture goes too.
      const messages = await settledMessages(s.url, ref, 2);
      expect(messages.map((m) => m.status)).toEqual(['sent', 'sent']);

      const exported = await ok(admin(s.url, 'GET', `/v1/profiles/${ref}/export`));
      expect(exported.runs).toHaveLength(1);
      expect(exported.runs[0]).toMatchObject({ journey: { key: 'erasure', version: 1 }, status: 'waiting' });
      expect(exported.messages.map((m: { id: string }) => m.id).sort()).toEqual(messages.map((m) => m.id).sort());
      expect(exported.messages.find((m: { id: string }) => m.id === hello.id).content.subject).toBe('Hello Eve');

      const profileId = exported.profile.id as string;
      const ids = messages.map((m) => m.id);
      expect(await leftovers(profileId, ids)).toMatchObject({ runs: 1, waits: 1, messages: 2, sandbox: 1 });
      const erased = await ok(admin(s.url, 'DELETE', `/v1/profiles/${ref}`));
      expect(erased).toMatchObject({ deleted: true, runs: 1, messages: 2 });
      expect(await leftovers(profileId, ids)).toEqual({ runs: 0, waits: 0, steps: 0, messages: 0, sandbox: 0 });
      for (const id of ids) expect((await admin(s.url, 'GET', `/v1/messages/${id}`)).status).toBe(404);

      // The run's timer went with it: a day later nothing is sent, and a returning customer starts afresh.
      await advance(s.url, 'P2D');
      expect(await leftovers(profileId, ids)).toEqual({ runs: 0, waits: 0, steps: 0, messages: 0, sandbox: 0 });
      await identify(s.url, { userId: `erase-${d.name}` }, { email: `erase-${d.name}@example.com` });
      expect(await runsOf(s.url, ref)).toEqual([]);
      expect(await messagesOf(s.url, ref)).toEqual([]);
    });
  });
}
