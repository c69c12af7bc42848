import fs from 'node:fs';

// Group commit for SQLite. The connection runs with `synchronous = NORMAL`: a commit appends its frames to
// the WAL without waiting for the disk, which survives a crash of the process but not of the machine. What
// Chorus acknowledges must survive both, so before an answer goes out (and before a provider outside the
// database is called) `durable()` fsyncs the WAL file. The fsync runs on libuv's thread pool, not on the
// event loop, and every caller that arrives while one is running shares the next one: with four requests
// in flight, one fsync covers several commits instead of one each.
//
// Why this is enough: every committed frame is in the WAL file or, once checkpointed, in the database
// file, which SQLite's checkpoint fsyncs (it also fsyncs the WAL before copying it). Any fd of a file
// reaches the same inode, so syncing ours covers frames the connection wrote through its own.

export class WalSync {
  private fd: number | null = null;
  private running: Promise<void> | null = null;
  private next: Promise<void> | null = null;
  private closed = false;
  /** fsyncs done so far. */
  syncs = 0;

  constructor(private readonly walFile: string) {}

  /** Resolves once every transaction committed before the call is on disk. */
  durable(): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (!this.running) return this.start();
    // The running fsync may have begun before the caller's commit: wait for one that begins after it.
    this.next ??= this.running.then(
      () => this.take(),
      () => this.take(),
    );
    return this.next;
  }

  /** Waits for the fsyncs under way, then closes the file. */
  async close(): Promise<void> {
    this.closed = true;
    await this.next?.catch(() => undefined);
    await this.running?.catch(() => undefined);
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
  }

  private take(): Promise<void> {
    this.next = null;
    return this.start();
  }

  private start(): Promise<void> {
    const run = this.sync().finally(() => {
      if (this.running === run) this.running = null;
    });
    this.running = run;
    return run;
  }

  private async sync(): Promise<void> {
    if (this.fd === null) {
      try {
        this.fd = fs.openSync(this.walFile, 'r');
      } catch (err) {
        // No WAL file: nothing was written since the database was opened (or it was closed cleanly).
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw err;
      }
    }
    const fd = this.fd;
    await new Promise<void>((resolve, reject) => fs.fdatasync(fd, (err) => (err ? reject(err) : resolve())));
    this.syncs++;
  }
}
