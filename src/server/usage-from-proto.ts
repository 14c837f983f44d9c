import { timestampMs } from "@bufbuild/protobuf/wkt";
import { LimitWindow, RateLimitStatus, type Usage } from "../../gen/authpool/v1/auth_pool_pb.js";
import type {
  LimitSignal,
  LimitWindow as DomainWindow,
  ModelUsage,
  RateLimitReading,
  TransientSignal,
  UsageReport,
} from "../domain/index.js";
import { modelFamily, zeroTokens } from "../domain/index.js";
import { parseRateLimitHeaders } from "../domain/rate-limit-headers.js";
import { epochSecondsToMs } from "../domain/reset-time.js";
import {
  check,
  durationMs as readDurationMs,
  invalidArgument,
  plausibleReset,
  quote,
  reportProblem,
  usageSchema,
} from "./validate.js";

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
 * structured form of "you hit your limit" (except the overage window's:
 * rejected there only means pay-as-you-go is off).
 */
export function usageFromProto(u: Usage, now: number): UsageReport {
  check(
    usageSchema(now),
    {
      ...snakeCase(u),
      model_usage: Object.fromEntries(Object.entries(u.modelUsage).map(([model, m]) => [model, snakeCase(m)])),
      duration: u.duration === undefined ? undefined : { seconds: u.duration.seconds, nanos: u.duration.nanos },
      rate_limits: u.rateLimits.map((r) => ({
        utilization: r.utilization,
        resets_at: r.resetsAt === undefined ? undefined : { seconds: r.resetsAt.seconds, nanos: r.resetsAt.nanos },
      })),
      response: u.response === undefined ? undefined : { status: u.response.status },
      claude_session_id: u.claudeSessionId,
    },
    "usage",
  );
  const durationMs = u.duration === undefined ? 0 : readDurationMs(u.duration);
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
  let transient: TransientSignal | undefined;
  if (u.response !== undefined) {
    checkHeaders(u.response.headers, now);
    const fromHeaders = parseRateLimitHeaders(u.response.status, u.response.headers, { now });
    // A safety net behind checkHeaders: whatever the headers were read into obeys the report rules.
    const problem = reportProblem(
      {
        costUsd: 0,
        tokens: zeroTokens(),
        models: {},
        durationMs: 0,
        readings: fromHeaders.readings,
        ...(fromHeaders.limit ? { limit: fromHeaders.limit } : {}),
      },
      now,
    );
    if (problem !== undefined) throw invalidArgument("usage.response.headers", problem);
    readings.push(...fromHeaders.readings);
    limit = fromHeaders.limit;
    transient = fromHeaders.transient;
  }
  const rejected = readings.find((r) => r.status === "rejected" && r.window !== "overage");
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
  const { costUsd, ...tokens } = counted(u);
  return {
    costUsd,
    tokens,
    models: Object.fromEntries(Object.entries(u.modelUsage).map(([model, m]) => [model, counted(m)])),
    durationMs,
    readings,
    ...(u.claudeSessionId !== "" ? { claudeSessionId: u.claudeSessionId } : {}),
    ...(limit !== undefined ? { limit } : {}),
    ...(transient !== undefined ? { transient } : {}),
    format: "structured",
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

const RESET_HEADER = /^anthropic-ratelimit-unified-(?:.+-)?reset$/;
const UTILIZATION_HEADER = /^anthropic-ratelimit-unified-.+-utilization$/;

/**
 * checkHeaders refuses rate-limit headers whose numbers would put garbage in
 * the books: a reset beyond a year from now (or past what a date can show),
 * a utilization above 10 (a percentage sent as a fraction). Values the
 * header reader ignores anyway (not numbers) pass.
 */
function checkHeaders(headers: Readonly<Record<string, string>>, now: number): void {
  for (const [name, value] of Object.entries(headers)) {
    const lower = name.toLowerCase();
    const text = value.trim();
    const bad = (expected: string) =>
      invalidArgument("usage.response.headers", `${quote(name)}: expected ${expected}, got ${quote(value)}`);
    if (RESET_HEADER.test(lower)) {
      const ms = epochSecondsToMs(text);
      if (ms !== undefined && !plausibleReset(ms, now)) throw bad("epoch seconds between 1970 and a year from now");
    } else if (UTILIZATION_HEADER.test(lower)) {
      const n = text === "" ? Number.NaN : Number(text);
      if (Number.isFinite(n) && n > 10) throw bad("a 0-1 fraction");
    } else if (lower === "retry-after" && text !== "") {
      const seconds = Number(text);
      const ms = Number.isFinite(seconds) && seconds >= 0 ? now + Math.round(seconds * 1000) : Date.parse(text);
      if (Number.isFinite(ms) && !plausibleReset(ms, now)) throw bad("seconds or an HTTP date within a year from now");
    }
  }
}
