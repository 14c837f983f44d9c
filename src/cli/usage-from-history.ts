import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  type GetUsageHistoryResponse,
  type GetUsageResponse,
  GetUsageResponseSchema,
  type UsageRow,
} from "../../gen/authpool/v1/auth_pool_pb.js";

/**
 * usageFromHistory sums a GetUsageHistory reply (one series per client,
 * subscription or model) into the GetUsage reply for the same hours: one
 * row per series with its cost, tokens and runs, in the server's order
 * (largest cost first, as GetUsage's). Both read the same ledger entries,
 * older hours from the archive, so the figures agree. A series with neither
 * cost nor runs only counts usage limits or runs sent to the paid API
 * (client "(pool)", subscription "(paid API)"): GetUsage leaves those out,
 * and so does this. `to` is the reply's end, now (GetUsage's too).
 */
export function usageFromHistory(history: GetUsageHistoryResponse, to: number): GetUsageResponse {
  const rows: Omit<UsageRow, "$typeName">[] = [];
  for (const series of history.series) {
    const row = {
      key: series.key,
      // The server's sum, rounded once, as GetUsage rounds a row.
      costUsd: series.totalCostUsd,
      inputTokens: 0n,
      outputTokens: 0n,
      cacheCreationInputTokens: 0n,
      cacheReadInputTokens: 0n,
      requests: 0,
    };
    for (const p of series.points) {
      row.inputTokens += p.inputTokens;
      row.outputTokens += p.outputTokens;
      row.cacheCreationInputTokens += p.cacheCreationInputTokens;
      row.cacheReadInputTokens += p.cacheReadInputTokens;
      row.requests += p.runs;
    }
    if (row.costUsd > 0 || row.requests > 0) rows.push(row);
  }
  return create(GetUsageResponseSchema, {
    ...(history.from !== undefined ? { from: history.from } : {}),
    to: timestampFromMs(to),
    rows,
  });
}
