import type { MessageInitShape } from "@bufbuild/protobuf";
import { durationFromMs, timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  type GetUsageHistoryRequest,
  type GetUsageHistoryResponseSchema,
  HistoryGroupBy,
  HistoryResolution,
} from "../../gen/authpool/v1/auth_pool_pb.js";
import {
  ARCHIVE_AFTER_MS,
  DAY_MS,
  HISTORY_RETENTION_MS,
  HOUR_MS,
  type HistoryGroup,
  type PoolState,
  floorHour,
  floorTo,
  historySeries,
  ledgerHours,
} from "../domain/index.js";
import type { UsageArchive } from "../store/index.js";
import { usd } from "./proto-values.js";
import { invalidArgument, timestampField } from "./validate.js";

/** MAX_RANGE_MS bounds one answer: what is kept, 960 hourly points per series at most. */
const MAX_RANGE_MS = HISTORY_RETENTION_MS;

/**
 * usageHistory answers GetUsageHistory: the hours of the last
 * ARCHIVE_AFTER_MS from the live ledger (the figures budgets are checked
 * against, still changing as late reports land), older ones from the
 * archive, summed into series.
 */
export async function usageHistory(
  req: GetUsageHistoryRequest,
  source: { state: PoolState; archive: UsageArchive; now: number },
): Promise<MessageInitShape<typeof GetUsageHistoryResponseSchema>> {
  const { now } = source;
  const resolutionMs = req.resolution === HistoryResolution.DAY ? DAY_MS : HOUR_MS;
  // Default: to the end of the current hour or day, so what was just spent shows.
  const until =
    req.until === undefined ? floorTo(now, resolutionMs) + resolutionMs : timestampField(req.until, "until");
  const requested = req.from === undefined ? until - 7 * DAY_MS : timestampField(req.from, "from");
  if (requested >= until) throw invalidArgument("from", "must be before until");
  if (until - requested > MAX_RANGE_MS) throw invalidArgument("from", "must be at most 40 days before until");
  const from = floorTo(requested, resolutionMs);
  const liveFrom = floorHour(now - ARCHIVE_AFTER_MS);
  const entries = ledgerHours(source.state, Math.max(from, liveFrom), until);
  if (from < liveFrom) entries.push(...(await source.archive.read(from, Math.min(until, liveFrom))));
  const series = historySeries(entries, groupOf(req.groupBy), resolutionMs, from, until);
  return {
    from: timestampFromMs(from),
    until: timestampFromMs(until),
    resolution: resolutionMs === DAY_MS ? HistoryResolution.DAY : HistoryResolution.HOUR,
    retention: durationFromMs(HISTORY_RETENTION_MS),
    series: series.map((s) => ({
      key: s.key,
      totalCostUsd: usd(s.totalCostUsd),
      points: s.points.map((p) => ({
        start: timestampFromMs(p.start),
        costUsd: usd(p.costUsd),
        inputTokens: BigInt(p.tokens.inputTokens),
        outputTokens: BigInt(p.tokens.outputTokens),
        cacheCreationInputTokens: BigInt(p.tokens.cacheCreationInputTokens),
        cacheReadInputTokens: BigInt(p.tokens.cacheReadInputTokens),
        runs: p.runs,
        limitsHit: p.limits,
        fallbacks: p.fallbacks,
      })),
    })),
  };
}

function groupOf(group: HistoryGroupBy): HistoryGroup {
  if (group === HistoryGroupBy.CLIENT) return "client";
  if (group === HistoryGroupBy.SUBSCRIPTION) return "subscription";
  if (group === HistoryGroupBy.MODEL) return "model";
  return "pool";
}
