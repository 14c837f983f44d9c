/**
 * Persistence: the KvStore interface for plain values, the JournalStore
 * surface (lease and fenced journal) per backend, and the journal +
 * snapshot on top.
 */
export type { KvStore, PoolStore } from "./kv-store.js";
export { openStore, redact, StoreError } from "./open-store.js";
export { FencedError } from "./journal-store.js";
export type { JournalStore, Lease, StoredRecord, StoredSnapshot } from "./journal-store.js";
export { kvJournalStore, recordKey } from "./kv-journal-store.js";
export { Journal, applyRecord } from "./journal.js";
export type { JournalRecord, OpenedJournal } from "./journal.js";
export { encodeState, decodeState } from "./state-codec.js";
export { UsageArchive } from "./usage-archive.js";
