/**
 * JournalStore is the small native surface that makes one writer per store
 * true on a shared backend: a lease (who may write, under which epoch) and a
 * journal whose appends, snapshot writes and pruning are fenced by that
 * epoch. Keyv has no conditional write, so each backend implements these
 * few operations with its own atomic statement (SQLite and PostgreSQL:
 * `INSERT ... ON CONFLICT DO NOTHING` guarded by the lease row). Plain
 * values (cursors, probes) stay in the KvStore.
 *
 * Times are milliseconds since the Unix epoch on the caller's clock. Clock
 * skew between instances can only make a standby take over early; fencing,
 * not the clock, is what keeps a late writer from writing.
 */

/** Lease is the store's record of its one writer. */
export interface Lease {
  /** Instance id of the holder (unique per process start). */
  holder: string;
  /** Incremented every time the lease changes hands (or is retaken after expiry). */
  epoch: number;
  /** The lease is free from this instant on (0: released). */
  expiresAt: number;
  /** Where the holder answers forwarded calls ("" when it takes none). */
  address: string;
}

/** StoredRecord is one journal record as stored: its number and JSON text. */
export interface StoredRecord {
  n: number;
  data: string;
}

/**
 * RecordPage is a page of records with the journal's bounds as they stood
 * when the page was read: `last` tells a follower whether records wait past
 * the page, so it need not ask again for an empty one.
 */
export interface RecordPage {
  /** Up to the limit of records with number > after, in order. */
  records: StoredRecord[];
  /** The oldest record kept (0 when none is). */
  first: number;
  /** The newest record kept (0 when none is). */
  last: number;
}

/** StoredSnapshot is the state as of a record, in the snapshot codec's bytes. */
export interface StoredSnapshot {
  record: number;
  data: Uint8Array;
}

/**
 * FencedError: a write refused because the writer's epoch is no longer the
 * lease's (another instance took over) or the record it meant to append
 * exists already (another writer appended it). Nothing was written; the
 * writer's state is behind the store and must be reloaded.
 */
export class FencedError extends Error {
  override name = "FencedError";
  readonly reason: "epoch" | "exists";
  constructor(message: string, reason: "epoch" | "exists") {
    super(message);
    this.reason = reason;
  }
}

export interface JournalStore {
  /** A description for logs, with no credentials. */
  readonly description: string;

  /**
   * acquireLease takes the lease for `holder` when there is none or it
   * expired at `now` (epoch + 1, expiry now + ttlMs), atomically. It
   * returns the lease as it stands afterwards: `holder` got it iff
   * `lease.holder === holder` (an unexpired lease of its own is returned
   * unchanged).
   */
  acquireLease(holder: string, address: string, now: number, ttlMs: number): Promise<Lease>;
  /** renewLease moves the expiry to now + ttlMs if `holder` still holds the lease at `epoch`; undefined when it does not. */
  renewLease(holder: string, epoch: number, now: number, ttlMs: number): Promise<Lease | undefined>;
  /** releaseLease frees the lease at once (expiresAt 0) if `holder` still holds it at `epoch`. */
  releaseLease(holder: string, epoch: number): Promise<void>;
  readLease(): Promise<Lease | undefined>;

  /**
   * append inserts record `n` (its last event at `at`) written under
   * `epoch`, only if `epoch` is the lease's current epoch and no record `n`
   * exists; else it throws FencedError and writes nothing. Resolves once the
   * record is durable.
   */
  append(epoch: number, n: number, at: number, data: string): Promise<void>;
  /** readRecord returns record n's text, or undefined if it is not there. */
  readRecord(n: number): Promise<string | undefined>;
  /**
   * readPage returns up to `limit` records with number > after, in order,
   * and the oldest and newest record numbers kept ({0, 0} when none is), read
   * at one instant (one statement on SQLite and PostgreSQL): what start-up
   * issues per page and a standby per catch-up. A limit of 0 reads the bounds alone.
   */
  readPage(after: number, limit: number): Promise<RecordPage>;

  /**
   * writeSnapshot stores the state as of `record`, fenced like append. A
   * snapshot never replaces one of a later record (that write is a no-op).
   */
  writeSnapshot(epoch: number, record: number, data: Uint8Array): Promise<void>;
  readSnapshot(): Promise<StoredSnapshot | undefined>;
  /**
   * prune deletes up to `max` of the oldest records with number <= upTo
   * whose time is before `before`, fenced like append; returns how many.
   */
  prune(epoch: number, upTo: number, before: number, max: number): Promise<number>;

  /**
   * watch calls `listener` soon after any instance appends (PostgreSQL:
   * LISTEN/NOTIFY). Optional: a store without it is polled. Returns the
   * function that stops watching.
   */
  watch?(listener: () => void): () => void;
  close(): Promise<void>;
}
