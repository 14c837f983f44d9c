/**
 * What a Claude run consumed and what upstream said about its limits, in the
 * domain's own units: USD, token counts, epoch milliseconds, 0-1 fractions.
 * Parsers (CLI output, structured reports) produce a UsageReport; the pool
 * applies it.
 */

/** LimitWindow names an upstream limit window; "unknown" when a signal did not say. */
export type LimitWindow = "five_hour" | "seven_day" | "seven_day_opus" | "seven_day_sonnet" | "overage" | "unknown";

/** ModelScope narrows a limit to one model family (e.g. the weekly Opus cap). */
export type ModelScope = "opus" | "sonnet";

export interface TokenCounts {
  inputTokens: number;
  outputTokens: number;
  cacheCreationInputTokens: number;
  cacheReadInputTokens: number;
}

export interface ModelUsage extends TokenCounts {
  costUsd: number;
}

/**
 * ObservationSource says where an upstream reading came from: a
 * `rate_limit_event` in stream-json output, `anthropic-ratelimit-unified-*`
 * response headers, structured readings a gateway reported, the OAuth usage
 * endpoint, or a transcript's usage-limit row.
 */
export type ObservationSource = "stream" | "headers" | "report" | "oauth" | "transcript";

/** RateLimitReading is one upstream fact about a window (rate_limit_event, headers). */
export interface RateLimitReading {
  window: LimitWindow;
  /** Where it came from; "report" when the producer did not say. */
  source?: ObservationSource;
  status: "allowed" | "allowed_warning" | "rejected";
  /** 0-1 fraction, when known. */
  utilization?: number;
  /** Epoch ms, when known. */
  resetsAt?: number;
  /**
   * The warning threshold (0-1) upstream says the window has passed, with
   * status allowed_warning. Without a utilization it is the floor of one.
   */
  surpassedThreshold?: number;
}

/** LimitSignal says the run hit a usage limit: the subscription must cool down. */
export interface LimitSignal {
  window: LimitWindow;
  /** Epoch ms; absent when the signal carried no reset time. */
  resetsAt?: number;
  /** True when resetsAt is a guess (no zone in the text) or absent. */
  estimated: boolean;
  /** The text or event the limit was read from. */
  message: string;
  modelScope?: ModelScope;
}

export interface UsageReport {
  costUsd: number;
  tokens: TokenCounts;
  /** Keyed by model id. */
  models: Record<string, ModelUsage>;
  durationMs: number;
  /** The Claude result's uuid: the idempotency key when the caller gives none. */
  resultUuid?: string;
  /** The Claude session the run belonged to: its transcript rows are the pool's, not external. */
  claudeSessionId?: string;
  /** Upstream utilization readings carried by the run. */
  readings: RateLimitReading[];
  limit?: LimitSignal;
  /**
   * A transient upstream refusal that is not a usage limit (server
   * throttle, request-scoped 429, 529 overloaded, billing): never a
   * cooldown; a throttle pauses new placements briefly.
   */
  transient?: TransientSignal;
  /** What the report was read from; absent: structured usage. */
  format?: ReportFormat;
  /** True when Claude's output ended before its result: what it proved is kept, its cost is unknown. */
  partial?: boolean;
  /** True when the report carried no cost figure (text, empty or partial output): costUsd 0 means unknown. */
  costUnknown?: boolean;
  /** What the parser understood or left out, in words, for the reply. */
  notes?: string[];
}

/** ReportFormat names what a report was read from. */
export type ReportFormat = "structured" | "json" | "json_verbose" | "stream_json" | "text" | "empty";

/**
 * TransientKind: "throttle" is a request-scoped 429 (a per-minute rate
 * limit, "not your usage limit", an API key's rate limit), which pauses new
 * placements for its retry-after; the others are recorded and nothing more.
 */
export type TransientKind = "throttle" | "overloaded" | "billing" | "server_error";

/** TransientSignal is an upstream refusal that is not a usage limit. */
export interface TransientSignal {
  kind: TransientKind;
  /** The text or signal it was read from. */
  message: string;
  /** How long upstream asked to wait (retry-after), when it said. */
  retryAfterMs?: number;
}
