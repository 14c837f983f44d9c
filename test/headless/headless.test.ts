import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import net from "node:net";
import path from "node:path";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { Priority, SessionState } from "../../src/client/index.js";
import { type AuthPoolHandle, initializeAuthPool } from "../../src/headless/index.js";
import { type TestPool, startTestPool } from "../support/test-server.js";

const run = promisify(execFile);
const CAPTURE = path.join(import.meta.dirname, "../fixtures/claude-cli-real/endpoints-default-oauth-json.stdout");

let pool: TestPool | undefined;
const errors: string[] = [];

afterEach(async () => {
  await pool?.close();
  pool = undefined;
  errors.length = 0;
});

/** connect initializes the drop-in as a gateway would, against the test pool. */
function connect(p: TestPool, timeoutMs = 2000): AuthPoolHandle {
  const handle = initializeAuthPool({
    url: p.server.url,
    timeoutMs,
    env: {},
    onError: (operation, error) => errors.push(`${operation}: ${String(error)}`),
  });
  expect(handle).not.toBeNull();
  return handle!;
}

/** weeklyCost is what status says was spent on a subscription this week. */
async function weeklyCost(p: TestPool, id: string): Promise<number> {
  const status = await p.grpc.getPoolStatus({});
  return status.subscriptions.find((s) => s.id === id)!.weeklyUsedUsd;
}

describe("initializeAuthPool", () => {
  it("is null when no pool is named, in the argument or the environment", () => {
    expect(initializeAuthPool({ env: {} })).toBeNull();
    expect(initializeAuthPool({ env: { AUTHPOOL_URL: "  " } })).toBeNull();
  });

  it("takes the URL from AUTHPOOL_URL, or a string argument", () => {
    expect(initializeAuthPool({ env: { AUTHPOOL_URL: "http://127.0.0.1:1" } })?.url).toBe("http://127.0.0.1:1");
    expect(initializeAuthPool("http://127.0.0.1:2")?.client.isEnabled()).toBe(true);
  });
});

describe("the integration guide's request flow, through a real pool", () => {
  it("allocates, runs claude with the config dir, reports, heartbeats and deallocates", async () => {
    pool = await startTestPool();
    const { client } = connect(pool);
    const grant = await client.allocateAccount({ sessionId: "gw-1", estimatedTokens: 5000, priority: "normal" });
    expect(grant).toMatchObject({ type: "subscription", sessionId: "gw-1" });
    expect(grant.configDir).toBe(pool.config.subscriptions.find((s) => s.id === grant.subscriptionId)!.configDir);

    // A fake claude that prints what the real one printed, and only when given a config dir.
    const script = `if (!process.env.CLAUDE_CONFIG_DIR) process.exit(3);
process.stdout.write(require("node:fs").readFileSync(${JSON.stringify(CAPTURE)}, "utf8"));`;
    const { stdout } = await run(process.execPath, ["-e", script], {
      env: { ...process.env, CLAUDE_CONFIG_DIR: grant.configDir },
    });
    expect(stdout).toBe(await readFile(CAPTURE, "utf8"));
    await client.reportClaudeOutput("gw-1", stdout);
    expect(await weeklyCost(pool, grant.subscriptionId!)).toBeCloseTo(0.004711, 6);

    // The old structured report: cost and a token total.
    await client.reportUsage({ subscriptionId: grant.subscriptionId!, cost: 0.25, tokens: 1200, sessionId: "gw-1" });
    expect(await weeklyCost(pool, grant.subscriptionId!)).toBeCloseTo(0.254711, 6);

    // Half an hour of heartbeats keeps the session active, and counts no run.
    const before = (await pool.grpc.getPoolStatus({ includeSessions: true })).sessions[0]!;
    pool.clock.advance(30 * 60_000);
    await client.sendHeartbeat({ clientId: "gw-1", subscriptionId: grant.subscriptionId!, status: "active" });
    const held = await pool.grpc.getPoolStatus({ includeSessions: true });
    expect(held.sessions.map((s) => s.sessionId)).toEqual(["gw-1"]);
    expect(held.sessions[0]).toMatchObject({ state: SessionState.ACTIVE, requests: before.requests });
    expect(timestampMs(held.sessions[0]!.lastActivityAt!)).toBe(pool.clock.now());
    // The heartbeat counted nothing.
    expect(await weeklyCost(pool, grant.subscriptionId!)).toBeCloseTo(0.254711, 6);

    // Resuming the same session keeps its subscription.
    const again = await client.allocateAccount({ sessionId: "gw-1" });
    expect(again).toMatchObject({ type: "subscription", subscriptionId: grant.subscriptionId });

    await client.deallocateSession("gw-1");
    expect((await pool.grpc.getPoolStatus({ includeSessions: true })).sessions).toEqual([]);
    expect(errors).toEqual([]);
  });

  it("counts a report retried under one request id once", async () => {
    pool = await startTestPool();
    const { client } = connect(pool);
    const grant = await client.allocateAccount({ sessionId: "gw-2" });
    const report = {
      subscriptionId: grant.subscriptionId!,
      cost: 1.5,
      tokens: 100,
      sessionId: "gw-2",
      requestId: "r-1",
    };
    await client.reportUsage(report);
    await client.reportUsage(report);
    expect(await weeklyCost(pool, grant.subscriptionId!)).toBeCloseTo(1.5, 6);
    // Without a key each call is a run of its own.
    await client.reportUsage({ ...report, requestId: undefined });
    expect(await weeklyCost(pool, grant.subscriptionId!)).toBeCloseTo(3, 6);
  });

  it("books the priority and honours it: low stops at its threshold first, high spends the reserve", async () => {
    pool = await startTestPool({ config: { weeklyBudgetThreshold: 0.85 } });
    const { client } = connect(pool);
    for (const id of ["sub2", "sub3"]) await pool.grpc.setPaused({ subscriptionId: id, paused: true });
    const first = await client.allocateAccount({ sessionId: "fill", priority: "high" });
    expect(first.subscriptionId).toBe("sub1");
    const sessions = (await pool.grpc.getPoolStatus({ includeSessions: true })).sessions;
    expect(sessions.find((s) => s.sessionId === "fill")?.priority).toBe(Priority.HIGH);
    // $80 of sub1's $100 week: over the low threshold (76.5%), under the normal one (85%).
    await client.reportUsage({ subscriptionId: "sub1", cost: 80, tokens: 1000, sessionId: "fill", requestId: "f" });
    expect(await client.allocateAccount({ sessionId: "low", priority: "low" })).toMatchObject({ type: "fallback" });
    expect(await client.allocateAccount({ sessionId: "normal" })).toMatchObject({ type: "subscription" });
    // $90: over the normal threshold; high priority may still run.
    await client.reportUsage({ subscriptionId: "sub1", cost: 10, tokens: 1000, sessionId: "fill", requestId: "g" });
    const normal = await client.allocateAccount({ sessionId: "normal-2", priority: "normal" });
    expect(normal.type).toBe("fallback");
    expect(normal.reason).toMatch(/weekly/);
    expect(await client.allocateAccount({ sessionId: "high", priority: "high" })).toMatchObject({
      type: "subscription",
      subscriptionId: "sub1",
    });
  });

  it("says nothing is lost when a report names a session the pool does not hold", async () => {
    pool = await startTestPool();
    const { client } = connect(pool);
    await client.reportUsage({ subscriptionId: "sub1", cost: 1, tokens: 10, sessionId: "never-allocated" });
    await client.deallocateSession("never-allocated");
    expect(errors).toEqual([]);
  });
});

describe("a pool that is down", () => {
  it("answers fallback with the reason, within the timeout, and never throws", async () => {
    // Accepts connections and never answers: the worst case for a timeout.
    const sockets: net.Socket[] = [];
    const blackHole = net.createServer((s) => sockets.push(s));
    await new Promise<void>((resolve) => blackHole.listen(0, "127.0.0.1", resolve));
    const { port } = blackHole.address() as net.AddressInfo;
    try {
      const handle = initializeAuthPool({
        url: `http://127.0.0.1:${port}`,
        timeoutMs: 300,
        env: {},
        onError: (operation) => errors.push(operation),
      })!;
      const started = performance.now();
      const result = await handle.client.allocateAccount({ sessionId: "gw-down", priority: "high" });
      const elapsed = performance.now() - started;
      expect(result).toMatchObject({ type: "fallback", sessionId: "gw-down" });
      expect(result.reason).toMatch(/^auth pool unavailable: no answer in time/);
      // Bounded by the timeout (plus scheduling slack), not by TCP's minutes.
      expect(elapsed).toBeLessThan(300 + 1500);
      await handle.client.reportUsage({ subscriptionId: "x", cost: 1, tokens: 1, sessionId: "gw-down" });
      await handle.client.sendHeartbeat({ clientId: "gw-down", subscriptionId: "x", status: "active" });
      await handle.client.deallocateSession("gw-down");
      expect(errors).toEqual(["allocateAccount", "reportUsage", "sendHeartbeat", "deallocateSession"]);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => blackHole.close(resolve));
    }
  });

  it("answers fallback at once when nothing listens", async () => {
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
    const { port } = probe.address() as net.AddressInfo;
    await new Promise((resolve) => probe.close(resolve));
    const handle = initializeAuthPool({ url: `http://127.0.0.1:${port}`, env: {}, onError: () => {} })!;
    const result = await handle.client.allocateAccount({ sessionId: "gw-refused" });
    expect(result.type).toBe("fallback");
    expect(result.reason).toMatch(/^auth pool unavailable: /);
  });
});
