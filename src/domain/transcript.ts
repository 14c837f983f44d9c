/**
 * Claude Code transcript lines (the JSONL files under `<configDir>/projects/`,
 * subagent files included) read into usage rows and usage-limit rows, for
 * reconciling usage done outside the pool. A transcript is not ours to
 * reject: every line either yields a row or is skipped, and nothing here
 * throws.
 */

import { classifyLimitText, clipMessage, parseLimitText } from "./limit-text.js";
import { costOfTokens } from "./pricing.js";
import { tokenTotal } from "./tokens.js";
import { limitWindowFromName, modelScopeOf, parseRateLimitStatus } from "./rate-limit-headers.js";
import { epochSecondsToMs } from "./reset-time.js";
import type { LimitSignal, ModelUsage, TokenCounts } from "./usage.js";

/** TranscriptUsageRow is one assistant line's token usage and its cost. */
export interface TranscriptUsageRow {
  kind: "usage";
  /** `${message.id}:${requestId}`; absent when either is missing (such rows are never deduped). */
  key?: string;
  sessionId?: string;
  /** Epoch ms, from the line's `timestamp`. */
  at: number;
  model: string;
  tokens: TokenCounts;
  /** USD: the line's own `costUSD` (old transcripts), else the tokens at list price. */
  costUsd: number;
  costSource: "line" | "priced";
  /** True for subagent (sidechain) lines. */
  sidechain: boolean;
}

/** TranscriptLimitRow is a synthetic assistant line saying the account hit a usage limit. */
export interface TranscriptLimitRow {
  kind: "limit";
  /** message.id, else the line's uuid, else `limit:${at}`. */
  key: string;
  /** Epoch ms, from the line's `timestamp`. */
  at: number;
  sessionId?: string;
  signal: LimitSignal;
}

/**
 * TranscriptCostRow is a `cost-state` line: the CLI's own running figures
 * for one Claude session (cumulative, so a later one supersedes an earlier
 * one). The pool learns per-model prices from it; it books nothing itself.
 */
export interface TranscriptCostRow {
  kind: "costs";
  sessionId?: string;
  /** Epoch ms: the session's start plus its duration, when the line says. */
  at?: number;
  totalCostUsd: number;
  /** Per model: tokens and the CLI's cost for them. */
  models: Record<string, ModelUsage>;
}

/** TranscriptRow is what one transcript line contributes. */
export type TranscriptRow = TranscriptUsageRow | TranscriptLimitRow | TranscriptCostRow;

/** TranscriptLineOptions configures parseTranscriptLine. */
export interface TranscriptLineOptions {
  /** IANA zone assumed for a limit text's reset time when the text names none. */
  defaultTimeZone: string;
}

type Json = Record<string, unknown>;

const SYNTHETIC_MODEL = "<synthetic>";

// Date.parse also takes "Tuesday" and "1/2/3"; transcripts write ISO 8601.
const ISO_TIMESTAMP = /^[+-]?\d{4,6}-\d{2}-\d{2}T/;

/**
 * parseTranscriptLine reads one JSONL line. Returns undefined for blank or
 * malformed lines, non-assistant rows, rows without an ISO `timestamp`,
 * synthetic rows that are not usage limits, and usage rows with neither
 * tokens nor cost. Never throws.
 */
export function parseTranscriptLine(line: string, options: TranscriptLineOptions): TranscriptRow | undefined {
  const row = parseRecord(line);
  if (row?.type === "cost-state") return costRowOf(row);
  if (row?.type !== "assistant") return undefined;
  const at = timestampOf(row.timestamp);
  if (at === undefined) return undefined;
  const message = isRecord(row.message) ? row.message : {};
  const sessionId = nonEmptyString(row.sessionId);

  const synthetic = message.model === SYNTHETIC_MODEL;
  // Only error rows can be limits: an ordinary reply may well talk about "usage limits".
  if (synthetic || row.isApiErrorMessage === true) {
    const signal = limitSignalOf(row, message, at, options);
    if (signal) {
      const key = nonEmptyString(message.id) ?? nonEmptyString(row.uuid) ?? `limit:${at}`;
      return withSession({ kind: "limit", key, at, signal }, sessionId);
    }
    if (synthetic) return undefined;
  }
  return usageRowOf(row, message, at, sessionId);
}

/**
 * dedupeTranscriptRows collapses the lines Claude Code writes per content
 * block of one response. Usage rows sharing a key keep the one with the
 * largest token total (the first on ties), at the first one's position;
 * limit rows keep the first per key; rows without a key are all kept.
 */
export function dedupeTranscriptRows(rows: readonly TranscriptRow[]): TranscriptRow[] {
  const out: TranscriptRow[] = [];
  const usageAt = new Map<string, number>();
  const limitKeys = new Set<string>();
  for (const row of rows) {
    if (row.kind === "costs") {
      out.push(row);
      continue;
    }
    if (row.kind === "limit") {
      if (limitKeys.has(row.key)) continue;
      limitKeys.add(row.key);
      out.push(row);
      continue;
    }
    if (row.key === undefined) {
      out.push(row);
      continue;
    }
    const index = usageAt.get(row.key);
    if (index === undefined) {
      usageAt.set(row.key, out.length);
      out.push(row);
      continue;
    }
    const kept = out[index];
    // Block lines repeat the running usage; the last block carries the final output count.
    if (kept?.kind === "usage" && tokenTotal(row.tokens) > tokenTotal(kept.tokens)) out[index] = row;
  }
  return out;
}

function usageRowOf(
  row: Json,
  message: Json,
  at: number,
  sessionId: string | undefined,
): TranscriptUsageRow | undefined {
  const usage = isRecord(message.usage) ? message.usage : {};
  const tokens: TokenCounts = {
    inputTokens: tokenCount(usage.input_tokens),
    outputTokens: tokenCount(usage.output_tokens),
    cacheCreationInputTokens: tokenCount(usage.cache_creation_input_tokens),
    cacheReadInputTokens: tokenCount(usage.cache_read_input_tokens),
  };
  const model = nonEmptyString(message.model) ?? "unknown";
  const lineCost = row.costUSD;
  const fromLine = typeof lineCost === "number" && Number.isFinite(lineCost) && lineCost >= 0;
  const costUsd = fromLine ? lineCost : costOfTokens(model, tokens);
  if (tokenTotal(tokens) === 0 && costUsd === 0) return undefined;

  const messageId = nonEmptyString(message.id);
  const requestId = nonEmptyString(row.requestId);
  const usageRow: TranscriptUsageRow = {
    kind: "usage",
    at,
    model,
    tokens,
    costUsd,
    costSource: fromLine ? "line" : "priced",
    sidechain: row.isSidechain === true,
  };
  if (messageId !== undefined && requestId !== undefined) usageRow.key = `${messageId}:${requestId}`;
  return withSession(usageRow, sessionId);
}

/**
 * The structured `quotaLimits` wins over the text; the text fills what it
 * lacks. A quotaLimits status other than rejected means the row is no limit.
 */
function limitSignalOf(row: Json, message: Json, at: number, options: TranscriptLineOptions): LimitSignal | undefined {
  const text = messageText(message.content);
  const textSignal = text === undefined ? undefined : limitFromText(text, at, options);

  if (isRecord(row.quotaLimits)) {
    const quota = row.quotaLimits;
    const status = parseRateLimitStatus(quota.status);
    if (status !== undefined && status !== "rejected") return undefined;
    const named = limitWindowFromName(quota.rateLimitType);
    const window = named !== "unknown" ? named : (textSignal?.window ?? "unknown");
    const quotaReset = epochSecondsToMs(quota.resetsAt);
    const signal: LimitSignal = {
      window,
      estimated: quotaReset === undefined ? (textSignal?.estimated ?? true) : false,
      message: textSignal?.message ?? clipMessage(text ?? `quotaLimits: ${window} rejected`),
    };
    const resetsAt = quotaReset ?? textSignal?.resetsAt;
    if (resetsAt !== undefined) signal.resetsAt = resetsAt;
    const modelScope = modelScopeOf(window) ?? (window === textSignal?.window ? textSignal.modelScope : undefined);
    if (modelScope) signal.modelScope = modelScope;
    return signal;
  }

  if (textSignal) return textSignal;
  if (row.apiError === "usage_limit_reached") {
    // Flagged as a limit but with no text we can read: a limit of unknown window and reset.
    return { window: "unknown", estimated: true, message: clipMessage(text ?? "usage_limit_reached") };
  }
  return undefined;
}

/**
 * A cost-state line the CLI flagged as holding a model it could not price
 * teaches nothing: its figure for that model is no price.
 */
function costRowOf(row: Json): TranscriptCostRow | undefined {
  if (row.hasUnknownModelCost === true || !isRecord(row.modelUsage)) return undefined;
  const models: Record<string, ModelUsage> = {};
  for (const [model, entry] of Object.entries(row.modelUsage)) {
    if (model === SYNTHETIC_MODEL || !isRecord(entry)) continue;
    models[model] = {
      inputTokens: tokenCount(entry.inputTokens),
      outputTokens: tokenCount(entry.outputTokens),
      cacheCreationInputTokens: tokenCount(entry.cacheCreationInputTokens),
      cacheReadInputTokens: tokenCount(entry.cacheReadInputTokens),
      costUsd: tokenCount(entry.costUSD),
    };
  }
  if (Object.keys(models).length === 0) return undefined;
  const cost: TranscriptCostRow = { kind: "costs", totalCostUsd: tokenCount(row.totalCostUSD), models };
  const start = row.startTime;
  if (typeof start === "number" && Number.isFinite(start) && start > 0) {
    cost.at = start + tokenCount(row.totalDuration);
  }
  const sessionId = nonEmptyString(row.sessionId);
  if (sessionId !== undefined) cost.sessionId = sessionId;
  return cost;
}

function limitFromText(text: string, at: number, options: TranscriptLineOptions): LimitSignal | undefined {
  if (classifyLimitText(text) !== "usage_limit") return undefined;
  try {
    // The reset time in the text is relative to when the line was written, not to now.
    return parseLimitText(text, { now: at, defaultTimeZone: options.defaultTimeZone });
  } catch {
    // Intl throws past year 275760: a timestamp that far out still reads as a limit, reset unknown.
    return { window: "unknown", estimated: true, message: clipMessage(text) };
  }
}

function messageText(content: unknown): string | undefined {
  if (typeof content === "string") return content.trim() === "" ? undefined : content;
  if (!Array.isArray(content)) return undefined;
  const texts: string[] = [];
  for (const block of content) {
    if (isRecord(block) && block.type === "text" && typeof block.text === "string") texts.push(block.text);
  }
  const joined = texts.join("\n");
  return joined.trim() === "" ? undefined : joined;
}

function parseRecord(line: string): Json | undefined {
  if (typeof line !== "string" || line.trim() === "") return undefined;
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return undefined;
  }
  return isRecord(value) ? value : undefined;
}

function timestampOf(value: unknown): number | undefined {
  if (typeof value !== "string" || !ISO_TIMESTAMP.test(value.trim())) return undefined;
  const ms = Date.parse(value.trim());
  return Number.isFinite(ms) ? ms : undefined;
}

/** A count (or dollar figure) beyond 2^53 is no real one, and would make sums lose precision: it counts as 0 too. */
function tokenCount(value: unknown): number {
  return typeof value === "number" && Number.isFinite(value) && value > 0 && value <= Number.MAX_SAFE_INTEGER
    ? value
    : 0;
}

function nonEmptyString(value: unknown): string | undefined {
  return typeof value === "string" && value !== "" ? value : undefined;
}

function isRecord(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function withSession<T extends TranscriptRow>(row: T, sessionId: string | undefined): T {
  if (sessionId !== undefined) row.sessionId = sessionId;
  return row;
}
