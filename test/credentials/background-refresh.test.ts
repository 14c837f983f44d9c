import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  FakeTokenEndpoint,
  type TokenServer,
  type TokenSet,
  serveTokenEndpoint,
} from "../support/fake-token-endpoint.js";
import { EventType, SubscriptionState } from "../../gen/authpool/v1/auth_pool_pb.js";
import { ManualClock } from "../support/manual-clock.js";
import { type TestPool, startTestPool, testConfigRaw } from "../support/test-server.js";

const START = Date.parse("2026-11-23T10:00:00Z");
const HOUR = 3_600_000;

let pool: TestPool | undefined;
let server: TokenServer | undefined;
let tmp: string | undefined;
afterEach(async () => {
  await pool?.close();
  pool = undefined;
  await server?.close();
  server = undefined;
  if (tmp !== undefined) await rm(tmp, { recursive: true, force: true });
  tmp = undefined;
});

async function writeLogin(dir: string, tokens: TokenSet): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(
    path.join(dir, ".credentials.json"),
    JSON.stringify({ claudeAiOauth: { ...tokens, scopes: ["user:inference"] } }),
    { mode: 0o600 },
  );
}

async function refreshToken(dir: string): Promise<string> {
  return (JSON.parse(await readFile(path.join(dir, ".credentials.json"), "utf8")) as { claudeAiOauth: TokenSet })
    .claudeAiOauth.refreshToken;
}

describe("managed credentials in the server's background jobs", () => {
  it("renews managed logins ahead of expiry, leaves unmanaged ones alone", async () => {
    const clock = new ManualClock(START);
    const endpoint = new FakeTokenEndpoint({ now: () => clock.now() });
    server = await serveTokenEndpoint(endpoint);
    tmp = await mkdtemp(path.join(os.tmpdir(), "authpool-managed-"));
    const subscriptions = (testConfigRaw(tmp).subscriptions as Record<string, unknown>[]).map((s) =>
      s["id"] === "sub3" ? { ...s, manageCredentials: false } : s,
    );
    pool = await startTestPool({
      clock,
      dir: tmp,
      config: { credentials: { manage: true, tokenEndpoint: server.url }, subscriptions },
    });
    const dir = (id: string) => path.join(tmp!, id);

    await writeLogin(dir("sub1"), endpoint.login(START + 30 * 60_000));
    await writeLogin(dir("sub2"), endpoint.login(START + 5 * HOUR));
    const unmanaged = endpoint.login(START + 60_000);
    await writeLogin(dir("sub3"), unmanaged);
    await pool.server.runJobs();
    expect(endpoint.requests.map((r) => r.outcome)).toEqual(["granted"]);
    expect(endpoint.isLive(await refreshToken(dir("sub1")))).toBe(true);

    await pool.server.runJobs();
    expect(endpoint.requests).toHaveLength(1);

    // Four hours later sub2 is inside its margin; sub1's new token (8 h) is not.
    clock.advance(4 * HOUR + 60_000);
    await pool.server.runJobs();
    expect(endpoint.requests).toHaveLength(2);
    expect(endpoint.isLive(await refreshToken(dir("sub2")))).toBe(true);
    expect(await refreshToken(dir("sub3"))).toBe(unmanaged.refreshToken);
  });

  it("is off by default: nothing is refreshed", async () => {
    const clock = new ManualClock(START);
    const endpoint = new FakeTokenEndpoint({ now: () => clock.now() });
    server = await serveTokenEndpoint(endpoint);
    pool = await startTestPool({ clock, config: { credentials: { tokenEndpoint: server.url } } });
    const login = endpoint.login(START + 60_000);
    await writeLogin(path.join(pool.dir, "sub1"), login);
    await pool.server.runJobs();
    expect(endpoint.requests).toEqual([]);
    expect(await refreshToken(path.join(pool.dir, "sub1"))).toBe(login.refreshToken);
  });

  it("takes a managed login whose refresh token is dead out of allocation, announces it, and takes it back once it works", async () => {
    const clock = new ManualClock(START);
    const endpoint = new FakeTokenEndpoint({ now: () => clock.now() });
    server = await serveTokenEndpoint(endpoint);
    tmp = await mkdtemp(path.join(os.tmpdir(), "authpool-managed-"));
    pool = await startTestPool({
      clock,
      dir: tmp,
      config: { credentials: { manage: true, tokenEndpoint: server.url } },
    });
    const dir = (id: string) => path.join(tmp!, id);
    for (const id of ["sub2", "sub3"]) await writeLogin(dir(id), endpoint.login(START + 5 * HOUR));
    // sub1's refresh token was spent elsewhere: the pool's renewal gets invalid_grant.
    const dead = endpoint.login(START + 10 * 60_000);
    endpoint.redeem(dead.refreshToken);
    await writeLogin(dir("sub1"), dead);
    await pool.server.runJobs();
    expect(endpoint.requests.map((r) => r.outcome)).toContain("invalid_grant");

    const status = await pool.grpc.getPoolStatus({});
    const sub1 = status.subscriptions.find((s) => s.id === "sub1")!;
    expect(sub1.status).toBe(SubscriptionState.SIGNED_OUT);
    expect(sub1.healthScore).toBe(0);
    // Announced on the event stream, with the reason an operator acts on.
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), 300);
    const reasons: string[] = [];
    try {
      for await (const res of pool.grpc.streamEvents(
        { afterSequence: 0n, types: [EventType.STATUS_CHANGED] },
        { signal: ac.signal },
      )) {
        const p = res.event?.payload;
        if (p?.case === "statusChanged" && p.value.subscriptionId === "sub1") reasons.push(p.value.reason);
      }
    } catch {
      // aborted: the history is read
    } finally {
      clearTimeout(timer);
    }
    expect(reasons.join("\n")).toMatch(/invalid_grant/);
    for (let i = 0; i < 6; i++) {
      const res = await pool.grpc.allocate({ sessionId: `s${i}` });
      expect(res.outcome.case === "subscription" && res.outcome.value.subscriptionId).not.toBe("sub1");
    }

    // Someone logs in again: the next check finds it usable and takes it back.
    await writeLogin(dir("sub1"), endpoint.login(START + 5 * HOUR));
    clock.advance(2 * 60_000);
    await pool.server.runJobs();
    const after = (await pool.grpc.getPoolStatus({})).subscriptions.find((s) => s.id === "sub1")!;
    expect(after.status).not.toBe(SubscriptionState.SIGNED_OUT);
  });
});
