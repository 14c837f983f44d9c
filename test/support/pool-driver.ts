import type { AllocateResult, Rejection, UsageReport } from "../../src/domain/index.js";

/** usage builds a UsageReport of costUsd with small token counts. */
export function usage(costUsd: number, extra: Partial<UsageReport> = {}): UsageReport {
  return {
    costUsd,
    tokens: { inputTokens: 10, outputTokens: 5, cacheCreationInputTokens: 0, cacheReadInputTokens: 0 },
    models: {},
    durationMs: 1000,
    readings: [],
    ...extra,
  };
}

/** granted narrows an allocation result to a grant, failing the test otherwise. */
export function granted(r: AllocateResult | Rejection): Extract<AllocateResult, { kind: "granted" }> {
  if (r.kind !== "granted") throw new Error(`expected granted, got ${JSON.stringify(r)}`);
  return r;
}
