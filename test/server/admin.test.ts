import { mkdtemp, readFile, rename, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterEach, describe, expect, it } from "vitest";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../../gen/grpc/health/v1/health_pb.js";
import { SubscriptionState, createAuthPoolClient } from "../../src/client/index.js";
import { parseConfig } from "../../src/config/index.js";
import { startAuthPoolServer } from "../../src/server/start-server.js";
import { openStore } from "../../src/store/index.js";
import { ManualClock } from "../support/manual-clock.js";
import { type TestPool, startTestPool, testConfigRaw } from "../support/test-server.js";
import { FlakyStore } from "../store/store-helpers.js";

/** Admin controls over the wire: drain, and configuration reload (RPC and file watch). */

let pool: TestPool | undefined;
afterEach(async () => {
  await pool?.close();
  pool = undefined;
});

const configPath = (p: TestPool) => path.join(p.dir, "config.json");

// biome-ignore lint/suspicious/noExplicitAny: each test edits a different part of the config tree in place
async function editConfig(p: TestPool, edit: (raw: Record<string, any>) => void): Promise<void> {
  // biome-ignore lint/suspicious/noExplicitAny: as above
  const raw = JSON.parse(await readFile(configPath(p), "utf8")) as Record<string, any>;
  edit(raw);
  // Write beside and rename over, as editors and config managers do.
  const tmp = `${configPath(p)}.tmp`;
  await writeFile(tmp, JSON.stringify(raw, null, 2));
  await rename(tmp, configPath(p));
}

async function statusOf(p: TestPool) {
  const res = await p.grpc.getPoolStatus({});
  return Object.fromEntries(res.subscriptions.map((s) => [s.id, s]));
}

describe("SetDrained", () => {
  it("drains a subscription: new sessions go elsewhere, held ones resume there", async () => {
    pool = await startTestPool();
    const first = await pool.grpc.allocate({ sessionId: "s1" });
    const held = first.outcome.case === "subscription" ? first.outcome.value.subscriptionId : "";
    const res = await pool.grpc.setDrained({ subscriptionId: held, drained: true });
    expect(res.subscription?.status).toBe(SubscriptionState.DRAINING);
    const again = await pool.grpc.allocate({ sessionId: "s1" });
    expect(again.outcome).toMatchObject({ case: "subscription", value: { subscriptionId: held, resumed: true } });
    for (let i = 0; i < 5; i++) {
      const g = await pool.grpc.allocate({ sessionId: `n${i}` });
      expect(g.outcome.case === "subscription" && g.outcome.value.subscriptionId).not.toBe(held);
    }
    await expect(pool.grpc.setDrained({ subscriptionId: "nope", drained: true })).rejects.toMatchObject({
      code: Code.NotFound,
    });
    await expect(pool.grpc.setDrained({ subscriptionId: "", drained: true })).rejects.toMatchObject({
      code: Code.InvalidArgument,
    });
  });
});

describe("ReloadConfig", () => {
  it("applies a valid change: added appear, removed drain until empty, changed limits apply at once", async () => {
    pool = await startTestPool({ configFile: true });
    // s1 lands on sub1 (all equal: config order).
    await pool.grpc.allocate({ sessionId: "s1" });
    await editConfig(pool, (raw) => {
      raw.subscriptions = raw.subscriptions.filter((s: { id: string }) => s.id !== "sub1");
      raw.subscriptions[0].maxClientsPerSub = 1;
      raw.subscriptions[1].weeklyBudgetThreshold = 0.6;
      raw.subscriptions.push({
        id: "sub4",
        type: "claude-max",
        configDir: path.join(pool!.dir, "sub4"),
        weeklyBudget: 500,
      });
      raw.weeklyBudgetThreshold = 0.7;
    });
    const summary = await pool.grpc.reloadConfig({});
    expect(summary).toMatchObject({
      source: configPath(pool),
      changed: true,
      added: ["sub4"],
      removed: ["sub1"],
      updated: ["sub2", "sub3"],
      // The low-priority stop left at auto follows each account's threshold without changing itself.
      settings: ["weeklyBudgetThreshold"],
    });
    const status = await statusOf(pool);
    expect(Object.keys(status)).toEqual(["sub2", "sub3", "sub4", "sub1"]);
    expect(status.sub1?.status).toBe(SubscriptionState.DRAINING);
    expect(status.sub2?.maxSessions).toBe(1);
    expect(status.sub2?.weeklyThreshold).toBe(0.7);
    // A subscription's own threshold holds over the pool's.
    expect(status.sub3?.weeklyThreshold).toBe(0.6);
    // The session on the removed subscription finishes there, then it is gone.
    const resumed = await pool.grpc.allocate({ sessionId: "s1" });
    expect(resumed.outcome).toMatchObject({ case: "subscription", value: { subscriptionId: "sub1", resumed: true } });
    await pool.grpc.release({ sessionId: "s1" });
    expect(Object.keys(await statusOf(pool))).toEqual(["sub2", "sub3", "sub4"]);
    // Unchanged file: nothing to do.
    expect(await pool.grpc.reloadConfig({})).toMatchObject({ changed: false });
  });

  it("refuses an invalid file with the file, the path and what was expected, and keeps serving the old config", async () => {
    pool = await startTestPool({ configFile: true });
    await editConfig(pool, (raw) => {
      raw.subscriptions[1].weeklyBudget = -5;
    });
    const error = await pool.grpc.reloadConfig({}).then(
      () => undefined,
      (e: unknown) => ConnectError.from(e),
    );
    expect(error?.code).toBe(Code.InvalidArgument);
    expect(error?.rawMessage).toContain(configPath(pool));
    expect(error?.rawMessage).toContain("subscriptions[1].weeklyBudget");
    expect(error?.rawMessage).toContain("expected a number > 0");
    const status = await statusOf(pool);
    expect(status.sub2?.weeklyBudgetUsd).toBe(100);
    expect((await pool.grpc.allocate({ sessionId: "still-works" })).outcome.case).toBe("subscription");
  });

  it("survives a restart: a removed subscription's sessions still resume there", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "authpool-admin-"));
    pool = await startTestPool({ dir, configFile: true });
    await pool.grpc.allocate({ sessionId: "s1" }); // sub1
    await editConfig(pool, (raw) => {
      raw.subscriptions = raw.subscriptions.filter((s: { id: string }) => s.id !== "sub1");
    });
    await pool.grpc.reloadConfig({});
    await pool.close();
    // A restarted server reads the new file.
    pool = await startTestPool({ dir, config: JSON.parse(await readFile(path.join(dir, "config.json"), "utf8")) });
    const resumed = await pool.grpc.allocate({ sessionId: "s1" });
    expect(resumed.outcome).toMatchObject({ case: "subscription", value: { subscriptionId: "sub1", resumed: true } });
    expect(resumed.outcome.case === "subscription" && resumed.outcome.value.configDir).toBe(path.join(dir, "sub1"));
    await pool.close();
    pool = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  it("reloads by itself when the file changes", async () => {
    pool = await startTestPool({ configFile: true, watchConfig: true });
    await editConfig(pool, (raw) => {
      raw.subscriptions[2].maxClientsPerSub = 2;
    });
    const deadline = Date.now() + 5_000;
    while ((await statusOf(pool)).sub3?.maxSessions !== 2) {
      if (Date.now() > deadline) throw new Error("the change was not picked up within 5 s");
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  });

  it("answers FAILED_PRECONDITION when the pool has no file to reload", async () => {
    pool = await startTestPool();
    await expect(pool.grpc.reloadConfig({})).rejects.toMatchObject({ code: Code.FailedPrecondition });
  });
});

describe("grpc.health.v1 Check", () => {
  it("goes NOT_SERVING while the store refuses writes and back to SERVING once it recovers", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "authpool-health-"));
    const store = new FlakyStore(await openStore(`sqlite://${path.join(dir, "pool.sqlite")}`));
    const server = await startAuthPoolServer({
      config: parseConfig(testConfigRaw(dir), path.join(dir, "config.json")),
      clock: new ManualClock("2026-11-23T10:00:00Z"),
      store,
      schedulerPollMs: 0,
    });
    try {
      const health = createClient(Health, createGrpcTransport({ baseUrl: server.url }));
      const client = createAuthPoolClient(server.url);
      expect((await health.check({})).status).toBe(Status.SERVING);
      store.failAllSets = true;
      await expect(client.allocate({ sessionId: "x" })).rejects.toMatchObject({ code: Code.Unavailable });
      expect((await health.check({})).status).toBe(Status.NOT_SERVING);
      store.failAllSets = false;
      // The next command (or the sweep) reloads from the store and succeeds.
      expect((await client.allocate({ sessionId: "y" })).outcome.case).toBe("subscription");
      expect((await health.check({})).status).toBe(Status.SERVING);
    } finally {
      await server.close();
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
