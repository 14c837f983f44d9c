/**
 * The `anthropic-ratelimit-unified-*` response headers on subscription traffic
 * read into utilization readings and, on a rejecting 429, a LimitSignal.
 * Header units: utilization is a 0-1 fraction, resets are epoch seconds.
 */

import { epochSecondsToMs } from "./reset-time.js";
import type { LimitSignal, LimitWindow, ModelScope, RateLimitReading, TransientSignal } from "./usage.js";

/** RateLimitHeaderResult is what the headers of one HTTP response say. */
export interface RateLimitHeaderResult {
  readings: RateLimitReading[];
  limit?: LimitSignal;
  transient?: TransientSignal;
}

/** HeaderMap accepts plain records and Node's IncomingHttpHeaders alike. */
export type HeaderMap = Readonly<Record<string, string | readonly string[] | undefined>>;

type Status = RateLimitReading["status"];

const PREFIX = "anthropic-ratelimit-unified-";

const HEADER_WINDOWS: ReadonlyArray<readonly [string, LimitWindow]> = [
  ["5h", "five_hour"],
  ["7d", "seven_day"],
  // "oi" = overage included: a weekly cap the domain has no finer name for.
  ["7d_oi", "seven_day"],
  ["7d_opus", "seven_day_opus"],
  ["7d_sonnet", "seven_day_sonnet"],
  ["overage", "overage"],
];

const WINDOW_NAMES: Readonly<Record<string, LimitWindow>> = {
  five_hour: "five_hour",
  "5h": "five_hour",
  seven_day: "seven_day",
  "7d": "seven_day",
  seven_day_overage_included: "seven_day",
  "7d_oi": "seven_day",
  seven_day_opus: "seven_day_opus",
  seven_day_sonnet: "seven_day_sonnet",
  overage: "overage",
};

const SEVERITY: Readonly<Record<Status, number>> = { allowed: 0, allowed_warning: 1, rejected: 2 };

/**
 * limitWindowFromName maps an upstream window name (rateLimitType,
 * representative-claim, header infix) to a LimitWindow; "unknown" otherwise.
 * `seven_day_overage_included` / `7d_oi` fold into "seven_day".
 */
export function limitWindowFromName(name: unknown): LimitWindow {
  if (typeof name !== "string") return "unknown";
  return WINDOW_NAMES[name.trim().toLowerCase()] ?? "unknown";
}

/** modelScopeOf gives the model family a window is scoped to, if any. */
export function modelScopeOf(window: LimitWindow): ModelScope | undefined {
  if (window === "seven_day_opus") return "opus";
  if (window === "seven_day_sonnet") return "sonnet";
  return undefined;
}

/** parseRateLimitStatus accepts allowed | allowed_warning | rejected; undefined otherwise. */
export function parseRateLimitStatus(value: unknown): Status | undefined {
  if (typeof value !== "string") return undefined;
  const status = value.trim().toLowerCase();
  return status === "allowed" || status === "allowed_warning" || status === "rejected" ? status : undefined;
}

/** parseFraction reads a finite utilization >= 0 (a number or numeric string); undefined otherwise. */
export function parseFraction(value: unknown): number | undefined {
  const n = typeof value === "number" ? value : typeof value === "string" && value.trim() !== "" ? Number(value) : NaN;
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}

/**
 * parseRateLimitHeaders reads one response's status and headers (names in
 * any case). A 429 is a usage limit only when the unified headers say
 * rejected; the representative-claim names the binding window. A 429 without
 * them (request-scoped, `x-should-retry: true`) is a throttle with its
 * retry-after; any 5xx such as 529 overloaded is transient too; neither is a
 * limit.
 */
export function parseRateLimitHeaders(
  status: number,
  headers: HeaderMap,
  options: { now: number },
): RateLimitHeaderResult {
  const get = headerReader(headers);
  const unifiedStatus = parseRateLimitStatus(get(`${PREFIX}status`));
  const unifiedReset = epochSecondsToMs(get(`${PREFIX}reset`));
  // An unrecognised claim names no window we can bind; the rejected readings decide then.
  const claimWindow = limitWindowFromName(get(`${PREFIX}representative-claim`));
  const claimed = claimWindow === "unknown" ? undefined : claimWindow;

  const byWindow = new Map<LimitWindow, RateLimitReading>();
  for (const [infix, window] of HEADER_WINDOWS) {
    const reading = windowReading(get, infix, window);
    if (!reading) continue;
    const seen = byWindow.get(window);
    // 7d and 7d_oi share "seven_day": keep the one closer to its cap.
    if (!seen || isWorse(reading, seen)) byWindow.set(window, reading);
  }
  if (byWindow.size === 0 && unifiedStatus) {
    const window = claimed ?? "unknown";
    byWindow.set(
      window,
      withDefined({ window, source: "headers" as const, status: unifiedStatus, resetsAt: unifiedReset }),
    );
  }
  const readings = [...byWindow.values()];
  const result: RateLimitHeaderResult = { readings };

  // Overage "rejected" only means pay-as-you-go is off; it does not block the subscription.
  const rejected =
    unifiedStatus === "rejected" ||
    readings.some((reading) => reading.status === "rejected" && reading.window !== "overage");
  if (status === 429 && rejected) {
    result.limit = limitFrom(readings, claimed, unifiedReset, get("retry-after"), options.now);
  } else if (status === 429) {
    const retryAfter = get("retry-after");
    const until = retryAfterMs(retryAfter, options.now);
    result.transient = {
      kind: "throttle",
      message: `HTTP 429 request-scoped rate limit${retryAfter ? ` (retry-after ${retryAfter}s)` : ""}`,
      ...(until !== undefined ? { retryAfterMs: Math.max(0, until - options.now) } : {}),
    };
  } else if (status === 529) {
    result.transient = { kind: "overloaded", message: "HTTP 529 overloaded" };
  } else if (status >= 500) {
    result.transient = { kind: "server_error", message: `HTTP ${status} upstream error` };
  }
  return result;
}

function limitFrom(
  readings: RateLimitReading[],
  claimed: LimitWindow | undefined,
  unifiedReset: number | undefined,
  retryAfter: string | undefined,
  now: number,
): LimitSignal {
  const binding =
    (claimed && readings.find((reading) => reading.window === claimed)) ??
    latestRejected(readings.filter((reading) => reading.window !== "overage")) ??
    latestRejected(readings);
  const window = claimed ?? binding?.window ?? "unknown";
  const resetsAt = binding?.resetsAt ?? unifiedReset ?? retryAfterMs(retryAfter, now);
  const parts = [`HTTP 429: ${window} rejected`];
  if (retryAfter) parts.push(`retry-after ${retryAfter}s`);
  return withDefined<LimitSignal>({
    window,
    resetsAt,
    estimated: resetsAt === undefined,
    message: parts.join(", "),
    modelScope: modelScopeOf(window),
  });
}

function windowReading(
  get: (name: string) => string | undefined,
  infix: string,
  window: LimitWindow,
): RateLimitReading | undefined {
  const status = parseRateLimitStatus(get(`${PREFIX}${infix}-status`));
  const utilization = parseFraction(get(`${PREFIX}${infix}-utilization`));
  const resetsAt = epochSecondsToMs(get(`${PREFIX}${infix}-reset`));
  const surpassedThreshold = parseThreshold(get(`${PREFIX}${infix}-surpassed-threshold`));
  if (status === undefined && utilization === undefined && resetsAt === undefined) return undefined;
  return withDefined({
    window,
    source: "headers" as const,
    status: status ?? "allowed",
    utilization: utilization ?? floorFromThreshold(status, surpassedThreshold),
    resetsAt,
    surpassedThreshold,
  });
}

/**
 * floorFromThreshold: a window in allowed_warning past a threshold is used at
 * least that much, which is a reading when upstream gave no utilization.
 */
export function floorFromThreshold(
  status: Status | undefined,
  surpassedThreshold: number | undefined,
): number | undefined {
  return status === "allowed_warning" ? surpassedThreshold : undefined;
}

/** parseThreshold reads a warning threshold: a 0-1 fraction; undefined otherwise. */
export function parseThreshold(value: unknown): number | undefined {
  const n = parseFraction(value);
  return n !== undefined && n <= 1 ? n : undefined;
}

function isWorse(a: RateLimitReading, b: RateLimitReading): boolean {
  const bySeverity = SEVERITY[a.status] - SEVERITY[b.status];
  if (bySeverity !== 0) return bySeverity > 0;
  return (a.utilization ?? 0) > (b.utilization ?? 0);
}

function latestRejected(readings: RateLimitReading[]): RateLimitReading | undefined {
  let latest: RateLimitReading | undefined;
  for (const reading of readings) {
    if (reading.status !== "rejected") continue;
    if (!latest || (reading.resetsAt ?? 0) > (latest.resetsAt ?? 0)) latest = reading;
  }
  return latest;
}

function retryAfterMs(value: string | undefined, now: number): number | undefined {
  if (value === undefined || value.trim() === "") return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return now + Math.round(seconds * 1000);
  const date = Date.parse(value); // retry-after may also be an HTTP date
  return Number.isFinite(date) ? date : undefined;
}

function headerReader(headers: HeaderMap): (name: string) => string | undefined {
  const lower = new Map<string, string>();
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    const text = typeof value === "string" ? value : value.join(", ");
    lower.set(name.toLowerCase(), text.trim());
  }
  return (name) => lower.get(name);
}

/** withDefined drops undefined-valued keys so optional fields are absent, not undefined. */
function withDefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
