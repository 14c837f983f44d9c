import type { PoolEvent, PoolState } from "../domain/index.js";
import { applyEvent, createPoolState } from "../domain/index.js";
import type { KvStore } from "./kv-store.js";
import { decodeState, encodeState, rebuildIndexes } from "./state-codec.js";

/**
 * Journal is the pool's source of truth in a KvStore: one record per
 * accepted batch of events under `journal:<zero-padded record number>`,
 * each written by a single set (atomic on every Keyv store), plus a snapshot
 * of the whole state that bounds start-up time. Records are numbered without
 * gaps because only the one writer appends, and only after the previous
 * append resolved; start-up therefore reads forward from the snapshot until
 * the first missing number, with no listing of keys (which Keyv stores do
 * not all support well).
 */
export interface JournalRecord {
  n: number;
  events: PoolEvent[];
}

interface Snapshot {
  record: number;
  state: string;
}

const SNAPSHOT_KEY = "snapshot";
const FIRST_KEY = "meta:first";

/** recordKey names record n; zero-padded so keys sort in record order. */
export function recordKey(n: number): string {
  return `journal:${String(n).padStart(12, "0")}`;
}

export class Journal {
  private readonly store: KvStore;
  /** Number of the last record written. */
  private head: number;
  /** Number of the oldest record kept. */
  private first: number;
  private snapshotRecord: number;

  private constructor(store: KvStore, head: number, first: number, snapshotRecord: number) {
    this.store = store;
    this.head = head;
    this.first = first;
    this.snapshotRecord = snapshotRecord;
  }

  /**
   * open loads the latest snapshot and replays the records after it. The
   * state it returns holds every event ever acknowledged.
   */
  static async open(
    store: KvStore,
    subscriptionIds: readonly string[],
  ): Promise<{ journal: Journal; state: PoolState; replayed: number }> {
    const snapText = await store.get(SNAPSHOT_KEY);
    let state: PoolState;
    let record = 0;
    if (snapText === undefined) {
      state = createPoolState(subscriptionIds);
    } else {
      const snap = JSON.parse(snapText) as Snapshot;
      state = decodeState(snap.state, subscriptionIds);
      record = snap.record;
    }
    const snapshotRecord = record;
    let replayed = 0;
    for (;;) {
      const text = await store.get(recordKey(record + 1));
      if (text === undefined) break;
      const rec = JSON.parse(text) as JournalRecord;
      for (const event of rec.events) {
        // A record is all or nothing; the guard only protects against a
        // snapshot taken mid-record by an older writer.
        if (event.seq > state.eventSeq) applyEvent(state, event);
      }
      record = rec.n;
      replayed++;
    }
    rebuildIndexes(state, subscriptionIds);
    const firstText = await store.get(FIRST_KEY);
    const first = firstText === undefined ? 1 : Number(firstText);
    return { journal: new Journal(store, record, first, snapshotRecord), state, replayed };
  }

  /** headRecord is the number of the last record written. */
  get headRecord(): number {
    return this.head;
  }

  /** recordsSinceSnapshot counts records a restart would replay. */
  get recordsSinceSnapshot(): number {
    return this.head - this.snapshotRecord;
  }

  /** append writes one record; it resolves once the record is durable. */
  async append(events: PoolEvent[]): Promise<JournalRecord> {
    const rec: JournalRecord = { n: this.head + 1, events };
    await this.store.set(recordKey(rec.n), JSON.stringify(rec));
    this.head = rec.n;
    return rec;
  }

  /** snapshot writes the state as of the last record. */
  async snapshot(state: PoolState): Promise<void> {
    const snap: Snapshot = { record: this.head, state: encodeState(state) };
    await this.store.set(SNAPSHOT_KEY, JSON.stringify(snap));
    this.snapshotRecord = snap.record;
  }

  /** read returns record n, or undefined if it was pruned or not written yet. */
  async read(n: number): Promise<JournalRecord | undefined> {
    if (n < this.first || n > this.head) return undefined;
    const text = await this.store.get(recordKey(n));
    return text === undefined ? undefined : (JSON.parse(text) as JournalRecord);
  }

  /** oldestRecord is the number of the oldest record kept. */
  get oldestRecord(): number {
    return this.first;
  }

  /**
   * prune deletes records older than `before` (epoch ms) that the snapshot
   * already covers, at most `max` of them per call so a long backlog does
   * not stall the writer. Returns how many were deleted.
   */
  async prune(before: number, max: number): Promise<number> {
    let deleted = 0;
    while (deleted < max && this.first <= this.snapshotRecord) {
      const rec = await this.read(this.first);
      const last = rec?.events[rec.events.length - 1];
      if (rec !== undefined && last !== undefined && last.at >= before) break;
      await this.store.delete(recordKey(this.first));
      this.first++;
      deleted++;
    }
    if (deleted > 0) await this.store.set(FIRST_KEY, String(this.first));
    return deleted;
  }
}
