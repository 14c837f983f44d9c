import { chmod, copyFile, mkdir, readFile } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ExclusionReason, LimitWindow, SubscriptionState } from "../../src/client/index.js";
import { type TestPool, startTestPool } from "../support/test-server.js";

let pool: TestPool | undefined;
let server: http.Server | undefined;
afterEach(async () => {
  await pool?.close();
  pool = undefined;
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

/** A stand-in for the OAuth usage endpoint: one fixture per bearer token it sees. */
async function usageEndpoint(body: string): Promise<{ url: string; auth: string[] }> {
  const auth: string[] = [];
  server = http.createServer((req, res) => {
    auth.push(req.headers.authorization ?? "");
    res.writeHead(200, { "content-type": "application/json" }).end(body);
  });
  await new Promise<void>((resolve) => server!.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/oauth/usage`, auth };
}

describe("upstream usage polling", () => {
  it("reads each subscription's utilization with its own token and benches an exhausted one", async () => {
    const body = await readFile(new URL("../fixtures/oauth-usage/exhausted-5h.json", import.meta.url), "utf8");
    const endpoint = await usageEndpoint(body);
    pool = await startTestPool({
      config: { upstream: { enabled: true, endpoint: endpoint.url, intervalSeconds: 90 } },
      loggedIn: false,
    });
    // sub1 is logged in; sub2 and sub3 have no credentials file.
    const dir = path.join(pool.dir, "sub1");
    await mkdir(dir, { recursive: true });
    const creds = path.join(dir, ".credentials.json");
    await copyFile(new URL("../fixtures/credentials/config-a/.credentials.json", import.meta.url), creds);
    await chmod(creds, 0o600);
    const token = (JSON.parse(await readFile(creds, "utf8")) as { claudeAiOauth: { accessToken: string } })
      .claudeAiOauth.accessToken;

    // exhausted-5h.json resets at 2026-11-23T18:00Z; the test clock starts at 10:00Z.
    await pool.server.runJobs();
    expect(endpoint.auth).toEqual([`Bearer ${token}`]);

    const status = await pool.grpc.getPoolStatus({});
    const sub1 = status.subscriptions.find((s) => s.id === "sub1")!;
    expect(sub1.status).toBe(SubscriptionState.COOLDOWN);
    expect(sub1.cooldown?.window).toBe(LimitWindow.FIVE_HOUR);
    expect(sub1.cooldown?.estimated).toBe(false);
    expect(sub1.weeklyPercentUsed).toBe(59);
    expect(sub1.upstream.map((u) => u.window).sort()).toEqual([LimitWindow.FIVE_HOUR, LimitWindow.SEVEN_DAY]);
    const sub2 = status.subscriptions.find((s) => s.id === "sub2")!;
    expect(sub2.warnings.some((w) => w.startsWith("usage endpoint: no credentials"))).toBe(true);
    expect(sub2.usagePolling?.lastError).toMatch(/^no credentials: /);
    expect(sub1.usagePolling?.lastError).toBe("");
    expect(sub1.usagePolling?.lastPolledAt).toBeDefined();
    expect(JSON.stringify(status.subscriptions.flatMap((s) => s.warnings))).not.toContain(token);

    // New sessions avoid the exhausted subscription (and the two without a login: none is left).
    const fallback = await pool.grpc.allocate({ sessionId: "s" });
    expect(fallback.outcome.case).toBe("fallback");
    const excluded = fallback.outcome.case === "fallback" ? fallback.outcome.value.exclusions : [];
    expect(excluded.find((e) => e.subscriptionId === "sub1")?.reason).toBe(ExclusionReason.COOLDOWN);

    // Polled again only when its interval has passed.
    await pool.server.runJobs();
    expect(endpoint.auth).toHaveLength(1);
    pool.clock.advance(100_000);
    await pool.server.runJobs();
    expect(endpoint.auth).toHaveLength(2);
  });

  it("is off by default", async () => {
    const endpoint = await usageEndpoint("{}");
    pool = await startTestPool();
    await pool.server.runJobs();
    expect(endpoint.auth).toEqual([]);
  });
});
