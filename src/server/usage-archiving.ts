import { ARCHIVE_AFTER_MS, HISTORY_RETENTION_MS, floorHour, ledgerHours } from "../domain/index.js";
import type { PoolHandle } from "../runtime/pool-handle.js";
import type { UsageArchive } from "../store/index.js";

/**
 * archiveUsage moves the ledger's hours that are ARCHIVE_AFTER_MS old into
 * the archive (every hour since the last run, at its final figure) and
 * drops archived days past HISTORY_RETENTION_MS. The leader runs it every
 * few minutes; the ledger keeps a day more than it waits, so a run may be
 * missed for a day without losing an hour.
 */
export async function archiveUsage(pool: PoolHandle, archive: UsageArchive, now: number): Promise<void> {
  const until = floorHour(now - ARCHIVE_AFTER_MS);
  const state = pool.currentPool.state;
  let from = await archive.archivedUntil();
  if (from === undefined) {
    // First run on this store: whatever the ledger still holds that is old enough.
    from = until;
    for (const entry of state.ledger.values()) from = Math.min(from, entry.hour);
  }
  if (from < until) await archive.archive(ledgerHours(state, from, until), from, until);
  await archive.prune(now - HISTORY_RETENTION_MS);
}
