import path from "node:path";
import { type PoolConfig, parseConfig } from "../../src/config/index.js";

/** SCALE_SESSIONS: sessions each subscription holds at the end of the history. */
export const SCALE_SESSIONS = 100;

/** HISTORY_DAYS and REPORTS_PER_SUBSCRIPTION: 30 days, 1,000 reports per subscription (1M at 1,000). */
export const HISTORY_DAYS = 30;
export const REPORTS_PER_SUBSCRIPTION = 1_000;

/** HISTORY_START: the first simulated day. */
export const HISTORY_START = Date.parse("2026-10-01T00:00:00Z");

/**
 * scaleConfig is the pool for one size: `subscriptions` Max accounts of 100
 * sessions each (the build fills exactly that many; the measurement allows
 * 150 so new allocations are granted, not sent to the fallback), in the
 * store at `uri` (configDirs under `dir`). Sessions go stale after 7 days rather than an hour, so the sweep
 * that prunes dedupe keys does not also release the 100 sessions per
 * account that the history keeps open; snapshots every 1,000 records (the
 * default), and never by time (the build's clock jumps).
 */
export function scaleConfig(dir: string, uri: string, subscriptions: number, maxSessions: number): PoolConfig {
  return parseConfig(
    {
      subscriptions: Array.from({ length: subscriptions }, (_, i) => ({
        id: `sub${i}`,
        email: `sub${i}@example.com`,
        type: "claude-max",
        configDir: path.join(dir, `sub${i}`),
        weeklyBudgetUsd: 2_000,
        maxSessions,
      })),
      sessions: { staleMinutes: 7 * 24 * 60 },
      snapshot: { everyRecords: 1_000, everySeconds: 365 * 24 * 3600 },
      server: { host: "127.0.0.1", port: 0 },
      store: { uri },
      // Fake logins: polling them would ask api.anthropic.com and time the network, not the pool.
      upstream: { enabled: false },
    },
    "<scale bench>",
  );
}
