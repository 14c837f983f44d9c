import type { Pool } from "../domain/index.js";
import type { Journal, JournalRecord } from "../store/index.js";
import { type RecordListener, RecordListeners } from "./record-listeners.js";

/**
 * Replica is a standby's copy of the pool: it follows the records the
 * leader appends (polling, and at once when the store announces an append)
 * and applies them to its own Pool, so status, events and metrics can be
 * served from it and a takeover only has to read the last few records.
 */
export interface ReplicaOptions {
  /** Loads pool and journal (read only) from the store's snapshot and records. */
  load: () => Promise<{ pool: Pool; journal: Journal }>;
  /** Real-time poll in ms; 0: only follow() calls (tests). */
  pollMs: number;
  /** Announces appends (PostgreSQL LISTEN); optional. */
  watch?: (listener: () => void) => () => void;
  onError?: (error: unknown) => void;
}

export class Replica {
  private poolNow: Pool;
  private journalNow: Journal;
  private readonly options: ReplicaOptions;
  private readonly listeners: RecordListeners;
  private timer: NodeJS.Timeout | undefined;
  private unwatch: (() => void) | undefined;
  private following: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  private failure: string | undefined;

  private constructor(pool: Pool, journal: Journal, options: ReplicaOptions) {
    this.poolNow = pool;
    this.journalNow = journal;
    this.options = options;
    this.listeners = new RecordListeners((error) => options.onError?.(error));
  }

  static async open(options: ReplicaOptions): Promise<Replica> {
    const { pool, journal } = await options.load();
    return new Replica(pool, journal, options);
  }

  get pool(): Pool {
    return this.poolNow;
  }

  get journal(): Journal {
    return this.journalNow;
  }

  /** healthy: the last read of the store succeeded. */
  get healthy(): boolean {
    return this.failure === undefined;
  }

  get lastError(): string | undefined {
    return this.failure;
  }

  subscribe(listener: RecordListener): () => void {
    return this.listeners.add(listener);
  }

  /** start follows on a timer and on the store's announcements. */
  start(): void {
    this.stopped = false;
    this.unwatch = this.options.watch?.(() => void this.follow());
    this.schedule();
  }

  /** stop ends following; a follow in progress finishes. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.unwatch?.();
    this.unwatch = undefined;
    await this.following;
  }

  /**
   * follow applies every record appended since the last one applied. Calls
   * while one runs make it run once more after, so an announcement is never
   * lost.
   */
  follow(): Promise<void> {
    if (this.following !== undefined) {
      this.again = true;
      return this.following;
    }
    this.following = (async () => {
      do {
        this.again = false;
        await this.followOnce();
      } while (this.again);
    })().finally(() => {
      this.following = undefined;
    });
    return this.following;
  }

  /**
   * catchUp follows until no record is left (a new leader, before it
   * writes). One pass is enough: it reads until the store's newest record,
   * and the lease this instance now holds fences out any later append.
   */
  async catchUp(): Promise<void> {
    await this.following;
    await this.followOnce(true);
  }

  private async followOnce(strict = false): Promise<void> {
    try {
      for (;;) {
        const page = await this.journalNow.follow();
        if (page === "gap") {
          // The records we needed were pruned (we fell behind a snapshot):
          // start again from the snapshot, then announce what it holds
          // beyond what we had.
          const from = this.journalNow.headRecord;
          const { pool, journal } = await this.options.load();
          this.poolNow = pool;
          this.journalNow = journal;
          await this.republish(from);
          continue;
        }
        for (const record of page.records) this.applyAndPublish(record);
        // Each read carries the store's newest record number: with the page
        // reaching it, an empty page would only say so again (it was two of
        // the three statements per forwarded call, with reading the bounds).
        if (!page.more) break;
      }
      this.failure = undefined;
    } catch (error) {
      this.failure = error instanceof Error ? error.message : String(error);
      this.options.onError?.(error);
      if (strict) throw error;
    }
  }

  private applyAndPublish(record: JournalRecord): void {
    for (const event of record.events) if (event.seq > this.poolNow.state.eventSeq) this.poolNow.replay(event);
    this.listeners.publish(record);
  }

  /** republish announces the records after `from` that the state already holds (when they are still kept). */
  async republish(from: number): Promise<void> {
    for (let n = from + 1; n <= this.journalNow.headRecord; n++) {
      const record = await this.journalNow.read(n);
      if (record !== undefined) this.listeners.publish(record);
    }
  }

  private schedule(): void {
    if (this.stopped || this.options.pollMs <= 0) return;
    this.timer = setTimeout(() => {
      void this.follow().finally(() => this.schedule());
    }, this.options.pollMs);
    this.timer.unref();
  }
}
