import type { PoolEvent, PoolState } from "../domain/index.js";
import { applyEvent, createPoolState, ensureSubscriptions } from "../domain/index.js";
import type { JournalStore, StoredSnapshot } from "./journal-store.js";
import { recordKey } from "./kv-journal-store.js";
import type { KvStore } from "./kv-store.js";
import { decodeLegacyState, decodeState, encodeState } from "./state-codec.js";

/**
 * Journal is the pool's source of truth in a JournalStore: one record per
 * accepted batch of events, numbered without gaps, plus a snapshot of the
 * whole state that bounds start-up time. Every write carries the writer's
 * lease epoch and the store refuses it once another instance took the lease
 * (or appended the same record number), so a writer that was paused past its
 * lease cannot overwrite its successor. A journal opened with epoch 0 is a
 * reader: a standby's replica, which follows the records others append.
 */
export interface JournalRecord {
  n: number;
  events: PoolEvent[];
}

/** Records read per round trip at start-up and while following. */
const PAGE = 1_000;

export interface OpenedJournal {
  journal: Journal;
  state: PoolState;
  replayed: number;
}

export class Journal {
  private readonly log: JournalStore;
  private writeEpoch: number;
  /** Number of the last record applied to the state this journal was opened with. */
  private head: number;
  /** Number of the oldest record kept (as last seen). */
  private first: number;
  private snapshotRecord: number;
  /** Set when the state came from a pre-lease store: it must be snapshotted before anything is appended. */
  private legacy: boolean;

  private constructor(
    log: JournalStore,
    epoch: number,
    head: number,
    first: number,
    snapshotRecord: number,
    legacy: boolean,
  ) {
    this.log = log;
    this.writeEpoch = epoch;
    this.head = head;
    this.first = first;
    this.snapshotRecord = snapshotRecord;
    this.legacy = legacy;
  }

  /**
   * open loads the latest snapshot and replays the records after it; the
   * state it returns holds every record in the store. `epoch` is the lease
   * epoch the journal writes under (0: read only). `legacyKv` is read only
   * when the journal surface is empty: a store written before leases kept
   * its snapshot and records as plain values there. It throws when records
   * after the latest snapshot are missing, rather than open a state that
   * lacks them.
   */
  static async open(
    log: JournalStore,
    subscriptionIds: readonly string[],
    options: { epoch?: number; legacyKv?: KvStore } = {},
  ): Promise<OpenedJournal> {
    let snap = await log.readSnapshot();
    for (;;) {
      const { state, record, legacy } = await startFrom(log, snap, subscriptionIds, options.legacyKv);
      const end = await replay(log, state, record);
      if (end.next === undefined) {
        // The indexes were built with the state (decodeState, createPoolState)
        // and replay keeps them, as it does for the writer and a replica;
        // building them again cost about 0.1 s at 100,000 sessions (bench/scale).
        ensureSubscriptions(state, subscriptionIds);
        const first = end.last === 0 ? end.record + 1 : end.first;
        const journal = new Journal(log, options.epoch ?? 0, end.record, first, legacy ? -1 : record, legacy);
        return { journal, state, replayed: end.replayed };
      }
      // The next record is gone and later ones are kept. A writer prunes only
      // what its snapshot covers, so a newer snapshot than ours covers it: the
      // leader wrote one and pruned between our reads (a standby starting).
      // Else the store lost records, and writing on would leave the hole in
      // the journal for good.
      const newer = await log.readSnapshot();
      if (newer === undefined || newer.record <= end.record) {
        throw new Error(
          `${log.description}: journal records ${end.record + 1}..${end.next - 1} are missing ` +
            `(the snapshot is of record ${newer?.record ?? 0}, the journal goes on at record ${end.next})`,
        );
      }
      snap = newer;
    }
  }

  /** epoch is the lease epoch this journal writes under (0: read only). */
  get epoch(): number {
    return this.writeEpoch;
  }

  /**
   * writeAs makes the journal write under a new lease epoch: a standby that
   * took the lease keeps its replica and journal and starts writing.
   */
  writeAs(epoch: number): void {
    this.writeEpoch = epoch;
  }

  /** headRecord is the number of the last record written or followed. */
  get headRecord(): number {
    return this.head;
  }

  /** recordsSinceSnapshot counts records a restart would replay. */
  get recordsSinceSnapshot(): number {
    return this.head - this.snapshotRecord;
  }

  /** needsSnapshot: the state was migrated from a pre-lease store and is in no snapshot of the journal surface yet. */
  get needsSnapshot(): boolean {
    return this.legacy;
  }

  /** append writes one record; it resolves once the record is durable, and rejects with FencedError once this writer is deposed. */
  async append(events: PoolEvent[]): Promise<JournalRecord> {
    if (this.legacy) throw new Error("a migrated journal must be snapshotted before it is appended to");
    const rec: JournalRecord = { n: this.head + 1, events };
    const at = events[events.length - 1]?.at ?? 0;
    await this.log.append(this.writeEpoch, rec.n, at, JSON.stringify(rec));
    this.head = rec.n;
    return rec;
  }

  /**
   * snapshot encodes the state as of the last record now (the caller holds
   * the state still while it does) and returns the write, which the caller
   * may let run while it goes on deciding: the bytes no longer depend on
   * the state.
   */
  snapshot(state: PoolState): Promise<void> {
    const record = this.head;
    const data = encodeState(state);
    return this.log.writeSnapshot(this.writeEpoch, record, data).then(() => {
      this.snapshotRecord = Math.max(this.snapshotRecord, record);
      this.legacy = false;
    });
  }

  /**
   * follow reads the records appended after the head (by the writer that
   * holds the lease), up to `limit`, and which records are kept (a
   * follower's oldest moves as the writer prunes), in one read of the store;
   * the caller applies the records in order. `more` is set when the store
   * held records past them: a page shorter than `limit`, or a full one that
   * reached the newest record, needs no second read to find out it was the
   * last. It returns "gap" when the next record was pruned before it could
   * be read: the follower must load again from the snapshot.
   */
  async follow(limit = PAGE): Promise<{ records: JournalRecord[]; more: boolean } | "gap"> {
    const page = await this.log.readPage(this.head, limit);
    if (page.last !== 0) this.first = page.first;
    const records: JournalRecord[] = [];
    for (const stored of page.records) {
      if (stored.n !== this.head + 1) {
        if (records.length === 0) return "gap";
        break;
      }
      const rec = parseRecord(stored.data);
      records.push(rec);
      this.head = rec.n;
    }
    // After a break (a hole mid-page) the head is below `last`: the next read finds the gap.
    return { records, more: this.head < page.last };
  }

  /** read returns record n, or undefined if it was pruned or not written yet. */
  async read(n: number): Promise<JournalRecord | undefined> {
    if (n < this.first || n > this.head) return undefined;
    const text = await this.log.readRecord(n);
    return text === undefined ? undefined : parseRecord(text);
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
    const deleted = await this.log.prune(this.writeEpoch, this.snapshotRecord, before, max);
    this.first += deleted;
    return deleted;
  }
}

/**
 * applyRecord applies a record's events to a state. A record is all or
 * nothing; the guard only protects against a snapshot taken mid-record by
 * an older writer.
 */
export function applyRecord(
  state: PoolState,
  record: JournalRecord,
  apply: (state: PoolState, event: PoolEvent) => void,
): void {
  for (const event of record.events) if (event.seq > state.eventSeq) apply(state, event);
}

/** Start is the state replay starts from: as of `record`, from a snapshot or the legacy values. */
interface Start {
  state: PoolState;
  record: number;
  legacy: boolean;
}

async function startFrom(
  log: JournalStore,
  snap: StoredSnapshot | undefined,
  subscriptionIds: readonly string[],
  legacyKv: KvStore | undefined,
): Promise<Start> {
  if (snap !== undefined) return { state: decodeState(snap.data, subscriptionIds), record: snap.record, legacy: false };
  // A page of no records is the journal's bounds alone: is anything there?
  const old =
    legacyKv !== undefined && (await log.readPage(0, 0)).last === 0
      ? await readLegacy(legacyKv, subscriptionIds)
      : undefined;
  if (old !== undefined) return { ...old, legacy: true };
  return { state: createPoolState(subscriptionIds), record: 0, legacy: false };
}

/** ReplayEnd is where replay stopped, with the journal's bounds as last read. */
interface ReplayEnd {
  /** The last record applied. */
  record: number;
  replayed: number;
  first: number;
  last: number;
  /** Set when the record after `record` is missing: the first record kept past it. */
  next?: number;
}

/** replay applies the records after `record` to `state`, a page at a time, up to the newest or to a hole. */
async function replay(log: JournalStore, state: PoolState, record: number): Promise<ReplayEnd> {
  let replayed = 0;
  for (;;) {
    const page = await log.readPage(record, PAGE);
    for (const stored of page.records) {
      // Reading on from `record` would return this same page again: stop here.
      if (stored.n !== record + 1) return { record, replayed, first: page.first, last: page.last, next: stored.n };
      applyRecord(state, parseRecord(stored.data), applyEvent);
      record = stored.n;
      replayed++;
    }
    // A short page, or a full one that reached the newest record, was the last.
    if (page.records.length < PAGE || record >= page.last) {
      return { record, replayed, first: page.first, last: page.last };
    }
  }
}

function parseRecord(text: string): JournalRecord {
  return JSON.parse(text) as JournalRecord;
}

/**
 * readLegacy reads the snapshot and records a store kept as plain values
 * before the journal had its own surface (same keys as kvJournalStore, with
 * the snapshot's state as JSON text).
 */
async function readLegacy(
  kv: KvStore,
  subscriptionIds: readonly string[],
): Promise<{ state: PoolState; record: number } | undefined> {
  const snapText = await kv.get("snapshot");
  let state: PoolState | undefined;
  let record = 0;
  if (snapText !== undefined) {
    const snap = JSON.parse(snapText) as { record: number; state: string };
    state = decodeLegacyState(snap.state, subscriptionIds);
    record = snap.record;
  }
  for (;;) {
    const text = await kv.get(recordKey(record + 1));
    if (text === undefined) break;
    state ??= createPoolState(subscriptionIds);
    applyRecord(state, parseRecord(text), applyEvent);
    record++;
  }
  return state === undefined ? undefined : { state, record };
}
