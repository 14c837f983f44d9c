import { timestampMs } from "@bufbuild/protobuf/wkt";
import { LimitWindow, RateLimitStatus, type Usage } from "../../gen/authpool/v1/auth_pool_pb.js";
import type { LimitSignal, LimitWindow as DomainWindow, ModelUsage, RateLimitReading, UsageReport } from "../domain/index.js";
import { modelFamily } from "../domain/index.js";
import { parseRateLimitHeaders } from "../domain/rate-limit-headers.js";
import { check, invalidArgument, usageSchema } from "./validate.js";

const windowFromProto: Record<LimitWindow, DomainWindow> = {
  [LimitWindow.UNSPECIFIED]: "unknown",
  [LimitWindow.FIVE_HOUR]: "five_hour",
  [LimitWindow.SEVEN_DAY]: "seven_day",
  [LimitWindow.SEVEN_DAY_OPUS]: "seven_day_opus",
  [LimitWindow.SEVEN_DAY_SONNET]: "seven_day_sonnet",
  [LimitWindow.OVERAGE]: "overage",
};

/**
 * usageFromProto validates the structured Usage of a report and converts it
 * to the domain's UsageReport. A reading with status REJECTED is the
 * structured form of "you hit your limit".
 */
export function usageFromProto(u: Usage, now: number): UsageReport {
  const durationMs = u.duration === undefined ? 0 : Number(u.duration.seconds) * 1000 + u.duration.nanos / 1e6;
  check(
    usageSchema,
    {
      ...snakeCase(u),
      model_usage: Object.fromEntries(Object.entries(u.modelUsage).map(([model, m]) => [model, snakeCase(m)])),
      duration_ms: durationMs,
      rate_limits: u.rateLimits.map((r) => ({ utilization: r.utilization })),
    },
    "usage",
  );
  const readings: RateLimitReading[] = u.rateLimits.map((r) => ({
    window: windowFromProto[r.window] ?? "unknown",
    source: "report",
    status:
      r.status === RateLimitStatus.REJECTED
        ? "rejected"
        : r.status === RateLimitStatus.ALLOWED_WARNING
          ? "allowed_warning"
          : "allowed",
    ...(r.utilization >= 0 ? { utilization: r.utilization } : {}),
    ...(r.resetsAt !== undefined ? { resetsAt: timestampMs(r.resetsAt) } : {}),
  }));
  let limit: LimitSignal | undefined;
  let transientError: string | undefined;
  if (u.response !== undefined) {
    if (u.response.status > 999) throw invalidArgument("usage.response.status", "must be an HTTP status code");
    const fromHeaders = parseRateLimitHeaders(u.response.status, u.response.headers, { now });
    readings.push(...fromHeaders.readings);
    limit = fromHeaders.limit;
    transientError = fromHeaders.transientError;
  }
  const rejected = readings.find((r) => r.status === "rejected");
  if (limit === undefined && rejected !== undefined) {
    const scope = modelFamily(rejected.window);
    limit = {
      window: rejected.window,
      ...(rejected.resetsAt !== undefined ? { resetsAt: rejected.resetsAt } : {}),
      estimated: rejected.resetsAt === undefined,
      message: `upstream rejected (${rejected.window})`,
      ...(scope !== undefined ? { modelScope: scope } : {}),
    };
  }
  if (u.claudeSessionId.length > 128) throw invalidArgument("usage.claude_session_id", "must be at most 128 characters");
  const { costUsd, ...tokens } = counted(u);
  return {
    costUsd,
    tokens,
    models: Object.fromEntries(Object.entries(u.modelUsage).map(([model, m]) => [model, counted(m)])),
    durationMs,
    readings,
    ...(u.claudeSessionId !== "" ? { claudeSessionId: u.claudeSessionId } : {}),
    ...(limit !== undefined ? { limit } : {}),
    ...(transientError !== undefined ? { transientError } : {}),
  };
}

/** Counted is what Usage and ModelUsage share: a cost and four token counts. */
type Counted = Pick<
  Usage,
  "costUsd" | "inputTokens" | "outputTokens" | "cacheCreationInputTokens" | "cacheReadInputTokens"
>;

/** snakeCase names the fields as the proto does, so validation errors name them as callers wrote them. */
function snakeCase(c: Counted) {
  return {
    cost_usd: c.costUsd,
    input_tokens: c.inputTokens,
    output_tokens: c.outputTokens,
    cache_creation_input_tokens: c.cacheCreationInputTokens,
    cache_read_input_tokens: c.cacheReadInputTokens,
  };
}

/** counted converts validated counts to the domain's numbers. */
function counted(c: Counted): ModelUsage {
  return {
    costUsd: c.costUsd,
    inputTokens: Number(c.inputTokens),
    outputTokens: Number(c.outputTokens),
    cacheCreationInputTokens: Number(c.cacheCreationInputTokens),
    cacheReadInputTokens: Number(c.cacheReadInputTokens),
  };
}
