/**
 * Fuzzing Allocate, Release and ReportUsage (structured usage) against one
 * real server: every answer is OK or a precise code, INVALID_ARGUMENT names
 * the field, a refused call changes nothing, the server keeps serving.
 */
import { type MessageInitShape, create, toJson } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import fc from "fast-check";
import { afterAll, beforeAll, describe, it } from "vitest";
import { type AuthPoolClient, ReportUsageRequestSchema, type UsageSchema } from "../../src/client/index.js";
import { type TestPool, startTestPool } from "../support/test-server.js";
import {
  CONTROL,
  chars,
  costArb,
  costOk,
  idArb,
  int64Arb,
  isSessionId,
  nastyString,
  printableId,
  SPECIAL_STRINGS,
  tokensOk,
  utilizationArb,
  utilizationOk,
} from "./arbitraries.js";
import {
  CaseCounter,
  type Verdict,
  StateProbe,
  expectServing,
  judge,
  outcome,
  reportCases,
  timeoutFor,
} from "./fuzz-support.js";

let pool: TestPool;
const counter = new CaseCounter();
const probe = new StateProbe(() => pool);
const REPORT_SESSIONS = ["fz-0", "fz-1", "fz-2", "fz-3", "fz-4"];
const RELEASE_SESSIONS = Array.from({ length: 10 }, (_, i) => `rel-${i}`);
const DAY_MS = 86_400_000;
/** Sessions the server has seen allocated (a report on one is not NOT_FOUND; one released since may be). */
const known = new Set<string>([...REPORT_SESSIONS, ...RELEASE_SESSIONS]);

beforeAll(async () => {
  pool = await startTestPool();
  for (const id of [...REPORT_SESSIONS, ...RELEASE_SESSIONS]) await pool.grpc.allocate({ sessionId: id });
});

afterAll(async () => {
  await pool?.close();
  await reportCases("session-rpcs", counter);
});

const protocolArb = fc.constantFrom<"grpc" | "connect">("grpc", "grpc", "grpc", "connect");
const client = (protocol: "grpc" | "connect"): AuthPoolClient => pool[protocol];

describe("Allocate", () => {
  const arb = fc.record({
    protocol: protocolArb,
    sessionId: fc.oneof(fc.constant(""), idArb),
    estimatedTokens: int64Arb,
    priority: fc.oneof(
      { weight: 4, arbitrary: fc.constantFrom(0, 1, 2, 3) },
      { weight: 1, arbitrary: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }) },
    ),
    model: fc.oneof(
      { weight: 3, arbitrary: fc.constantFrom("", "opus", "sonnet", "claude-opus-4-1", "claude-sonnet-4-5") },
      { weight: 3, arbitrary: nastyString },
    ),
  });

  it(
    "answers OK or names the field; a refusal changes nothing",
    async () => {
      await counter.check(
        "Allocate",
        arb,
        async ({ protocol, ...req }) => {
          const must: string[] = [];
          if (req.sessionId !== "" && !isSessionId(req.sessionId)) must.push("session_id");
          if (!tokensOk(req.estimatedTokens)) must.push("estimated_tokens");
          if (chars(req.model) > 128 || CONTROL.test(req.model)) must.push("model");
          const before = await probe.before();
          const out = await outcome(client(protocol).allocate(req));
          if (out.ok) known.add(out.value.sessionId);
          // Fallback is enabled: a full pool answers OK with a fallback, never RESOURCE_EXHAUSTED.
          await probe.after(out, before, req);
          judge(out, { must }, req);
        },
        200,
      );
      await expectServing(pool);
    },
    timeoutFor(200),
  );
});

describe("Release", () => {
  const arb = fc.record({
    protocol: protocolArb,
    sessionId: fc.oneof(
      { weight: 4, arbitrary: idArb },
      { weight: 1, arbitrary: fc.constantFrom(...RELEASE_SESSIONS) },
    ),
  });

  it(
    "answers OK for any valid id (held or not), INVALID_ARGUMENT session_id otherwise",
    async () => {
      await counter.check(
        "Release",
        arb,
        async ({ protocol, ...req }) => {
          const must = isSessionId(req.sessionId) ? [] : ["session_id"];
          const before = await probe.before();
          const out = await outcome(client(protocol).release(req));
          await probe.after(out, before, req);
          judge(out, { must }, req);
        },
        120,
      );
      await expectServing(pool);
    },
    timeoutFor(120),
  );
});

type UsageInit = MessageInitShape<typeof UsageSchema>;

const mostly = <T>(valid: fc.Arbitrary<T>, nasty: fc.Arbitrary<T>) =>
  fc.oneof({ weight: 12, arbitrary: valid }, { weight: 1, arbitrary: nasty });

const tokenArb = mostly(fc.bigInt({ min: 0n, max: 100_000n }), int64Arb);
const plainCost = mostly(fc.double({ min: 0, max: 2, noNaN: true }), costArb);

const modelUsageArb = fc.record({
  costUsd: plainCost,
  inputTokens: tokenArb,
  outputTokens: tokenArb,
  cacheCreationInputTokens: tokenArb,
  cacheReadInputTokens: tokenArb,
});

const modelKeyArb = mostly(fc.constantFrom("claude-opus-4-1", "claude-sonnet-4-5", "claude-haiku-4-5"), nastyString);

const NOW_S = Date.parse("2026-11-23T10:00:00Z") / 1000;
const secondsArb = fc.oneof(
  { weight: 6, arbitrary: fc.bigInt({ min: BigInt(NOW_S - 7 * 86_400), max: BigInt(NOW_S + 8 * 86_400) }) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      0n,
      -1n,
      -(2n ** 63n),
      2n ** 63n - 1n,
      253_402_300_799n, // 9999-12-31T23:59:59Z
      253_402_300_800n,
      -62_135_596_800n, // 0001-01-01
      8_640_000_000_000n, // the last second a JS Date can show
      8_640_000_000_001n,
      BigInt(NOW_S + 366 * 86_400),
      BigInt(NOW_S + 367 * 86_400),
    ),
  },
  { weight: 1, arbitrary: int64Arb },
);
const nanosArb = fc.oneof(
  { weight: 8, arbitrary: fc.integer({ min: 0, max: 999_999_999 }) },
  { weight: 1, arbitrary: fc.constantFrom(-1, 1_000_000_000, -999_999_999, 2 ** 31 - 1, -(2 ** 31)) },
);
const timestampArb = fc.record({ seconds: secondsArb, nanos: nanosArb });

const durationArb = fc.record({
  seconds: fc.oneof(
    { weight: 6, arbitrary: fc.bigInt({ min: 0n, max: 3_600n }) },
    { weight: 1, arbitrary: fc.constantFrom(-1n, 604_800n, 604_801n, 315_576_000_000n, 2n ** 63n - 1n, -(2n ** 63n)) },
  ),
  nanos: fc.oneof(
    { weight: 6, arbitrary: fc.integer({ min: 0, max: 999_999_999 }) },
    { weight: 1, arbitrary: fc.constantFrom(-1, -999_999_999, 1_000_000_000, 2 ** 31 - 1, -(2 ** 31)) },
  ),
});

const readingArb = fc.record({
  window: mostly(fc.integer({ min: 0, max: 5 }), fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 })),
  status: mostly(fc.integer({ min: 0, max: 3 }), fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 })),
  utilization: mostly(fc.double({ min: 0, max: 1, noNaN: true }), utilizationArb),
  resetsAt: fc.option(timestampArb, { nil: undefined }),
});

const HEADER_NAMES = [
  "anthropic-ratelimit-unified-status",
  "anthropic-ratelimit-unified-reset",
  "anthropic-ratelimit-unified-representative-claim",
  "anthropic-ratelimit-unified-5h-status",
  "anthropic-ratelimit-unified-5h-utilization",
  "anthropic-ratelimit-unified-5h-reset",
  "anthropic-ratelimit-unified-7d-status",
  "anthropic-ratelimit-unified-7d-utilization",
  "anthropic-ratelimit-unified-7d-reset",
  "anthropic-ratelimit-unified-7d_oi-reset",
  "anthropic-ratelimit-unified-7d_opus-status",
  "anthropic-ratelimit-unified-7d_opus-reset",
  "anthropic-ratelimit-unified-7d_sonnet-utilization",
  "anthropic-ratelimit-unified-overage-status",
  "retry-after",
  "x-should-retry",
];
const headerNameArb = fc.oneof(
  { weight: 5, arbitrary: fc.constantFrom(...HEADER_NAMES) },
  { weight: 2, arbitrary: fc.constantFrom(...HEADER_NAMES).map((n) => n.toUpperCase()) },
  { weight: 1, arbitrary: nastyString },
);
const headerValueArb = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.constantFrom(
      "allowed",
      "allowed_warning",
      "rejected",
      " REJECTED ",
      "five_hour",
      "seven_day_opus",
      "0.5",
      "1",
      "0",
      String(NOW_S + 3600),
      String((NOW_S + 3600) * 1000),
      "Wed, 25 Nov 2026 10:00:00 GMT",
      "60",
      "true",
    ),
  },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      "NaN",
      "Infinity",
      "-Infinity",
      "-1",
      "1e400",
      "1e300",
      "99999999999",
      "9".repeat(400),
      "0x10",
      "",
      " ",
      "1,2",
      "Fri, 31 Dec 275760 00:00:00 GMT",
      "+275760-09-13T00:00:00.001Z",
      "9999-12-31T23:59:59Z",
    ),
  },
  { weight: 1, arbitrary: nastyString },
  { weight: 1, arbitrary: fc.double().map(String) },
);
const responseArb = fc.record({
  status: fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(200, 429, 500, 529) },
    { weight: 1, arbitrary: fc.constantFrom(0, 999, 1000, 2 ** 32 - 1) },
    { weight: 1, arbitrary: fc.integer({ min: 0, max: 2 ** 32 - 1 }) },
  ),
  headers: fc.dictionary(headerNameArb, headerValueArb, { maxKeys: 6 }),
});

const usageArb: fc.Arbitrary<UsageInit> = fc.record(
  {
    costUsd: plainCost,
    inputTokens: tokenArb,
    outputTokens: tokenArb,
    cacheCreationInputTokens: tokenArb,
    cacheReadInputTokens: tokenArb,
    modelUsage: fc.dictionary(modelKeyArb, modelUsageArb, { maxKeys: 3 }),
    duration: durationArb,
    rateLimits: fc.array(readingArb, { maxLength: 3 }),
    response: responseArb,
    claudeSessionId: mostly(fc.oneof(fc.constant(""), fc.uuid()), nastyString),
  },
  { requiredKeys: [] },
);

/** Plausible reset times: from 1970 to a year after now (a weekly window resets within 7 days). */
function resetOk(ms: number, now: number): boolean {
  return ms >= 0 && ms <= now + 366 * DAY_MS;
}

/** epochMs restates how a header's epoch seconds are read (ms when already >= 1e12). */
function epochMs(text: string): number | undefined {
  if (text.trim() === "") return undefined;
  const n = Number(text.trim());
  if (!Number.isFinite(n) || n <= 0) return undefined;
  return n >= 1e12 ? Math.round(n) : Math.round(n * 1000);
}

/** usageVerdict is the oracle for a structured Usage: which fields must (or may) be refused. */
function usageVerdict(u: UsageInit, now: number): { must: string[]; may: string[] } {
  const must = new Set<string>();
  const may = new Set<string>();
  const counted = (
    c: {
      costUsd?: number;
      inputTokens?: bigint;
      outputTokens?: bigint;
      cacheCreationInputTokens?: bigint;
      cacheReadInputTokens?: bigint;
    },
    prefix: string,
  ) => {
    if (!costOk(c.costUsd ?? 0)) must.add(`${prefix}cost_usd`);
    if (!tokensOk(c.inputTokens ?? 0n)) must.add(`${prefix}input_tokens`);
    if (!tokensOk(c.outputTokens ?? 0n)) must.add(`${prefix}output_tokens`);
    if (!tokensOk(c.cacheCreationInputTokens ?? 0n)) must.add(`${prefix}cache_creation_input_tokens`);
    if (!tokensOk(c.cacheReadInputTokens ?? 0n)) must.add(`${prefix}cache_read_input_tokens`);
  };
  counted(u, "usage.");
  for (const [model, m] of Object.entries(u.modelUsage ?? {})) {
    if (model === "" || chars(model) > 256 || CONTROL.test(model)) must.add("usage.model_usage");
    const before = must.size;
    counted(m, "usage.model_usage.");
    if (must.size > before) must.add("usage.model_usage");
  }
  for (const f of [...must]) if (f.startsWith("usage.model_usage.")) must.delete(f);
  if (u.duration !== undefined) {
    const seconds = u.duration.seconds ?? 0n;
    const nanos = u.duration.nanos ?? 0;
    const ms = Number(seconds) * 1000 + nanos / 1e6;
    const signOk = !(seconds > 0n && nanos < 0) && !(seconds < 0n && nanos > 0);
    if (nanos < -999_999_999 || nanos > 999_999_999 || !signOk || ms < 0 || ms > 7 * DAY_MS) must.add("usage.duration");
  }
  for (const r of u.rateLimits ?? []) {
    if (!utilizationOk(r.utilization ?? 0)) must.add("usage.rate_limits");
    if (r.resetsAt !== undefined) {
      const nanos = r.resetsAt.nanos ?? 0;
      const ms = Number(r.resetsAt.seconds ?? 0n) * 1000 + nanos / 1e6;
      if (nanos < 0 || nanos > 999_999_999 || !resetOk(ms, now)) must.add("usage.rate_limits");
    }
  }
  if (u.response !== undefined) {
    if ((u.response.status ?? 0) > 999) must.add("usage.response.status");
    for (const [name, value] of Object.entries(u.response.headers ?? {})) {
      const lower = name.toLowerCase();
      if (/^anthropic-ratelimit-unified-(.+-)?reset$/.test(lower)) {
        const ms = epochMs(value);
        if (ms !== undefined && !resetOk(ms, now)) may.add("usage.response.headers");
      } else if (/^anthropic-ratelimit-unified-.+-utilization$/.test(lower)) {
        const n = value.trim() === "" ? Number.NaN : Number(value);
        if (Number.isFinite(n) && n > 10) may.add("usage.response.headers");
      } else if (lower === "retry-after") {
        const s = value.trim() === "" ? Number.NaN : Number(value);
        const ms = Number.isFinite(s) && s >= 0 ? now + Math.round(s * 1000) : Date.parse(value);
        if (Number.isFinite(ms) && !resetOk(ms, now)) may.add("usage.response.headers");
      }
    }
  }
  const cs = u.claudeSessionId ?? "";
  if (chars(cs) > 128 || CONTROL.test(cs)) must.add("usage.claude_session_id");
  return { must: [...must], may: [...may] };
}

/** jsonSafe says whether a request can travel as Connect JSON (a Timestamp or Duration out of the JSON range cannot). */
function jsonSafe(req: MessageInitShape<typeof ReportUsageRequestSchema>): boolean {
  try {
    toJson(ReportUsageRequestSchema, create(ReportUsageRequestSchema, req));
    return true;
  } catch {
    return false;
  }
}

describe("ReportUsage with structured usage", () => {
  const arb = fc.record({
    protocol: protocolArb,
    sessionId: fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...REPORT_SESSIONS) }, { weight: 2, arbitrary: idArb }),
    requestId: fc.oneof(fc.constant(""), printableId, nastyString),
    usage: fc.option(usageArb, { nil: undefined, freq: 12 }),
  });

  it(
    "answers OK, NOT_FOUND for an unknown session, or INVALID_ARGUMENT naming the field; a refusal changes nothing",
    async () => {
      const now = pool.clock.now();
      await counter.check(
        "ReportUsage(usage)",
        arb,
        async ({ protocol, sessionId, requestId, usage }) => {
          const req: MessageInitShape<typeof ReportUsageRequestSchema> = {
            sessionId,
            requestId,
            ...(usage !== undefined ? { source: { case: "usage", value: usage } } : {}),
          };
          const must: string[] = [];
          if (!isSessionId(sessionId)) must.push("session_id");
          if (requestId !== "" && !isSessionId(requestId)) must.push("request_id");
          const verdict: Verdict = { must, may: [], codes: [] };
          if (usage === undefined) must.push("source");
          else {
            const v = usageVerdict(usage, now);
            must.push(...v.must);
            verdict.may = v.may;
          }
          if (!REPORT_SESSIONS.includes(sessionId)) {
            verdict.codes = [Code.NotFound];
            verdict.ok = known.has(sessionId);
          }
          const via = protocol === "connect" && jsonSafe(req) ? "connect" : "grpc";
          const before = await probe.before();
          const out = await outcome(client(via).reportUsage(req));
          await probe.after(out, before, req);
          judge(out, verdict, { via, ...req });
        },
        300,
      );
      await expectServing(pool);
    },
    timeoutFor(300),
  );

  it(
    "refuses each special string as an id or key with the field named",
    async () => {
      for (const bad of SPECIAL_STRINGS) {
        for (const [field, req] of [
          ["session_id", { sessionId: bad, source: { case: "usage", value: {} } }],
          ["request_id", { sessionId: "fz-0", requestId: bad, source: { case: "usage", value: {} } }],
          ["usage.model_usage", { sessionId: "fz-0", source: { case: "usage", value: { modelUsage: { [bad]: {} } } } }],
          [
            "usage.claude_session_id",
            { sessionId: "fz-0", source: { case: "usage", value: { claudeSessionId: bad } } },
          ],
        ] as const) {
          counter.count("ReportUsage(special strings)");
          const ok =
            field === "session_id"
              ? isSessionId(bad)
              : field === "request_id"
                ? bad === "" || isSessionId(bad)
                : field === "usage.model_usage"
                  ? bad !== "" && !CONTROL.test(bad)
                  : !CONTROL.test(bad);
          const before = await probe.before();
          const out = await outcome(pool.grpc.reportUsage(req as MessageInitShape<typeof ReportUsageRequestSchema>));
          await probe.after(out, before, req);
          judge(out, { must: ok ? [] : [field], codes: field === "session_id" ? [Code.NotFound] : [] }, req);
        }
      }
      await expectServing(pool);
    },
    timeoutFor(160),
  );
});

// Inputs the fuzzing found, each of which the server used to accept (or
// crash on) and then answer every status with INTERNAL: kept as named cases.
describe("found by fuzzing", () => {
  const FAR = 9_000_000_000_000n; // seconds: past year 275760, beyond what a JS Date can show
  it.each([
    [
      "estimated_tokens 2^63-1 (int64 overflow in status)",
      "estimated_tokens",
      () => pool.grpc.allocate({ sessionId: "ff-1", estimatedTokens: 2n ** 63n - 1n }),
    ],
    [
      "model with an ESC sequence (terminal injection in the CLI)",
      "model",
      () => pool.grpc.allocate({ sessionId: "ff-2", model: "\u001b[2Jopus" }),
    ],
    [
      "a rejected Opus reading resetting in year 285 million",
      "usage.rate_limits",
      () =>
        pool.grpc.reportUsage({
          sessionId: "fz-0",
          source: {
            case: "usage",
            value: { rateLimits: [{ window: 3, status: 3, utilization: 1, resetsAt: { seconds: FAR, nanos: 0 } }] },
          },
        }),
    ],
    [
      "a 429 whose reset header is 1e300",
      "usage.response.headers",
      () =>
        pool.grpc.reportUsage({
          sessionId: "fz-0",
          source: {
            case: "usage",
            value: {
              response: {
                status: 429,
                headers: {
                  "anthropic-ratelimit-unified-status": "rejected",
                  "anthropic-ratelimit-unified-reset": "1e300",
                },
              },
            },
          },
        }),
    ],
    [
      "a 64 KiB model id (echoed whole, the error outgrew the gRPC trailer and killed the connection)",
      "usage.model_usage",
      () =>
        pool.grpc.reportUsage({
          sessionId: "fz-0",
          source: { case: "usage", value: { modelUsage: { ["a".repeat(65_536)]: {} } } },
        }),
    ],
    [
      "a model id of 400 emojis (FUZZ_SEED=943770436: the message cut one in half, the lone surrogate made the grpc-message encoding throw and the call hung to its deadline)",
      "usage.model_usage",
      () =>
        pool.grpc.reportUsage({
          sessionId: "fz-0",
          source: { case: "usage", value: { modelUsage: { ["😀".repeat(400)]: {} } } },
        }),
    ],
    [
      "the same over the Connect protocol",
      "usage.model_usage",
      () =>
        pool.connect.reportUsage({
          sessionId: "fz-0",
          source: { case: "usage", value: { modelUsage: { ["😀".repeat(400)]: {} } } },
        }),
    ],
    [
      "a negative duration (was named usage.duration_ms, no such field)",
      "usage.duration",
      () =>
        pool.grpc.reportUsage({
          sessionId: "fz-0",
          source: { case: "usage", value: { duration: { seconds: 0n, nanos: -1 } } },
        }),
    ],
  ] as const)("refuses %s naming %s, and status still answers", async (_name, field, call) => {
    counter.count("found by fuzzing");
    const before = await probe.before();
    const out = await outcome<unknown>(call());
    await probe.after(out, before, field);
    judge(out, { must: [field] }, field);
  });
});
