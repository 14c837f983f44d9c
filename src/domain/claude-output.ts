/**
 * The stdout of `claude -p` (json, --verbose json array, or stream-json
 * NDJSON) read into a UsageReport: cost, tokens, per-model usage, upstream
 * rate-limit readings and any usage-limit signal. Lenient about shape and
 * unknown fields; strict about the numbers it uses.
 */

import { classifyLimitText, clipMessage, parseLimitText } from "./limit-text.js";
import { limitWindowFromName, modelScopeOf, parseFraction, parseRateLimitStatus } from "./rate-limit-headers.js";
import { epochSecondsToMs, type ResetTimeOptions } from "./reset-time.js";
import { addTokens, tokenTotal, zeroTokens } from "./tokens.js";
import type { LimitSignal, ModelUsage, RateLimitReading, TokenCounts, UsageReport } from "./usage.js";

/** ClaudeOutputResult is a parsed report, or why the output could not be used. */
export type ClaudeOutputResult = { ok: true; report: UsageReport } | { ok: false; reason: string };

type Json = Record<string, unknown>;

const SYNTHETIC_MODEL = "<synthetic>";

/** Thrown internally when a used field fails validation; becomes { ok: false }. */
class FieldError extends Error {}

/**
 * parseClaudeOutput reads Claude CLI stdout. The LAST `type:"result"` message
 * is the report (its cost and modelUsage are cumulative: never summed);
 * every `rate_limit_event` becomes a reading, and a rejected one is the limit
 * signal with an exact reset. Error results still count their cost.
 */
export function parseClaudeOutput(stdout: string, options: ResetTimeOptions): ClaudeOutputResult {
  const messages = parseMessages(stdout);
  const result = messages.findLast((message) => message.type === "result");
  if (!result) return { ok: false, reason: `no Claude result message found (${describe(stdout, messages)})` };
  try {
    return { ok: true, report: reportFrom(result, messages, options) };
  } catch (error) {
    if (error instanceof FieldError) return { ok: false, reason: error.message };
    throw error;
  }
}

function reportFrom(result: Json, messages: Json[], options: ResetTimeOptions): UsageReport {
  const isError = result.is_error === true;
  // A run that failed before any API call may omit the cost; only then is it 0.
  const costUsd =
    isError && (result.total_cost_usd === undefined || result.total_cost_usd === null)
      ? 0
      : amount(result.total_cost_usd, "total_cost_usd");
  const models = modelsFrom(result.modelUsage);
  const events = eventReadings(messages);
  const report: UsageReport = {
    costUsd,
    tokens: totalTokens(result.usage, models),
    models,
    durationMs: optionalAmount(result.duration_ms, "duration_ms"),
    readings: events.map((event) => event.reading),
  };
  if (typeof result.uuid === "string" && result.uuid !== "") report.resultUuid = result.uuid;
  if (typeof result.session_id === "string" && result.session_id !== "") report.claudeSessionId = result.session_id;

  const text = resultText(result);
  const textLimit = isError && text ? parseLimitText(text, options) : undefined;
  const limit = mergeLimit(events, textLimit);
  if (limit) report.limit = limit;
  else if (isError) {
    const transient = transientError(text ?? "", result.api_error_status);
    if (transient) report.transientError = transient;
  }
  return report;
}

function parseMessages(stdout: string): Json[] {
  const trimmed = stdout.replace(/^\uFEFF/, "").trim();
  if (trimmed === "") return [];
  const whole = tryJson(trimmed);
  if (whole !== undefined) return records(whole);
  // stream-json: one message per line; progress noise and torn lines are skipped.
  return trimmed.split(/\r?\n/).flatMap((line) => {
    const value = line.trim() === "" ? undefined : tryJson(line);
    return value === undefined ? [] : records(value);
  });
}

function tryJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function records(value: unknown): Json[] {
  return (Array.isArray(value) ? value : [value]).filter(isRecord);
}

function isRecord(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function describe(stdout: string, messages: Json[]): string {
  if (stdout.trim() === "") return "empty output";
  if (messages.length === 0) return "output is not JSON";
  return `${messages.length} JSON message(s), none with type "result"`;
}

function amount(value: unknown, field: string): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
    throw new FieldError(`${field}: expected a finite number >= 0, got ${show(value)}`);
  }
  return value;
}

function optionalAmount(value: unknown, field: string): number {
  return value === undefined || value === null ? 0 : amount(value, field);
}

function show(value: unknown): string {
  if (typeof value === "number") return String(value);
  const json = JSON.stringify(value);
  return json === undefined ? String(value) : json.slice(0, 40);
}

function modelsFrom(modelUsage: unknown): Record<string, ModelUsage> {
  const models: Record<string, ModelUsage> = {};
  // An array here is the shape some tools wrongly assumed; it carries no keys we know.
  if (!isRecord(modelUsage)) return models;
  for (const [id, entry] of Object.entries(modelUsage)) {
    if (id === SYNTHETIC_MODEL || !isRecord(entry)) continue;
    const field = (name: string) => `modelUsage[${JSON.stringify(id)}].${name}`;
    models[id] = {
      inputTokens: optionalAmount(entry.inputTokens, field("inputTokens")),
      outputTokens: optionalAmount(entry.outputTokens, field("outputTokens")),
      cacheCreationInputTokens: optionalAmount(entry.cacheCreationInputTokens, field("cacheCreationInputTokens")),
      cacheReadInputTokens: optionalAmount(entry.cacheReadInputTokens, field("cacheReadInputTokens")),
      costUsd: optionalAmount(entry.costUSD, field("costUSD")),
    };
  }
  return models;
}

function totalTokens(usage: unknown, models: Record<string, ModelUsage>): TokenCounts {
  const u = isRecord(usage) ? usage : {};
  const main: TokenCounts = {
    inputTokens: optionalAmount(u.input_tokens, "usage.input_tokens"),
    outputTokens: optionalAmount(u.output_tokens, "usage.output_tokens"),
    cacheCreationInputTokens: optionalAmount(u.cache_creation_input_tokens, "usage.cache_creation_input_tokens"),
    cacheReadInputTokens: optionalAmount(u.cache_read_input_tokens, "usage.cache_read_input_tokens"),
  };
  const all = zeroTokens();
  for (const model of Object.values(models)) addTokens(all, model);
  // `usage` covers the main loop only; modelUsage adds subagents when it has them.
  return tokenTotal(all) > tokenTotal(main) ? all : main;
}

interface EventReading {
  reading: RateLimitReading;
  rawType: string;
}

function eventReadings(messages: Json[]): EventReading[] {
  const events: EventReading[] = [];
  for (const message of messages) {
    if (message.type !== "rate_limit_event" || !isRecord(message.rate_limit_info)) continue;
    const info = message.rate_limit_info;
    const status = parseRateLimitStatus(info.status);
    if (!status) continue;
    const reading: RateLimitReading = { window: limitWindowFromName(info.rateLimitType), source: "stream", status };
    const utilization = parseFraction(info.utilization);
    if (utilization !== undefined) reading.utilization = utilization;
    const resetsAt = epochSecondsToMs(info.resetsAt);
    if (resetsAt !== undefined) reading.resetsAt = resetsAt;
    events.push({ reading, rawType: typeof info.rateLimitType === "string" ? info.rateLimitType : "unknown" });
  }
  return events;
}

/**
 * A rejected rate_limit_event carries the exact reset; the result text only an
 * estimate in local time. The event wins; the text fills what it lacks.
 */
function mergeLimit(events: EventReading[], textLimit: LimitSignal | undefined): LimitSignal | undefined {
  let rejected: EventReading | undefined;
  // With several windows rejected the account is blocked until the latest reset.
  for (const event of events) {
    if (event.reading.status !== "rejected") continue;
    if (!rejected || (event.reading.resetsAt ?? 0) >= (rejected.reading.resetsAt ?? 0)) rejected = event;
  }
  if (!rejected) return textLimit;
  const { reading } = rejected;
  const window = reading.window !== "unknown" ? reading.window : (textLimit?.window ?? "unknown");
  const limit: LimitSignal = {
    window,
    estimated: reading.resetsAt === undefined ? (textLimit?.estimated ?? true) : false,
    message: textLimit?.message ?? clipMessage(`rate_limit_event: ${rejected.rawType} rejected`),
  };
  const resetsAt = reading.resetsAt ?? textLimit?.resetsAt;
  if (resetsAt !== undefined) limit.resetsAt = resetsAt;
  const modelScope = modelScopeOf(window) ?? (window === textLimit?.window ? textLimit.modelScope : undefined);
  if (modelScope) limit.modelScope = modelScope;
  return limit;
}

function resultText(result: Json): string | undefined {
  if (typeof result.result === "string" && result.result.trim() !== "") return result.result;
  // Error subtypes carry `errors: string[]` instead of `result`.
  if (Array.isArray(result.errors)) {
    const joined = result.errors.filter((e): e is string => typeof e === "string").join("\n");
    if (joined.trim() !== "") return joined;
  }
  return undefined;
}

function transientError(text: string, apiErrorStatus: unknown): string | undefined {
  const kind = classifyLimitText(text);
  if (kind === "server_throttle" || kind === "billing") return clipMessage(text);
  // An unrecognised 429 text is request-scoped until proven otherwise: never a long cooldown.
  if (typeof apiErrorStatus === "number" && (apiErrorStatus === 429 || apiErrorStatus >= 500)) {
    return clipMessage(text.trim() === "" ? `api_error_status ${apiErrorStatus}` : `${apiErrorStatus}: ${text}`);
  }
  return undefined;
}
