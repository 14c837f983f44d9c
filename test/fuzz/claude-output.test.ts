/**
 * Fuzzing ReportUsage's claude_output against one real server: real Claude
 * outputs, almost-right shapes (a cost as a string, negative or fractional
 * tokens, modelUsage as an array, absurd rate_limit_event resets), deep
 * nesting, long stream-json and outputs near and over the size limits.
 */
import { Code } from "@connectrpc/connect";
import fc from "fast-check";
import { afterAll, beforeAll, describe, it } from "vitest";
import type { AuthPoolClient } from "../../src/client/index.js";
import { type TestPool, fixture, startTestPool } from "../support/test-server.js";
import { nastyString, printableId } from "./arbitraries.js";
import {
  CaseCounter,
  FreshClients,
  StateProbe,
  type Verdict,
  expectServing,
  judge,
  outcome,
  reportCases,
  timeoutFor,
} from "./fuzz-support.js";

let pool: TestPool;
const counter = new CaseCounter();
const probe = new StateProbe(() => pool);
const clients = new FreshClients();
const SESSIONS = ["co-0", "co-1", "co-2", "co-3", "co-4"];
const FIXTURES = [
  "error-max-turns.json",
  "limit-current.json",
  "limit-legacy-5h.json",
  "limit-legacy-epoch.json",
  "limit-session-2.1.2xx.json",
  "limit-weekly.json",
  "server-throttle-not-a-limit.json",
  "stream-limit.ndjson",
  "stream-ok.ndjson",
  "success.json",
  "verbose-array.json",
];
const fixtures: string[] = [];
const NOW_S = Date.parse("2026-11-23T10:00:00Z") / 1000;
const MAX_OUTPUT = 1_048_576; // limits.maxClaudeOutputBytes default
const MAX_REQUEST = 4_194_304; // limits.maxRequestBytes default

beforeAll(async () => {
  pool = await startTestPool();
  for (const id of SESSIONS) await pool.grpc.allocate({ sessionId: id });
  for (const name of FIXTURES) fixtures.push(await fixture(`claude-cli/${name}`));
});

afterAll(async () => {
  clients.close();
  await pool?.close();
  await reportCases("claude-output", counter);
});

/** Kind is what the server must do with an output: count it, refuse it naming claude_output, or either. */
type Kind = "ok" | "invalid" | "either";
type Case = { output: string; kind: Kind; note: string };

/** shortCase keeps fast-check's counterexample readable: outputs run to megabytes. */
function shortCase(c: Case): Case {
  return Object.assign(c, {
    [fc.toStringMethod]: () =>
      `{note: ${JSON.stringify(c.note)}, kind: ${c.kind}, ${Buffer.byteLength(c.output)} bytes: ${JSON.stringify(c.output.slice(0, 200))}…}`,
  });
}

const tokens = () => fc.integer({ min: 0, max: 200_000 });
const resultArb = fc.record({
  type: fc.constant("result"),
  subtype: fc.constantFrom("success", "error_max_turns", "error_during_execution"),
  is_error: fc.boolean(),
  total_cost_usd: fc.double({ min: 0, max: 3, noNaN: true }),
  duration_ms: fc.integer({ min: 0, max: 600_000 }),
  num_turns: fc.nat(50),
  result: fc.oneof(fc.lorem({ maxCount: 8 }), fc.constant("")),
  session_id: fc.uuid(),
  uuid: fc.uuid(),
  usage: fc.record({
    input_tokens: tokens(),
    output_tokens: tokens(),
    cache_creation_input_tokens: tokens(),
    cache_read_input_tokens: tokens(),
  }),
  modelUsage: fc.dictionary(
    fc.constantFrom("claude-opus-4-1-20250805", "claude-sonnet-4-5-20250929", "claude-haiku-4-5", "<synthetic>"),
    fc.record({
      inputTokens: tokens(),
      outputTokens: tokens(),
      cacheReadInputTokens: tokens(),
      cacheCreationInputTokens: tokens(),
      costUSD: fc.double({ min: 0, max: 1, noNaN: true }),
    }),
    { maxKeys: 3 },
  ),
});
type Result = Record<string, unknown>;

const deep = (depth: number, open: string, close: string, inner = "0") =>
  open.repeat(depth) + inner + close.repeat(depth);

/** Values that look like a number to a human but are not a usable JSON number. */
const notANumber = fc.constantFrom<unknown>(
  "0.1",
  "NaN",
  "Infinity",
  "-Infinity",
  "1e400",
  "",
  true,
  null,
  [],
  {},
  [0.1],
  { value: 0.1 },
);

/** Almost-right results: one field changed to a shape or value a careless producer might send. */
const mutatedResult: fc.Arbitrary<Case> = fc.tuple(resultArb, fc.nat()).chain(([base, pick]) => {
  const r: Result = { ...base, is_error: false };
  const mutations: fc.Arbitrary<Case>[] = [
    notANumber.map((v) => ({
      output: JSON.stringify({ ...r, total_cost_usd: v }),
      kind: "invalid",
      note: "total_cost_usd not a number",
    })),
    fc.constantFrom(-1, -0.0001, 100_000.01, 1e300, Number.MAX_VALUE).map((v) => ({
      output: JSON.stringify({ ...r, total_cost_usd: v }),
      kind: "invalid",
      note: "total_cost_usd out of range",
    })),
    fc.constant({ output: JSON.stringify({ ...r, total_cost_usd: -0 }), kind: "ok", note: "total_cost_usd -0" }),
    fc.constantFrom(undefined, null).map((v) => ({
      output: JSON.stringify({ ...r, is_error: true, total_cost_usd: v }),
      kind: "ok",
      note: "error result without a cost",
    })),
    fc.constant({
      output: JSON.stringify({ ...r, total_cost_usd: undefined }),
      kind: "invalid",
      note: "success without a cost",
    }),
    fc
      .constantFrom<unknown>(["a", "b"], { text: "x" }, 42, null, true)
      .map((v) => ({ output: JSON.stringify({ ...r, result: v }), kind: "ok", note: "result not a string" })),
    fc
      .constantFrom<unknown>([], [{ inputTokens: 5 }], "claude-opus", null, 7)
      .map((v) => ({ output: JSON.stringify({ ...r, modelUsage: v }), kind: "ok", note: "modelUsage not an object" })),
    fc
      .tuple(
        fc.constantFrom("inputTokens", "outputTokens", "cacheReadInputTokens", "costUSD"),
        fc.constantFrom<unknown>(-1, "5", "NaN", 1e13, 1e300, [], {}),
      )
      .map(([field, v]) => ({
        output: JSON.stringify({
          ...r,
          modelUsage: { "claude-opus-4-1": { inputTokens: 1, outputTokens: 1, costUSD: 0.1, [field]: v } },
        }),
        kind: field === "costUSD" && v === 1e13 ? "invalid" : "invalid",
        note: `modelUsage entry ${field}`,
      })),
    fc.constant({
      output: JSON.stringify({ ...r, modelUsage: { "claude-opus-4-1": { inputTokens: 1.5, outputTokens: 1 } } }),
      kind: "invalid",
      note: "fractional model tokens",
    }),
    fc.constantFrom(300, 20_000, 100_000).map((n) => ({
      // The parser names the entry by its key: the refusal must stay short all the same.
      output: JSON.stringify({ ...r, modelUsage: { ["m".repeat(n)]: { inputTokens: -1 } } }),
      kind: "invalid" as Kind,
      note: `model id of ${n} characters with a bad count`,
    })),
    fc.constantFrom(300, 20_000).map((n) => ({
      output: JSON.stringify({ ...r, modelUsage: { ["m".repeat(n)]: { inputTokens: 1 } } }),
      kind: (n > 256 ? "invalid" : "ok") as Kind,
      note: `model id of ${n} characters`,
    })),
    fc
      .constantFrom<unknown>([], null, "x", 3, [1, 2, 3])
      .map((v) => ({ output: JSON.stringify({ ...r, usage: v }), kind: "ok", note: "usage not an object" })),
    fc
      .tuple(
        fc.constantFrom("input_tokens", "output_tokens", "cache_read_input_tokens"),
        fc.constantFrom<unknown>(-1, "10", "NaN", 1e13, [], {}),
      )
      .map(([field, v]) => ({
        output: JSON.stringify({ ...r, usage: { ...(r.usage as object), [field]: v } }),
        kind: "invalid",
        note: `usage.${field}`,
      })),
    fc.constant({
      output: JSON.stringify({ ...r, usage: { input_tokens: 1.5 }, modelUsage: {} }),
      kind: "invalid",
      note: "fractional tokens",
    }),
    fc
      .constantFrom<unknown>("Result", "RESULT", " result", 5, null, undefined)
      // No Claude message type: the output is read as text (an answer may be JSON), and nothing is counted.
      .map((v) => ({ output: JSON.stringify({ ...r, type: v }), kind: "ok", note: "no result type" })),
    fc.constant({ output: JSON.stringify([[r]]), kind: "ok", note: "result nested in an array (text)" }),
    fc.constant({ output: JSON.stringify({ result: r }), kind: "ok", note: "result wrapped in an object (text)" }),
    fc.constantFrom<unknown>(7, null, ["x"], { id: 1 }).map((v) => ({
      output: JSON.stringify({ ...r, uuid: v, session_id: v }),
      kind: "ok",
      note: "uuid/session_id not strings",
    })),
    fc.constantFrom("a\u0000b", "x".repeat(129), "\u001b[2J", "s\nid").map((v) => ({
      output: JSON.stringify({ ...r, session_id: v }),
      kind: "invalid",
      note: "session_id with control characters or too long",
    })),
    fc.constantFrom("u".repeat(257), "\u0007bell").map((v) => ({
      output: JSON.stringify({ ...r, uuid: v }),
      kind: "invalid",
      note: "uuid with control characters or too long",
    })),
    fc
      .constantFrom<unknown>(-1, "10", 1e300, 8 * 86_400_000)
      .map((v) => ({ output: JSON.stringify({ ...r, duration_ms: v }), kind: "invalid", note: "duration_ms" })),
    fc
      .tuple(fc.constantFrom(10_000, 100_000), fc.constantFrom("extra", "usage", "modelUsage"))
      .map(([depth, where]) => {
        // Spliced as text: JSON.stringify itself overflows the stack on 10k levels.
        const value =
          where === "extra"
            ? { ...r, extra: "__DEEP__" }
            : { ...r, [where]: { ...(r[where] as object), nested: "__DEEP__" } };
        return {
          output: JSON.stringify(value).replace('"__DEEP__"', deep(depth, "[", "]")),
          // 100k levels may exceed what JSON.parse takes: then the output is not JSON at all.
          kind: (depth > 10_000 ? "either" : "ok") as Kind,
          note: `${depth} levels of nesting under ${where}`,
        };
      }),
    fc.constantFrom(1_000, 10_000).map((depth) => ({
      output: JSON.stringify({ ...r, total_cost_usd: "__DEEP__" }).replace('"__DEEP__"', deep(depth, "[", "]")),
      kind: "invalid",
      note: `total_cost_usd nested ${depth} deep`,
    })),
    // Read as text (no Claude message at the top): answered, nothing counted.
    fc.constantFrom(10_000, 100_000).map((depth) => ({
      output: deep(depth, "[", "]", JSON.stringify(r)),
      kind: "ok",
      note: `whole output nested ${depth} deep`,
    })),
    fc.constantFrom(10_000, 100_000).map((depth) => ({
      output: deep(depth, '{"a":', "}", JSON.stringify(r)),
      kind: "ok",
      note: `objects nested ${depth} deep`,
    })),
  ];
  return mutations[pick % mutations.length]!;
});

/** A rate_limit_event line; its verdict depends on whether its numbers are usable. */
const rateLimitEvent = fc
  .record({
    status: fc.constantFrom("allowed", "allowed_warning", "rejected", "REJECTED", "bogus", 3),
    rateLimitType: fc.oneof(
      fc.constantFrom("five_hour", "seven_day", "seven_day_opus", "seven_day_sonnet", "overage"),
      nastyString,
    ),
    resetsAt: fc.constantFrom<unknown>(
      NOW_S + 3600,
      String(NOW_S + 7200),
      (NOW_S + 60) * 1000,
      1e300,
      "1e300",
      99_999_999_999,
      9_999_999_999_999,
      8.64e15,
      1e12,
      -5,
      0,
      "NaN",
      "soon",
      null,
      undefined,
    ),
    utilization: fc.constantFrom<unknown>(0.5, 1, 0, 5, 50, 1e300, -1, "0.7", "NaN", null, undefined),
  })
  .map((info) => {
    const parsed = typeof info.status === "string" ? info.status.trim().toLowerCase() : undefined;
    const used = parsed === "allowed" || parsed === "allowed_warning" || parsed === "rejected";
    const seconds =
      typeof info.resetsAt === "number"
        ? info.resetsAt
        : typeof info.resetsAt === "string" && info.resetsAt.trim() !== ""
          ? Number(info.resetsAt)
          : Number.NaN;
    const resetMs = Number.isFinite(seconds) && seconds > 0 ? (seconds >= 1e12 ? seconds : seconds * 1000) : undefined;
    const util =
      typeof info.utilization === "number"
        ? info.utilization
        : typeof info.utilization === "string"
          ? Number(info.utilization)
          : Number.NaN;
    const badReset = resetMs !== undefined && resetMs > (NOW_S + 366 * 86_400) * 1000;
    const badUtil = Number.isFinite(util) && util >= 0 && util > 10;
    // A rejection naming no window and no reset is a per-minute throttle, as the real CLI prints one:
    // none of its numbers is read, so none can make it invalid.
    const typeless = typeof info.rateLimitType !== "string" || info.rateLimitType.trim() === "";
    const throttle = parsed === "rejected" && typeless && resetMs === undefined;
    return {
      line: JSON.stringify({ type: "rate_limit_event", rate_limit_info: info, uuid: "e-1", session_id: "s" }),
      bad: used && !throttle && (badReset || badUtil),
    };
  });

const noiseLine = fc.oneof(
  fc.constant('{"type":"system","subtype":"init","session_id":"s","tools":[]}'),
  fc.lorem().map((t) => JSON.stringify({ type: "assistant", message: { content: [{ type: "text", text: t }] } })),
  fc.constant('{"type":"user","message":{"content":[{"type":"tool_result","content":"ok"}]}}'),
  fc.constant('{"type":"assistant","message":'), // torn line
  fc.constant("progress: 42%"),
  fc.constant(""),
  fc.constant("\r"),
);

/** stream-json: thousands of lines, rate_limit_events, noise and torn lines, the result last. */
const streamJson: fc.Arbitrary<Case> = fc
  .record({
    result: resultArb,
    noise: fc.array(noiseLine, { maxLength: 40 }),
    repeat: fc.constantFrom(1, 10, 100),
    events: fc.array(rateLimitEvent, { maxLength: 3 }),
    crlf: fc.boolean(),
  })
  .map(({ result, noise, repeat, events, crlf }) => {
    const lines = [
      ...Array.from({ length: repeat }, () => noise).flat(),
      ...events.map((e) => e.line),
      JSON.stringify(result),
    ];
    return {
      output: lines.join(crlf ? "\r\n" : "\n"),
      kind: events.some((e) => e.bad) ? "invalid" : "ok",
      note: `stream-json, ${lines.length} lines`,
    } satisfies Case;
  });

/** Limit texts in an error result: the legacy epoch form with sane and absurd epochs, and free text. */
const limitText: fc.Arbitrary<Case> = fc
  .tuple(
    resultArb,
    fc.constantFrom<[string, Kind]>(
      [`Claude AI usage limit reached|${NOW_S + 3600}`, "ok"],
      ["Claude AI usage limit reached|1750708800", "ok"],
      ["Claude AI usage limit reached|99999999999", "invalid"],
      ["Claude AI usage limit reached|9999999999999", "invalid"],
      ["You've hit your limit · resets 3pm (Mars/Olympus)", "ok"],
      ["You've hit your weekly limit · resets Nov 28, 4am (America/New_York)", "ok"],
      ["You've hit your Opus limit · resets 99:99pm", "ok"],
      ["5-hour limit reached ∙ resets 5am", "ok"],
      ["API Error: 529 overloaded", "ok"],
      ["You've hit your limit \u202e · resets 3pm \u0000", "ok"],
    ),
  )
  .map(([r, [text, kind]]) => ({
    output: JSON.stringify({ ...r, is_error: true, result: text, total_cost_usd: 0 }),
    kind,
    note: `limit text ${JSON.stringify(text)}`,
  }));

/** Junk: random strings, random JSON, and random objects claiming to be a result. */
const junk: fc.Arbitrary<Case> = fc.oneof(
  fc
    .string({ unit: "binary", maxLength: 200 })
    .map((output) => ({ output, kind: "either" as Kind, note: "random text" })),
  fc.json({ maxDepth: 4 }).map((output) => ({ output, kind: "either" as Kind, note: "random JSON" })),
  fc.dictionary(fc.string({ maxLength: 12 }), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 8 }).map((o) => ({
    output: JSON.stringify({ ...o, type: "result" }),
    kind: "either" as Kind,
    note: "random result-typed object",
  })),
  fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 20 }).map((lines) => ({
    output: lines.map((l) => JSON.stringify(l)).join("\n"),
    kind: "either" as Kind,
    note: "random JSON lines",
  })),
);

const fixtureCase: fc.Arbitrary<Case> = fc
  .tuple(fc.nat(), fc.constantFrom<string>("", "\n\n", "\ufeff", "  \t", "\nnot json\n"))
  .map(([i, pad]) => {
    const text = fixtures[i % fixtures.length]!;
    // A junk line is skipped in stream-json only; a multi-line JSON document would stop being JSON.
    if (pad.includes("not json") && !FIXTURES[i % FIXTURES.length]!.endsWith(".ndjson")) pad = "\n";
    return {
      output: pad === "\ufeff" ? pad + text : text + pad,
      kind: "ok" as Kind,
      note: `fixture ${FIXTURES[i % FIXTURES.length]}`,
    };
  });

const caseArb: fc.Arbitrary<Case> = fc.oneof(
  {
    weight: 2,
    arbitrary: resultArb.map((r) => ({ output: JSON.stringify(r), kind: "ok" as Kind, note: "valid result" })),
  },
  {
    weight: 1,
    arbitrary: resultArb.map((r) => ({
      output: JSON.stringify([{ type: "system", subtype: "init" }, r]),
      kind: "ok" as Kind,
      note: "verbose array",
    })),
  },
  { weight: 1, arbitrary: fixtureCase },
  { weight: 6, arbitrary: mutatedResult },
  { weight: 3, arbitrary: streamJson },
  { weight: 2, arbitrary: limitText },
  { weight: 3, arbitrary: junk },
);

async function send(
  protocol: "grpc" | "connect",
  sessionId: string,
  requestId: string,
  c: Case,
  verdict: Verdict,
  client: AuthPoolClient = pool[protocol],
) {
  const req = { sessionId, requestId, source: { case: "claudeOutput" as const, value: c.output } };
  const before = await probe.before();
  const out = await outcome(client.reportUsage(req));
  const context = {
    protocol,
    sessionId,
    note: c.note,
    bytes: Buffer.byteLength(c.output),
    output: c.output.slice(0, 300),
  };
  await probe.after(out, before, context);
  judge(out, verdict, context);
}

function verdictOf(kind: Kind, known: boolean): Verdict {
  const codes = known ? [] : [Code.NotFound];
  if (kind === "invalid") return { must: ["claude_output"] };
  if (kind === "ok") return { must: [], codes, ok: known };
  return { must: [], may: ["claude_output"], codes, ok: known };
}

describe("ReportUsage with claude_output", () => {
  it(
    "counts real and valid outputs, refuses almost-right ones naming claude_output, never INTERNAL",
    async () => {
      const arb = fc.record({
        protocol: fc.constantFrom<"grpc" | "connect">("grpc", "grpc", "connect"),
        sessionId: fc.oneof(
          { weight: 8, arbitrary: fc.constantFrom(...SESSIONS) },
          { weight: 1, arbitrary: printableId },
        ),
        requestId: fc.oneof(fc.constant(""), printableId),
        c: caseArb.map(shortCase),
      });
      await counter.check(
        "ReportUsage(claude_output)",
        arb,
        async ({ protocol, sessionId, requestId, c }) => {
          await send(protocol, sessionId, requestId, c, verdictOf(c.kind, SESSIONS.includes(sessionId)));
        },
        350,
      );
      await expectServing(pool);
    },
    timeoutFor(350, 120),
  );

  it(
    "takes outputs up to maxClaudeOutputBytes, refuses larger ones naming claude_output, and RESOURCE_EXHAUSTED past the request limit",
    async () => {
      const sizes = fc.constantFrom(
        { bytes: MAX_OUTPUT - 200, kind: "ok" as const },
        { bytes: MAX_OUTPUT + 1, kind: "over-output" as const },
        { bytes: MAX_OUTPUT * 3, kind: "over-output" as const },
        { bytes: MAX_REQUEST - 4096, kind: "over-output" as const },
        { bytes: MAX_REQUEST + 1, kind: "over-request" as const },
        { bytes: MAX_REQUEST * 2, kind: "over-request" as const },
      );
      const arb = fc.record({
        protocol: fc.constantFrom<"grpc" | "connect">("grpc", "connect"),
        size: sizes,
        filler: fc.constantFrom("a", "é", "😀", "\u0000"),
        stream: fc.boolean(),
      });
      await counter.check(
        "ReportUsage(claude_output size)",
        arb,
        async ({ protocol, size, filler, stream }) => {
          const r = {
            type: "result",
            subtype: "success",
            is_error: false,
            total_cost_usd: 0.01,
            uuid: `big-${Math.random()}`,
          };
          const skeleton = JSON.stringify({ ...r, result: "" });
          // JSON escapes NUL as \u0000 (6 bytes), others count by their UTF-8 size.
          const unit = Buffer.byteLength(JSON.stringify(filler)) - 2;
          // At least size.bytes when over a limit, at most when under.
          const timesThatFit = (room: number, per: number) =>
            Math.max(0, size.kind === "ok" ? Math.floor(room / per) : Math.ceil(room / per));
          let output: string;
          if (stream) {
            const line = JSON.stringify({
              type: "assistant",
              message: { content: [{ type: "text", text: filler.repeat(200) }] },
            });
            const count = timesThatFit(size.bytes - skeleton.length, Buffer.byteLength(line) + 1);
            output = `${Array.from({ length: count }, () => line).join("\n")}\n${skeleton}`;
          } else {
            output = JSON.stringify({ ...r, result: filler.repeat(timesThatFit(size.bytes - skeleton.length, unit)) });
          }
          const verdict: Verdict =
            size.kind === "ok"
              ? { must: [] }
              : size.kind === "over-output"
                ? { must: ["claude_output"] }
                : { must: [], codes: [Code.ResourceExhausted], ok: false };
          // Known transport defects (request-limits.test.ts pins them down): after an over-limit
          // request the server leaves the unread body on the connection, so the next call on an
          // HTTP/1.1 keep-alive connection hangs, and an HTTP/2 connection is torn down with
          // ENHANCE_YOUR_CALM. Such a call gets a connection of its own here.
          const client = size.kind === "over-request" ? clients.client(pool.server.url, protocol) : pool[protocol];
          const note = `${size.kind} ${Buffer.byteLength(output)} bytes`;
          await send(protocol, "co-0", "", { output, kind: "either", note }, verdict, client);
        },
        12,
      );
      await expectServing(pool);
      // The server keeps serving the next call on the same clients.
      await pool.grpc.getPoolStatus({});
      await pool.connect.getPoolStatus({});
    },
    timeoutFor(12, 3000),
  );
});

// Outputs the fuzzing found: each used to be accepted or to crash the call
// (INTERNAL), some leaving every later status INTERNAL. Kept as named cases.
describe("found by fuzzing", () => {
  const result = (extra: Record<string, unknown>) =>
    JSON.stringify({ type: "result", total_cost_usd: 0.1, uuid: `ff-${Math.random()}`, ...extra });
  const event = (info: Record<string, unknown>) => JSON.stringify({ type: "rate_limit_event", rate_limit_info: info });
  it.each([
    ["fractional tokens (BigInt(1.5) threw in status)", result({ usage: { input_tokens: 1.5 } })],
    ["1e300 tokens (int64 overflow in status)", result({ usage: { input_tokens: 1e300 } })],
    [
      "a cost nested 10k levels deep (the parser's error text overflowed the stack)",
      `{"type":"result","total_cost_usd":${"[".repeat(10_000)}${"]".repeat(10_000)}}`,
    ],
    [
      "a rejected rate_limit_event resetting at 1e300",
      `${event({ status: "rejected", rateLimitType: "seven_day_opus", resetsAt: 1e300 })}\n${result({})}`,
    ],
    [
      "an allowed rate_limit_event resetting at 1e300",
      `${event({ status: "allowed", rateLimitType: "five_hour", resetsAt: 1e300, utilization: 0.5 })}\n${result({})}`,
    ],
  ])("refuses %s naming claude_output, and status still answers", async (_name, text) => {
    counter.count("found by fuzzing");
    await send("grpc", "co-1", "", { output: text, kind: "invalid", note: _name }, { must: ["claude_output"] });
  });
});
