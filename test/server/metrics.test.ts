import * as http2 from "node:http2";
import { Code } from "@connectrpc/connect";
import { afterEach, describe, expect, it } from "vitest";
import { createAuthPoolClient } from "../../src/client/index.js";
import { MAX_CLIENT_LABELS, OTHER_CLIENTS } from "../../src/server/client-labels.js";
import { type Sample, parseExposition, scrape, sampleValue as value } from "../support/exposition.js";
import { type TestPool, fixture, startTestPool } from "../support/test-server.js";

let pools: TestPool[] = [];
afterEach(async () => {
  await Promise.all(pools.map((p) => p.close()));
  pools = [];
});

async function start(options: Parameters<typeof startTestPool>[0] = {}): Promise<TestPool> {
  const pool = await startTestPool(options);
  pools.push(pool);
  return pool;
}

/** eventually scrapes until check passes (state that settles after a call returns, such as a stream's end). */
async function eventually(pool: TestPool, check: (samples: Sample[]) => boolean): Promise<Sample[]> {
  for (let i = 0; i < 100; i++) {
    const samples = await scrape(pool);
    if (check(samples)) return samples;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error("metrics did not settle");
}

async function pauseAll(pool: TestPool): Promise<void> {
  for (const s of pool.config.subscriptions) await pool.grpc.setPaused({ subscriptionId: s.id, paused: true });
}

describe("GET /metrics", () => {
  it("should expose per-subscription gauges in the Prometheus text format", async () => {
    const pool = await start();
    await pool.grpc.allocate({ sessionId: "s" });
    await pool.grpc.reportUsage({
      sessionId: "s",
      source: { case: "claudeOutput", value: await fixture("claude-cli/stream-limit.ndjson") },
    });
    const res = await fetch(`${pool.server.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    expect(text).toContain("# TYPE authpool_subscription_health_score gauge");
    expect(text).toMatch(/^authpool_sessions 1$/m);
    expect(text).toMatch(/^authpool_subscription_status\{subscription="sub1",status="cooldown"\} 1$/m);
    expect(text).toMatch(/^authpool_subscription_cooldown_until_seconds\{subscription="sub1"\} 1795456800$/m);
    expect(text).toMatch(/^authpool_subscription_cooldown\{subscription="sub1"\} 1$/m);
    expect(text).toMatch(/^authpool_subscription_cooldown\{subscription="sub2"\} 0$/m);
    expect(text).toMatch(/^authpool_subscription_status\{subscription="sub2",status="available"\} 1$/m);
    // stream-limit.ndjson's rate_limit_event: five_hour rejected at 1.0, read just now.
    expect(text).toMatch(
      /^authpool_subscription_upstream_utilization_ratio\{subscription="sub1",window="five_hour"\} 1$/m,
    );
    expect(text).toMatch(/^authpool_subscription_upstream_age_seconds\{subscription="sub1",window="five_hour"\} 0$/m);
    expect(text).toMatch(/^authpool_subscription_external_weekly_usd\{subscription="sub1"\} 0$/m);
    // Every sample line is `name{labels} number`.
    for (const line of text.split("\n").filter((l) => l !== "" && !l.startsWith("#"))) {
      expect(line).toMatch(/^[a-z_]+(\{[^}]*\})? (-?[0-9.e+-]+|\+Inf)$/);
    }
    const samples = parseExposition(text);
    expect(value(samples, "authpool_subscription_max_sessions", { subscription: "sub2" })).toBe(15);
    expect(value(samples, "authpool_limits_reached_total", { subscription: "sub1", window: "five_hour" })).toBe(1);
    expect(value(samples, "authpool_event_sequence")).toBe(pool.server.writer.durableSeq);
  });

  it("should count allocations by outcome: grant, resume, fallback", async () => {
    const pool = await start();
    await pool.grpc.allocate({ sessionId: "a" });
    await pool.grpc.allocate({ sessionId: "a" });
    await pauseAll(pool);
    const fallback = await pool.grpc.allocate({ sessionId: "b" });
    expect(fallback.outcome.case).toBe("fallback");
    const samples = await scrape(pool);
    expect(value(samples, "authpool_allocations_total", { outcome: "grant" })).toBe(1);
    expect(value(samples, "authpool_allocations_total", { outcome: "resume" })).toBe(1);
    expect(value(samples, "authpool_allocations_total", { outcome: "fallback" })).toBe(1);
    expect(value(samples, "authpool_allocations_total", { outcome: "exhausted" })).toBe(0);
    expect(value(samples, "authpool_fallback_ratio")).toBe(0.5);
  });

  it("should count an allocation answered RESOURCE_EXHAUSTED and time Allocate by code", async () => {
    const pool = await start({ config: { fallback: { enabled: false } } });
    await pool.grpc.allocate({ sessionId: "a" });
    await pauseAll(pool);
    await expect(pool.grpc.allocate({ sessionId: "b" })).rejects.toMatchObject({ code: Code.ResourceExhausted });
    const samples = await scrape(pool);
    expect(value(samples, "authpool_allocations_total", { outcome: "grant" })).toBe(1);
    expect(value(samples, "authpool_allocations_total", { outcome: "exhausted" })).toBe(1);
    expect(value(samples, "authpool_fallback_ratio")).toBe(0);
    expect(value(samples, "authpool_rpc_duration_seconds_count", { method: "Allocate", code: "ok" })).toBe(1);
    expect(
      value(samples, "authpool_rpc_duration_seconds_count", { method: "Allocate", code: "resource_exhausted" }),
    ).toBe(1);
    expect(value(samples, "authpool_rpc_duration_seconds_count", { method: "SetPaused", code: "ok" })).toBe(3);
    expect(value(samples, "authpool_rpc_duration_seconds_bucket", { method: "Allocate", code: "ok", le: "+Inf" })).toBe(
      1,
    );
  });

  it("should count reported cost by subscription and tokens by model and kind", async () => {
    const pool = await start();
    const grant = await pool.grpc.allocate({ sessionId: "s" });
    if (grant.outcome.case !== "subscription") throw new Error("expected a subscription");
    const sub = grant.outcome.value.subscriptionId;
    const report = await pool.grpc.reportUsage({
      sessionId: "s",
      source: { case: "claudeOutput", value: await fixture("claude-cli/success.json") },
    });
    const samples = await scrape(pool);
    expect(value(samples, "authpool_usage_reported_usd_total", { subscription: sub })).toBeCloseTo(
      report.countedCostUsd,
      9,
    );
    expect(report.countedCostUsd).toBeCloseTo(0.0612955, 9);
    const tokens = (model: string, kind: string) => value(samples, "authpool_usage_tokens_total", { model, kind });
    // success.json's modelUsage.
    expect(tokens("claude-sonnet-4-5-20250929", "input")).toBe(3);
    expect(tokens("claude-sonnet-4-5-20250929", "output")).toBe(12);
    expect(tokens("claude-sonnet-4-5-20250929", "cache_creation")).toBe(1234);
    expect(tokens("claude-sonnet-4-5-20250929", "cache_read")).toBe(15000);
    expect(tokens("claude-haiku-4-5-20251001", "input")).toBe(41200);
    expect(tokens("claude-haiku-4-5-20251001", "output")).toBe(1480);
    // The same report again is a duplicate: no event, nothing counted twice.
    await pool.grpc.reportUsage({
      sessionId: "s",
      source: { case: "claudeOutput", value: await fixture("claude-cli/success.json") },
    });
    const again = await scrape(pool);
    expect(value(again, "authpool_usage_tokens_total", { model: "claude-haiku-4-5-20251001", kind: "input" })).toBe(
      41200,
    );
  });

  it("should show 1 event stream subscriber while a StreamEvents call is open", async () => {
    const pool = await start();
    expect(value(await scrape(pool), "authpool_event_stream_subscribers")).toBe(0);
    const abort = new AbortController();
    const reading = (async () => {
      try {
        for await (const _ of pool.grpc.streamEvents({ tail: true }, { signal: abort.signal })) {
          // drain
        }
      } catch {
        // aborted below
      }
    })();
    await eventually(pool, (s) => value(s, "authpool_event_stream_subscribers") === 1);
    abort.abort();
    await reading;
    const samples = await eventually(pool, (s) => value(s, "authpool_event_stream_subscribers") === 0);
    const streamed = samples.filter(
      (s) => s.name === "authpool_rpc_duration_seconds_count" && s.labels.method === "StreamEvents",
    );
    expect(streamed.reduce((n, s) => n + s.value, 0)).toBe(1);
  });

  it("should answer over HTTP/2 as well", async () => {
    const pool = await start();
    const session = http2.connect(pool.server.url);
    try {
      const { status, contentType, body } = await new Promise<{ status: number; contentType: string; body: string }>(
        (resolve, reject) => {
          const req = session.request({ ":method": "GET", ":path": "/metrics" });
          let head: http2.IncomingHttpHeaders = {};
          let body = "";
          req.setEncoding("utf8");
          req.on("response", (h) => (head = h));
          req.on("data", (chunk: string) => (body += chunk));
          req.on("end", () =>
            resolve({ status: Number(head[":status"]), contentType: String(head["content-type"]), body }),
          );
          req.on("error", reject);
          req.end();
        },
      );
      expect(status).toBe(200);
      expect(contentType).toMatch(/^text\/plain; version=0\.0\.4/);
      expect(value(parseExposition(body), "authpool_sessions")).toBe(0);
    } finally {
      session.close();
    }
  });

  it("should keep two servers in one process apart (a registry each)", async () => {
    const one = await start();
    const two = await start();
    await one.grpc.allocate({ sessionId: "a" });
    expect(value(await scrape(one), "authpool_allocations_total", { outcome: "grant" })).toBe(1);
    expect(value(await scrape(two), "authpool_allocations_total", { outcome: "grant" })).toBe(0);
  });

  it("should answer 404 for other paths and ask for the token when auth is on", async () => {
    const pool = await start({
      config: { server: { host: "127.0.0.1", port: 0, authTokens: ["tok-0123456789abcdef"] } },
    });
    expect((await fetch(`${pool.server.url}/nope`)).status).toBe(404);
    const denied = await fetch(`${pool.server.url}/metrics`);
    expect(denied.status).toBe(401);
    expect(denied.headers.get("www-authenticate")).toBe("Bearer");
    expect(
      (await fetch(`${pool.server.url}/metrics`, { headers: { authorization: "Bearer wrong-token-0123456789" } }))
        .status,
    ).toBe(401);
    const samples = await scrape(pool, { authorization: "Bearer tok-0123456789abcdef" });
    expect(value(samples, "authpool_event_stream_subscribers")).toBe(0);
  });
});

describe("GET /metrics per client", () => {
  const usage = (costUsd: number) => ({ case: "usage" as const, value: { costUsd } });

  it("should count new sessions, cost and limit refusals by client, and the sessions each holds", async () => {
    const pool = await start({
      config: { clients: { bot: { weeklyUsd: 5 }, capped: { maxSessions: 1, denyModels: ["opus"] } } },
    });
    await pool.grpc.allocate({ sessionId: "a1", client: "alice" });
    await pool.grpc.allocate({ sessionId: "d1" });
    await pool.grpc.allocate({ sessionId: "b1", client: "bot" });
    await pool.grpc.reportUsage({ sessionId: "b1", requestId: "r1", source: usage(4) });
    await pool.grpc.release({ sessionId: "b1" });
    // A late report on a released session still counts for its client, as the ledger books it.
    await pool.grpc.reportUsage({ sessionId: "b1", requestId: "r2", source: usage(2) });
    expect((await pool.grpc.allocate({ sessionId: "b2", client: "bot" })).outcome.case).toBe("fallback");
    await pool.grpc.allocate({ sessionId: "c1", client: "capped" });
    expect((await pool.grpc.allocate({ sessionId: "c2", client: "capped" })).outcome.case).toBe("fallback");

    const samples = await scrape(pool);
    const allocations = (client: string, outcome: string) =>
      value(samples, "authpool_client_allocations_total", { client, outcome });
    expect([
      allocations("alice", "grant"),
      allocations("default", "grant"),
      allocations("bot", "grant"),
      allocations("capped", "grant"),
    ]).toEqual([1, 1, 1, 1]);
    expect([allocations("bot", "fallback"), allocations("capped", "fallback")]).toEqual([1, 1]);
    // Configured clients show at 0 before their first event; others only once seen.
    expect(allocations("alice", "fallback")).toBeUndefined();
    expect(value(samples, "authpool_client_usage_usd_total", { client: "bot" })).toBe(6);
    expect(value(samples, "authpool_client_usage_usd_total", { client: "capped" })).toBe(0);
    const refusals = (client: string, limit: string, outcome = "fallback") =>
      value(samples, "authpool_client_limit_refusals_total", { client, limit, outcome });
    expect(refusals("bot", "weekly_usd")).toBe(1);
    expect(refusals("capped", "max_sessions")).toBe(1);
    // Limits the client has are there at 0, for both outcomes; one it does not have is not.
    expect(refusals("capped", "model")).toBe(0);
    expect(refusals("capped", "model", "refused")).toBe(0);
    expect(refusals("bot", "max_sessions")).toBeUndefined();
    const sessions = (client: string) => value(samples, "authpool_client_sessions", { client });
    expect([sessions("alice"), sessions("default"), sessions("bot"), sessions("capped")]).toEqual([1, 1, 0, 1]);
  });

  it("should count every client limit refusal by outcome: fallback (the paid API) or refused (RESOURCE_EXHAUSTED)", async () => {
    const pool = await start({
      config: {
        clients: {
          paid: { maxSessions: 1 },
          strict: { maxSessions: 1, fallback: false },
          budget: { weeklyUsd: 5, fallback: false },
        },
      },
    });
    const c = pool.grpc;
    await c.allocate({ sessionId: "p1", client: "paid" });
    expect((await c.allocate({ sessionId: "p2", client: "paid" })).outcome.case).toBe("fallback");
    await c.allocate({ sessionId: "s1", client: "strict" });
    // Each call counts, though the journal has one client_limited event for the run.
    for (const sessionId of ["r1", "r2"]) {
      await expect(c.allocate({ sessionId, client: "strict" })).rejects.toMatchObject({ code: Code.ResourceExhausted });
    }
    const watched = async () => {
      for await (const res of c.allocateWatch({ request: { sessionId: "r3", client: "strict" } })) void res;
    };
    await expect(watched()).rejects.toMatchObject({ code: Code.ResourceExhausted });
    // A call that waits for a slot and is refused by the limit once one opens.
    await c.allocate({ sessionId: "b1", client: "budget" });
    await pauseAll(pool);
    const waiting = createAuthPoolClient(pool.server.url, { timeoutMs: 30_000 })
      .allocate({ sessionId: "b2", client: "budget", wait: true })
      .catch((e: unknown) => e);
    await eventually(pool, (s) => value(s, "authpool_queue_waiting") === 1);
    await c.reportUsage({ sessionId: "b1", requestId: "r1", source: usage(6) });
    await c.setPaused({ subscriptionId: "sub1", paused: false });
    expect(await waiting).toMatchObject({ code: Code.ResourceExhausted });

    const samples = await scrape(pool);
    const refusals = (client: string, limit: string, outcome: string) =>
      value(samples, "authpool_client_limit_refusals_total", { client, limit, outcome });
    expect([refusals("paid", "max_sessions", "fallback"), refusals("paid", "max_sessions", "refused")]).toEqual([1, 0]);
    expect([refusals("strict", "max_sessions", "fallback"), refusals("strict", "max_sessions", "refused")]).toEqual([
      0, 3,
    ]);
    expect([refusals("budget", "weekly_usd", "fallback"), refusals("budget", "weekly_usd", "refused")]).toEqual([0, 1]);
    expect(value(samples, "authpool_allocations_total", { outcome: "exhausted" })).toBe(4);
  });

  it("should count a client limit refusal as refused when the pool's fallback is off", async () => {
    const pool = await start({
      config: { fallback: { enabled: false }, clients: { capped: { denyModels: ["opus"] } } },
    });
    await expect(pool.grpc.allocate({ sessionId: "o1", client: "capped", model: "opus" })).rejects.toMatchObject({
      code: Code.ResourceExhausted,
    });
    // A refusal for the pool's reasons (nothing free) is no client limit's.
    await pauseAll(pool);
    await expect(pool.grpc.allocate({ sessionId: "o2", client: "capped" })).rejects.toMatchObject({
      code: Code.ResourceExhausted,
    });
    const samples = await scrape(pool);
    expect(
      value(samples, "authpool_client_limit_refusals_total", { client: "capped", limit: "model", outcome: "refused" }),
    ).toBe(1);
    expect(value(samples, "authpool_allocations_total", { outcome: "exhausted" })).toBe(2);
  });

  it(`should give the first ${MAX_CLIENT_LABELS} unconfigured clients a label each and fold the rest into ${OTHER_CLIENTS}`, async () => {
    const pool = await start({ config: { clients: { late: {} } } });
    for (let i = 0; i <= MAX_CLIENT_LABELS; i++) await pool.grpc.allocate({ sessionId: `s${i}`, client: `c${i}` });
    await pool.grpc.allocate({ sessionId: "late-1", client: "late" });
    const samples = (await scrape(pool)).filter((s) => s.name === "authpool_client_allocations_total" && s.value > 0);
    const labels = samples.map((s) => s.labels.client);
    expect(labels).not.toContain(`c${MAX_CLIENT_LABELS}`);
    // A configured client keeps its own label past the bound.
    expect(labels).toContain("late");
    expect(new Set(labels).size).toBe(MAX_CLIENT_LABELS + 2);
    expect(samples.filter((s) => s.labels.client === OTHER_CLIENTS).reduce((n, s) => n + s.value, 0)).toBe(1);
  });

  it("should show the calls waiting for a slot", async () => {
    const pool = await start();
    expect(value(await scrape(pool), "authpool_queue_waiting")).toBe(0);
    await pauseAll(pool);
    const c = createAuthPoolClient(pool.server.url, { timeoutMs: 30_000 });
    const waiting = c.allocate({ sessionId: "w1", client: "alice", wait: true });
    await eventually(pool, (s) => value(s, "authpool_queue_waiting") === 1);
    await pool.grpc.setPaused({ subscriptionId: "sub1", paused: false });
    expect((await waiting).outcome.case).toBe("subscription");
    const samples = await eventually(pool, (s) => value(s, "authpool_queue_waiting") === 0);
    expect(value(samples, "authpool_client_sessions", { client: "alice" })).toBe(1);
  });
});
