import type { PoolEvent } from "../domain/index.js";
import type { JournalRecord } from "../store/index.js";
import type { PoolHandle } from "./pool-handle.js";

/**
 * EventFeed serves durable events to readers that start anywhere in the
 * retained history and then follow live: the event stream and the webhook
 * dispatcher. History comes from the journal (recent records from memory),
 * live events from the writer, and the hand-over between them is by
 * sequence number, so a reader sees no gap and no duplicate.
 */
export class EventFeed {
  private readonly writer: PoolHandle;
  /** Recent records, oldest first, so reconnects within minutes need no store reads. */
  private readonly recent: JournalRecord[] = [];
  private readonly recentLimit: number;
  private readonly unsubscribe: () => void;

  constructor(writer: PoolHandle, options: { recentRecords?: number } = {}) {
    this.writer = writer;
    this.recentLimit = options.recentRecords ?? 4096;
    this.unsubscribe = writer.subscribe((record) => {
      this.recent.push(record);
      if (this.recent.length > this.recentLimit) this.recent.splice(0, this.recent.length - this.recentLimit);
    });
  }

  close(): void {
    this.unsubscribe();
  }

  /** headSeq is the sequence of the last durable event. */
  get headSeq(): number {
    return this.writer.durableSeq;
  }

  /** oldestSeq is the sequence of the oldest event still retained (head + 1 when none is). */
  async oldestSeq(): Promise<number> {
    const journal = this.writer.currentJournal;
    for (let n = journal.oldestRecord; n <= journal.headRecord; n++) {
      const rec = await this.record(n);
      const first = rec?.events[0];
      if (first !== undefined) return first.seq;
    }
    return this.headSeq + 1;
  }

  /**
   * follow registers a live reader now: it buffers every durable event after
   * the current head, up to `limit` events; past that it is marked overflowed
   * and stops buffering (a slow reader must never hold the pool back).
   */
  follow(limit: number): LiveReader {
    return new LiveReader(this.writer, this.headSeq, limit);
  }

  /** history yields retained events with after < seq <= until, in order. */
  async *history(after: number, until: number): AsyncGenerator<PoolEvent> {
    if (after >= until) return;
    let n = await this.recordAfter(after);
    const head = this.writer.currentJournal.headRecord;
    for (; n !== undefined && n <= head; n++) {
      const rec = await this.record(n);
      if (rec === undefined) continue;
      for (const e of rec.events) {
        if (e.seq > until) return;
        if (e.seq > after) yield e;
      }
    }
  }

  /** recordAfter finds the first record holding an event after seq (binary search over record numbers). */
  private async recordAfter(seq: number): Promise<number | undefined> {
    const journal = this.writer.currentJournal;
    let lo = journal.oldestRecord;
    let hi = journal.headRecord;
    let found: number | undefined;
    while (lo <= hi) {
      const mid = Math.floor((lo + hi) / 2);
      const rec = await this.record(mid);
      const last = rec?.events[rec.events.length - 1];
      if (last === undefined || last.seq > seq) {
        // A missing record (pruned concurrently) is treated as "later": the
        // search then settles on the oldest one that is still there.
        found = mid;
        hi = mid - 1;
      } else {
        lo = mid + 1;
      }
    }
    return found;
  }

  private async record(n: number): Promise<JournalRecord | undefined> {
    const first = this.recent[0];
    if (first !== undefined && n >= first.n) {
      const rec = this.recent[n - first.n];
      if (rec !== undefined && rec.n === n) return rec;
    }
    return this.writer.currentJournal.read(n);
  }
}

/** LiveReader is one reader's bounded buffer of live events. */
export class LiveReader {
  /** Events up to this sequence are not delivered live: read them from history. */
  readonly startSeq: number;
  private readonly buffer: PoolEvent[] = [];
  private readonly limit: number;
  private overflowed = false;
  private wake: (() => void) | undefined;
  private readonly unsubscribe: () => void;

  constructor(writer: PoolHandle, startSeq: number, limit: number) {
    this.startSeq = startSeq;
    this.limit = limit;
    this.unsubscribe = writer.subscribe((record) => {
      if (this.overflowed) return;
      for (const e of record.events) {
        if (e.seq <= this.startSeq) continue;
        if (this.buffer.length >= this.limit) {
          this.overflowed = true;
          break;
        }
        this.buffer.push(e);
      }
      this.wake?.();
    });
  }

  /** overflow is true once the reader fell more than `limit` events behind. */
  get overflow(): boolean {
    return this.overflowed;
  }

  /**
   * next waits for buffered events (or overflow, or abort) and takes them
   * all. Resolves with [] when aborted.
   */
  async next(signal: AbortSignal): Promise<PoolEvent[]> {
    while (this.buffer.length === 0 && !this.overflowed && !signal.aborted) {
      // One abort listener per wait, removed when events wake it instead:
      // a long-lived stream must not pile them up on its signal.
      let onAbort: (() => void) | undefined;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        onAbort = () => resolve();
        signal.addEventListener("abort", onAbort, { once: true });
      });
      signal.removeEventListener("abort", onAbort!);
      this.wake = undefined;
    }
    return this.buffer.splice(0, this.buffer.length);
  }

  close(): void {
    this.unsubscribe();
    this.wake?.();
  }
}
