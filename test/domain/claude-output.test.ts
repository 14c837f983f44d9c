import { readFileSync, readdirSync } from "node:fs";
import { describe, it, expect } from "vitest";
import { parseClaudeOutput } from "../../src/domain/claude-output.js";
import type {
  LimitSignal,
  RateLimitReading,
  TokenCounts,
  TransientSignal,
  UsageReport,
} from "../../src/domain/usage.js";

const FIXTURES = new URL("../fixtures/claude-cli/", import.meta.url);
const fixture = (name: string) => readFileSync(new URL(name, FIXTURES), "utf8");

const NOW = Date.parse("2026-11-23T13:00:00Z");
const OPTIONS = { now: NOW, defaultTimeZone: "Europe/Berlin" };

const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

function parseOk(stdout: string): UsageReport {
  const parsed = parseClaudeOutput(stdout, OPTIONS);
  if (!parsed.ok) throw new Error(`expected ok, got: ${parsed.reason}`);
  return parsed.report;
}

function tokens(input: number, output: number, cacheCreation: number, cacheRead: number): TokenCounts {
  return {
    inputTokens: input,
    outputTokens: output,
    cacheCreationInputTokens: cacheCreation,
    cacheReadInputTokens: cacheRead,
  };
}

const zero = tokens(0, 0, 0, 0);

interface FixtureCase {
  file: string;
  costUsd: number;
  tokens: TokenCounts;
  models: string[];
  durationMs: number;
  resultUuid: string | undefined;
  readings: Array<{
    window: string;
    source?: string;
    status: string;
    utilization?: number;
    resetsAt?: string;
    surpassedThreshold?: number;
  }>;
  limit?: { window: string; resetsAt: string | undefined; estimated: boolean; message: string; modelScope?: string };
  transient?: TransientSignal;
}

const FIXTURE_CASES: FixtureCase[] = [
  {
    file: "success.json",
    costUsd: 0.0612955,
    // modelUsage (with the haiku subagent) exceeds `usage`, so totals come from it.
    tokens: tokens(3 + 41200, 12 + 1480, 1234, 15000),
    models: ["claude-haiku-4-5-20251001", "claude-sonnet-4-5-20250929"],
    durationMs: 5123,
    resultUuid: "b1e2c3d4-0a1b-4c2d-8e3f-5a6b7c8d9e0f",
    readings: [],
  },
  {
    file: "verbose-array.json",
    costUsd: 0.0097275,
    tokens: tokens(3, 12, 1234, 15000),
    models: ["claude-sonnet-4-5-20250929"],
    durationMs: 5123,
    resultUuid: "b1e2c3d4-0a1b-4c2d-8e3f-5a6b7c8d9e0f",
    readings: [],
  },
  {
    file: "error-max-turns.json",
    costUsd: 0.4213,
    tokens: tokens(912, 3011, 20480, 88200),
    models: ["claude-opus-4-1-20250805"],
    durationMs: 48112,
    resultUuid: "deadbeef-0000-4111-8222-333344445555",
    readings: [],
  },
  {
    file: "stream-ok.ndjson",
    costUsd: 0.031665,
    tokens: tokens(10, 240, 5120, 30100),
    models: ["claude-sonnet-4-5-20250929"],
    durationMs: 9120,
    resultUuid: "e1e2e3e4-0000-4000-8000-000000000003",
    readings: [
      {
        window: "five_hour",
        source: "stream",
        status: "allowed_warning",
        utilization: 0.82,
        resetsAt: "2026-11-23T17:00:00.000Z",
        surpassedThreshold: 0.75,
      },
      { window: "overage", source: "stream", status: "rejected" },
    ],
  },
  {
    file: "stream-limit.ndjson",
    costUsd: 0,
    tokens: zero,
    models: [],
    durationMs: 700,
    resultUuid: "f0f0f0f0-0000-4000-8000-000000000003",
    readings: [
      {
        window: "five_hour",
        source: "stream",
        status: "rejected",
        utilization: 1,
        resetsAt: "2026-11-23T18:00:00.000Z",
      },
      { window: "overage", source: "stream", status: "rejected" },
    ],
    limit: {
      window: "five_hour",
      resetsAt: "2026-11-23T18:00:00.000Z",
      estimated: false,
      message: "You've hit your 5-hour limit · resets 6pm (UTC)",
    },
  },
  {
    file: "limit-current.json",
    costUsd: 0,
    tokens: zero,
    models: [],
    durationMs: 612,
    resultUuid: "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0",
    readings: [],
    limit: {
      window: "unknown",
      resetsAt: "2026-11-23T14:00:00.000Z",
      estimated: false,
      message: "You've hit your limit · resets 3pm (Europe/Berlin)",
    },
  },
  {
    file: "limit-legacy-5h.json",
    costUsd: 0,
    tokens: zero,
    models: [],
    durationMs: 401,
    resultUuid: undefined,
    readings: [],
    // No zone in the text: 5am in the default zone (Berlin), estimated.
    limit: {
      window: "five_hour",
      resetsAt: "2026-11-24T04:00:00.000Z",
      estimated: true,
      message: "5-hour limit reached ∙ resets 5am",
    },
  },
  {
    file: "limit-legacy-epoch.json",
    costUsd: 0,
    tokens: zero,
    models: [],
    durationMs: 377,
    resultUuid: undefined,
    readings: [],
    limit: {
      window: "five_hour",
      resetsAt: "2025-06-23T20:00:00.000Z",
      estimated: false,
      message: "Claude AI usage limit reached|1750708800",
    },
  },
  {
    file: "limit-session-2.1.2xx.json",
    costUsd: 0,
    tokens: zero,
    models: [],
    durationMs: 498,
    resultUuid: "6f5e4d3c-2b1a-4098-8765-43210fedcba9",
    readings: [],
    limit: {
      window: "five_hour",
      resetsAt: "2026-11-24T08:50:00.000Z",
      estimated: false,
      message: "You've hit your session limit · resets 12:50am (America/Los_Angeles)",
    },
  },
  {
    file: "limit-weekly.json",
    costUsd: 0,
    tokens: zero,
    models: [],
    durationMs: 540,
    resultUuid: "9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d",
    readings: [],
    limit: {
      window: "seven_day",
      resetsAt: "2026-11-28T09:00:00.000Z",
      estimated: false,
      message: "You've hit your weekly limit · resets Nov 28, 4am (America/New_York)",
    },
  },
  {
    file: "server-throttle-not-a-limit.json",
    costUsd: 0,
    tokens: zero,
    models: [],
    durationMs: 2210,
    resultUuid: "11111111-2222-4333-8444-555555555555",
    readings: [],
    transient: {
      kind: "throttle",
      message: "API Error: Server is temporarily limiting requests (not your usage limit) · Rate limited",
    },
  },
];

describe("parseClaudeOutput: fixtures", () => {
  it("has a case for every fixture file", () => {
    const files = readdirSync(FIXTURES).sort();
    expect(FIXTURE_CASES.map((c) => c.file).sort()).toEqual(files);
  });

  it.each(FIXTURE_CASES)("$file", (expected) => {
    const report = parseOk(fixture(expected.file));
    expect(report.costUsd).toBe(expected.costUsd);
    expect(report.tokens).toEqual(expected.tokens);
    expect(Object.keys(report.models).sort()).toEqual(expected.models);
    expect(report.durationMs).toBe(expected.durationMs);
    expect(report.resultUuid).toBe(expected.resultUuid);
    expect(report.readings.map((r) => ({ ...r, resetsAt: iso(r.resetsAt) }))).toEqual(
      expected.readings.map((r) => ({ ...r, resetsAt: r.resetsAt })),
    );
    if (expected.limit) {
      expect(report.limit).toBeDefined();
      expect({ ...report.limit, resetsAt: iso(report.limit?.resetsAt) }).toEqual(expected.limit);
    } else {
      expect(report.limit).toBeUndefined();
    }
    expect(report.transient).toEqual(expected.transient);
  });

  it("reads the Claude session id, which ties transcript rows to the report", () => {
    expect(parseOk(fixture("success.json")).claudeSessionId).toBe("3f9a1c52-7d0e-4b8e-9a61-0c2d5e8f4a17");
    expect(parseOk(fixture("stream-ok.ndjson")).claudeSessionId).toBe("44445555-6666-4777-8888-999900001111");
  });

  it("keeps per-model usage of success.json", () => {
    const report = parseOk(fixture("success.json"));
    expect(report.models["claude-sonnet-4-5-20250929"]).toEqual({ ...tokens(3, 12, 1234, 15000), costUsd: 0.0097275 });
    expect(report.models["claude-haiku-4-5-20251001"]).toEqual({ ...tokens(41200, 1480, 0, 0), costUsd: 0.051568 });
  });
});

const result = (fields: Record<string, unknown>) =>
  JSON.stringify({
    type: "result",
    subtype: "success",
    is_error: false,
    duration_ms: 10,
    total_cost_usd: 0.01,
    usage: { input_tokens: 1, output_tokens: 2, cache_creation_input_tokens: 3, cache_read_input_tokens: 4 },
    ...fields,
  });

const rateLimitEvent = (info: Record<string, unknown>) =>
  JSON.stringify({ type: "rate_limit_event", rate_limit_info: info });

describe("parseClaudeOutput: refused output (a result whose numbers are unusable)", () => {
  it.each([
    {
      name: "negative cost",
      stdout: result({ total_cost_usd: -0.5 }),
      reason: /^total_cost_usd: expected a finite number >= 0/,
    },
    {
      name: "infinite cost (1e999)",
      stdout: result({}).replace('"total_cost_usd":0.01', '"total_cost_usd":1e999'),
      reason: /^total_cost_usd: expected a finite number >= 0, got Infinity/,
    },
    {
      name: "string cost",
      stdout: result({ total_cost_usd: "0.01" }),
      reason: /^total_cost_usd: expected a finite number >= 0/,
    },
    {
      name: "missing cost on a success",
      stdout: result({ total_cost_usd: undefined }),
      reason: /^total_cost_usd: expected a finite number >= 0/,
    },
    {
      name: "negative tokens",
      stdout: result({ usage: { input_tokens: -1 } }),
      reason: /^usage\.input_tokens: expected a finite number >= 0/,
    },
    {
      name: "string tokens",
      stdout: result({ usage: { output_tokens: "12" } }),
      reason: /^usage\.output_tokens: expected/,
    },
    {
      name: "negative model cost",
      stdout: result({ modelUsage: { "claude-x": { inputTokens: 1, costUSD: -1 } } }),
      reason: /^modelUsage\["claude-x"\]\.costUSD: expected a finite number >= 0/,
    },
    { name: "negative duration", stdout: result({ duration_ms: -3 }), reason: /^duration_ms: expected/ },
  ])("$name", ({ stdout, reason }) => {
    const parsed = parseClaudeOutput(stdout, OPTIONS);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.reason).toMatch(reason);
  });
});

describe("parseClaudeOutput: output without a result is answered, not refused", () => {
  it.each([
    { name: "empty", stdout: "", format: "empty", partial: undefined },
    { name: "whitespace", stdout: "  \n\n ", format: "empty", partial: undefined },
    { name: "garbage text", stdout: "Error: command not found: claude", format: "text", partial: undefined },
    { name: "an answer in text format", stdout: "4\n", format: "text", partial: undefined },
    { name: "JSON scalar", stdout: "42", format: "text", partial: undefined },
    { name: "JSON that is no Claude message", stdout: '{"answer":4}', format: "text", partial: undefined },
    // NaN is not JSON: the only line is malformed, so this is text.
    {
      name: "NaN cost (invalid JSON)",
      stdout: '{"type":"result","total_cost_usd":NaN}',
      format: "text",
      partial: undefined,
    },
    {
      name: "stream cut after init",
      stdout: '{"type":"system","subtype":"init"}',
      format: "stream_json",
      partial: true,
    },
    {
      name: "verbose array without a result",
      stdout: '[{"type":"system"},{"type":"assistant"}]',
      format: "json_verbose",
      partial: true,
    },
  ])("$name -> $format, nothing counted", ({ stdout, format, partial }) => {
    const report = parseOk(stdout);
    expect(report.format).toBe(format);
    expect(report.partial).toBe(partial);
    expect(report.costUnknown).toBe(true);
    expect(report.costUsd).toBe(0);
    expect(report.tokens).toEqual(zero);
    expect(report.limit).toBeUndefined();
    expect(report.transient).toBeUndefined();
    expect(report.notes?.length).toBeGreaterThan(0);
  });

  it("reads a limit from text output only when it is the CLI's own one-line notice", () => {
    const notice = parseOk("You've hit your weekly limit · resets Nov 28, 4am (America/New_York)\n");
    expect(notice.format).toBe("text");
    expect(notice.limit?.window).toBe("seven_day");
    expect(iso(notice.limit?.resetsAt)).toBe("2026-11-28T09:00:00.000Z");
    const answer = parseOk(
      'Sure. When you see "You\'ve hit your weekly limit · resets Nov 28, 4am (America/New_York)", wait.',
    );
    expect(answer.limit).toBeUndefined();
  });

  it("reads a throttle from text output, and a 529 as overloaded", () => {
    expect(
      parseOk("API Error: Request rejected (429) · Number of request tokens has exceeded your per-minute rate limit")
        .transient?.kind,
    ).toBe("throttle");
    expect(parseOk("API Error: 529 Overloaded. This is a server-side issue, usually temporary").transient?.kind).toBe(
      "overloaded",
    );
  });

  it("keeps what a cut-short stream proved: readings, the retried error, the session", () => {
    const stdout = [
      '{"type":"system","subtype":"init","session_id":"s-1"}',
      rateLimitEvent({
        status: "allowed",
        rateLimitType: "five_hour",
        resetsAt: 1795456800,
        unifiedWindows: { five_hour: { utilization: 0.3, resetsAt: 1795456800, status: "allowed" } },
      }),
      '{"type":"system","subtype":"api_retry","attempt":1,"max_retries":10,"retry_delay_ms":3557,"error_status":429,"error":"rate_limit","session_id":"s-1"}',
      '{"type":"system","subtype":"api_retry","attempt":2,"max_retries":10,"retry_delay_ms":3262,"error_status":429,"error":"rate_limit","session_id":"s-1"}',
    ].join("\n");
    const report = parseOk(stdout);
    expect(report).toMatchObject({
      format: "stream_json",
      partial: true,
      costUnknown: true,
      costUsd: 0,
      claudeSessionId: "s-1",
    });
    expect(report.readings).toEqual([
      { window: "five_hour", source: "stream", status: "allowed", utilization: 0.3, resetsAt: 1795456800000 },
    ]);
    expect(report.transient).toEqual({
      kind: "throttle",
      message: "the CLI retried 2 times after HTTP 429 (rate_limit)",
    });
    expect(report.limit).toBeUndefined();
  });

  it("keeps a limit a cut-short stream carried", () => {
    const stdout = [
      '{"type":"system","subtype":"init","session_id":"s-2"}',
      rateLimitEvent({ status: "rejected", rateLimitType: "seven_day", resetsAt: 1795766400 }),
    ].join("\n");
    const report = parseOk(stdout);
    expect(report.partial).toBe(true);
    expect(report.limit).toEqual<LimitSignal>({
      window: "seven_day",
      resetsAt: 1795766400000,
      estimated: false,
      message: "rate_limit_event: seven_day rejected",
    });
  });

  it("marks a stream that goes on after its last result partial, keeping that result's cost", () => {
    const stdout = [
      result({ total_cost_usd: 0.2, uuid: "turn-1" }),
      '{"type":"assistant","message":{"id":"m2","usage":{"input_tokens":1,"output_tokens":1}}}',
      '{"type":"system","subtype":"api_retry","attempt":1,"error_status":529,"error":"overloaded"}',
    ].join("\n");
    const report = parseOk(stdout);
    expect(report).toMatchObject({ partial: true, costUsd: 0.2, resultUuid: "turn-1" });
    expect(report.costUnknown).toBeUndefined();
    expect(report.transient?.kind).toBe("overloaded");
  });
});

describe("parseClaudeOutput: behaviour", () => {
  it("takes the last result of a stream and does not sum results", () => {
    const stdout = [
      result({ total_cost_usd: 0.1, uuid: "first" }),
      "",
      "not json at all",
      '{"type":"assistant", "torn line',
      result({ total_cost_usd: 0.25, uuid: "second" }),
    ].join("\n");
    const report = parseOk(stdout);
    expect(report.costUsd).toBe(0.25);
    expect(report.resultUuid).toBe("second");
  });

  it("ignores unknown fields and non-object modelUsage", () => {
    const report = parseOk(result({ somethingNew: { deep: [1, 2] }, modelUsage: [{ model: "x" }] }));
    expect(report.costUsd).toBe(0.01);
    expect(report.tokens).toEqual(tokens(1, 2, 3, 4));
    expect(report.models).toEqual({});
  });

  it("uses `usage` when modelUsage sums are not larger", () => {
    const report = parseOk(result({ modelUsage: { m: { inputTokens: 1, outputTokens: 1, costUSD: 0.01 } } }));
    expect(report.tokens).toEqual(tokens(1, 2, 3, 4));
    expect(report.models.m).toEqual({ ...tokens(1, 1, 0, 0), costUsd: 0.01 });
  });

  it("skips the <synthetic> model", () => {
    const report = parseOk(result({ modelUsage: { "<synthetic>": { inputTokens: 99 }, real: { inputTokens: 100 } } }));
    expect(Object.keys(report.models)).toEqual(["real"]);
  });

  it("treats a missing cost on an error result as 0 and still reads the limit", () => {
    const report = parseOk(
      result({
        is_error: true,
        total_cost_usd: undefined,
        result: "You've hit your weekly limit · resets Nov 28, 4am (America/New_York)",
      }),
    );
    expect(report.costUsd).toBe(0);
    expect(report.limit?.window).toBe("seven_day");
  });

  it("a rejected rate_limit_event beats the text's estimate", () => {
    const stdout = [
      rateLimitEvent({ status: "allowed", rateLimitType: "seven_day", utilization: 0.4, resetsAt: 1795766400 }),
      rateLimitEvent({ status: "rejected", rateLimitType: "five_hour", utilization: 1, resetsAt: 1795456800 }),
      result({ is_error: true, total_cost_usd: 0, result: "5-hour limit reached ∙ resets 7pm" }),
    ].join("\n");
    const report = parseOk(stdout);
    expect(report.readings).toEqual<RateLimitReading[]>([
      { window: "seven_day", source: "stream", status: "allowed", utilization: 0.4, resetsAt: 1795766400000 },
      { window: "five_hour", source: "stream", status: "rejected", utilization: 1, resetsAt: 1795456800000 },
    ]);
    expect(report.transient).toBeUndefined();
    expect(report.limit).toEqual<LimitSignal>({
      window: "five_hour",
      resetsAt: Date.parse("2026-11-23T18:00:00Z"),
      estimated: false,
      message: "5-hour limit reached ∙ resets 7pm",
    });
  });

  it("a rejected event alone is a limit, with model scope from its window", () => {
    const stdout = [
      rateLimitEvent({ status: "rejected", rateLimitType: "seven_day_opus", resetsAt: 1795766400 }),
      result({}),
    ].join("\n");
    const report = parseOk(stdout);
    expect(report.limit).toEqual<LimitSignal>({
      window: "seven_day_opus",
      modelScope: "opus",
      resetsAt: 1795766400000,
      estimated: false,
      message: "rate_limit_event: seven_day_opus rejected",
    });
  });

  it("a rejected event without resetsAt keeps the text's reset", () => {
    const stdout = [
      rateLimitEvent({ status: "rejected", rateLimitType: "five_hour" }),
      result({ is_error: true, total_cost_usd: 0, result: "You've hit your limit · resets 6pm (UTC)" }),
    ].join("\n");
    const limit = parseOk(stdout).limit;
    expect(limit?.window).toBe("five_hour");
    expect(iso(limit?.resetsAt)).toBe("2026-11-23T18:00:00.000Z");
    expect(limit?.estimated).toBe(false);
  });

  it.each([
    { rateLimitType: "seven_day_overage_included", window: "seven_day" },
    { rateLimitType: "overage", window: "overage" },
    { rateLimitType: "seven_day_sonnet", window: "seven_day_sonnet" },
    { rateLimitType: "something_new", window: "unknown" },
  ])("maps rateLimitType $rateLimitType to $window", ({ rateLimitType, window }) => {
    const report = parseOk(
      [rateLimitEvent({ status: "allowed", rateLimitType, utilization: 0.1 }), result({})].join("\n"),
    );
    expect(report.readings).toEqual([{ window, source: "stream", status: "allowed", utilization: 0.1 }]);
    expect(report.limit).toBeUndefined();
  });

  it("skips rate_limit_events with an unknown status or bad numbers", () => {
    const stdout = [
      rateLimitEvent({ status: "maybe", rateLimitType: "five_hour" }),
      rateLimitEvent({ status: "allowed", rateLimitType: "five_hour", utilization: -1, resetsAt: "soon" }),
      result({}),
    ].join("\n");
    expect(parseOk(stdout).readings).toEqual([{ window: "five_hour", source: "stream", status: "allowed" }]);
  });

  it("does not read a limit from a successful answer's text", () => {
    const report = parseOk(result({ is_error: false, result: "You've hit your limit · resets 3pm (Europe/Berlin)" }));
    expect(report.limit).toBeUndefined();
    expect(report.transient).toBeUndefined();
  });

  it.each<{ name: string; fields: Record<string, unknown>; transient: TransientSignal }>([
    {
      name: "529 overloaded",
      fields: {
        api_error_status: 529,
        result: 'API Error: 529 {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}',
      },
      transient: {
        kind: "overloaded",
        message: 'API Error: 529 {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}',
      },
    },
    {
      name: "request-scoped 429",
      fields: {
        api_error_status: 429,
        result: "API Error: 429 Number of request tokens has exceeded your per-minute rate limit",
      },
      transient: {
        kind: "throttle",
        message: "API Error: 429 Number of request tokens has exceeded your per-minute rate limit",
      },
    },
    {
      name: "unrecognised 429 text",
      fields: { api_error_status: 429, result: "API Error: 429 something else" },
      transient: { kind: "throttle", message: "429: API Error: 429 something else" },
    },
    {
      name: "extra usage billing",
      fields: { api_error_status: 400, result: "API Error: 400 Extra usage is not enabled for this organization" },
      transient: { kind: "billing", message: "API Error: 400 Extra usage is not enabled for this organization" },
    },
    {
      name: "529 without text",
      fields: { api_error_status: 529 },
      transient: { kind: "overloaded", message: "api_error_status 529" },
    },
    {
      name: "502 without text",
      fields: { api_error_status: 502 },
      transient: { kind: "server_error", message: "api_error_status 502" },
    },
  ])("$name -> transient, no limit", ({ fields, transient }) => {
    const report = parseOk(result({ is_error: true, total_cost_usd: 0, ...fields }));
    expect(report.limit).toBeUndefined();
    expect(report.transient).toEqual(transient);
  });

  it("a rejected rate_limit_event without a window or reset is a throttle, never a limit (2.1.328)", () => {
    const stdout = [
      rateLimitEvent({ status: "rejected", isUsingOverage: false }),
      result({ is_error: true, total_cost_usd: 0, api_error_status: 429, result: "API Error: 429" }),
    ].join("\n");
    const report = parseOk(stdout);
    expect(report.limit).toBeUndefined();
    expect(report.readings).toEqual([]);
    expect(report.transient?.kind).toBe("throttle");
  });

  it("api_error usage_limit_reached is a limit even in a wording no pattern knows", () => {
    const report = parseOk(
      result({ is_error: true, total_cost_usd: 0, api_error: "usage_limit_reached", result: "Quota gone until later" }),
    );
    expect(report.limit).toEqual<LimitSignal>({
      window: "unknown",
      estimated: true,
      message: "Quota gone until later",
    });
    expect(report.transient).toBeUndefined();
  });

  it("reads unifiedWindows, the representative window and overage of one event (2.1.328)", () => {
    const stdout = [
      rateLimitEvent({
        status: "allowed_warning",
        resetsAt: 1796558400,
        rateLimitType: "seven_day",
        utilization: 0.85,
        overageStatus: "rejected",
        overageDisabledReason: "org_level_disabled",
        isUsingOverage: false,
        surpassedThreshold: 0.75,
        unifiedWindows: {
          five_hour: { utilization: 0.4, resetsAt: 1796221800, status: "allowed" },
          seven_day: { utilization: 0.85, resetsAt: 1796558400, status: "allowed_warning", surpassedThreshold: 0.75 },
        },
      }),
      result({}),
    ].join("\n");
    const report = parseOk(stdout);
    expect(report.readings).toEqual<RateLimitReading[]>([
      { window: "five_hour", source: "stream", status: "allowed", utilization: 0.4, resetsAt: 1796221800000 },
      {
        window: "seven_day",
        source: "stream",
        status: "allowed_warning",
        utilization: 0.85,
        resetsAt: 1796558400000,
        surpassedThreshold: 0.75,
      },
      { window: "overage", source: "stream", status: "rejected" },
    ]);
    expect(report.notes).toEqual([
      "upstream warns: seven_day at 85%, past the 75% warning threshold",
      "overage rejected (org_level_disabled)",
    ]);
  });

  it("a model-scoped rejection does not hide a rejected window of the whole subscription", () => {
    const stdout = [
      rateLimitEvent({
        status: "rejected",
        rateLimitType: "seven_day_opus",
        resetsAt: 1796385600,
        unifiedWindows: { five_hour: { utilization: 1, resetsAt: 1796218200, status: "rejected" } },
      }),
      result({ is_error: true, total_cost_usd: 0 }),
    ].join("\n");
    const limit = parseOk(stdout).limit;
    expect(limit?.window).toBe("five_hour");
    expect(limit?.modelScope).toBeUndefined();
  });

  it("takes tokens from the result, never from assistant messages (they carry the stream's start)", () => {
    const stdout = [
      '{"type":"assistant","message":{"id":"m1","model":"claude-sonnet-5-5","usage":{"input_tokens":3,"output_tokens":1,"cache_creation_input_tokens":1234,"cache_read_input_tokens":15000}}}',
      result({
        usage: {
          input_tokens: 3,
          output_tokens: 12,
          cache_creation_input_tokens: 1234,
          cache_read_input_tokens: 15000,
        },
      }),
    ].join("\n");
    expect(parseOk(stdout).tokens).toEqual(tokens(3, 12, 1234, 15000));
  });

  it("error subtypes read limit text from errors[]", () => {
    const report = parseOk(
      result({
        subtype: "error_during_execution",
        is_error: true,
        result: undefined,
        errors: ["You've hit your session limit · resets 6pm (UTC)"],
      }),
    );
    expect(report.limit?.window).toBe("five_hour");
    expect(iso(report.limit?.resetsAt)).toBe("2026-11-23T18:00:00.000Z");
  });
});
