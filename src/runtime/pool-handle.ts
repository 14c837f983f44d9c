import type { Command, Pool, ResultOf } from "../domain/index.js";
import type { Journal } from "../store/index.js";
import type { RecordListener } from "./record-listeners.js";

/**
 * PoolHandle is what the edges (handlers, event feed, metrics, jobs) need
 * of the pool: run a command, follow durable records, read the state. A
 * PoolWriter is one; a PoolHost (leader or standby, across takeovers) is the
 * one a server hands out.
 */
export interface PoolHandle {
  submit<C extends Command>(command: C): Promise<ResultOf<C>>;
  subscribe(listener: RecordListener): () => void;
  /** Sequence of the last durable event. */
  readonly durableSeq: number;
  /** The domain object; read it only between batches (from a listener or a command). */
  readonly currentPool: Pool;
  readonly currentJournal: Journal;
  readonly healthy: boolean;
}
