/**
 * Persistence: the KvStore interface, its Keyv-backed implementations, and
 * the journal + snapshot on top.
 */
export type { KvStore } from "./kv-store.js";
export { openStore, redact, StoreError } from "./open-store.js";
export { Journal, recordKey } from "./journal.js";
export type { JournalRecord } from "./journal.js";
export { encodeState, decodeState } from "./state-codec.js";
