/**
 * Claude's human-readable usage-limit messages, across CLI versions, read into
 * LimitSignals; and the look-alike texts that are NOT usage limits (request
 * throttles, overload, billing), which must never cool an account down.
 */

import { epochSecondsToMs, parseResetTime, type ResetTimeOptions } from "./reset-time.js";
import type { LimitSignal, LimitWindow, ModelScope } from "./usage.js";

/**
 * LimitTextKind classifies an upstream error text: a usage limit; a
 * request-scoped throttle (a per-minute rate limit, "not your usage limit",
 * an API key's "Request rejected (429)"); a 529 overload; billing (extra
 * usage); or none of them.
 */
export type LimitTextKind = "usage_limit" | "server_throttle" | "overloaded" | "billing" | "none";

/** MAX_MESSAGE_LENGTH caps the text kept in LimitSignal.message and error notes. */
export const MAX_MESSAGE_LENGTH = 300;

// Checked before the limit patterns: "(not your usage limit)" contains "usage limit".
// Claude Code 2.1.328 with an API key prints "API Error: Request rejected (429) · This
// request would exceed your account's rate limit…" for any 429 (captures limit*-apikey-*):
// an API key's rate limits are per minute, never a subscription window.
const THROTTLE_PATTERNS = [
  /temporarily limiting requests/,
  /not your usage limit/,
  /per[- ]minute/,
  /request rejected \(429\)/,
  /exceed your (?:account's|organization's|org's) rate limit/,
];

const OVERLOAD_PATTERNS = [/\boverloaded/, /\b529\b/];

// "Extra usage" is pay-as-you-go billing (disabled, capped, out of funds), not the subscription window.
const BILLING_PATTERNS = [/\bextra usage\b/, /credit balance/];

const LIMIT_PATTERNS = [
  /claude ai usage limit reached/,
  /\b(?:usage|session|weekly|opus|sonnet|(?:5|five)[- ]?hours?|(?:7|seven)[- ]?days?)\s+limit\s+(?:reached|exceeded)\b/,
  /\byou(?:'ve| have) (?:hit|reached) your\b[^.·∙•|\n]{0,40}?\blimit\b/,
  /\bout of usage credits\b/,
];

// How the CLI's own notices begin (a limit, an API error), as opposed to an answer.
const NOTICE_START =
  /^(?:api error\b|you(?:'ve| have) (?:hit|reached) your\b|you(?:'re| are) out of\b|claude ai usage limit reached|(?:5|five)[- ]?hour limit reached|(?:usage|session|weekly|opus|sonnet) limit reached|server is temporarily limiting)/;

/** classifyLimitText says whether an upstream error text is a usage limit, a transient throttle, billing, or neither. */
export function classifyLimitText(text: string): LimitTextKind {
  const normalized = normalize(text);
  if (THROTTLE_PATTERNS.some((pattern) => pattern.test(normalized))) return "server_throttle";
  if (OVERLOAD_PATTERNS.some((pattern) => pattern.test(normalized))) return "overloaded";
  if (BILLING_PATTERNS.some((pattern) => pattern.test(normalized))) return "billing";
  if (LIMIT_PATTERNS.some((pattern) => pattern.test(normalized))) return "usage_limit";
  return "none";
}

/** isTransientThrottle is true for request throttles and overload texts: transient, not the account's usage limit. */
export function isTransientThrottle(text: string): boolean {
  const kind = classifyLimitText(text);
  return kind === "server_throttle" || kind === "overloaded";
}

/**
 * isCliNotice says whether plain text output is one of the CLI's own notices
 * (a limit, an API error) rather than an answer: one line that begins as
 * those do. Only such text is read for limits, so an answer that merely
 * talks about limits never benches an account.
 */
export function isCliNotice(text: string): boolean {
  const trimmed = text.trim();
  return trimmed !== "" && !/[\r\n]/.test(trimmed) && NOTICE_START.test(normalize(trimmed));
}

/**
 * parseLimitText reads a Claude usage-limit message into a LimitSignal, or
 * undefined when the text is not a usage limit. The legacy
 * `Claude AI usage limit reached|<epoch s>` form gives an exact reset; the
 * others are parsed with parseResetTime (estimated when no zone is named).
 */
export function parseLimitText(text: string, options: ResetTimeOptions): LimitSignal | undefined {
  if (classifyLimitText(text) !== "usage_limit") return undefined;
  const { window, modelScope } = windowOf(text);
  const signal: LimitSignal = { window, estimated: true, message: clipMessage(text) };
  if (modelScope) signal.modelScope = modelScope;

  const epoch = /\|\s*(\d{9,13})\b/.exec(text);
  const exact = epoch ? epochSecondsToMs(epoch[1]) : undefined;
  if (exact !== undefined) {
    signal.resetsAt = exact;
    signal.estimated = false;
    return signal;
  }
  const reset = parseResetTime(text, options);
  if (reset) {
    signal.resetsAt = reset.resetsAt;
    signal.estimated = reset.estimated;
  }
  return signal;
}

function windowOf(text: string): { window: LimitWindow; modelScope?: ModelScope } {
  const normalized = normalize(text);
  // Only the part before "resets" names the window; zone names must not count.
  const resetAt = normalized.search(/\breset/);
  const head = resetAt >= 0 ? normalized.slice(0, resetAt) : normalized;
  if (/\bopus\b/.test(head)) return { window: "seven_day_opus", modelScope: "opus" };
  if (/\bsonnet\b/.test(head)) return { window: "seven_day_sonnet", modelScope: "sonnet" };
  if (/usage credits|\boverage\b/.test(head)) return { window: "overage" };
  if (/\bweekly\b|\bweek\b|\b(?:7|seven)[- ]?days?\b/.test(head)) return { window: "seven_day" };
  if (/\bsession\b|\b(?:5|five)[- ]?hours?\b/.test(head)) return { window: "five_hour" };
  // 1.0.x printed this before weekly limits existed (Aug 2025): only the 5-hour window could bind.
  if (/claude ai usage limit reached/.test(head)) return { window: "five_hour" };
  return { window: "unknown" };
}

function normalize(text: string): string {
  return text
    .replace(/[\u2018\u2019\u02bc`\u00b4]/g, "'")
    .replace(/\s+/g, " ")
    .toLowerCase();
}

/** clipMessage trims a text and caps it at MAX_MESSAGE_LENGTH characters for storage in signals. */
export function clipMessage(text: string): string {
  const trimmed = text.trim();
  return trimmed.length <= MAX_MESSAGE_LENGTH ? trimmed : `${trimmed.slice(0, MAX_MESSAGE_LENGTH - 1)}…`;
}
