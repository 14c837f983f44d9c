/**
 * The body of Claude's OAuth usage endpoint (`GET /api/oauth/usage`, what
 * Claude Code's `/usage` shows) read into utilization readings. Units differ
 * from the response headers: `utilization` / `percent` are percents 0-100 and
 * `resets_at` is an ISO string, so both are converted to the domain's 0-1
 * fractions and epoch ms here. Pure and lenient: the endpoint is undocumented
 * and has changed shape, so anything malformed is skipped, never thrown.
 */

import type { LimitWindow, RateLimitReading } from "../domain/index.js";

type Status = RateLimitReading["status"];

/** The windows the endpoint reports, in the order readings are returned. */
const WINDOWS = [
  "five_hour",
  "seven_day",
  "seven_day_opus",
  "seven_day_sonnet",
] as const satisfies readonly LimitWindow[];

type UsageWindow = (typeof WINDOWS)[number];

// Percent thresholds; the CLI warns from 80 % and upstream rejects at 100 %.
const WARNING_PERCENT = 80;
const REJECTED_PERCENT = 100;

/**
 * parseOAuthUsage reads the usage endpoint's body into one reading per window
 * it reports (five_hour, seven_day, seven_day_opus, seven_day_sonnet). The
 * top-level window objects win; the newer `limits[]` array fills in only the
 * windows they leave out (absent or null), so a window is never read twice.
 * Returns [] for anything that is not a usage body.
 */
export function parseOAuthUsage(body: unknown): RateLimitReading[] {
  if (!isRecord(body)) return [];
  const found = new Map<UsageWindow, RateLimitReading>();
  for (const window of WINDOWS) {
    const entry = body[window];
    if (!isRecord(entry)) continue;
    const reading = toReading(window, entry["utilization"], entry["resets_at"]);
    if (reading !== undefined) found.set(window, reading);
  }
  const limits = body["limits"];
  if (Array.isArray(limits)) {
    for (const limit of limits) {
      if (!isRecord(limit)) continue;
      // An inactive limit does not bind the account; reading it could cool a subscription down for nothing.
      if (limit["is_active"] === false) continue;
      const window = limitWindow(limit);
      if (window === undefined || found.has(window)) continue;
      const reading = toReading(window, limit["percent"], limit["resets_at"]);
      if (reading !== undefined) found.set(window, reading);
    }
  }
  return WINDOWS.flatMap((window) => {
    const reading = found.get(window);
    return reading === undefined ? [] : [reading];
  });
}

/** limitWindow maps a `limits[]` entry's kind (and model scope) to a window. */
function limitWindow(limit: Record<string, unknown>): UsageWindow | undefined {
  switch (limit["kind"]) {
    case "session":
      return "five_hour";
    case "weekly_all":
      return "seven_day";
    case "weekly_scoped": {
      const scope = limit["scope"];
      const model = isRecord(scope) ? scope["model"] : undefined;
      const name = isRecord(model) ? model["display_name"] : undefined;
      if (typeof name !== "string") return undefined;
      // Display names may grow a version ("Opus 4.5"); the family is what the cap is on.
      const family = name.toLowerCase();
      if (family.includes("opus")) return "seven_day_opus";
      if (family.includes("sonnet")) return "seven_day_sonnet";
      return undefined;
    }
    default:
      return undefined;
  }
}

/** toReading builds a reading from a percent and an ISO reset time; undefined without a usable percent. */
function toReading(window: UsageWindow, percentValue: unknown, resetsAtValue: unknown): RateLimitReading | undefined {
  const percent = parsePercent(percentValue);
  if (percent === undefined) return undefined;
  const reading: RateLimitReading = { window, source: "oauth", status: statusOf(percent), utilization: percent / 100 };
  const resetsAt = parseIsoMs(resetsAtValue);
  if (resetsAt !== undefined) reading.resetsAt = resetsAt;
  return reading;
}

function statusOf(percent: number): Status {
  if (percent >= REJECTED_PERCENT) return "rejected";
  if (percent >= WARNING_PERCENT) return "allowed_warning";
  return "allowed";
}

/** parsePercent reads a finite percent >= 0 (a number or numeric string). */
function parsePercent(value: unknown): number | undefined {
  const n = typeof value === "number" ? value : typeof value === "string" && value.trim() !== "" ? Number(value) : NaN;
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}

/** parseIsoMs reads an ISO timestamp as epoch ms (as Date.parse rounds it). */
function parseIsoMs(value: unknown): number | undefined {
  if (typeof value !== "string") return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
