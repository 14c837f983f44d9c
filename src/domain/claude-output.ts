/**
 * The stdout of `claude -p` read into a UsageReport, in whichever format it
 * came: json (one result object), json --verbose (an array of messages),
 * stream-json (one message per line, possibly cut short before its result),
 * or plain text (the CLI's default). Cost, tokens and per-model usage come
 * from the `result` message only; readings from every `rate_limit_event`; a
 * usage limit from a rejected event or the limit text; a throttle or an
 * overload never as a limit. Lenient about shape and unknown fields; strict
 * about the numbers it uses. Facts behind each rule: the captures of the real
 * CLI (2.1.328) in test/fixtures/claude-cli-real/.
 */

import { classifyLimitText, clipMessage, isCliNotice, parseLimitText } from "./limit-text.js";
import {
  floorFromThreshold,
  limitWindowFromName,
  modelScopeOf,
  parseFraction,
  parseRateLimitStatus,
  parseThreshold,
} from "./rate-limit-headers.js";
import { epochSecondsToMs, type ResetTimeOptions } from "./reset-time.js";
import { addTokens, tokenTotal, zeroTokens } from "./tokens.js";
import type {
  LimitSignal,
  LimitWindow,
  ModelUsage,
  RateLimitReading,
  ReportFormat,
  TokenCounts,
  TransientSignal,
  UsageReport,
} from "./usage.js";

/** ClaudeOutputResult is a parsed report, or why the output could not be used. */
export type ClaudeOutputResult = { ok: true; report: UsageReport } | { ok: false; reason: string };

type Json = Record<string, unknown>;

const SYNTHETIC_MODEL = "<synthetic>";

/** Message types the CLI prints in json, json --verbose and stream-json. */
const CLAUDE_TYPES = new Set(["result", "system", "assistant", "user", "rate_limit_event", "stream_event"]);

/** Thrown internally when a used field fails validation; becomes { ok: false }. */
class FieldError extends Error {}

/**
 * parseClaudeOutput reads Claude CLI stdout. Only a `result` message whose
 * numbers are unusable (a negative cost, fractional tokens...) is refused;
 * any other output is answered with what it proves, its format and notes:
 *
 * - json / json --verbose / stream-json with a result: the LAST result is
 *   the report (its cost and modelUsage are cumulative: never summed);
 *   error results still count their cost.
 * - stream-json without a result (the gateway killed a run the CLI was still
 *   retrying): partial; no cost; readings, a limit, a throttle kept.
 * - text: only a one-line CLI notice is read (a limit, a throttle); no cost.
 * - empty: nothing.
 */
export function parseClaudeOutput(stdout: string, options: ResetTimeOptions): ClaudeOutputResult {
  const { format, messages } = readOutput(stdout);
  if (format === "empty") return { ok: true, report: emptyReport("empty", ["empty output: nothing counted"]) };
  if (format === "text") return { ok: true, report: textReport(stdout, options) };
  const last = messages.findLastIndex((message) => message.type === "result");
  try {
    const report =
      last < 0
        ? partialReport(messages, format, options)
        : resultReport(messages[last]!, messages, last, format, options);
    return { ok: true, report };
  } catch (error) {
    if (error instanceof FieldError) return { ok: false, reason: error.message };
    throw error;
  }
}

function readOutput(stdout: string): { format: ReportFormat; messages: Json[] } {
  const trimmed = stdout.replace(/^\uFEFF/, "").trim();
  if (trimmed === "") return { format: "empty", messages: [] };
  const whole = tryJson(trimmed);
  if (whole !== undefined) {
    const messages = claudeMessages(whole);
    // An answer can be JSON too ("4", or the JSON a prompt asked for): without a Claude message it is text.
    if (messages.length === 0) return { format: "text", messages };
    if (Array.isArray(whole)) return { format: "json_verbose", messages };
    // `--output-format json` prints only the result; a lone other message is a stream cut short.
    return { format: messages[0]!.type === "result" ? "json" : "stream_json", messages };
  }
  // stream-json: one message per line; progress noise and torn lines are skipped.
  const messages = trimmed.split(/\r?\n/).flatMap((line) => {
    const value = line.trim() === "" ? undefined : tryJson(line);
    return value === undefined ? [] : claudeMessages(value);
  });
  return { format: messages.length === 0 ? "text" : "stream_json", messages };
}

function tryJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function claudeMessages(value: unknown): Json[] {
  return (Array.isArray(value) ? value : [value]).filter(
    (v): v is Json => isRecord(v) && typeof v.type === "string" && CLAUDE_TYPES.has(v.type),
  );
}

function isRecord(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function emptyReport(format: ReportFormat, notes: string[]): UsageReport {
  return {
    costUsd: 0,
    tokens: zeroTokens(),
    models: {},
    durationMs: 0,
    readings: [],
    format,
    costUnknown: true,
    notes,
  };
}

/**
 * textReport: `--output-format text` prints the result text and nothing
 * else, so there is no cost, no tokens and no reading. A limit or a throttle
 * is read only from one of the CLI's own one-line notices.
 */
function textReport(stdout: string, options: ResetTimeOptions): UsageReport {
  const notes = ["text output: no cost or tokens in it; nothing counted for them"];
  const report = emptyReport("text", notes);
  const text = stdout.replace(/^\uFEFF/, "").trim();
  if (!isCliNotice(text)) {
    if (/^[[{]/.test(text)) notes.push("JSON without a Claude message: read as text");
    return report;
  }
  const limit = parseLimitText(text, options);
  if (limit) report.limit = limit;
  else {
    const transient = transientFromText(text, undefined);
    if (transient) report.transient = transient;
  }
  return report;
}

function resultReport(
  result: Json,
  messages: Json[],
  index: number,
  format: ReportFormat,
  options: ResetTimeOptions,
): UsageReport {
  const isError = result.is_error === true;
  // A run that failed before any API call may omit the cost; only then is it 0.
  const costUsd =
    isError && (result.total_cost_usd === undefined || result.total_cost_usd === null)
      ? 0
      : amount(result.total_cost_usd, "total_cost_usd");
  const models = modelsFrom(result.modelUsage);
  const events = streamEvents(messages);
  const notes: string[] = [];
  const report: UsageReport = {
    costUsd,
    // From the result only: `assistant` messages carry the usage of the stream's start (output_tokens 1).
    tokens: totalTokens(result.usage, models),
    models,
    durationMs: optionalAmount(result.duration_ms, "duration_ms"),
    readings: events.flatMap((event) => event.readings),
    format,
    notes,
  };
  if (typeof result.uuid === "string" && result.uuid !== "") report.resultUuid = result.uuid;
  const sessionId = sessionIdOf([result, ...messages]);
  if (sessionId !== undefined) report.claudeSessionId = sessionId;
  // stream-json of several turns: a turn begun after the last result was cut short.
  const after = messages.slice(index + 1);
  if (after.some((m) => m.type === "assistant" || isRetry(m))) {
    report.partial = true;
    notes.push("output goes on after the last result: the turn after it was cut short; its cost is unknown");
  }

  const text = resultText(result);
  const usageLimit =
    isError &&
    (result.api_error === "usage_limit_reached" || (text !== undefined && classifyLimitText(text) === "usage_limit"));
  const textLimit = usageLimit ? limitFromText(text, options) : undefined;
  const limit = mergeLimit(events, textLimit);
  // A successful answer's text is the model's, never an error notice.
  const transient = limit
    ? undefined
    : isError
      ? (transientFromText(text ?? "", result.api_error_status) ??
        throttleFromEvents(events) ??
        transientFromRetries(after))
      : transientFromRetries(after);
  if (limit) report.limit = limit;
  if (transient) report.transient = transient;
  noteReadings(events, notes);
  return report;
}

/**
 * partialReport: stream-json without a result. The CLI retries throttles and
 * 529s for about two minutes; a gateway that kills it on a timeout gets the
 * messages before the result. Nothing proves a cost; readings, a limit and
 * the kind of error it was retrying do.
 */
function partialReport(messages: Json[], format: ReportFormat, options: ResetTimeOptions): UsageReport {
  const notes = ["no result message (the run was cut short): cost and tokens unknown, nothing counted for them"];
  const events = streamEvents(messages);
  const report: UsageReport = {
    ...emptyReport(format, notes),
    readings: events.flatMap((event) => event.readings),
    partial: true,
  };
  const sessionId = sessionIdOf(messages);
  if (sessionId !== undefined) report.claudeSessionId = sessionId;
  // The synthetic message the CLI prints for an API error carries its text.
  const notice = messages.findLast(
    (m) => m.type === "assistant" && (m.is_api_error_message === true || typeof m.error === "string"),
  );
  const text = notice === undefined ? undefined : assistantText(notice);
  const usageLimit =
    notice !== undefined &&
    (notice.api_error === "usage_limit_reached" || (text !== undefined && classifyLimitText(text) === "usage_limit"));
  const limit = mergeLimit(events, usageLimit ? limitFromText(text, options) : undefined);
  if (limit) report.limit = limit;
  else {
    const transient =
      (text === undefined ? undefined : transientFromText(text, notice?.api_error_status)) ??
      throttleFromEvents(events) ??
      transientFromRetries(messages);
    if (transient) report.transient = transient;
  }
  noteReadings(events, notes);
  return report;
}

function limitFromText(text: string | undefined, options: ResetTimeOptions): LimitSignal {
  // api_error "usage_limit_reached" with a wording no pattern knows is still a limit: its reset is unknown.
  return (
    (text === undefined ? undefined : parseLimitText(text, options)) ?? {
      window: "unknown",
      estimated: true,
      message: clipMessage(text ?? "usage_limit_reached"),
    }
  );
}

function sessionIdOf(messages: Json[]): string | undefined {
  for (const m of messages) if (typeof m.session_id === "string" && m.session_id !== "") return m.session_id;
  return undefined;
}

function isRetry(message: Json): boolean {
  return message.type === "system" && message.subtype === "api_retry";
}

function assistantText(message: Json): string | undefined {
  const content = isRecord(message.message) ? message.message.content : undefined;
  if (!Array.isArray(content)) return undefined;
  const text = content
    .filter(isRecord)
    .map((block) => (typeof block.text === "string" ? block.text : ""))
    .join("\n")
    .trim();
  return text === "" ? undefined : text;
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

/** show names a refused value without echoing its text: output may quote secrets. */
function show(value: unknown): string {
  if (typeof value === "number" || typeof value === "boolean" || value === null || value === undefined)
    return String(value);
  if (typeof value === "string") return `a string of ${value.length} characters`;
  return Array.isArray(value) ? "an array" : "an object";
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

/** StreamEvent is what one rate_limit_event says. */
interface StreamEvent {
  /** Every window it reports (unifiedWindows, the representative window, overage). */
  readings: RateLimitReading[];
  /** The representative window when the event is rejected. */
  rejected?: RateLimitReading;
  /** Rejected with neither a window nor a reset: a request throttle (captures throttle-*-stream-json). */
  throttle: boolean;
  overage?: { status: string; disabledReason?: string; inUse: boolean };
}

/**
 * streamEvents reads every rate_limit_event. The representative window
 * (`rateLimitType`, top-level `status`, `resetsAt`, and `utilization` only
 * with allowed_warning) is merged with `unifiedWindows.<window>`, where
 * 2.1.3xx keeps each window's utilization; `overageStatus` is a reading of
 * the overage window.
 */
function streamEvents(messages: Json[]): StreamEvent[] {
  const events: StreamEvent[] = [];
  for (const message of messages) {
    if (message.type !== "rate_limit_event" || !isRecord(message.rate_limit_info)) continue;
    events.push(readEvent(message.rate_limit_info));
  }
  return events;
}

function readEvent(info: Json): StreamEvent {
  const byWindow = new Map<LimitWindow, RateLimitReading>();
  if (isRecord(info.unifiedWindows)) {
    for (const [name, entry] of Object.entries(info.unifiedWindows)) {
      const window = limitWindowFromName(name);
      if (window === "unknown" || !isRecord(entry)) continue;
      const reading = windowReading(window, entry.status, entry.utilization, entry.resetsAt, entry.surpassedThreshold);
      if (reading) byWindow.set(window, reading);
    }
  }
  const event: StreamEvent = { readings: [], throttle: false };
  const status = parseRateLimitStatus(info.status);
  const hasType = typeof info.rateLimitType === "string" && info.rateLimitType.trim() !== "";
  if (status === "rejected" && !hasType && epochSecondsToMs(info.resetsAt) === undefined) {
    event.throttle = true;
  } else if (status !== undefined) {
    const top = windowReading(
      limitWindowFromName(info.rateLimitType),
      status,
      info.utilization,
      info.resetsAt,
      info.surpassedThreshold,
    )!;
    const seen = byWindow.get(top.window);
    const merged: RateLimitReading = seen === undefined ? top : { ...seen, ...top };
    byWindow.set(top.window, merged);
    if (status === "rejected") event.rejected = merged;
  }
  const overage = parseRateLimitStatus(info.overageStatus);
  if (overage !== undefined) {
    if (!byWindow.has("overage")) byWindow.set("overage", { window: "overage", source: "stream", status: overage });
    event.overage = {
      status: overage,
      inUse: info.isUsingOverage === true,
      ...(typeof info.overageDisabledReason === "string" && info.overageDisabledReason !== ""
        ? { disabledReason: info.overageDisabledReason }
        : {}),
    };
  }
  event.readings = [...byWindow.values()];
  return event;
}

function windowReading(
  window: LimitWindow,
  statusValue: unknown,
  utilizationValue: unknown,
  resetsAtValue: unknown,
  thresholdValue: unknown,
): RateLimitReading | undefined {
  const status = parseRateLimitStatus(statusValue);
  const utilization = parseFraction(utilizationValue);
  if (status === undefined && utilization === undefined) return undefined;
  const reading: RateLimitReading = { window, source: "stream", status: status ?? "allowed" };
  const threshold = parseThreshold(thresholdValue);
  const used = utilization ?? floorFromThreshold(status, threshold);
  if (used !== undefined) reading.utilization = used;
  const resetsAt = epochSecondsToMs(resetsAtValue);
  if (resetsAt !== undefined) reading.resetsAt = resetsAt;
  if (threshold !== undefined) reading.surpassedThreshold = threshold;
  return reading;
}

/**
 * mergeLimit: a rejected rate_limit_event carries the exact reset; the result
 * text only a wall-clock time. The event wins; the text fills what it lacks.
 * A window of the whole subscription binds before a model-scoped one; among
 * several, the latest reset (the account is blocked until then). Overage
 * "rejected" only means pay-as-you-go is off: never a limit.
 */
function mergeLimit(events: StreamEvent[], textLimit: LimitSignal | undefined): LimitSignal | undefined {
  const rejected = events
    .flatMap((event) => (event.rejected !== undefined ? [event.rejected] : []))
    .concat(events.flatMap((event) => event.readings.filter((r) => r.status === "rejected" && r !== event.rejected)))
    .filter((reading) => reading.window !== "overage");
  let binding: RateLimitReading | undefined;
  for (const reading of rejected) {
    if (binding === undefined || bindsBefore(reading, binding)) binding = reading;
  }
  if (!binding) return textLimit;
  const window = binding.window !== "unknown" ? binding.window : (textLimit?.window ?? "unknown");
  const limit: LimitSignal = {
    window,
    estimated: binding.resetsAt === undefined ? (textLimit?.estimated ?? true) : false,
    message: textLimit?.message ?? clipMessage(`rate_limit_event: ${window} rejected`),
  };
  const resetsAt = binding.resetsAt ?? textLimit?.resetsAt;
  if (resetsAt !== undefined) limit.resetsAt = resetsAt;
  const modelScope = modelScopeOf(window) ?? (window === textLimit?.window ? textLimit.modelScope : undefined);
  if (modelScope) limit.modelScope = modelScope;
  return limit;
}

function bindsBefore(a: RateLimitReading, b: RateLimitReading): boolean {
  const aWhole = modelScopeOf(a.window) === undefined;
  const bWhole = modelScopeOf(b.window) === undefined;
  if (aWhole !== bWhole) return aWhole;
  return (a.resetsAt ?? 0) >= (b.resetsAt ?? 0);
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

/**
 * transientFromText reads an error that is not a usage limit. An
 * unrecognised 429 is request-scoped until proven otherwise (a usage-limit
 * 429 says so in its text): a throttle, never a long cooldown.
 */
function transientFromText(text: string, apiErrorStatus: unknown): TransientSignal | undefined {
  const message = clipMessage(text);
  switch (classifyLimitText(text)) {
    case "server_throttle":
      return { kind: "throttle", message };
    case "overloaded":
      return { kind: "overloaded", message };
    case "billing":
      return { kind: "billing", message };
    case "usage_limit":
      return undefined;
    case "none":
      break;
  }
  if (typeof apiErrorStatus !== "number") return undefined;
  const described = clipMessage(
    text.trim() === "" ? `api_error_status ${apiErrorStatus}` : `${apiErrorStatus}: ${text}`,
  );
  if (apiErrorStatus === 429) return { kind: "throttle", message: described };
  if (apiErrorStatus === 529) return { kind: "overloaded", message: described };
  if (apiErrorStatus >= 500) return { kind: "server_error", message: described };
  return undefined;
}

function throttleFromEvents(events: StreamEvent[]): TransientSignal | undefined {
  return events.some((event) => event.throttle)
    ? {
        kind: "throttle",
        message: "rate_limit_event rejected without a window or reset: a request throttle, not a usage limit",
      }
    : undefined;
}

/**
 * transientFromRetries: the CLI retries a throttle (429) and an overload
 * (529) but never a usage-limit 429, so its api_retry messages name a
 * transient error.
 */
function transientFromRetries(messages: Json[]): TransientSignal | undefined {
  const retries = messages.filter(isRetry);
  const last = retries.at(-1);
  if (last === undefined || typeof last.error_status !== "number") return undefined;
  const status = last.error_status;
  const message = `the CLI retried ${retries.length} time${retries.length === 1 ? "" : "s"} after HTTP ${status}${typeof last.error === "string" ? ` (${last.error})` : ""}`;
  if (status === 429) return { kind: "throttle", message };
  if (status === 529) return { kind: "overloaded", message };
  if (status >= 500) return { kind: "server_error", message };
  return undefined;
}

function noteReadings(events: StreamEvent[], notes: string[]): void {
  const last = events.at(-1);
  for (const reading of last?.readings ?? []) {
    if (reading.status !== "allowed_warning") continue;
    const used = reading.utilization === undefined ? "" : ` at ${Math.round(reading.utilization * 100)}%`;
    const past =
      reading.surpassedThreshold === undefined
        ? ""
        : `, past the ${Math.round(reading.surpassedThreshold * 100)}% warning threshold`;
    notes.push(`upstream warns: ${reading.window}${used}${past}`);
  }
  if (last?.overage !== undefined) {
    const o = last.overage;
    notes.push(
      `overage ${o.status}${o.disabledReason === undefined ? "" : ` (${o.disabledReason})`}${o.inUse ? ", in use" : ""}`,
    );
  }
}
