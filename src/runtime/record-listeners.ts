import type { JournalRecord } from "../store/index.js";

/** RecordListener receives each durable journal record, in order. */
export type RecordListener = (record: JournalRecord) => void;

/**
 * RecordListeners hands each durable record to every listener in turn; a
 * listener that throws is reported and the others still get the record.
 */
export class RecordListeners {
  private readonly listeners = new Set<RecordListener>();
  private readonly onError: (error: unknown) => void;

  constructor(onError: (error: unknown) => void = () => {}) {
    this.onError = onError;
  }

  /** add registers a listener; returns the function that removes it. */
  add(listener: RecordListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  publish(record: JournalRecord): void {
    for (const listener of this.listeners) {
      try {
        listener(record);
      } catch (error) {
        this.onError(error);
      }
    }
  }
}
