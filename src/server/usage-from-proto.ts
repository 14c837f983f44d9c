import { timestampMs } from "@bufbuild/protobuf/wkt";
import { LimitWindow, RateLimitStatus, type Usage } from "../../gen/authpool/v1/auth_pool_pb.js";
import type { LimitSignal, LimitWindow as DomainWindow, RateLimitReading, UsageReport } from "../domain/index.js";
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
      cost_usd: u.costUsd,
      input_tokens: u.inputTokens,
      output_tokens: u.outputTokens,
      cache_creation_input_tokens: u.cacheCreationInputTokens,
      cache_read_input_tokens: u.cacheReadInputTokens,
      model_usage: Object.fromEntries(
        Object.entries(u.modelUsage).map(([model, m]) => [
          model,
          {
            cost_usd: m.costUsd,
            input_tokens: m.inputTokens,
            output_tokens: m.outputTokens,
            cache_creation_input_tokens: m.cacheCreationInputTokens,
            cache_read_input_tokens: m.cacheReadInputTokens,
          },
        ]),
      ),
      duration_ms: durationMs,
      rate_limits: u.rateLimits.map((r) => ({ utilization: r.utilization })),
    },
    "usage",
  );
  const readings: RateLimitReading[] = u.rateLimits.map((r) => ({
    window: windowFromProto[r.window] ?? "unknown",
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
  return {
    costUsd: u.costUsd,
    tokens: {
      inputTokens: Number(u.inputTokens),
      outputTokens: Number(u.outputTokens),
      cacheCreationInputTokens: Number(u.cacheCreationInputTokens),
      cacheReadInputTokens: Number(u.cacheReadInputTokens),
    },
    models: Object.fromEntries(
      Object.entries(u.modelUsage).map(([model, m]) => [
        model,
        {
          costUsd: m.costUsd,
          inputTokens: Number(m.inputTokens),
          outputTokens: Number(m.outputTokens),
          cacheCreationInputTokens: Number(m.cacheCreationInputTokens),
          cacheReadInputTokens: Number(m.cacheReadInputTokens),
        },
      ]),
    ),
    durationMs,
    readings,
    ...(limit !== undefined ? { limit } : {}),
    ...(transientError !== undefined ? { transientError } : {}),
  };
}
