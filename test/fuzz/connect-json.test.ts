/**
 * Fuzzing the Connect protocol's JSON encoding by hand, below the generated
 * client: bodies that are almost the right shape (numbers as strings and
 * strings as numbers, "NaN" and "Infinity", int64 out of range, enums by a
 * wrong name, oneofs set twice, maps as arrays, broken JSON, deep nesting)
 * for every unary RPC. Each answer is OK or a precise code; an
 * INVALID_ARGUMENT names the field (ours) or the field or message the JSON
 * decoder could not read (Connect's); a refused call changes nothing.
 */
import { Code } from "@connectrpc/connect";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { file_authpool_v1_auth_pool } from "../../gen/authpool/v1/auth_pool_pb.js";
import { type TestPool, startTestPool } from "../support/test-server.js";
import { EDGE_DOUBLES, nastyString, printableId } from "./arbitraries.js";
import {
  CaseCounter,
  type Outcome,
  StateProbe,
  expectServing,
  names,
  reportCases,
  timeoutFor,
} from "./fuzz-support.js";

let pool: TestPool;
const counter = new CaseCounter();
const probe = new StateProbe(() => pool);

beforeAll(async () => {
  pool = await startTestPool();
  for (const id of ["js-0", "js-1"]) await pool.grpc.allocate({ sessionId: id });
});

afterAll(async () => {
  await pool?.close();
  await reportCases("connect-json", counter);
});

/** Every field and oneof of the proto, fully qualified, to check a decoder message names a real one. */
const FIELD_NAMES = new Set(
  file_authpool_v1_auth_pool.messages.flatMap((m) => [
    ...m.fields.map((f) => `${m.typeName}.${f.name}`),
    ...m.oneofs.map((o) => `${m.typeName}.${o.name}`),
  ]),
);

const ENUM_NAMES = new Set(file_authpool_v1_auth_pool.enums.map((e) => e.typeName));

const CODE_NAMES: Record<string, Code> = {
  invalid_argument: Code.InvalidArgument,
  not_found: Code.NotFound,
  failed_precondition: Code.FailedPrecondition,
  resource_exhausted: Code.ResourceExhausted,
  out_of_range: Code.OutOfRange,
  internal: Code.Internal,
  unknown: Code.Unknown,
  unimplemented: Code.Unimplemented,
};

/** OUR_FIELDS: the names our own validation starts its messages with. */
const OUR_FIELDS = [
  "session_id",
  "request_id",
  "estimated_tokens",
  "model",
  "usage",
  "claude_output",
  "source",
  "subscription_id",
  "subscription_ids",
  "types",
  "after_sequence",
];

/** post sends one Connect unary call as raw JSON and reads the answer. */
async function post(method: string, body: string | Uint8Array): Promise<Outcome> {
  const res = await fetch(`${pool.server.url}/authpool.v1.AuthPoolService/${method}`, {
    method: "POST",
    headers: { "content-type": "application/json", "connect-protocol-version": "1" },
    body,
  });
  const text = await res.text();
  if (res.status === 200) return { ok: true, value: JSON.parse(text) as unknown };
  const err = JSON.parse(text) as { code?: string; message?: string };
  const code = CODE_NAMES[err.code ?? ""];
  if (code === undefined) expect.fail(`HTTP ${res.status} with an unexpected error body ${text.slice(0, 300)}`);
  return { ok: false, code, message: err.message ?? "" };
}

/** Values that are almost what a field wants. */
const jsonNumberish = fc.constantFrom<unknown>(
  "NaN",
  "Infinity",
  "-Infinity",
  "0.1",
  "1e400",
  "-0",
  "",
  " 1",
  "0x10",
  true,
  null,
  [],
  {},
  [1],
  { value: 1 },
  ...EDGE_DOUBLES.filter(Number.isFinite),
);
const jsonInt64ish = fc.constantFrom<unknown>(
  "9223372036854775807",
  "9223372036854775808",
  "-9223372036854775809",
  "-1",
  "1.5",
  "1e3",
  "abc",
  "",
  1.5,
  -1,
  1e300,
  2 ** 53 + 1,
  "18446744073709551616",
  null,
  true,
  [],
);
const jsonStringish = fc.oneof(
  nastyString as fc.Arbitrary<unknown>,
  fc.constantFrom<unknown>(5, null, true, [], {}, ["s1"], { id: "s1" }),
);
const jsonEnumish = fc.constantFrom<unknown>(
  "PRIORITY_HIGH",
  "HIGH",
  "high",
  3,
  99,
  -1,
  2 ** 31,
  "",
  null,
  "LIMIT_WINDOW_FIVE_HOUR",
  "RATE_LIMIT_STATUS_REJECTED",
  1.5,
);
const jsonBoolish = fc.constantFrom<unknown>(true, false, "true", 1, 0, null, "", [], "yes");
// Not "1.0000000001s": more than 9 fractional digits hit a protobuf-es defect (pinned below).
const jsonDuration = fc.constantFrom<unknown>(
  "1s",
  "1.5s",
  "-1s",
  "-0.5s",
  "0s",
  "1s trailing",
  "abc",
  "1",
  "315576000001s",
  "604800s",
  "604801s",
  "1.000000001s",
  5,
  null,
  { seconds: 1 },
);
const jsonTimestamp = fc.constantFrom<unknown>(
  "2026-11-23T11:00:00Z",
  "2026-11-23T11:00:00.123456789+02:00",
  "not a date",
  "9999-12-31T23:59:59Z",
  "10000-01-01T00:00:00Z",
  "0001-01-01T00:00:00Z",
  "1969-12-31T23:59:59Z",
  "2030-01-01T00:00:00Z",
  "2026-02-30T00:00:00Z",
  5,
  null,
);

/** maybe: a value that is right half of the time and almost right otherwise. */
const maybe = (right: fc.Arbitrary<unknown>, almost: fc.Arbitrary<unknown>) => fc.oneof(right, almost);

const allocateBody = fc.record(
  {
    sessionId: maybe(printableId, jsonStringish),
    session_id: maybe(printableId, jsonStringish),
    estimatedTokens: maybe(fc.constantFrom("100", 100, "0"), jsonInt64ish),
    priority: maybe(fc.constantFrom("PRIORITY_LOW", "PRIORITY_HIGH", 2), jsonEnumish),
    model: maybe(fc.constantFrom("opus", "sonnet"), jsonStringish),
    unknownField: fc.jsonValue({ maxDepth: 2 }),
  },
  { requiredKeys: [] },
);

const usageBody = fc.record(
  {
    costUsd: maybe(fc.constantFrom(0.1, 1, 0), jsonNumberish),
    inputTokens: maybe(fc.constantFrom("10", 10), jsonInt64ish),
    outputTokens: maybe(fc.constantFrom("10", 10), jsonInt64ish),
    modelUsage: maybe(
      fc.constant({ "claude-opus-4-1": { costUsd: 0.1, inputTokens: "5" } }),
      fc.constantFrom<unknown>([], [{ costUsd: 1 }], { m: 5 }, { m: { costUsd: "x" } }, { "": {} }, { m: null }, "x"),
    ),
    duration: maybe(fc.constant("2.5s"), jsonDuration),
    rateLimits: maybe(
      fc.constant([{ window: "LIMIT_WINDOW_FIVE_HOUR", status: "RATE_LIMIT_STATUS_ALLOWED", utilization: 0.5 }]),
      fc.array(
        fc.record(
          { window: jsonEnumish, status: jsonEnumish, utilization: jsonNumberish, resetsAt: jsonTimestamp },
          { requiredKeys: [] },
        ),
        { maxLength: 2 },
      ),
    ),
    response: maybe(
      fc.constant({ status: 200, headers: { "anthropic-ratelimit-unified-5h-utilization": "0.3" } }),
      fc.record(
        {
          status: fc.constantFrom<unknown>(429, -1, 4_294_967_296, "429", 1e3, null),
          headers: fc.constantFrom<unknown>(
            { a: 5 },
            [],
            { a: null },
            "x",
            { "retry-after": "1e300" },
            { "anthropic-ratelimit-unified-reset": "99999999999" },
          ),
        },
        { requiredKeys: [] },
      ),
    ),
    claudeSessionId: maybe(fc.uuid(), jsonStringish),
  },
  { requiredKeys: [] },
);

const reportBody = fc.record(
  {
    sessionId: maybe(fc.constantFrom("js-0", "js-1"), jsonStringish),
    requestId: maybe(printableId, jsonStringish),
    usage: maybe(usageBody, fc.constantFrom<unknown>(null, [], "x", 5)),
    claudeOutput: maybe(
      fc.constant(JSON.stringify({ type: "result", total_cost_usd: 0.01, uuid: "u-1" })),
      fc.constantFrom<unknown>(5, null, [], { type: "result" }, "", "{"),
    ),
  },
  { requiredKeys: [] },
);

const idBody = (key: string, right: fc.Arbitrary<unknown>) =>
  fc.record({ [key]: maybe(right, jsonStringish), flag: jsonBoolish }, { requiredKeys: [] });

/** A body: an object of almost-right fields, or text that is not quite JSON. */
const rpcArb = fc.oneof(
  fc.record({ method: fc.constant("Allocate"), body: allocateBody as fc.Arbitrary<unknown> }),
  fc.record({ method: fc.constant("ReportUsage"), body: reportBody as fc.Arbitrary<unknown> }),
  fc.record({ method: fc.constant("Release"), body: idBody("sessionId", fc.constantFrom("js-x", "never")) }),
  fc.record({
    method: fc.constantFrom("SetPaused", "SetDrained"),
    body: idBody("subscriptionId", fc.constantFrom("sub1", "sub9")),
  }),
  fc.record({
    method: fc.constant("GetPoolStatus"),
    body: fc.record({ includeSessions: jsonBoolish }, { requiredKeys: [] }),
  }),
  fc.record({ method: fc.constant("Rebalance"), body: fc.record({ dryRun: jsonBoolish }, { requiredKeys: [] }) }),
  fc.record({ method: fc.constant("ReloadConfig"), body: fc.jsonValue({ maxDepth: 2 }) }),
);

const textArb = fc.record({
  rpc: rpcArb,
  mangle: fc.constantFrom("none", "none", "none", "truncate", "bom", "trailing", "deep", "nul", "not-json", "empty"),
  cut: fc.nat(),
});

/** render turns the body into the bytes sent, sometimes broken on purpose. */
function render(body: unknown, mangle: string, cut: number): string {
  const text = JSON.stringify(body) ?? "null";
  switch (mangle) {
    case "truncate":
      return text.slice(0, cut % (text.length + 1));
    case "bom":
      return `\ufeff${text}`;
    case "trailing":
      return `${text} x`;
    case "deep":
      return `{"sessionId":${"[".repeat(10_000)}${"]".repeat(10_000)}}`;
    case "nul":
      return text.replace(/"/, '"\u0000');
    case "not-json":
      return "session_id: s1";
    case "empty":
      return "";
    default:
      return text;
  }
}

/**
 * decoderNames: Connect's JSON decoder names a real field or oneof it could
 * not read; for a bad enum value or a bad Timestamp/Duration string it names
 * only the type (a protobuf-es limitation: "cannot decode enum
 * authpool.v1.Priority from JSON: 1.5").
 */
function decoderNames(message: string): boolean {
  const m = /^cannot decode (field|oneof|message|enum) ([\w.]+) from JSON/.exec(message);
  if (m === null) return false;
  if (m[1] === "message") return /^(authpool\.v1|google\.protobuf)\./.test(m[2]!);
  if (m[1] === "enum") return ENUM_NAMES.has(m[2]!);
  return FIELD_NAMES.has(m[2]!);
}

describe("Connect JSON", () => {
  it(
    "answers every almost-right body with OK or a precise code naming what was wrong; a refusal changes nothing",
    async () => {
      await counter.check(
        "Connect JSON bodies",
        textArb,
        async ({ rpc, mangle, cut }) => {
          const body = (() => {
            if (rpc.method !== "SetPaused" && rpc.method !== "SetDrained") return rpc.body;
            const { flag, ...rest } = rpc.body as Record<string, unknown>;
            return {
              ...rest,
              ...(flag !== undefined ? { [rpc.method === "SetPaused" ? "paused" : "drained"]: flag } : {}),
            };
          })();
          const text = render(body, mangle, cut);
          const before = await probe.before();
          const out = await post(rpc.method, text);
          const context = { method: rpc.method, body: text.slice(0, 300) };
          await probe.after(out, before, context);
          const show = JSON.stringify({ context, out }).slice(0, 800);
          if (out.ok) return;
          expect([Code.Internal, Code.Unknown], show).not.toContain(out.code);
          const allowed: Code[] = [Code.InvalidArgument];
          if (rpc.method === "ReportUsage" || rpc.method === "SetPaused" || rpc.method === "SetDrained")
            allowed.push(Code.NotFound);
          if (rpc.method === "ReloadConfig") allowed.push(Code.FailedPrecondition);
          expect(allowed, show).toContain(out.code);
          if (out.code === Code.InvalidArgument) {
            expect(
              OUR_FIELDS.some((f) => names(out.message, f)) || decoderNames(out.message),
              `field not named: ${show}`,
            ).toBe(true);
          }
        },
        300,
      );
      await expectServing(pool);
    },
    timeoutFor(300),
  );

  // KNOWN DEFECT (reported, @bufbuild/protobuf 2.x from-json.js durationFromJson):
  // a Duration string with more than 9 fractional digits makes the decoder call
  // "0".repeat(-1); the RangeError reaches the caller as INVALID_ARGUMENT
  // "Invalid count value: -1", which names no field. Flip to `it` once fixed.
  it.fails("names the field of a Duration with 10 fractional digits", async () => {
    counter.count("Connect JSON bodies");
    const out = await post("ReportUsage", JSON.stringify({ sessionId: "js-0", usage: { duration: "1.0000000001s" } }));
    expect(out.ok).toBe(false);
    if (!out.ok)
      expect(decoderNames(out.message) || OUR_FIELDS.some((f) => names(out.message, f)), out.message).toBe(true);
  });
});
