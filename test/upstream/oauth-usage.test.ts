import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { RateLimitReading } from "../../src/domain/index.js";
import { parseOAuthUsage } from "../../src/upstream/index.js";

function fixture(name: string): unknown {
  return JSON.parse(readFileSync(new URL(`../fixtures/oauth-usage/${name}`, import.meta.url), "utf8"));
}

const at = (iso: string) => Date.parse(iso);

describe("parseOAuthUsage", () => {
  const cases: { name: string; readings: RateLimitReading[] }[] = [
    {
      name: "2025-11.json",
      readings: [
        {
          window: "five_hour",
          source: "oauth",
          status: "allowed",
          utilization: 0.5,
          resetsAt: at("2026-11-23T17:59:59.753369+00:00"),
        },
        {
          window: "seven_day",
          source: "oauth",
          status: "allowed",
          utilization: 0.2,
          resetsAt: at("2026-11-27T17:59:59.753394+00:00"),
        },
        {
          window: "seven_day_sonnet",
          source: "oauth",
          status: "allowed",
          utilization: 0.04,
          resetsAt: at("2026-11-28T09:59:59.753406+00:00"),
        },
      ],
    },
    {
      name: "2026-limits.json",
      readings: [
        {
          window: "five_hour",
          source: "oauth",
          status: "allowed",
          utilization: 0.33,
          resetsAt: at("2026-11-23T19:00:00.528743+00:00"),
        },
        {
          window: "seven_day",
          source: "oauth",
          status: "allowed",
          utilization: 0.13,
          resetsAt: at("2026-11-29T00:59:59.951713+00:00"),
        },
        {
          window: "seven_day_opus",
          source: "oauth",
          status: "allowed",
          utilization: 0.21,
          resetsAt: at("2026-11-29T00:59:59.951713+00:00"),
        },
        {
          window: "seven_day_sonnet",
          source: "oauth",
          status: "allowed",
          utilization: 0.01,
          resetsAt: at("2026-11-29T00:59:59.951713+00:00"),
        },
      ],
    },
    {
      name: "exhausted-5h.json",
      readings: [
        {
          window: "five_hour",
          source: "oauth",
          status: "rejected",
          utilization: 1,
          resetsAt: at("2026-11-23T18:00:00+00:00"),
        },
        {
          window: "seven_day",
          source: "oauth",
          status: "allowed",
          utilization: 0.59,
          resetsAt: at("2026-11-27T08:00:00+00:00"),
        },
      ],
    },
  ];

  it.each(cases)("reads $name", ({ name, readings }) => {
    expect(parseOAuthUsage(fixture(name))).toStrictEqual(readings);
  });

  it("keeps JavaScript's millisecond rounding of microsecond timestamps", () => {
    const [fiveHour] = parseOAuthUsage(fixture("2025-11.json"));
    expect(fiveHour?.resetsAt).toBe(1795456799753);
  });

  it("reads limits[] alone when the top-level windows are absent", () => {
    const body = fixture("2026-limits.json") as Record<string, unknown>;
    const limitsOnly = { limits: body["limits"] };
    expect(parseOAuthUsage(limitsOnly)).toStrictEqual([
      {
        window: "five_hour",
        source: "oauth",
        status: "allowed",
        utilization: 0.33,
        resetsAt: at("2026-11-23T19:00:00.528743+00:00"),
      },
      {
        window: "seven_day",
        source: "oauth",
        status: "allowed",
        utilization: 0.13,
        resetsAt: at("2026-11-29T00:59:59.951713+00:00"),
      },
      {
        window: "seven_day_opus",
        source: "oauth",
        status: "allowed",
        utilization: 0.21,
        resetsAt: at("2026-11-29T00:59:59.951713+00:00"),
      },
    ]);
  });

  it("prefers the top-level window and fills null ones from limits[], one reading per window", () => {
    const readings = parseOAuthUsage({
      five_hour: { utilization: 40, resets_at: "2026-11-23T19:00:00Z" },
      seven_day_opus: null,
      limits: [
        { kind: "session", percent: 90, resets_at: "2026-11-23T20:00:00Z" },
        {
          kind: "weekly_scoped",
          percent: 85,
          resets_at: "2026-11-29T01:00:00Z",
          scope: { model: { display_name: "Opus" } },
        },
        { kind: "weekly_scoped", percent: 50, scope: { model: { display_name: "Opus 5" } } },
        { kind: "weekly_scoped", percent: 100, scope: { model: { display_name: "Sonnet" } } },
        { kind: "weekly_scoped", percent: 10, scope: { model: { display_name: "Haiku" } } },
        { kind: "weekly_all", percent: 99, is_active: false },
        { kind: "monthly_something", percent: 1 },
      ],
    });
    expect(readings).toStrictEqual([
      {
        window: "five_hour",
        source: "oauth",
        status: "allowed",
        utilization: 0.4,
        resetsAt: at("2026-11-23T19:00:00Z"),
      },
      {
        window: "seven_day_opus",
        source: "oauth",
        status: "allowed_warning",
        utilization: 0.85,
        resetsAt: at("2026-11-29T01:00:00Z"),
      },
      { window: "seven_day_sonnet", source: "oauth", status: "rejected", utilization: 1 },
    ]);
    expect(new Set(readings.map((r) => r.window)).size).toBe(readings.length);
  });

  it("sets the status from the percent: warning from 80, rejected from 100", () => {
    const status = (utilization: number) => parseOAuthUsage({ five_hour: { utilization } })[0]?.status;
    expect(status(79.9)).toBe("allowed");
    expect(status(80)).toBe("allowed_warning");
    expect(status(99.9)).toBe("allowed_warning");
    expect(status(100)).toBe("rejected");
    expect(status(120)).toBe("rejected");
  });

  it("ignores seven_day_oauth_apps and unknown keys", () => {
    expect(
      parseOAuthUsage({
        seven_day_oauth_apps: { utilization: 70, resets_at: "2026-11-29T00:00:00Z" },
        seven_day_overage: { utilization: 70 },
        extra_usage: { is_enabled: true, utilization: 12 },
      }),
    ).toStrictEqual([]);
  });

  it("keeps a reading whose reset time is missing or unreadable, without resetsAt", () => {
    expect(parseOAuthUsage({ seven_day: { utilization: "12.5", resets_at: "soon" } })).toStrictEqual([
      { window: "seven_day", source: "oauth", status: "allowed", utilization: 0.125 },
    ]);
  });

  it.each<[string, unknown]>([
    ["undefined", undefined],
    ["null", null],
    ["a string", '{"five_hour":{"utilization":50}}'],
    ["a number", 42],
    ["an array", [{ five_hour: { utilization: 50 } }]],
    ["an empty object", {}],
    ["windows of the wrong type", { five_hour: 50, seven_day: [1], seven_day_opus: "x" }],
    [
      "bad utilizations",
      {
        five_hour: { utilization: null },
        seven_day: { utilization: -1 },
        seven_day_opus: { utilization: "lots" },
        seven_day_sonnet: { utilization: Number.NaN },
      },
    ],
    ["limits not an array", { limits: { kind: "session", percent: 3 } }],
    [
      "malformed limits",
      {
        limits: [
          null,
          1,
          "session",
          { kind: "session" },
          { kind: "weekly_scoped", percent: 3 },
          { kind: "weekly_scoped", percent: 3, scope: { model: "Opus" } },
        ],
      },
    ],
  ])("returns [] for %s", (_name, body) => {
    expect(parseOAuthUsage(body)).toStrictEqual([]);
  });
});
