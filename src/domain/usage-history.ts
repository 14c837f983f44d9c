import type { LedgerEntry } from "./ledger.js";
import type { PoolState } from "./state.js";
import { DAY_MS, floorHour } from "./time.js";
import { addTokens, zeroTokens } from "./tokens.js";
import type { TokenCounts } from "./usage.js";

/**
 * Usage history: the ledger's hours (recent ones live in the state, older
 * ones in the store's archive) as series per client, subscription or model
 * at hourly or daily resolution, for charts and `authpool usage`.
 */

/** HISTORY_RETENTION_MS: how long hours are kept, live or archived. */
export const HISTORY_RETENTION_MS = 40 * DAY_MS;

/**
 * ARCHIVE_AFTER_MS: an hour goes to the archive once it is this old. The
 * ledger keeps 8 days, so an hour is archived at its final figure (late
 * transcript rows and reports have landed) with a day to spare.
 */
export const ARCHIVE_AFTER_MS = 7 * DAY_MS;

export type HistoryGroup = "pool" | "client" | "subscription" | "model";

export interface HistoryPoint {
  start: number;
  costUsd: number;
  tokens: TokenCounts;
  runs: number;
  limits: number;
  fallbacks: number;
}

export interface HistorySeries {
  key: string;
  totalCostUsd: number;
  points: HistoryPoint[];
}

/** ledgerHours returns the ledger's entries whose hour lies in [from, to). */
export function ledgerHours(state: PoolState, from: number, to: number): LedgerEntry[] {
  const rows: LedgerEntry[] = [];
  for (const entry of state.ledger.values()) if (entry.hour >= from && entry.hour < to) rows.push(entry);
  return rows;
}

/** floorTo floors an instant to the start of its hour or UTC day. */
export function floorTo(at: number, resolutionMs: number): number {
  return resolutionMs >= DAY_MS ? Math.floor(at / DAY_MS) * DAY_MS : floorHour(at);
}

/**
 * historySeries sums entries into one series per group key over
 * [from, to), one point per resolution step (zeros included, so a chart
 * needs no gap handling), largest total cost first.
 */
export function historySeries(
  entries: Iterable<LedgerEntry>,
  group: HistoryGroup,
  resolutionMs: number,
  from: number,
  to: number,
): HistorySeries[] {
  const start = floorTo(from, resolutionMs);
  const steps = Math.max(0, Math.ceil((to - start) / resolutionMs));
  const series = new Map<string, HistorySeries>();
  for (const e of entries) {
    if (e.hour < start || e.hour >= to) continue;
    const key = keyOf(e, group);
    let s = series.get(key);
    if (s === undefined)
      series.set(key, (s = { key, totalCostUsd: 0, points: emptyPoints(start, steps, resolutionMs) }));
    const point = s.points[Math.floor((e.hour - start) / resolutionMs)];
    if (point === undefined) continue;
    point.costUsd += e.costUsd;
    addTokens(point.tokens, e.tokens);
    point.runs += e.requests;
    point.limits += e.limits ?? 0;
    point.fallbacks += e.fallbacks ?? 0;
    s.totalCostUsd += e.costUsd;
  }
  return [...series.values()].sort((a, b) => b.totalCostUsd - a.totalCostUsd || a.key.localeCompare(b.key));
}

function keyOf(e: LedgerEntry, group: HistoryGroup): string {
  if (group === "client") return e.client;
  if (group === "subscription") return e.subscriptionId;
  if (group === "model") return e.model;
  return "pool";
}

function emptyPoints(start: number, steps: number, resolutionMs: number): HistoryPoint[] {
  return Array.from({ length: steps }, (_, i) => ({
    start: start + i * resolutionMs,
    costUsd: 0,
    tokens: zeroTokens(),
    runs: 0,
    limits: 0,
    fallbacks: 0,
  }));
}
