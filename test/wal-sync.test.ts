import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { WalSync } from '../src/store/wal-sync.js';
import { sqlite } from './support/dialects.js';
import { startTestServer, WRITE_KEY } from './support/server.js';

// Group commit on SQLite: commits don't wait for the disk; an answer waits for one WAL fsync shared by
// every caller that arrived while the previous one ran.

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

function walDatabase(): { db: SQLite.Database; wal: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chorus-walsync-'));
  dirs.push(dir);
  const file = path.join(dir, 'chorus.db');
  const db = new SQLite(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec('create table t (id integer primary key, v text)');
  return { db, wal: `${file}-wal` };
}

describe('WAL group commit', () => {
  it('callers that arrive while an fsync runs share the next one', async () => {
    const { db, wal } = walDatabase();
    const sync = new WalSync(wal);
    db.prepare('insert into t (v) values (?)').run('a');
    const first = sync.durable();
    // These arrive while the first runs: it may have started before their commits, so they need another.
    db.prepare('insert into t (v) values (?)').run('b');
    const later = Array.from({ length: 10 }, () => sync.durable());
    await first;
    expect(sync.syncs).toBeGreaterThanOrEqual(1);
    await Promise.all(later);
    expect(sync.syncs).toBe(2);
    // Alone again: a caller starts its own.
    await sync.durable();
    expect(sync.syncs).toBe(3);
    await sync.close();
    db.close();
  });

  it('a caller never resolves on an fsync that started before it', async () => {
    const { db, wal } = walDatabase();
    const sync = new WalSync(wal);
    const seen: number[] = [];
    const calls: Promise<void>[] = [];
    for (let i = 0; i < 20; i++) {
      db.prepare('insert into t (v) values (?)').run(String(i));
      const before = sync.syncs;
      calls.push(sync.durable().then(() => void seen.push(sync.syncs - before)));
      if (i % 3 === 0) await new Promise((r) => setImmediate(r));
    }
    await Promise.all(calls);
    // Each resolved after at least one fsync that began after its call.
    expect(seen.every((n) => n >= 1)).toBe(true);
    expect(sync.syncs).toBeLessThan(20);
    await sync.close();
    db.close();
  });

  it('no WAL file yet, or closed: nothing to sync', async () => {
    const sync = new WalSync(path.join(os.tmpdir(), `chorus-walsync-missing-${process.pid}.db-wal`));
    await sync.durable();
    expect(sync.syncs).toBe(0);
    await sync.close();
    await sync.durable();
    expect(sync.syncs).toBe(0);
  });

  it('with CHORUS_SQLITE_SYNCHRONOUS=FULL the server answers a write only after the WAL is durable; reads do not wait', async () => {
    const server = await startTestServer(sqlite, { CHORUS_SQLITE_SYNCHRONOUS: 'FULL' });
    try {
      const store = server.server.store;
      const durable = store.durable.bind(store);
      let waited = 0;
      store.durable = async () => {
        await durable();
        waited++;
      };
      const res = await fetch(`${server.url}/v1/batch`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Basic ${Buffer.from(`${WRITE_KEY}:`).toString('base64')}` },
        body: JSON.stringify({ batch: [{ type: 'track', event: 'Signed Up', userId: 'u1', messageId: 'm1' }] }),
      });
      expect(res.status).toBe(200);
      expect(waited).toBe(1);
      await (await fetch(`${server.url}/healthz`)).arrayBuffer();
      expect(waited).toBe(1);
    } finally {
      await server.close();
    }
  });
});
