/**
 * KvStore is the storage the pool needs: string values under string keys,
 * each set atomic on its own. Keyv stores satisfy it; nothing above this
 * interface may assume the store is local (a shared Redis or Postgres store
 * is how the pool would scale out).
 */
export interface KvStore {
  get(key: string): Promise<string | undefined>;
  /** Resolves only once the value is durable; rejects on any backend error. */
  set(key: string, value: string): Promise<void>;
  delete(key: string): Promise<void>;
  close(): Promise<void>;
  /** A description for logs, with no credentials. */
  readonly description: string;
}

/**
 * PoolStore is a KvStore for plain values plus the journal surface (lease
 * and fenced journal) of the same backend. openStore returns one; a bare
 * KvStore handed to the server is given an in-process journal surface
 * (kvJournalStore), which is right only while every writer is in one process.
 */
export interface PoolStore extends KvStore {
  readonly log: import("./journal-store.js").JournalStore;
}
