import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

// SQLite in WAL mode appends every commit to the WAL file and later copies the pages back into the
// database (a checkpoint). By default the commit that crosses the WAL's size limit runs the checkpoint
// itself, and better-sqlite3 is synchronous: the whole server waited ~100 ms, 25 times in a 20,000-customer
// journey run (a tenth of its time). Here a worker thread with its own connection checkpoints in the
// background (PASSIVE: it never blocks the writer or readers). The server's own connection keeps a much
// higher automatic limit as a backstop, should the worker ever fall behind.

const INTERVAL_MS = 200;

// Runs in the worker thread, as CommonJS (eval). The driver's path comes from the main thread, so the
// worker needs no module resolution of its own.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.file, { fileMustExist: true });
db.pragma('busy_timeout = 0');
db.pragma('synchronous = ' + workerData.synchronous);
let timer = null;
function tick() {
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch (err) {
    parentPort.postMessage({ error: String(err && err.message || err) });
  }
  timer = setTimeout(tick, workerData.intervalMs);
}
timer = setTimeout(tick, workerData.intervalMs);
parentPort.on('message', (m) => {
  if (m !== 'stop') return;
  clearTimeout(timer);
  db.close();
  parentPort.close();
});
`;

export interface Checkpointer {
  stop(): Promise<void>;
}

/** `onFailure` runs once if the worker dies: the caller then checkpoints on its own connection again. */
export function startCheckpointer(file: string, synchronous: 'FULL' | 'NORMAL', onFailure: (message: string) => void): Checkpointer {
  const driver = createRequire(import.meta.url).resolve('better-sqlite3');
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { driver, file, synchronous, intervalMs: INTERVAL_MS } });
  worker.unref();
  let stopped: Promise<void> | undefined;
  let failed = false;
  const fail = (message: string) => {
    if (failed || stopped) return;
    failed = true;
    void worker.terminate();
    onFailure(message);
  };
  // A failed checkpoint (an I/O error) or a dead worker hands checkpoints back to the caller's connection.
  worker.on('message', (m: { error?: string }) => {
    if (m.error) fail(m.error);
  });
  worker.on('error', (err) => fail(err.message));
  worker.on('exit', (code) => fail(`the checkpoint worker exited (code ${code})`));
  return {
    stop: () =>
      (stopped ??= new Promise<void>((resolve) => {
        worker.once('exit', () => resolve());
        // Unreferenced, the worker would not keep the process alive until it has closed its connection.
        worker.ref();
        worker.postMessage('stop');
        // The worker ends when its port closes; terminate is the fallback if it is stuck in a checkpoint.
        setTimeout(() => void worker.terminate(), 5_000).unref();
      })),
  };
}
