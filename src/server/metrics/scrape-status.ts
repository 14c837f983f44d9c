import type { StatusResult } from "../../domain/index.js";
import type { PoolHandle } from "../../runtime/pool-handle.js";

/** ScrapeStatus returns the status decision of the scrape in progress. */
export type ScrapeStatus = () => Promise<StatusResult>;

/**
 * createScrapeStatus makes one status decision per scrape: every gauge's
 * collect() runs in the same tick of registry.metrics() and shares the
 * decision in flight, so the figures of a scrape are consistent with each
 * other.
 */
export function createScrapeStatus(writer: PoolHandle): ScrapeStatus {
  let inFlight: Promise<StatusResult> | undefined;
  return () =>
    (inFlight ??= writer.submit({ kind: "status", includeSessions: false }).finally(() => {
      inFlight = undefined;
    }));
}
