import { Code, ConnectError } from "@connectrpc/connect";
import { afterEach, describe, expect, it } from "vitest";
import {
  type AuthPoolClient,
  LimitWindow,
  Priority,
  ReportFormat,
  SubscriptionState,
  TransientKind,
} from "../../src/client/index.js";
import { HOUR_MS, MINUTE_MS } from "../../src/domain/index.js";
import { type TestPool, fixture, startTestPool } from "../support/test-server.js";

let pool: TestPool | undefined;
afterEach(async () => {
  await pool?.close();
  pool = undefined;
});

async function start(config?: Record<string, unknown>): Promise<TestPool> {
  pool = await startTestPool({ config });
  return pool;
}

function grantOf(res: Awaited<ReturnType<AuthPoolClient["allocate"]>>) {
  if (res.outcome.case !== "subscription") throw new Error(`expected a grant, got ${res.outcome.case}`);
  return res.outcome.value;
}

async function weeklyUsed(client: AuthPoolClient, id: string): Promise<number> {
  const status = await client.getPoolStatus({});
  return status.subscriptions.find((s) => s.id === id)!.weeklyUsedUsd;
}

describe.each(["grpc", "connect"] as const)("AuthPoolService over %s", (protocol) => {
  it("allocates, resumes, reports and releases", async () => {
    const p = await start();
    const client = p[protocol];
    const first = grantOf(await client.allocate({ sessionId: "s1" }));
    expect(first.configDir).toBe(`${p.dir}/${first.subscriptionId}`);
    expect(first.resumed).toBe(false);

    const again = grantOf(await client.allocate({ sessionId: "s1" }));
    expect(again).toMatchObject({ subscriptionId: first.subscriptionId, resumed: true });

    const report = await client.reportUsage({
      sessionId: "s1",
      source: { case: "claudeOutput", value: await fixture("claude-cli/success.json") },
    });
    expect(report.duplicate).toBe(false);
    expect(report.countedCostUsd).toBe(0.0612955);
    expect(report.subscription?.weeklyUsedUsd).toBeCloseTo(0.0612955, 9);
    expect(await weeklyUsed(client, first.subscriptionId)).toBeCloseTo(0.0612955, 9);

    const released = await client.release({ sessionId: "s1" });
    expect(released).toMatchObject({ released: true, subscriptionId: first.subscriptionId });
    expect((await client.release({ sessionId: "s1" })).released).toBe(false);
    expect((await client.release({ sessionId: "never-seen" })).released).toBe(false);
  });

  it("makes a session id when none is given", async () => {
    const p = await start();
    const a = await p[protocol].allocate({});
    const b = await p[protocol].allocate({});
    expect(a.sessionId).toMatch(/^[0-9a-f-]{36}$/);
    expect(b.sessionId).not.toBe(a.sessionId);
  });
});

describe("ReportUsage", () => {
  it("counts a retried report once (request id, then result uuid)", async () => {
    const p = await start();
    const { subscriptionId } = grantOf(await p.grpc.allocate({ sessionId: "s1" }));
    const output = await fixture("claude-cli/success.json");
    const send = (requestId: string) =>
      p.grpc.reportUsage({ sessionId: "s1", requestId, source: { case: "claudeOutput", value: output } });
    expect((await send("r1")).duplicate).toBe(false);
    expect((await send("r1")).duplicate).toBe(true);
    // A new request id with the same Claude result is still the same run.
    const retry = await send("r2");
    expect(retry).toMatchObject({ duplicate: true, countedCostUsd: 0 });
    expect(await weeklyUsed(p.grpc, subscriptionId)).toBeCloseTo(0.0612955, 9);
  });

  it("counts error subtypes' cost", async () => {
    const p = await start();
    const { subscriptionId } = grantOf(await p.grpc.allocate({ sessionId: "s1" }));
    await p.grpc.reportUsage({
      sessionId: "s1",
      source: { case: "claudeOutput", value: await fixture("claude-cli/error-max-turns.json") },
    });
    expect(await weeklyUsed(p.grpc, subscriptionId)).toBeCloseTo(0.4213, 9);
  });

  it("puts a subscription that hit its limit in cooldown until the reset, then brings it back", async () => {
    const p = await start();
    const { subscriptionId } = grantOf(await p.grpc.allocate({ sessionId: "s1" }));
    // stream-limit.ndjson: rate_limit_event rejected, resetsAt 1795456800 (2026-11-23T18:00:00Z).
    const res = await p.grpc.reportUsage({
      sessionId: "s1",
      source: { case: "claudeOutput", value: await fixture("claude-cli/stream-limit.ndjson") },
    });
    expect(res.limit?.estimated).toBe(false);
    expect(Number(res.limit?.resetsAt?.seconds)).toBe(1795456800);
    expect(res.subscription?.status).toBe(SubscriptionState.COOLDOWN);

    // The session moves on its next allocate; new sessions avoid the subscription.
    const moved = grantOf(await p.grpc.allocate({ sessionId: "s1" }));
    expect(moved.subscriptionId).not.toBe(subscriptionId);
    expect(moved.rotatedFrom).toBe(subscriptionId);
    for (let i = 0; i < 5; i++) {
      expect(grantOf(await p.grpc.allocate({ sessionId: `n${i}` })).subscriptionId).not.toBe(subscriptionId);
    }

    p.clock.set(1795456800 * 1000);
    const after = await p.grpc.getPoolStatus({});
    expect(after.subscriptions.find((s) => s.id === subscriptionId)?.status).toBe(SubscriptionState.AVAILABLE);
  });

  it("does not cool a subscription down for a server throttle", async () => {
    const p = await start();
    const { subscriptionId } = grantOf(await p.grpc.allocate({ sessionId: "s1" }));
    const res = await p.grpc.reportUsage({
      sessionId: "s1",
      source: { case: "claudeOutput", value: await fixture("claude-cli/server-throttle-not-a-limit.json") },
    });
    expect(res.limit).toBeUndefined();
    expect(res.subscription?.status).toBe(SubscriptionState.AVAILABLE);
    expect(grantOf(await p.grpc.allocate({ sessionId: "s1" }))).toMatchObject({ subscriptionId, resumed: true });
  });

  it("takes structured usage with upstream readings", async () => {
    const p = await start();
    const { subscriptionId } = grantOf(await p.grpc.allocate({ sessionId: "s1" }));
    const res = await p.grpc.reportUsage({
      sessionId: "s1",
      requestId: "x",
      source: {
        case: "usage",
        value: {
          costUsd: 1.5,
          inputTokens: 10n,
          outputTokens: 20n,
          modelUsage: { "claude-opus-4-1": { costUsd: 1.5, inputTokens: 10n, outputTokens: 20n } },
          rateLimits: [{ window: 2, status: 1, utilization: 0.5 }],
        },
      },
    });
    expect(res.subscription?.weeklyUsedUsd).toBe(1.5);
    // Upstream says 50% of the week: that, not $1.5 of $100, is the truth.
    expect(res.subscription?.weeklyPercentUsed).toBe(50);
    expect(res.subscription?.id).toBe(subscriptionId);
  });
});

describe("ReportUsage with API response headers", () => {
  it.each([
    ["a rejecting 5-hour 429", "headers/429-five-hour.json", true, 59],
    ["an allowed_warning 200", "headers/200-allowed-warning.json", false, 91],
    ["a request-scoped 429", "headers/429-request-scoped.json", false, 0],
    ["a 529 overloaded", "headers/529-overloaded.json", false, 0],
  ])("reads %s", async (_, file, isLimit, weeklyPercent) => {
    const p = await start();
    await p.grpc.allocate({ sessionId: "h" });
    const captured = JSON.parse(await fixture(file)) as { status: number; headers: Record<string, string> };
    const res = await p.grpc.reportUsage({
      sessionId: "h",
      source: {
        case: "usage",
        value: { costUsd: 0, response: { status: captured.status, headers: captured.headers } },
      },
    });
    expect(res.limit !== undefined).toBe(isLimit);
    if (isLimit) {
      expect(Number(res.limit?.resetsAt?.seconds)).toBe(1795456800);
      expect(res.subscription?.status).toBe(SubscriptionState.COOLDOWN);
    } else {
      expect(res.subscription?.status).not.toBe(SubscriptionState.COOLDOWN);
    }
    expect(res.subscription?.weeklyPercentUsed).toBe(weeklyPercent);
  });
});

describe("ReportUsage: estimated cooldowns heal", () => {
  it("ends a cooldown whose reset was a guess when a real CLI's rate_limit_event shows the window allowed", async () => {
    const p = await start();
    const { subscriptionId } = grantOf(await p.grpc.allocate({ sessionId: "s1" }));
    // 1.0.89-era wording, no zone: 5am in cooldown.timeZone, estimated.
    const limited = await p.grpc.reportUsage({
      sessionId: "s1",
      source: { case: "claudeOutput", value: await fixture("claude-cli/limit-legacy-5h.json") },
    });
    expect(limited.limit).toMatchObject({ window: LimitWindow.FIVE_HOUR, estimated: true });
    expect(limited.subscription?.status).toBe(SubscriptionState.COOLDOWN);
    // A run already on it (or a gateway's probe) comes back with five_hour allowed at 12% (Claude Code 2.1.328).
    p.clock.advance(10 * MINUTE_MS);
    const healed = await p.grpc.reportUsage({
      sessionId: "s1",
      source: { case: "claudeOutput", value: await fixture("claude-cli-real/ok-oauth-stream-json.stdout") },
    });
    expect(healed.subscription?.status).toBe(SubscriptionState.AVAILABLE);
    expect(healed.subscription?.cooldown).toBeUndefined();
    expect(healed.notes).toContain("five_hour cooldown ended early: a fresher reading shows the window allowed");
    expect(healed.countedCostUsd).toBe(0.004711);
    expect(grantOf(await p.grpc.allocate({ sessionId: "s1" }))).toMatchObject({ subscriptionId, resumed: true });
  });
});

describe("ReportUsage: throttles from response headers", () => {
  it("pauses new placements for the retry-after a request-scoped 429 gave, records no usage, and is no cooldown", async () => {
    const p = await start();
    const { subscriptionId } = grantOf(await p.grpc.allocate({ sessionId: "h" }));
    const captured = JSON.parse(await fixture("headers/429-request-scoped.json")) as {
      status: number;
      headers: Record<string, string>;
    };
    const res = await p.grpc.reportUsage({
      sessionId: "h",
      source: {
        case: "usage",
        value: { costUsd: 0, response: { status: captured.status, headers: captured.headers } },
      },
    });
    expect(res.format).toBe(ReportFormat.STRUCTURED);
    expect(res.limit).toBeUndefined();
    expect(res.transientError).toMatchObject({ kind: TransientKind.THROTTLE, estimated: false });
    // retry-after: 3 in the fixture.
    expect(Number(res.transientError?.pausedUntil?.seconds) * 1000).toBe(p.clock.now() + 3000);
    expect(res.subscription?.status).toBe(SubscriptionState.AVAILABLE);
    expect(res.subscription?.throttle?.reason).toMatch(/^HTTP 429 request-scoped rate limit/);
    const status = await p.grpc.getPoolStatus({ includeSessions: true });
    expect(status.sessions.find((s) => s.sessionId === "h")?.requests).toBe(0);
    for (let i = 0; i < 4; i++)
      expect(grantOf(await p.grpc.allocate({ sessionId: `n${i}` })).subscriptionId).not.toBe(subscriptionId);
    expect(grantOf(await p.grpc.allocate({ sessionId: "h" }))).toMatchObject({ subscriptionId, resumed: true });
    p.clock.advance(3000);
    const after = await p.grpc.getPoolStatus({});
    expect(after.subscriptions.find((s) => s.id === subscriptionId)?.throttle).toBeUndefined();
  });
});

describe("Allocate safeguards", () => {
  it("answers RESOURCE_EXHAUSTED when every subscription is full and fallback is off", async () => {
    const p = await start({ fallbackWhenExhausted: false });
    for (const s of ["sub1", "sub2"]) await p.grpc.setPaused({ subscriptionId: s, paused: true });
    for (let i = 0; i < 12; i++) grantOf(await p.grpc.allocate({ sessionId: `s${i}` }));
    for (let i = 12; i < 15; i++) grantOf(await p.grpc.allocate({ sessionId: `s${i}` }));
    await expect(p.grpc.allocate({ sessionId: "s15" })).rejects.toMatchObject({
      code: Code.ResourceExhausted,
      rawMessage: expect.stringMatching(/sub1: paused.*sub2: paused.*sub3: 15 of 15 sessions/),
    });
  });

  it("falls back with a reason naming each subscription's safeguard", async () => {
    const p = await start();
    const statuses = [];
    for (let i = 0; i < 45; i++) statuses.push(await p.grpc.allocate({ sessionId: `s${i}` }));
    const res = await p.grpc.allocate({ sessionId: "one-too-many", priority: Priority.HIGH });
    expect(res.outcome.case).toBe("fallback");
    if (res.outcome.case !== "fallback") return;
    expect(res.outcome.value.provider).toBe("anthropic-api");
    for (const id of ["sub1", "sub2", "sub3"]) expect(res.outcome.value.reason).toContain(`${id}: 15 of 15 sessions`);
    expect(res.outcome.value.exclusions).toHaveLength(3);
  });

  it("pauses and resumes a subscription", async () => {
    const p = await start();
    await p.grpc.setPaused({ subscriptionId: "sub1", paused: true });
    for (let i = 0; i < 6; i++)
      expect(grantOf(await p.grpc.allocate({ sessionId: `s${i}` })).subscriptionId).not.toBe("sub1");
    const res = await p.grpc.setPaused({ subscriptionId: "sub1", paused: false });
    expect(res.subscription?.status).toBe(SubscriptionState.AVAILABLE);
    await expect(p.grpc.setPaused({ subscriptionId: "nope", paused: true })).rejects.toMatchObject({
      code: Code.NotFound,
    });
  });

  it("expires stale sessions through the sweeper, driven by the clock", async () => {
    const p = await start();
    grantOf(await p.grpc.allocate({ sessionId: "idle" }));
    p.clock.advance(30 * MINUTE_MS);
    grantOf(await p.grpc.allocate({ sessionId: "busy" }));
    p.clock.advance(31 * MINUTE_MS);
    await p.server.runJobs();
    const status = await p.grpc.getPoolStatus({ includeSessions: true });
    expect(status.sessions.map((s) => s.sessionId)).toEqual(["busy"]);
    p.clock.advance(HOUR_MS);
    await p.server.runJobs();
    expect((await p.grpc.getPoolStatus({})).totalSessions).toBe(0);
  });
});

describe("consistency", () => {
  it("gives exactly 45 grants and 455 fallbacks to 500 concurrent allocations, and keeps them across a restart", async () => {
    const p = await start();
    const results = await Promise.all(
      Array.from({ length: 500 }, (_, i) => (i % 2 === 0 ? p.grpc : p.connect).allocate({ sessionId: `burst-${i}` })),
    );
    const grants = results.filter((r) => r.outcome.case === "subscription");
    const fallbacks = results.filter((r) => r.outcome.case === "fallback");
    expect(grants).toHaveLength(45);
    expect(fallbacks).toHaveLength(455);
    const perSub = new Map<string, number>();
    for (const g of grants) {
      const id = grantOf(g).subscriptionId;
      perSub.set(id, (perSub.get(id) ?? 0) + 1);
    }
    expect([...perSub.values()]).toEqual([15, 15, 15]);

    const granted = grants.map((g) => g.sessionId).sort();
    await p.restart();
    const status = await p.grpc.getPoolStatus({ includeSessions: true });
    expect(status.totalSessions).toBe(45);
    expect(status.sessions.map((s) => s.sessionId).sort()).toEqual(granted);
    for (const s of status.subscriptions) expect(s.sessionCount).toBe(15);
  });

  it("keeps usage, cooldowns and dedupe keys across a restart", async () => {
    const p = await start();
    const { subscriptionId } = grantOf(await p.grpc.allocate({ sessionId: "s1" }));
    const output = await fixture("claude-cli/success.json");
    await p.grpc.reportUsage({ sessionId: "s1", requestId: "r1", source: { case: "claudeOutput", value: output } });
    await p.grpc.allocate({ sessionId: "s2" });
    await p.grpc.reportUsage({
      sessionId: "s2",
      source: { case: "claudeOutput", value: await fixture("claude-cli/limit-current.json") },
    });
    const before = await p.grpc.getPoolStatus({ includeSessions: true });
    await p.restart();
    const after = await p.grpc.getPoolStatus({ includeSessions: true });
    expect(after.subscriptions).toEqual(before.subscriptions);
    expect(after.sessions).toEqual(before.sessions);
    const dup = await p.grpc.reportUsage({
      sessionId: "s1",
      requestId: "r1",
      source: { case: "claudeOutput", value: output },
    });
    expect(dup.duplicate).toBe(true);
    expect(await weeklyUsed(p.grpc, subscriptionId)).toBeCloseTo(0.0612955, 9);
  });
});

describe("bad input", () => {
  const big = "x".repeat(2 * 1024 * 1024);
  const cases: [string, (c: AuthPoolClient) => Promise<unknown>, Code, RegExp][] = [
    ["Allocate: session id with spaces", (c) => c.allocate({ sessionId: "a b" }), Code.InvalidArgument, /session_id/],
    [
      "Allocate: negative estimated tokens",
      (c) => c.allocate({ sessionId: "s", estimatedTokens: -1n }),
      Code.InvalidArgument,
      /estimated_tokens/,
    ],
    [
      "ReportUsage: missing session id",
      (c) => c.reportUsage({ source: { case: "usage", value: { costUsd: 1 } } }),
      Code.InvalidArgument,
      /session_id/,
    ],
    [
      "ReportUsage: unknown session",
      (c) => c.reportUsage({ sessionId: "ghost", source: { case: "usage", value: { costUsd: 1 } } }),
      Code.NotFound,
      /ghost/,
    ],
    ["ReportUsage: no source", (c) => c.reportUsage({ sessionId: "held" }), Code.InvalidArgument, /source/],
    [
      "ReportUsage: negative cost",
      (c) => c.reportUsage({ sessionId: "held", source: { case: "usage", value: { costUsd: -1 } } }),
      Code.InvalidArgument,
      /usage\.cost_usd/,
    ],
    [
      "ReportUsage: NaN cost",
      (c) => c.reportUsage({ sessionId: "held", source: { case: "usage", value: { costUsd: Number.NaN } } }),
      Code.InvalidArgument,
      /usage\.cost_usd/,
    ],
    [
      "ReportUsage: infinite cost",
      (c) =>
        c.reportUsage({ sessionId: "held", source: { case: "usage", value: { costUsd: Number.POSITIVE_INFINITY } } }),
      Code.InvalidArgument,
      /usage\.cost_usd/,
    ],
    [
      "ReportUsage: negative tokens",
      (c) => c.reportUsage({ sessionId: "held", source: { case: "usage", value: { costUsd: 1, outputTokens: -5n } } }),
      Code.InvalidArgument,
      /usage\.output_tokens/,
    ],
    [
      "ReportUsage: negative model cost",
      (c) =>
        c.reportUsage({
          sessionId: "held",
          source: { case: "usage", value: { costUsd: 1, modelUsage: { m: { costUsd: -2 } } } },
        }),
      Code.InvalidArgument,
      /usage\.model_usage\.m\.cost_usd/,
    ],
    [
      "ReportUsage: 2 MB claude_output",
      (c) => c.reportUsage({ sessionId: "held", source: { case: "claudeOutput", value: big } }),
      Code.InvalidArgument,
      /claude_output/,
    ],
    [
      "ReportUsage: claude_output result with a negative cost",
      (c) =>
        c.reportUsage({
          sessionId: "held",
          source: { case: "claudeOutput", value: '{"type":"result","is_error":false,"total_cost_usd":-1}' },
        }),
      Code.InvalidArgument,
      /claude_output/,
    ],
    ["Release: missing session id", (c) => c.release({}), Code.InvalidArgument, /session_id/],
    [
      "Release: overlong session id",
      (c) => c.release({ sessionId: "x".repeat(300) }),
      Code.InvalidArgument,
      /session_id/,
    ],
    [
      "SetPaused: unknown subscription",
      (c) => c.setPaused({ subscriptionId: "nope", paused: true }),
      Code.NotFound,
      /nope/,
    ],
  ];

  it.each(cases)("%s", async (_, call, code, message) => {
    const p = pool ?? (await start());
    await p.grpc.allocate({ sessionId: "held" });
    const before = await p.grpc.getPoolStatus({ includeSessions: true });
    const err = await call(p.grpc).then(
      () => undefined,
      (e: unknown) => ConnectError.from(e),
    );
    expect(err?.code).toBe(code);
    expect(err?.rawMessage).toMatch(message);
    const after = await p.grpc.getPoolStatus({ includeSessions: true });
    expect(after.subscriptions).toEqual(before.subscriptions);
    expect(after.sessions).toEqual(before.sessions);
  });
});
