import type { Clock, Command, Pool, PoolEvent, ResultOf } from "../domain/index.js";
import { FencedError, type Journal, type JournalRecord } from "../store/index.js";
import { type RecordListener, RecordListeners } from "./record-listeners.js";

/**
 * PoolWriter is the one writer: every mutation, from an RPC or a background
 * job, is queued here and decided one at a time, so no two decisions
 * interleave and nothing can over-allocate. Commands that arrive while a
 * journal write is in flight join the next batch (group commit); a caller is
 * answered only after the record holding its events is durable.
 */
export interface PoolWriterOptions {
  clock: Clock;
  /** Loads pool and journal from the store: at start, and to recover after a failed write. */
  load: () => Promise<{ pool: Pool; journal: Journal }>;
  snapshot: { everyRecords: number; everySeconds: number };
  /** Journal records older than this (ms) are pruned once a snapshot covers them. */
  retentionMs: number;
  /** Most commands decided per journal record. Default 512. */
  maxBatch?: number;
  /** Called with a failure the writer recovered from (logging). */
  onError?: (error: unknown) => void;
  /**
   * Proves the store takes writes (a small set of a key of its own) before
   * the writer is trusted: at open and after each reload that follows a
   * failure. A store that reads but refuses writes (a read-only file) then
   * stays unhealthy instead of flapping. Absent: a successful load is enough.
   */
  probe?: () => Promise<void>;
  /**
   * While unhealthy, try to recover on its own every `retryMs` of real time,
   * so health turns SERVING again when the store comes back even if no call
   * arrives. Absent or 0: only the next command tries.
   */
  retryMs?: number;
  /**
   * False once this instance can no longer be sure it holds the store's
   * lease (its renewal is overdue): the writer then refuses to append, as
   * the store would. Absent: always true.
   */
  mayWrite?: () => boolean;
  /** Told when the store refused a write because another instance took the lease. */
  onFenced?: (error: FencedError) => void;
}

const PRUNE_CHUNK = 256;

/** WriterUnavailableError: the store refused a write; the command had no effect. */
export class WriterUnavailableError extends Error {
  override name = "WriterUnavailableError";
}

export type { RecordListener } from "./record-listeners.js";

interface Pending {
  command: Command;
  resolve: (result: unknown) => void;
  reject: (error: unknown) => void;
}

export class PoolWriter {
  private pool: Pool;
  private journal: Journal;
  private readonly options: PoolWriterOptions;
  private readonly queue: Pending[] = [];
  private draining: Promise<void> | undefined;
  private broken = false;
  private closed = false;
  private lastSnapshotAt: number;
  private readonly listeners: RecordListeners;
  private pruneDue = false;
  private durable: number;
  private retryTimer: NodeJS.Timeout | undefined;
  /** The snapshot being written, if any: it runs beside the writer, never in its way. */
  private snapshotting: Promise<void> | undefined;

  private constructor(pool: Pool, journal: Journal, options: PoolWriterOptions) {
    this.pool = pool;
    this.journal = journal;
    this.options = options;
    this.listeners = new RecordListeners((error) => options.onError?.(error));
    this.lastSnapshotAt = options.clock.now();
    this.durable = pool.state.eventSeq;
  }

  /**
   * open loads the state and returns a writer over it. A store that loads but
   * fails the probe gives a writer that starts unhealthy (every command is
   * refused with WriterUnavailableError) and recovers once the store does.
   */
  static async open(options: PoolWriterOptions): Promise<PoolWriter> {
    const { pool, journal } = await options.load();
    const writer = new PoolWriter(pool, journal, options);
    // A state read from a pre-lease store goes into the journal's snapshot
    // before any record follows it.
    if (journal.needsSnapshot) await journal.snapshot(pool.state);
    if (options.probe !== undefined) {
      try {
        await options.probe();
      } catch (error) {
        options.onError?.(error);
        writer.markBroken();
      }
    }
    return writer;
  }

  /** submit queues a command and resolves with its result once its events are durable. */
  submit<C extends Command>(command: C): Promise<ResultOf<C>> {
    if (this.closed) return Promise.reject(new WriterUnavailableError("the pool is shutting down"));
    return new Promise<ResultOf<C>>((resolve, reject) => {
      this.queue.push({ command, resolve: resolve as (r: unknown) => void, reject });
      this.draining ??= this.startDrain();
    });
  }

  /**
   * startDrain runs drain and clears `draining` once it ends. A command
   * submitted after drain's last look at the queue but before this clean-up
   * ran saw `draining` still set and started nothing: drain again for it.
   */
  private startDrain(): Promise<void> {
    return this.drain().finally(() => {
      this.draining = this.queue.length > 0 ? this.startDrain() : undefined;
    });
  }

  /** subscribe registers a listener for durable records; returns the unsubscribe function. */
  subscribe(listener: RecordListener): () => void {
    return this.listeners.add(listener);
  }

  /**
   * healthy is false after the store refused a write until a reload from it
   * succeeds (the next command, or the sweep, tries), and once closing.
   */
  get healthy(): boolean {
    return !this.broken && !this.closed;
  }

  /** durableSeq is the sequence of the last event known to be durable. */
  get durableSeq(): number {
    return this.durable;
  }

  /** currentPool is the domain object; read it only between batches (from a listener or a command). */
  get currentPool(): Pool {
    return this.pool;
  }

  get currentJournal(): Journal {
    return this.journal;
  }

  /** close stops taking commands, finishes the queued ones and writes a final snapshot. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    while (this.draining !== undefined) await this.draining;
    await this.snapshotting;
    if (!this.broken && this.journal.recordsSinceSnapshot > 0) {
      try {
        await this.journal.snapshot(this.pool.state);
      } catch (error) {
        // The journal holds every record: a missed snapshot costs the next
        // start-up some replay, and must not keep the rest of shutdown from running.
        this.options.onError?.(error);
      }
    }
  }

  /**
   * abandon stops at once: commands not yet decided are refused with
   * WriterUnavailableError, the batch in flight finishes (its append fails
   * if the lease is gone), and no final snapshot is written. For a writer
   * whose lease moved to another instance.
   */
  async abandon(reason: string): Promise<void> {
    this.closed = true;
    this.broken = true;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    const failure = new WriterUnavailableError(reason);
    for (const p of this.queue.splice(0)) p.reject(failure);
    while (this.draining !== undefined) await this.draining;
    await this.snapshotting;
  }

  private async drain(): Promise<void> {
    const maxBatch = this.options.maxBatch ?? 512;
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, maxBatch);
      if (this.broken && !(await this.recover(batch))) continue;
      const now = this.options.clock.now();
      const results: unknown[] = [];
      const events: PoolEvent[] = [];
      try {
        for (const p of batch) {
          const out = this.pool.run(p.command, now);
          results.push(out.result);
          for (const e of out.events) events.push(e);
        }
      } catch (error) {
        // A bug in a decision may have applied part of its events: the state
        // can no longer be trusted. Refuse the batch (nothing of it was
        // written) and reload before the next one, as after a failed write.
        this.markBroken();
        this.options.onError?.(error);
        for (const p of batch) p.reject(error);
        continue;
      }
      let record: JournalRecord | undefined;
      if (events.length > 0) {
        try {
          if (this.options.mayWrite?.() === false) {
            throw new FencedError("this instance's lease on the store ran out before the write", "epoch");
          }
          record = await this.journal.append(events);
        } catch (error) {
          // The state in memory now holds events that are not durable: throw
          // it away and reload from the store before deciding anything else.
          this.markBroken();
          const failure =
            error instanceof FencedError
              ? new WriterUnavailableError(
                  `this instance no longer writes the pool store (${error.message}); retry: another instance holds the lease`,
                )
              : new WriterUnavailableError(`the pool store refused the write: ${(error as Error).message}`);
          for (const p of batch) p.reject(failure);
          if (error instanceof FencedError) this.options.onFenced?.(error);
          else this.options.onError?.(error);
          continue;
        }
      }
      if (record !== undefined) {
        this.durable = events[events.length - 1]!.seq;
        this.listeners.publish(record);
      }
      batch.forEach((p, i) => {
        p.resolve(results[i]);
      });
      this.maybeSnapshot(now);
      await this.pruneSome(now);
    }
  }

  private async recover(batch: Pending[]): Promise<boolean> {
    try {
      const { pool, journal } = await this.options.load();
      // Adopted before the probe: a reload is always at least as right as
      // the state it replaces, which may hold events that never became durable.
      this.pool = pool;
      this.journal = journal;
      this.durable = pool.state.eventSeq;
      await this.options.probe?.();
      this.broken = false;
      return true;
    } catch (error) {
      this.options.onError?.(error);
      const failure = new WriterUnavailableError(`the pool store is unavailable: ${(error as Error).message}`);
      for (const p of batch) p.reject(failure);
      this.markBroken();
      return false;
    }
  }

  /** markBroken distrusts the state until a reload (and probe) succeeds, and schedules a retry. */
  private markBroken(): void {
    this.broken = true;
    const retryMs = this.options.retryMs ?? 0;
    if (retryMs <= 0 || this.closed || this.retryTimer !== undefined) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (!this.broken || this.closed) return;
      // Any command reloads first; a status decision writes nothing. A
      // failure re-arms the timer through recover().
      this.submit({ kind: "status", includeSessions: false }).catch(() => undefined);
    }, retryMs);
    // Never the reason the process stays up.
    this.retryTimer.unref();
  }

  /**
   * pruneSome deletes a few expired journal records after a batch, until the
   * backlog a snapshot exposed is gone: a little per batch keeps up with any
   * write rate without stalling one batch for a long delete.
   */
  private async pruneSome(now: number): Promise<void> {
    // Only what the last completed snapshot covers goes; one in flight does not matter.
    if (!this.pruneDue) return;
    try {
      const deleted = await this.journal.prune(now - this.options.retentionMs, PRUNE_CHUNK);
      if (deleted < PRUNE_CHUNK) this.pruneDue = false;
    } catch (error) {
      this.pruneDue = false;
      this.options.onError?.(error);
    }
  }

  /**
   * maybeSnapshot encodes the state when a snapshot is due (between two
   * batches, so the bytes are those of one record) and lets the write run
   * while the writer goes on; one snapshot at a time.
   */
  private maybeSnapshot(now: number): void {
    if (this.snapshotting !== undefined) return;
    const { everyRecords, everySeconds } = this.options.snapshot;
    const due =
      this.journal.recordsSinceSnapshot >= everyRecords ||
      (this.journal.recordsSinceSnapshot > 0 && now - this.lastSnapshotAt >= everySeconds * 1000);
    if (!due) return;
    this.lastSnapshotAt = now;
    let write: Promise<void>;
    try {
      write = this.journal.snapshot(this.pool.state);
    } catch (error) {
      this.options.onError?.(error);
      return;
    }
    this.snapshotting = write
      .then(() => {
        this.pruneDue = true;
      })
      .catch((error: unknown) => {
        // A missed snapshot costs start-up time, not data: the journal holds it all.
        if (error instanceof FencedError) this.options.onFenced?.(error);
        else this.options.onError?.(error);
      })
      .finally(() => {
        this.snapshotting = undefined;
      });
  }

  /** settled resolves once no snapshot write is in flight (tests, shutdown). */
  async settled(): Promise<void> {
    await this.snapshotting;
  }
}
