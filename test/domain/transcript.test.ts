import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, it, expect } from "vitest";
import {
  dedupeTranscriptRows,
  parseTranscriptLine,
  type TranscriptLimitRow,
  type TranscriptRow,
  type TranscriptUsageRow,
} from "../../src/domain/transcript.js";
import { tokenTotal } from "../../src/domain/tokens.js";
import type { TokenCounts } from "../../src/domain/usage.js";

const FIXTURES = fileURLToPath(new URL("../fixtures/transcripts/", import.meta.url));
const OPTIONS = { defaultTimeZone: "Europe/Berlin" };

const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

/** Every line of every .jsonl file under a config dir, files in path order. */
function configLines(config: string): string[] {
  const files = (readdirSync(join(FIXTURES, config), { recursive: true, encoding: "utf8" }) as string[])
    .filter((file) => file.endsWith(".jsonl"))
    .sort();
  return files.flatMap((file) => readFileSync(join(FIXTURES, config, file), "utf8").split("\n"));
}

function parseConfig(config: string): TranscriptRow[] {
  return dedupeTranscriptRows(
    configLines(config).flatMap((line) => {
      const row = parseTranscriptLine(line, OPTIONS);
      return row ? [row] : [];
    }),
  );
}

function tokens(input: number, output: number, cacheCreation: number, cacheRead: number): TokenCounts {
  return {
    inputTokens: input,
    outputTokens: output,
    cacheCreationInputTokens: cacheCreation,
    cacheReadInputTokens: cacheRead,
  };
}

const usageRows = (rows: TranscriptRow[]) => rows.filter((row): row is TranscriptUsageRow => row.kind === "usage");
const limitRows = (rows: TranscriptRow[]) => rows.filter((row): row is TranscriptLimitRow => row.kind === "limit");

const SESSION_A = "3f9a1c52-7d0e-4b8e-9a61-0c2d5e8f4a17";

describe("transcript fixtures", () => {
  it("config-a: block lines count once, priced by model; the synthetic row is a limit", () => {
    const rows = parseConfig("config-a");
    const usage = usageRows(rows);
    expect(usage.map((row) => ({ ...row, costUsd: undefined }))).toEqual([
      {
        kind: "usage",
        key: "msg_01Aaaaaaaaaaaaaaaaaaaaaa:req_011CAaaaaaaaaaaaaaaaaaaa",
        sessionId: SESSION_A,
        at: Date.parse("2026-11-23T09:12:14.120Z"),
        model: "claude-sonnet-4-5-20250929",
        tokens: tokens(4, 412, 9120, 12040),
        costUsd: undefined,
        costSource: "priced",
        sidechain: false,
      },
      {
        kind: "usage",
        key: "msg_01Bbbbbbbbbbbbbbbbbbbbbb:req_011CBbbbbbbbbbbbbbbbbbbb",
        sessionId: SESSION_A,
        at: Date.parse("2026-11-23T10:47:31.500Z"),
        model: "claude-opus-4-1-20250805",
        tokens: tokens(6, 988, 2048, 21160),
        costUsd: undefined,
        costSource: "priced",
        sidechain: false,
      },
      {
        kind: "usage",
        key: "msg_01Ssssssssssssssssssssss:req_011CSsssssssssssssssssss",
        sessionId: SESSION_A,
        at: Date.parse("2026-11-23T09:13:40.002Z"),
        model: "claude-haiku-4-5-20251001",
        tokens: tokens(41200, 1480, 0, 0),
        costUsd: undefined,
        costSource: "priced",
        sidechain: true,
      },
    ]);
    expect(usage[0]?.costUsd).toBeCloseTo(0.044004, 10);
    expect(usage[1]?.costUsd).toBeCloseTo(0.14433, 10);
    expect(usage[2]?.costUsd).toBeCloseTo(0.0486, 10);

    expect(limitRows(rows)).toEqual([
      {
        kind: "limit",
        key: "2f0c9b8a-7d6e-4f5a-8b4c-3d2e1f0a9b8c",
        at: Date.parse("2026-11-23T14:02:00.000Z"),
        sessionId: SESSION_A,
        signal: {
          window: "five_hour",
          resetsAt: 1795456800000,
          estimated: false,
          message: "You've hit your 5-hour limit · resets 6pm (UTC)",
        },
      },
    ]);
    // The limit row sits after the Opus line, as in the file.
    expect(rows.map((row) => row.kind)).toEqual(["usage", "usage", "limit", "usage"]);
  });

  it("config-legacy: costUSD is used, the epoch limit text is exact, junk is skipped", () => {
    const lines = configLines("config-legacy").filter((line) => line.trim() !== "");
    const parsed = lines.map((line) => parseTranscriptLine(line, OPTIONS));
    expect(parsed.map((row) => row?.kind)).toEqual(["usage", "limit", undefined, undefined]);

    const [usage, limit] = parsed;
    expect(usage).toEqual({
      kind: "usage",
      key: "msg_01Llllllllllllllllllllll:req_011CLlllllllllllllllllll",
      sessionId: "0a9b8c7d-6e5f-4a3b-8c1d-0e9f8a7b6c5d",
      at: Date.parse("2025-06-23T14:10:00.000Z"),
      model: "claude-sonnet-4-20250514",
      tokens: tokens(120, 1500, 15000, 40000),
      costUsd: 0.10512,
      costSource: "line",
      sidechain: false,
    });
    expect(limit).toEqual({
      kind: "limit",
      key: "5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d",
      at: Date.parse("2025-06-23T15:58:00.000Z"),
      sessionId: "0a9b8c7d-6e5f-4a3b-8c1d-0e9f8a7b6c5d",
      signal: {
        window: "five_hour",
        resetsAt: 1750708800000,
        estimated: false,
        message: "Claude AI usage limit reached|1750708800",
      },
    });
    expect(parseConfig("config-legacy")).toHaveLength(2);
  });
});

interface LineInit {
  row?: Record<string, unknown>;
  message?: Record<string, unknown>;
  usage?: Record<string, unknown>;
  text?: string;
}

const AT = "2026-11-23T12:00:00.000Z";

/** assistantLine builds a transcript assistant line; `undefined` values delete a default field. */
function assistantLine({ row = {}, message = {}, usage = {}, text = "ok" }: LineInit = {}): string {
  return JSON.stringify({
    type: "assistant",
    timestamp: AT,
    sessionId: "s-1",
    requestId: "req_1",
    uuid: "u-1",
    isSidechain: false,
    ...row,
    message: {
      id: "msg_1",
      model: "claude-sonnet-4-5-20250929",
      content: [{ type: "text", text }],
      usage: {
        input_tokens: 10,
        output_tokens: 20,
        cache_creation_input_tokens: 0,
        cache_read_input_tokens: 0,
        ...usage,
      },
      ...message,
    },
  });
}

function limitLine(init: LineInit & { text: string }): string {
  return assistantLine({
    ...init,
    row: { isApiErrorMessage: true, ...init.row },
    message: { model: "<synthetic>", ...init.message },
    usage: { input_tokens: 0, output_tokens: 0, ...init.usage },
  });
}

describe("parseTranscriptLine(): usage rows", () => {
  it.each([
    { name: "plain row", init: {}, tokens: tokens(10, 20, 0, 0), key: "msg_1:req_1" },
    {
      name: "no requestId: no key",
      init: { row: { requestId: undefined } },
      tokens: tokens(10, 20, 0, 0),
      key: undefined,
    },
    { name: "empty message id: no key", init: { message: { id: "" } }, tokens: tokens(10, 20, 0, 0), key: undefined },
    {
      name: "negative, string and null counts count as 0",
      init: {
        usage: { input_tokens: -4, output_tokens: "20", cache_creation_input_tokens: null, cache_read_input_tokens: 7 },
      },
      tokens: tokens(0, 0, 0, 7),
      key: "msg_1:req_1",
    },
    {
      name: "counts beyond 2^53 count as 0",
      init: { usage: { input_tokens: 1e300, output_tokens: 3 } },
      tokens: tokens(0, 3, 0, 0),
      key: "msg_1:req_1",
    },
    {
      name: "usage missing, costUSD present",
      init: { row: { costUSD: 0.5 }, message: { usage: undefined } },
      tokens: tokens(0, 0, 0, 0),
      key: "msg_1:req_1",
    },
  ])("$name", ({ init, tokens: expected, key }) => {
    const row = parseTranscriptLine(assistantLine(init), OPTIONS);
    expect(row?.kind).toBe("usage");
    const usage = row as TranscriptUsageRow;
    expect(usage.tokens).toEqual(expected);
    expect(usage.key).toBe(key);
    expect(Number.isFinite(usage.costUsd)).toBe(true);
  });

  it.each([
    { name: "costUSD 0 is the line's", costUSD: 0, cost: 0, source: "line" },
    { name: "costUSD number is the line's", costUSD: 0.25, cost: 0.25, source: "line" },
    { name: "negative costUSD is priced", costUSD: -1, cost: (10 * 3 + 20 * 15) / 1e6, source: "priced" },
    { name: "string costUSD is priced", costUSD: "0.25", cost: (10 * 3 + 20 * 15) / 1e6, source: "priced" },
    { name: "no costUSD is priced", costUSD: undefined, cost: (10 * 3 + 20 * 15) / 1e6, source: "priced" },
  ])("$name", ({ costUSD, cost, source }) => {
    const row = parseTranscriptLine(assistantLine({ row: { costUSD } }), OPTIONS) as TranscriptUsageRow;
    expect(row.costSource).toBe(source);
    expect(row.costUsd).toBeCloseTo(cost, 10);
  });

  it('keeps sessionId, sidechain and a missing model as "unknown" (Sonnet prices)', () => {
    const row = parseTranscriptLine(
      assistantLine({ row: { isSidechain: true, sessionId: undefined }, message: { model: undefined } }),
      OPTIONS,
    ) as TranscriptUsageRow;
    expect(row).toMatchObject({ kind: "usage", model: "unknown", sidechain: true });
    expect(row).not.toHaveProperty("sessionId");
    expect(row.costUsd).toBeCloseTo(0.00033, 10);
  });

  it("an ordinary reply that talks about usage limits is usage, not a limit", () => {
    const row = parseTranscriptLine(
      assistantLine({ text: "You've hit your limit · resets 3pm (Europe/Berlin)" }),
      OPTIONS,
    );
    expect(row?.kind).toBe("usage");
  });
});

describe("parseTranscriptLine(): limit rows", () => {
  const at = Date.parse(AT);

  it.each([
    {
      name: "quotaLimits rejected wins over the text",
      line: limitLine({
        row: {
          apiError: "usage_limit_reached",
          quotaLimits: { status: "rejected", resetsAt: 1795456800, rateLimitType: "five_hour" },
        },
        text: "You've hit your limit · resets 9pm (UTC)",
      }),
      signal: {
        window: "five_hour",
        resetsAt: "2026-11-23T18:00:00.000Z",
        estimated: false,
        message: "You've hit your limit · resets 9pm (UTC)",
      },
    },
    {
      name: "quotaLimits without status is a limit; seven_day_opus is Opus-scoped",
      line: limitLine({ row: { quotaLimits: { resetsAt: "1795456800", rateLimitType: "seven_day_opus" } }, text: "" }),
      signal: {
        window: "seven_day_opus",
        resetsAt: "2026-11-23T18:00:00.000Z",
        estimated: false,
        message: "quotaLimits: seven_day_opus rejected",
        modelScope: "opus",
      },
    },
    {
      name: "quotaLimits without a reset takes the text's",
      line: limitLine({
        row: { quotaLimits: { status: "rejected", rateLimitType: "overage_mystery" } },
        text: "You've hit your weekly limit · resets 3pm (Europe/Berlin)",
      }),
      signal: {
        window: "seven_day",
        resetsAt: "2026-11-23T14:00:00.000Z",
        estimated: false,
        message: "You've hit your weekly limit · resets 3pm (Europe/Berlin)",
      },
    },
    {
      name: "text only: the reset is relative to the row's timestamp",
      line: limitLine({ text: "You've hit your limit · resets 11am (Europe/Berlin)" }),
      // 11am Berlin is 10:00Z, before the row's 12:00Z: the next day.
      signal: {
        window: "unknown",
        resetsAt: "2026-11-24T10:00:00.000Z",
        estimated: false,
        message: "You've hit your limit · resets 11am (Europe/Berlin)",
      },
    },
    {
      name: "text without a zone: the default zone, estimated",
      line: limitLine({ text: "5-hour limit reached ∙ resets 5pm" }),
      signal: {
        window: "five_hour",
        resetsAt: "2026-11-23T16:00:00.000Z",
        estimated: true,
        message: "5-hour limit reached ∙ resets 5pm",
      },
    },
    {
      name: "apiError without readable text: unknown window and reset",
      line: limitLine({ row: { apiError: "usage_limit_reached" }, message: { content: "   " }, text: "" }),
      signal: { window: "unknown", resetsAt: undefined, estimated: true, message: "usage_limit_reached" },
    },
    {
      name: "string content is read as text",
      line: limitLine({ message: { content: "Claude AI usage limit reached|1750708800" }, text: "" }),
      signal: {
        window: "five_hour",
        resetsAt: "2025-06-23T20:00:00.000Z",
        estimated: false,
        message: "Claude AI usage limit reached|1750708800",
      },
    },
  ])("$name", ({ line, signal }) => {
    const row = parseTranscriptLine(line, OPTIONS);
    expect(row?.kind).toBe("limit");
    const limit = row as TranscriptLimitRow;
    expect(limit.at).toBe(at);
    expect({ ...limit.signal, resetsAt: iso(limit.signal.resetsAt) }).toEqual(signal);
  });

  it.each([
    { name: "message id", init: {}, key: "msg_1" },
    { name: "uuid when no message id", init: { message: { id: undefined } }, key: "u-1" },
    {
      name: "timestamp when neither",
      init: { message: { id: "" }, row: { uuid: undefined } },
      key: `limit:${Date.parse(AT)}`,
    },
  ])("key falls back: $name", ({ init, key }) => {
    const row = parseTranscriptLine(limitLine({ ...init, text: "You've hit your usage limit" }), OPTIONS);
    expect(row).toMatchObject({ kind: "limit", key, sessionId: "s-1" });
  });

  it("clips a long limit text like limit-text does", () => {
    const row = parseTranscriptLine(limitLine({ text: `You've hit your usage limit ${"x".repeat(1000)}` }), OPTIONS);
    expect((row as TranscriptLimitRow).signal.message).toHaveLength(300);
  });

  it.each([
    {
      name: "quotaLimits allowed_warning",
      line: limitLine({
        row: { quotaLimits: { status: "allowed_warning", rateLimitType: "five_hour" } },
        text: "You've hit your limit",
      }),
    },
    {
      name: "server throttle text",
      line: limitLine({ text: "Server is temporarily limiting requests (not your usage limit)" }),
    },
    { name: "extra usage (billing) text", line: limitLine({ text: "You've hit your limit on extra usage" }) },
    { name: "synthetic row with other text", line: limitLine({ text: "No response requested." }) },
    {
      name: "synthetic row, not an error",
      line: assistantLine({ message: { model: "<synthetic>" }, text: "Interrupted" }),
    },
  ])("$name → undefined", ({ line }) => {
    expect(parseTranscriptLine(line, OPTIONS)).toBeUndefined();
  });

  it("a timestamp at the end of time still gives a limit, without throwing", () => {
    const line = limitLine({
      row: { timestamp: "+275760-09-13T00:00:00.000Z" },
      text: "You've hit your limit · resets 3pm (UTC)",
    });
    const row = parseTranscriptLine(line, OPTIONS);
    expect(row).toMatchObject({ kind: "limit", signal: { estimated: true } });
  });
});

describe("parseTranscriptLine(): skipped and garbage input", () => {
  it.each([
    { name: "empty", line: "" },
    { name: "whitespace", line: "  \t " },
    { name: "not JSON", line: "this line is not json" },
    { name: "torn JSON", line: assistantLine().slice(0, 80) },
    { name: "null", line: "null" },
    { name: "array", line: "[]" },
    { name: "array of rows", line: `[${assistantLine()}]` },
    { name: "number", line: "42" },
    { name: "string", line: '"assistant"' },
    { name: "true", line: "true" },
    { name: "empty object", line: "{}" },
    { name: "user row", line: assistantLine({ row: { type: "user" } }) },
    { name: "summary row", line: '{"type":"summary","summary":"Old session","leafUuid":"x"}' },
    { name: "no timestamp", line: assistantLine({ row: { timestamp: undefined } }) },
    { name: "timestamp not ISO", line: assistantLine({ row: { timestamp: "Tuesday" } }) },
    { name: "timestamp invalid date", line: assistantLine({ row: { timestamp: "2026-13-45T99:00:00Z" } }) },
    { name: "timestamp as a number", line: assistantLine({ row: { timestamp: 1795456800000 } }) },
    { name: "all-zero tokens, no cost", line: assistantLine({ usage: { input_tokens: 0, output_tokens: 0 } }) },
    {
      name: "message is a string",
      line: JSON.stringify({ type: "assistant", timestamp: AT, requestId: "r", message: "hi" }),
    },
    { name: "message null", line: JSON.stringify({ type: "assistant", timestamp: AT, message: null }) },
    { name: "usage is an array", line: assistantLine({ message: { usage: [1, 2, 3] } }) },
    { name: "negative tokens only", line: assistantLine({ usage: { input_tokens: -10, output_tokens: -1e9 } }) },
    {
      name: "NaN-ish tokens",
      line: assistantLine({ usage: { input_tokens: "NaN", output_tokens: {}, cache_read_input_tokens: [] } }),
    },
    { name: "deeply nested JSON", line: `${"[".repeat(100_000)}${"]".repeat(100_000)}` },
    {
      name: "huge number literal",
      line: '{"type":"assistant","timestamp":"2026-11-23T12:00:00Z","message":{"usage":{"input_tokens":1e999}}}',
    },
    {
      name: "wrong-typed everything",
      line: '{"type":"assistant","timestamp":"2026-11-23T12:00:00Z","message":{"id":5,"model":[],"content":7,"usage":"x"},"quotaLimits":3,"isApiErrorMessage":"yes"}',
    },
  ])("$name → undefined", ({ line }) => {
    expect(() => parseTranscriptLine(line, OPTIONS)).not.toThrow();
    expect(parseTranscriptLine(line, OPTIONS)).toBeUndefined();
  });

  it.each([
    {
      name: "synthetic with quotaLimits of wrong types",
      row: { quotaLimits: { status: 5, resetsAt: "soon", rateLimitType: {} } },
    },
    {
      name: "content blocks of junk",
      row: {},
      message: {
        content: [null, 1, "x", { type: "text", text: 5 }, { type: "text", text: "You've hit your usage limit" }],
      },
    },
    { name: "invalid default zone", row: {}, options: { defaultTimeZone: "Not/AZone" } },
    { name: "negative quota reset", row: { quotaLimits: { status: "rejected", resetsAt: -5 } } },
  ])("$name: a limit, no throw", ({ row, message, options }) => {
    const line = limitLine({ row, message: message ?? {}, text: "5-hour limit reached ∙ resets 5pm" });
    const parsed = parseTranscriptLine(line, options ?? OPTIONS);
    expect(parsed?.kind).toBe("limit");
  });
});

describe("dedupeTranscriptRows()", () => {
  const usage = (key: string | undefined, output: number, tag: string): TranscriptUsageRow => ({
    kind: "usage",
    ...(key === undefined ? {} : { key }),
    at: 0,
    model: tag,
    tokens: tokens(1, output, 0, 0),
    costUsd: 0,
    costSource: "priced",
    sidechain: false,
  });
  const limit = (key: string, tag: string): TranscriptLimitRow => ({
    kind: "limit",
    key,
    at: 0,
    signal: { window: "five_hour", estimated: true, message: tag },
  });
  const tags = (rows: TranscriptRow[]) =>
    rows.map((row) =>
      row.kind === "usage" ? row.model : row.kind === "limit" ? row.signal.message : `costs:${row.totalCostUsd}`,
    );

  it.each([
    { name: "empty", rows: [], expected: [] },
    {
      name: "larger later line replaces, at the first position",
      rows: [usage("a", 1, "a1"), usage("b", 5, "b"), usage("a", 9, "a2")],
      expected: ["a2", "b"],
    },
    { name: "smaller later line is dropped", rows: [usage("a", 9, "a1"), usage("a", 1, "a2")], expected: ["a1"] },
    { name: "ties keep the first", rows: [usage("a", 3, "a1"), usage("a", 3, "a2")], expected: ["a1"] },
    {
      name: "rows without key are all kept",
      rows: [usage(undefined, 1, "x"), usage(undefined, 1, "y")],
      expected: ["x", "y"],
    },
    {
      name: "limit rows keep the first per key",
      rows: [limit("m", "l1"), usage("m", 1, "u"), limit("m", "l2"), limit("n", "l3")],
      expected: ["l1", "u", "l3"],
    },
    {
      name: "order otherwise preserved",
      rows: [usage("c", 1, "c"), limit("l", "l"), usage(undefined, 1, "k"), usage("c", 2, "c2"), usage("d", 1, "d")],
      expected: ["c2", "l", "k", "d"],
    },
  ])("$name", ({ rows, expected }) => {
    const input: TranscriptRow[] = [...rows];
    expect(tags(dedupeTranscriptRows(input))).toEqual(expected);
    expect(input).toEqual(rows);
  });
});

describe("tokenTotal()", () => {
  it("sums the four counts", () => {
    expect(tokenTotal(tokens(1, 20, 300, 4000))).toBe(4321);
  });
});
