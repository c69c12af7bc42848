import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KyselyPlugin } from 'kysely';
import { KeyRing } from '../src/api/auth.js';
import type { Store } from '../src/store/db.js';
import { sqlite } from './support/dialects.js';
import { SECRET_KEY, startTestServer, WRITE_KEY, type TestServer } from './support/server.js';

// The key cache (src/api/auth.ts): concurrent requests with a key that isn't cached share one lookup, so a
// burst that arrives as the entry expires doesn't queue one database read per request.

describe('KeyRing', () => {
  let s: TestServer;
  let queries = 0;
  let store: Store;

  beforeAll(async () => {
    s = await startTestServer(sqlite);
    const counting: KyselyPlugin = {
      transformQuery: (args) => {
        queries++;
        return args.node;
      },
      transformResult: async (args) => args.result,
    };
    store = { ...s.server.store, db: s.server.store.db.withPlugin(counting) };
  });
  afterAll(async () => s?.close());

  it('concurrent lookups of one key make one query, then the cache answers', async () => {
    const keys = new KeyRing(store);
    queries = 0;
    const first = await Promise.all(Array.from({ length: 50 }, () => keys.workspaceFor('secret', SECRET_KEY)));
    expect(new Set(first).size).toBe(1);
    expect(first[0]).toMatch(/\S/);
    expect(queries).toBe(1);
    const again = await Promise.all(Array.from({ length: 20 }, () => keys.workspaceFor('secret', SECRET_KEY)));
    expect(again).toEqual(Array(20).fill(first[0]));
    expect(queries).toBe(1);
  });

  it('unknown and wrong-kind keys are refused, each burst with one query, and never cached', async () => {
    const keys = new KeyRing(store);
    queries = 0;
    const unknown = await Promise.all(Array.from({ length: 10 }, () => keys.workspaceFor('secret', 'sk_not_a_key_of_anyone_0000')));
    expect(unknown).toEqual(Array(10).fill(null));
    expect(queries).toBe(1);
    // The write key is a real key, but not a secret key.
    expect(await keys.workspaceFor('secret', WRITE_KEY)).toBeNull();
    expect(await keys.workspaceFor('secret', 'sk_not_a_key_of_anyone_0000')).toBeNull();
    expect(queries).toBe(3);
  });
});
