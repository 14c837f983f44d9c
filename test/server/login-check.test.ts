import { mkdir, rm } from "node:fs/promises";
import path from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ExclusionReason, SubscriptionState } from "../../src/client/index.js";
import { FAKE_ACCESS_TOKEN, FAKE_REFRESH_TOKEN, writeFakeLogin } from "../support/fake-login.js";
import { type TestPool, startTestPool } from "../support/test-server.js";

const SWEEP_MS = 30_000;

let pool: TestPool | undefined;
afterEach(async () => {
  await pool?.close();
  pool = undefined;
});

describe("login check of unmanaged subscriptions", () => {
  it("does not offer a subscription Claude cannot run on, and offers it again once it is logged in", async () => {
    pool = await startTestPool({ loggedIn: false, config: { sessions: { sweepIntervalSeconds: SWEEP_MS / 1000 } } });
    const dir = (id: string) => path.join(pool!.dir, id);
    // sub1: a config dir without a login; sub2: a login Claude Code blanked; sub3: no config dir at all.
    await mkdir(dir("sub1"));
    await writeFakeLogin(dir("sub2"), { accessToken: "", refreshToken: "", expiresAt: 0 });
    await pool.server.runJobs();

    const status = await pool.grpc.getPoolStatus({});
    expect(status.eligibleSubscriptions).toBe(0);
    const why = { sub1: "no credentials", sub2: "login required", sub3: "no credentials" } as Record<string, string>;
    for (const sub of status.subscriptions) {
      expect(sub.status, sub.id).toBe(SubscriptionState.SIGNED_OUT);
      expect(sub.healthScore, sub.id).toBe(0);
      expect(sub.healthBreakdown[0]?.detail, sub.id).toMatch(new RegExp(`; 0 while ${why[sub.id]}$`));
      // The status says why, and what to do.
      expect(
        sub.warnings.some((w) => w.startsWith("signed out (")),
        sub.id,
      ).toBe(true);
    }
    const fallback = await pool.grpc.allocate({ sessionId: "s1" });
    expect(fallback.outcome.case).toBe("fallback");
    if (fallback.outcome.case !== "fallback") return;
    const exclusions = Object.fromEntries(fallback.outcome.value.exclusions.map((e) => [e.subscriptionId, e]));
    expect(exclusions["sub1"]).toMatchObject({
      reason: ExclusionReason.NO_CREDENTIALS,
      detail: `no .credentials.json in ${dir("sub1")}; log in: CLAUDE_CONFIG_DIR=${dir("sub1")} claude, then /login`,
    });
    expect(exclusions["sub2"]).toMatchObject({
      reason: ExclusionReason.LOGIN_REQUIRED,
      detail: expect.stringMatching(/login was ended; run claude \/login/),
    });
    expect(exclusions["sub3"]).toMatchObject({
      reason: ExclusionReason.NO_CREDENTIALS,
      detail: expect.stringMatching(/^config dir .*sub3 does not exist/),
    });
    expect(fallback.outcome.value.reason).toMatch(/sub1: .*no \.credentials\.json/);

    // Nothing changed: a sweep later nothing is journaled.
    const seq = pool.server.writer.durableSeq;
    pool.clock.advance(SWEEP_MS);
    await pool.server.runJobs();
    expect(pool.server.writer.durableSeq).toBe(seq);

    // Someone logs sub1 in; the next sweep finds it and it is offered again.
    await writeFakeLogin(dir("sub1"));
    pool.clock.advance(SWEEP_MS - 1);
    await pool.server.runJobs();
    expect((await pool.grpc.allocate({ sessionId: "s2" })).outcome.case).toBe("fallback");
    pool.clock.advance(1);
    await pool.server.runJobs();
    const grant = await pool.grpc.allocate({ sessionId: "s3" });
    expect(grant.outcome.case === "subscription" && grant.outcome.value.subscriptionId).toBe("sub1");
    const after = await pool.grpc.getPoolStatus({});
    expect(after.subscriptions.find((s) => s.id === "sub1")!.status).not.toBe(SubscriptionState.SIGNED_OUT);
    expect(
      after.subscriptions.find((s) => s.id === "sub1")!.warnings.filter((w) => w.startsWith("signed out")),
    ).toEqual([]);
    expect(after.eligibleSubscriptions).toBe(1);

    // Tokens never reach a reply.
    expect(
      JSON.stringify([status, fallback, grant, after], (_k, v: unknown) => (typeof v === "bigint" ? String(v) : v)),
    ).not.toMatch(new RegExp(`${FAKE_ACCESS_TOKEN}|${FAKE_REFRESH_TOKEN}`));
  });

  it("excludes a login that expired with no refresh token, not one the CLI can renew, and one whose file went away", async () => {
    pool = await startTestPool();
    const now = pool.clock.now();
    const dir = (id: string) => path.join(pool!.dir, id);
    await writeFakeLogin(dir("sub1"), { expiresAt: now - 1, refreshToken: "" });
    await writeFakeLogin(dir("sub2"), { expiresAt: now - 1 });
    await pool.server.runJobs();
    let subs = (await pool.grpc.getPoolStatus({})).subscriptions;
    expect(subs.map((s) => [s.id, s.status === SubscriptionState.SIGNED_OUT])).toEqual([
      ["sub1", true],
      ["sub2", false],
      ["sub3", false],
    ]);

    await rm(path.join(dir("sub3"), ".credentials.json"));
    pool.clock.advance(SWEEP_MS);
    await pool.server.runJobs();
    subs = (await pool.grpc.getPoolStatus({})).subscriptions;
    expect(subs.find((s) => s.id === "sub3")!.status).toBe(SubscriptionState.SIGNED_OUT);
    const grant = await pool.grpc.allocate({ sessionId: "s1" });
    expect(grant.outcome.case === "subscription" && grant.outcome.value.subscriptionId).toBe("sub2");
  });

  it("leaves api subscriptions alone, and managed ones to the credential manager", async () => {
    pool = await startTestPool({
      loggedIn: false,
      config: {
        subscriptions: [
          { id: "key", type: "api", configDir: "/nonexistent/authpool-api", weeklyBudgetUsd: 10 },
          {
            id: "managed",
            type: "claude-pro",
            configDir: "/nonexistent/authpool-managed",
            weeklyBudgetUsd: 10,
            manageCredentials: true,
          },
        ],
        credentials: { checkIntervalSeconds: 3600 },
      },
    });
    await pool.server.runJobs();
    // The manager's status is submitted in the background: wait until it is in.
    await vi.waitFor(async () => {
      const managed = (await pool!.grpc.getPoolStatus({})).subscriptions.find((s) => s.id === "managed")!;
      expect(managed.status).toBe(SubscriptionState.SIGNED_OUT);
    });
    const seq = pool.server.writer.durableSeq;
    pool.clock.advance(SWEEP_MS);
    await pool.server.runJobs();
    // Two checkers with their own wording would flip the managed one's reason every sweep.
    expect(pool.server.writer.durableSeq).toBe(seq);

    // The api subscription has no OAuth login to check: it is offered.
    const grant = await pool.grpc.allocate({ sessionId: "s1" });
    expect(grant.outcome.case === "subscription" && grant.outcome.value.subscriptionId).toBe("key");
    await pool.grpc.setPaused({ subscriptionId: "key", paused: true });
    const fallback = await pool.grpc.allocate({ sessionId: "s2" });
    expect(fallback.outcome.case).toBe("fallback");
    if (fallback.outcome.case !== "fallback") return;
    const managed = fallback.outcome.value.exclusions.find((e) => e.subscriptionId === "managed");
    // The manager's wording, not the login check's.
    expect(managed).toMatchObject({
      reason: ExclusionReason.NO_CREDENTIALS,
      detail: expect.stringMatching(/\(log in with claude there\)$/),
    });
  });
});
