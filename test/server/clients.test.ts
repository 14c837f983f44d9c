import { mkdtemp, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterEach, describe, expect, it } from "vitest";
import { ClientLimitKind, UsageGroupBy, createAuthPoolClient } from "../../src/client/index.js";
import { type TestPool, startTestPool } from "../support/test-server.js";

/**
 * Who spends the pool, end to end: clients named by their tokens or by the
 * call, their limits, the fair wait queue, and the usage ledger, through a
 * real server and the generated clients.
 */

let pool: TestPool | undefined;
afterEach(async () => {
  await pool?.close();
  pool = undefined;
});

const ALICE = "alice-token-0123456789abcdef";
const UNNAMED = "unnamed-token-0123456789abcd";
const ADMIN = "admin-token-0123456789abcdefg";

function oneSubscription(maxSessions: number, dir: string) {
  return [{ id: "solo", type: "claude-max", configDir: path.join(dir, "solo"), weeklyBudgetUsd: 1000, maxSessions }];
}

async function code(call: Promise<unknown>): Promise<Code | "ok"> {
  try {
    await call;
    return "ok";
  } catch (error) {
    return ConnectError.from(error).code;
  }
}

describe("clients", () => {
  it("books each call to the client its token names; a client token acts only for itself, an admin for anyone", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "authpool-clients-"));
    const tokens = path.join(dir, "tokens");
    await writeFile(tokens, `client:alice:${ALICE}\nclient:${UNNAMED}\nadmin:${ADMIN}\n`);
    pool = await startTestPool({ dir, config: { server: { host: "127.0.0.1", port: 0, authTokensFile: tokens } } });
    const as = (token: string) => createAuthPoolClient(pool!.server.url, { token });
    const alice = as(ALICE);
    expect((await alice.allocate({ sessionId: "a1" })).client).toBe("alice");
    expect((await alice.allocate({ sessionId: "a2", client: "alice" })).client).toBe("alice");
    const denied = await alice.allocate({ sessionId: "a3", client: "bob" }).catch((e: unknown) => ConnectError.from(e));
    expect(denied).toMatchObject({ code: Code.PermissionDenied, rawMessage: expect.stringContaining("client bob") });
    expect((await as(ADMIN).allocate({ sessionId: "b1", client: "bob" })).client).toBe("bob");
    expect((await as(UNNAMED).allocate({ sessionId: "c1", client: "carol" })).client).toBe("carol");
    expect((await as(UNNAMED).allocate({ sessionId: "d1" })).client).toBe("default");
    expect(await code(as(UNNAMED).allocate({ sessionId: "x", client: "no spaces" }))).toBe(Code.InvalidArgument);

    const status = await as(ADMIN).getPoolStatus({ includeSessions: true });
    expect(status.clients.map((c) => [c.name, c.sessions])).toEqual([
      ["alice", 2],
      ["bob", 1],
      ["carol", 1],
      ["default", 1],
    ]);
    expect(status.sessions.find((s) => s.sessionId === "a1")?.client).toBe("alice");
  });

  it("answers a client over its limit with the paid API naming client and limit, or RESOURCE_EXHAUSTED, and keeps its budget across a restart", async () => {
    pool = await startTestPool({
      config: {
        clients: {
          bot: { weeklyUsd: 5 },
          strict: { maxSessions: 1, fallback: false },
        },
      },
    });
    await pool.grpc.allocate({ sessionId: "b1", client: "bot" });
    await pool.grpc.reportUsage({ sessionId: "b1", requestId: "r1", source: { case: "usage", value: { costUsd: 6 } } });
    await pool.restart();
    const refused = await pool.grpc.allocate({ sessionId: "b2", client: "bot" });
    expect(refused.outcome.case).toBe("fallback");
    if (refused.outcome.case === "fallback") {
      expect(refused.outcome.value.clientLimit).toMatchObject({ client: "bot", kind: ClientLimitKind.WEEKLY_USD });
      expect(refused.outcome.value.reason).toContain("client bot: spent $6.00 in 7 days, its limit is $5.00");
    }
    await pool.grpc.allocate({ sessionId: "s1", client: "strict" });
    const exhausted = await pool.grpc
      .allocate({ sessionId: "s2", client: "strict" })
      .catch((e: unknown) => ConnectError.from(e));
    expect(exhausted).toMatchObject({
      code: Code.ResourceExhausted,
      rawMessage: expect.stringContaining("client strict: holds 1 sessions"),
    });
    const bot = (await pool.grpc.getPoolStatus({})).clients.find((c) => c.name === "bot")!;
    expect(bot).toMatchObject({ weeklyUsd: 6, weeklyLimitUsd: 5, limitedBy: { kind: ClientLimitKind.WEEKLY_USD } });
  });

  it("sums use by client, subscription and model", async () => {
    pool = await startTestPool();
    await pool.grpc.allocate({ sessionId: "a", client: "alice", model: "opus" });
    await pool.grpc.allocate({ sessionId: "b", client: "bob" });
    await pool.grpc.reportUsage({ sessionId: "a", requestId: "1", source: { case: "usage", value: { costUsd: 3 } } });
    await pool.grpc.reportUsage({ sessionId: "b", requestId: "1", source: { case: "usage", value: { costUsd: 1.5 } } });
    const by = async (groupBy: UsageGroupBy) =>
      (await pool!.grpc.getUsage({ groupBy })).rows.map((r) => [r.key, r.costUsd, r.requests]);
    expect(await by(UsageGroupBy.CLIENT)).toEqual([
      ["alice", 3, 1],
      ["bob", 1.5, 1],
    ]);
    expect(await by(UsageGroupBy.MODEL)).toEqual([
      ["opus", 3, 1],
      ["unknown", 1.5, 1],
    ]);
    expect((await by(UsageGroupBy.SUBSCRIPTION)).reduce((s, [, c]) => s + (c as number), 0)).toBe(4.5);
    expect(await code(pool.grpc.getUsage({ since: { seconds: 9n * 86_400n } }))).toBe(Code.InvalidArgument);
  });
});

describe("the wait queue", () => {
  it("gives a waiting Allocate the slot as soon as the holder releases it", async () => {
    pool = await startTestPool({ config: { subscriptions: oneSubscription(1, "/tmp") } });
    const c = createAuthPoolClient(pool.server.url, { timeoutMs: 30_000 });
    await c.allocate({ sessionId: "first" });
    const waiting = c.allocate({ sessionId: "second", wait: true });
    await until(async () => (await c.getPoolStatus({})).waiting === 1);
    pool.clock.advance(1_500);
    const releasedAt = performance.now();
    await c.release({ sessionId: "first" });
    const granted = await waiting;
    const elapsed = performance.now() - releasedAt;
    expect(granted.outcome.case).toBe("subscription");
    expect(granted.waited?.seconds).toBe(1n);
    // Woken by the durable release itself, not by a periodic look (once a second).
    expect(elapsed).toBeLessThan(100);
  });

  it("drains 200 waiting calls of 4 clients in fair-share order, never granting a slot twice", async () => {
    pool = await startTestPool({ config: { subscriptions: oneSubscription(2, "/tmp") } });
    const c = createAuthPoolClient(pool.server.url, { timeoutMs: 120_000 });
    await c.allocate({ sessionId: "hold-1", client: "setup" });
    await c.allocate({ sessionId: "hold-2", client: "setup" });
    const counts = { heavy: 80, alice: 50, bob: 40, batch: 30 };
    const order: string[] = [];
    let held = 2;
    let most = 2;
    const calls: Promise<void>[] = [];
    for (const [client, n] of Object.entries(counts)) {
      for (let i = 0; i < n; i++) {
        const sessionId = `${client}-${i}`;
        calls.push(
          c.allocate({ sessionId, client, wait: true }).then(async (r) => {
            expect(r.outcome.case).toBe("subscription");
            held++;
            most = Math.max(most, held);
            order.push(client);
            held--;
            await c.release({ sessionId });
          }),
        );
      }
    }
    await until(async () => (await c.getPoolStatus({})).waiting === 200);
    held -= 2;
    await c.release({ sessionId: "hold-1" });
    await c.release({ sessionId: "hold-2" });
    await Promise.all(calls);
    expect(order).toHaveLength(200);
    expect(most).toBeLessThanOrEqual(2);
    // While every client still waits (the first 120 grants), they take turns: 30 each, give or take one.
    const early = order.slice(0, 120);
    for (const client of Object.keys(counts)) {
      const n = early.filter((x) => x === client).length;
      expect(n, client).toBeGreaterThanOrEqual(29);
      expect(n, client).toBeLessThanOrEqual(31);
    }
    const status = await c.getPoolStatus({});
    expect(status.waiting).toBe(0);
    expect(status.totalSessions).toBe(0);
  }, 120_000);

  it("refuses beyond the queue's bounds, and ends a wait at max_wait or when the caller leaves", async () => {
    pool = await startTestPool({
      config: { subscriptions: oneSubscription(1, "/tmp"), queue: { maxWaitingPerClient: 1 } },
    });
    const c = createAuthPoolClient(pool.server.url, { timeoutMs: 30_000 });
    await c.allocate({ sessionId: "holder" });
    const controller = new AbortController();
    const first = c.allocate({ sessionId: "w1", client: "x", wait: true }, { signal: controller.signal });
    await until(async () => (await c.getPoolStatus({})).waiting === 1);
    expect(await code(c.allocate({ sessionId: "w2", client: "x", wait: true }))).toBe(Code.ResourceExhausted);
    controller.abort();
    expect(await code(first)).toBe(Code.Canceled);
    await until(async () => (await c.getPoolStatus({})).waiting === 0);
    // max_wait: the server stops the wait itself.
    const expiring = c.allocate({ sessionId: "w3", wait: true, maxWait: { seconds: 5n } });
    await until(async () => (await c.getPoolStatus({})).waiting === 1);
    pool.clock.advance(5_000);
    expect(await code(expiring)).toBe(Code.ResourceExhausted);
    // The holder still holds the only slot: nothing was granted to a caller that left.
    expect((await c.getPoolStatus({ includeSessions: true })).sessions.map((s) => s.sessionId)).toEqual(["holder"]);
  });
});

describe("a wait that could only run out", () => {
  it("is answered at once, naming when a slot opens, and a wait that can end in time still waits", async () => {
    // Logged in (the dir is the pool's): the login check runs as the clock moves.
    const dir = await mkdtemp(path.join(os.tmpdir(), "authpool-invain-"));
    pool = await startTestPool({
      dir,
      config: { subscriptions: oneSubscription(1, dir), queue: { maxWaitSeconds: 7200 } },
    });
    const c = createAuthPoolClient(pool.server.url, { timeoutMs: 30_000 });
    await c.allocate({ sessionId: "hit" });
    const resetsAt = pool.clock.now() + 60 * 60_000;
    await c.reportUsage({
      sessionId: "hit",
      source: {
        case: "usage",
        value: {
          rateLimits: [{ window: 1, status: 3, utilization: 1, resetsAt: { seconds: BigInt(resetsAt / 1000) } }],
        },
      },
    });
    await c.release({ sessionId: "hit" });
    // The only subscription is limited for an hour: a 5-minute wait would end first.
    const error = await c.allocate({ sessionId: "w1", wait: true, maxWait: { seconds: 300n } }).catch((e) => e);
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).code).toBe(Code.ResourceExhausted);
    expect((error as ConnectError).rawMessage).toContain(`no slot opens before ${new Date(resetsAt).toISOString()}`);
    expect((await c.getPoolStatus({})).waiting).toBe(0);
    // A wait past the reset waits, and gets the slot when the window resets.
    const waiting = c.allocate({ sessionId: "w2", wait: true, maxWait: { seconds: 7200n } });
    await until(async () => (await c.getPoolStatus({})).waiting === 1);
    pool.clock.set(resetsAt + 1_000);
    await pool.server.runJobs();
    expect((await waiting).outcome.case).toBe("subscription");
  });
});

async function until(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("timed out waiting for the condition");
    await new Promise((r) => setTimeout(r, 10));
  }
}
