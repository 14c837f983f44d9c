import { readFileSync, readdirSync } from "node:fs";
import { describe, it, expect } from "vitest";
import { limitWindowFromName, parseRateLimitHeaders } from "../../src/domain/rate-limit-headers.js";
import type { LimitSignal, RateLimitReading, TransientSignal } from "../../src/domain/usage.js";

const FIXTURES = new URL("../fixtures/headers/", import.meta.url);

interface HeaderFixture {
  status: number;
  headers: Record<string, string>;
}

const fixture = (name: string) => JSON.parse(readFileSync(new URL(name, FIXTURES), "utf8")) as HeaderFixture;

const NOW = Date.parse("2026-11-23T13:00:00Z");
const at = (isoText: string) => Date.parse(isoText);

const FIXTURE_CASES: Array<{
  file: string;
  readings: RateLimitReading[];
  limit?: LimitSignal;
  transient?: TransientSignal;
}> = [
  {
    file: "200-allowed-warning.json",
    readings: [
      {
        window: "five_hour",
        source: "headers",
        status: "allowed",
        utilization: 0.41,
        resetsAt: at("2026-11-23T18:00:00Z"),
      },
      {
        window: "seven_day",
        source: "headers",
        status: "allowed_warning",
        utilization: 0.91,
        resetsAt: at("2026-11-27T08:00:00Z"),
        surpassedThreshold: 0.9,
      },
    ],
  },
  {
    file: "429-five-hour.json",
    readings: [
      {
        window: "five_hour",
        source: "headers",
        status: "rejected",
        utilization: 1,
        resetsAt: at("2026-11-23T18:00:00Z"),
      },
      {
        window: "seven_day",
        source: "headers",
        status: "allowed",
        utilization: 0.59,
        resetsAt: at("2026-11-27T08:00:00Z"),
      },
      { window: "overage", source: "headers", status: "rejected" },
    ],
    limit: {
      window: "five_hour",
      resetsAt: at("2026-11-23T18:00:00Z"),
      estimated: false,
      message: "HTTP 429: five_hour rejected, retry-after 2094s",
    },
  },
  {
    file: "429-request-scoped.json",
    readings: [],
    transient: { kind: "throttle", message: "HTTP 429 request-scoped rate limit (retry-after 3s)", retryAfterMs: 3000 },
  },
  { file: "529-overloaded.json", readings: [], transient: { kind: "overloaded", message: "HTTP 529 overloaded" } },
];

describe("parseRateLimitHeaders: fixtures", () => {
  it("has a case for every fixture file", () => {
    expect(FIXTURE_CASES.map((c) => c.file).sort()).toEqual(readdirSync(FIXTURES).sort());
  });

  it.each(FIXTURE_CASES)("$file", ({ file, readings, limit, transient }) => {
    const { status, headers } = fixture(file);
    const parsed = parseRateLimitHeaders(status, headers, { now: NOW });
    expect(parsed.readings).toEqual(readings);
    expect(parsed.limit).toEqual(limit);
    expect(parsed.transient).toEqual(transient);
  });
});

const P = "anthropic-ratelimit-unified-";

describe("parseRateLimitHeaders: behaviour", () => {
  it("reads header names in any case", () => {
    const parsed = parseRateLimitHeaders(
      200,
      { "Anthropic-Ratelimit-Unified-5h-Utilization": "0.25", "ANTHROPIC-RATELIMIT-UNIFIED-5H-RESET": "1795456800" },
      { now: NOW },
    );
    expect(parsed.readings).toEqual([
      {
        window: "five_hour",
        source: "headers",
        status: "allowed",
        utilization: 0.25,
        resetsAt: at("2026-11-23T18:00:00Z"),
      },
    ]);
  });

  it("folds 7d_oi into seven_day, keeping the reading closer to its cap", () => {
    const parsed = parseRateLimitHeaders(
      200,
      {
        [`${P}7d-status`]: "allowed",
        [`${P}7d-utilization`]: "0.3",
        [`${P}7d_oi-status`]: "allowed_warning",
        [`${P}7d_oi-utilization`]: "0.85",
        [`${P}7d_oi-reset`]: "1795766400",
      },
      { now: NOW },
    );
    expect(parsed.readings).toEqual([
      {
        window: "seven_day",
        source: "headers",
        status: "allowed_warning",
        utilization: 0.85,
        resetsAt: at("2026-11-27T08:00:00Z"),
      },
    ]);
    expect(parsed.limit).toBeUndefined();
  });

  it("binds a 429 to the representative claim", () => {
    const parsed = parseRateLimitHeaders(
      429,
      {
        [`${P}status`]: "rejected",
        [`${P}representative-claim`]: "seven_day",
        [`${P}5h-status`]: "allowed",
        [`${P}5h-reset`]: "1795456800",
        [`${P}7d-status`]: "rejected",
        [`${P}7d-utilization`]: "1.0",
        [`${P}7d-reset`]: "1795766400",
      },
      { now: NOW },
    );
    expect(parsed.limit?.window).toBe("seven_day");
    expect(parsed.limit?.resetsAt).toBe(at("2026-11-27T08:00:00Z"));
    expect(parsed.limit?.estimated).toBe(false);
  });

  it("without a claim, binds the rejected window with the latest reset (not overage)", () => {
    const parsed = parseRateLimitHeaders(
      429,
      {
        [`${P}5h-status`]: "rejected",
        [`${P}5h-reset`]: "1795456800",
        [`${P}7d_opus-status`]: "rejected",
        [`${P}7d_opus-reset`]: "1795766400",
        [`${P}overage-status`]: "rejected",
        [`${P}overage-reset`]: "1800000000",
      },
      { now: NOW },
    );
    expect(parsed.limit).toEqual<LimitSignal>({
      window: "seven_day_opus",
      modelScope: "opus",
      resetsAt: at("2026-11-27T08:00:00Z"),
      estimated: false,
      message: "HTTP 429: seven_day_opus rejected",
    });
  });

  it("falls back to the unified reset, then retry-after, then no reset", () => {
    const unified = parseRateLimitHeaders(
      429,
      { [`${P}status`]: "rejected", [`${P}reset`]: "1795456800" },
      { now: NOW },
    );
    expect(unified.readings).toEqual([
      { window: "unknown", source: "headers", status: "rejected", resetsAt: at("2026-11-23T18:00:00Z") },
    ]);
    expect(unified.limit?.resetsAt).toBe(at("2026-11-23T18:00:00Z"));
    expect(unified.limit?.window).toBe("unknown");

    const retry = parseRateLimitHeaders(429, { [`${P}status`]: "rejected", "retry-after": "600" }, { now: NOW });
    expect(retry.limit?.resetsAt).toBe(NOW + 600_000);
    expect(retry.limit?.estimated).toBe(false);

    const none = parseRateLimitHeaders(429, { [`${P}status`]: "rejected" }, { now: NOW });
    expect(none.limit?.resetsAt).toBeUndefined();
    expect(none.limit?.estimated).toBe(true);
  });

  it("a rejected status on a 200 is a reading, not a limit", () => {
    const parsed = parseRateLimitHeaders(200, { [`${P}overage-status`]: "rejected" }, { now: NOW });
    expect(parsed.readings).toEqual([{ window: "overage", source: "headers", status: "rejected" }]);
    expect(parsed.limit).toBeUndefined();
  });

  it.each<{ name: string; status: number; transient: TransientSignal }>([
    { name: "503", status: 503, transient: { kind: "server_error", message: "HTTP 503 upstream error" } },
    {
      name: "429 without retry-after",
      status: 429,
      transient: { kind: "throttle", message: "HTTP 429 request-scoped rate limit" },
    },
  ])("$name -> transient, no limit", ({ status, transient }) => {
    const parsed = parseRateLimitHeaders(status, {}, { now: NOW });
    expect(parsed.limit).toBeUndefined();
    expect(parsed.transient).toEqual(transient);
  });

  it("a 429's retry-after (seconds or an HTTP date) is the throttle's pause", () => {
    const seconds = parseRateLimitHeaders(429, { "retry-after": "42" }, { now: NOW });
    expect(seconds.transient?.retryAfterMs).toBe(42_000);
    const date = parseRateLimitHeaders(429, { "Retry-After": new Date(NOW + 90_000).toUTCString() }, { now: NOW });
    expect(date.transient?.retryAfterMs).toBe(90_000);
  });

  it("an allowed_warning window without a utilization is used at least its surpassed threshold", () => {
    const parsed = parseRateLimitHeaders(
      200,
      { [`${P}7d-status`]: "allowed_warning", [`${P}7d-surpassed-threshold`]: "0.75" },
      { now: NOW },
    );
    expect(parsed.readings).toEqual([
      {
        window: "seven_day",
        source: "headers",
        status: "allowed_warning",
        utilization: 0.75,
        surpassedThreshold: 0.75,
      },
    ]);
    // A threshold that is not a fraction is not one.
    const bad = parseRateLimitHeaders(
      200,
      { [`${P}7d-status`]: "allowed_warning", [`${P}7d-surpassed-threshold`]: "75" },
      { now: NOW },
    );
    expect(bad.readings).toEqual([{ window: "seven_day", source: "headers", status: "allowed_warning" }]);
  });

  it("ignores malformed values", () => {
    const parsed = parseRateLimitHeaders(
      200,
      { [`${P}5h-utilization`]: "lots", [`${P}5h-reset`]: "-1", [`${P}5h-status`]: "fine" },
      { now: NOW },
    );
    expect(parsed.readings).toEqual([]);
    expect(parsed.transient).toBeUndefined();
  });

  it("accepts array header values (Node IncomingHttpHeaders)", () => {
    const parsed = parseRateLimitHeaders(200, { [`${P}5h-utilization`]: ["0.5"] }, { now: NOW });
    expect(parsed.readings).toEqual([{ window: "five_hour", source: "headers", status: "allowed", utilization: 0.5 }]);
  });
});

describe("limitWindowFromName", () => {
  it.each([
    ["five_hour", "five_hour"],
    ["seven_day", "seven_day"],
    ["seven_day_opus", "seven_day_opus"],
    ["seven_day_sonnet", "seven_day_sonnet"],
    ["seven_day_overage_included", "seven_day"],
    ["overage", "overage"],
    ["5h", "five_hour"],
    ["Seven_Day", "seven_day"],
    ["fortnight", "unknown"],
    [undefined, "unknown"],
  ])("%s -> %s", (name, window) => {
    expect(limitWindowFromName(name)).toBe(window);
  });
});
