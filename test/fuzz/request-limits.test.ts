/**
 * The request size limit (limits.maxRequestBytes) against one real server
 * configured with a small one: a request over it gets RESOURCE_EXHAUSTED
 * before it is parsed (also when it arrives gzip-compressed), one under it
 * is validated as usual, and the server keeps serving.
 */
import { create, toBinary } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AllocateRequestSchema, type AuthPoolClient, ReportUsageRequestSchema } from "../../src/client/index.js";
import { type TestPool, startTestPool } from "../support/test-server.js";
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

const MAX_REQUEST = 65_536;
const MAX_OUTPUT = 16_384;

let pool: TestPool;
const counter = new CaseCounter();
const probe = new StateProbe(() => pool);

beforeAll(async () => {
  pool = await startTestPool({
    config: { limits: { maxRequestBytes: MAX_REQUEST, maxClaudeOutputBytes: MAX_OUTPUT } },
  });
  await pool.grpc.allocate({ sessionId: "lim-0" });
});

afterAll(async () => {
  clients.close();
  await pool?.close();
  await reportCases("request-limits", counter);
});

const clients = new FreshClients();

/** fresh is a client on a connection of its own, for a call over the limit (see FreshClients). */
function fresh(protocol: "grpc" | "connect", gzip = false): AuthPoolClient {
  return clients.client(pool.server.url, protocol, { gzip });
}

function output(bytes: number): string {
  const skeleton = JSON.stringify({ type: "result", total_cost_usd: 0.001, result: "" });
  return JSON.stringify({
    type: "result",
    total_cost_usd: 0.001,
    result: "a".repeat(Math.max(0, bytes - skeleton.length)),
  });
}

describe("limits.maxRequestBytes", () => {
  it(
    "refuses a message over the limit with RESOURCE_EXHAUSTED, validates one under it, and keeps serving",
    async () => {
      const arb = fc.record({
        protocol: fc.constantFrom<"grpc" | "connect">("grpc", "connect"),
        gzip: fc.boolean(),
        rpc: fc.constantFrom("claude_output", "session_id", "model"),
        // Clear of the boundary: JSON and binary encodings differ by a few bytes.
        scale: fc.constantFrom(0.1, 0.2, 0.5, 0.9, 1.1, 1.5, 4, 16),
      });
      await counter.check(
        "request size",
        arb,
        async ({ protocol, gzip, rpc, scale }) => {
          const bytes = Math.round(MAX_REQUEST * scale);
          const over = scale > 1;
          const c = over || gzip ? fresh(protocol, gzip) : pool[protocol];
          let verdict: Verdict;
          let call: () => Promise<unknown>;
          if (rpc === "claude_output") {
            verdict = over
              ? { must: [], codes: [Code.ResourceExhausted], ok: false }
              : bytes > MAX_OUTPUT
                ? { must: ["claude_output"] }
                : { must: [] };
            call = () => c.reportUsage({ sessionId: "lim-0", source: { case: "claudeOutput", value: output(bytes) } });
          } else if (rpc === "session_id") {
            verdict = over ? { must: [], codes: [Code.ResourceExhausted], ok: false } : { must: ["session_id"] };
            call = () => c.allocate({ sessionId: "s".repeat(bytes) });
          } else {
            verdict = over ? { must: [], codes: [Code.ResourceExhausted], ok: false } : { must: ["model"] };
            call = () => c.allocate({ sessionId: "lim-0", model: "m".repeat(bytes) });
          }
          const before = await probe.before();
          const out = await outcome(call());
          const context = { protocol, gzip, rpc, bytes };
          await probe.after(out, before, context);
          judge(out, verdict, context);
          if (!out.ok && out.code === Code.ResourceExhausted) expect(out.message).toMatch(/readMaxBytes 65536/);
          // The shared clients, on their own connections, are served as before.
          await pool.grpc.getPoolStatus({});
          await pool.connect.getPoolStatus({});
        },
        40,
      );
      await expectServing(pool);
    },
    timeoutFor(40, 500),
  );

  it("holds at the exact boundary of the encoded gRPC message", async () => {
    const base = { sessionId: "lim-0", source: { case: "claudeOutput" as const, value: "" } };
    const overhead = toBinary(ReportUsageRequestSchema, create(ReportUsageRequestSchema, base)).length;
    for (const delta of [-1, 0, 1, 2]) {
      counter.count("request size");
      // The string's length prefix grows from 2 to 3 bytes past 16383: measure, then adjust.
      let n = MAX_REQUEST + delta - overhead - 3;
      const size = (k: number) =>
        toBinary(
          ReportUsageRequestSchema,
          create(ReportUsageRequestSchema, { ...base, source: { case: "claudeOutput", value: "x".repeat(k) } }),
        ).length;
      while (size(n) < MAX_REQUEST + delta) n++;
      while (size(n) > MAX_REQUEST + delta) n--;
      expect(size(n)).toBe(MAX_REQUEST + delta);
      const c = delta > 0 ? fresh("grpc") : pool.grpc;
      const out = await outcome(c.reportUsage({ ...base, source: { case: "claudeOutput", value: "x".repeat(n) } }));
      if (delta > 0) judge(out, { must: [], codes: [Code.ResourceExhausted], ok: false }, { delta });
      // At or under the limit the message is read and refused by our own rule.
      else judge(out, { must: ["claude_output"] }, { delta });
    }
    // A tiny message (an Allocate) is far below any limit the config allows.
    expect(
      toBinary(AllocateRequestSchema, create(AllocateRequestSchema, { sessionId: "x".repeat(256) })).length,
    ).toBeLessThan(1024);
    await expectServing(pool);
  });

  // KNOWN DEFECT (reported, transport: src/server/listener.ts with connect-node):
  // the server answers an over-limit request without reading its body. On
  // HTTP/1.1 the unread body stays on the keep-alive connection and the next
  // call on it hangs until the socket is reset (about 6 s, then ABORTED). Flip
  // to `it` once fixed.
  it.fails("serves the next call on the same HTTP/1.1 connection after an over-limit request", async () => {
    counter.count("request size");
    const c = fresh("connect");
    const first = await outcome(
      c.reportUsage({ sessionId: "lim-0", source: { case: "claudeOutput", value: output(MAX_REQUEST * 4) } }),
    );
    expect(first.ok === false && first.code).toBe(Code.ResourceExhausted);
    const next = await outcome(c.getPoolStatus({}, { timeoutMs: 1500 }));
    expect(next.ok).toBe(true);
  });

  // KNOWN DEFECT (reported, same cause on HTTP/2): the client goes on sending
  // the body of the refused stream; Node's http2 counts those DATA frames as
  // invalid and, past 1000 per connection (maxSessionInvalidFrames), tears the
  // whole connection down with ENHANCE_YOUR_CALM: the call gets INTERNAL, and
  // so does every call multiplexed on that connection (a gateway's shared
  // client) from then on. Cumulative: many smaller oversized calls on a
  // long-lived connection get there too. Flip to `it` once fixed.
  it.fails("serves the next call on the same HTTP/2 connection after a much-over-limit request", async () => {
    counter.count("request size");
    const c = fresh("grpc");
    // Node's http2 allows 1000 invalid frames per connection: ~16 MB of refused body, in one call or many.
    const first = await outcome(
      c.reportUsage({ sessionId: "lim-0", source: { case: "claudeOutput", value: output(16_000_000) } }),
    );
    expect(first.ok === false && first.code).toBe(Code.ResourceExhausted);
    const next = await outcome(c.getPoolStatus({}, { timeoutMs: 1500 }));
    expect(next.ok).toBe(true);
  });
});
