import type { PoolEvent } from "../domain/index.js";
import type { EventFeed } from "../runtime/event-feed.js";
import type { PoolHandle } from "../runtime/pool-handle.js";

/**
 * eventsSince yields the retained events stamped at or after `from`, in
 * order. Records are appended in time order, so the first one is found by
 * a binary search over record numbers rather than by reading the whole
 * retained journal (a week of it by default).
 */
export async function* eventsSince(pool: PoolHandle, feed: EventFeed, from: number): AsyncGenerator<PoolEvent> {
  const journal = pool.currentJournal;
  let lo = journal.oldestRecord;
  let hi = journal.headRecord;
  let after = 0;
  while (lo <= hi) {
    const mid = Math.floor((lo + hi) / 2);
    const last = (await journal.read(mid))?.events.at(-1);
    // A record pruned meanwhile (or one without events) counts as later: the search settles before it.
    if (last === undefined || last.at >= from) hi = mid - 1;
    else {
      after = last.seq;
      lo = mid + 1;
    }
  }
  for await (const e of feed.history(after, feed.headSeq)) if (e.at >= from) yield e;
}
