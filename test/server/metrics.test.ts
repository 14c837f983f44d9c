import { afterEach, describe, expect, it } from "vitest";
import { type TestPool, fixture, startTestPool } from "../support/test-server.js";

let pool: TestPool | undefined;
afterEach(async () => {
  await pool?.close();
  pool = undefined;
});

describe("GET /metrics", () => {
  it("exposes per-subscription gauges in the Prometheus text format", async () => {
    pool = await startTestPool();
    await pool.grpc.allocate({ sessionId: "s" });
    await pool.grpc.reportUsage({ sessionId: "s", source: { case: "claudeOutput", value: await fixture("claude-cli/stream-limit.ndjson") } });
    const res = await fetch(`${pool.server.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    expect(text).toContain("# TYPE authpool_subscription_health_score gauge");
    expect(text).toMatch(/^authpool_sessions 1$/m);
    expect(text).toMatch(/^authpool_subscription_status\{subscription="sub1",status="cooldown"\} 1$/m);
    expect(text).toMatch(/^authpool_subscription_cooldown_until_seconds\{subscription="sub1"\} 1795456800$/m);
    expect(text).toMatch(/^authpool_subscription_status\{subscription="sub2",status="available"\} 1$/m);
    // stream-limit.ndjson's rate_limit_event: five_hour rejected at 1.0, read just now.
    expect(text).toMatch(/^authpool_subscription_upstream_utilization_ratio\{subscription="sub1",window="five_hour"\} 1$/m);
    expect(text).toMatch(/^authpool_subscription_upstream_age_seconds\{subscription="sub1",window="five_hour"\} 0$/m);
    expect(text).toMatch(/^authpool_subscription_external_weekly_usd\{subscription="sub1"\} 0$/m);
    // Every sample line is `name{labels} number`.
    for (const line of text.split("\n").filter((l) => l !== "" && !l.startsWith("#"))) {
      expect(line).toMatch(/^[a-z_]+(\{[^}]*\})? -?[0-9.e+-]+$/);
    }
  });

  it("answers 404 for other paths and asks for the token when auth is on", async () => {
    pool = await startTestPool({ config: { server: { host: "127.0.0.1", port: 0, authTokens: ["tok-0123456789abcdef"] } } });
    expect((await fetch(`${pool.server.url}/nope`)).status).toBe(404);
    expect((await fetch(`${pool.server.url}/metrics`)).status).toBe(401);
    const ok = await fetch(`${pool.server.url}/metrics`, { headers: { authorization: "Bearer tok-0123456789abcdef" } });
    expect(ok.status).toBe(200);
  });
});
