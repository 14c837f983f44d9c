import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { EventType, RotationReason } from "../../src/client/index.js";
import { MINUTE_MS } from "../../src/domain/index.js";
import { type TestPool, startTestPool } from "../support/test-server.js";

let pool: TestPool | undefined;
afterEach(async () => {
  await pool?.close();
  pool = undefined;
});

/**
 * Four sessions on sub1, which has spent $12 of its 5-hour window; sub2 and
 * sub3 idle. Sessions a..c then go quiet (idle), d stays active.
 */
async function loadedPool(config: Record<string, unknown> = {}): Promise<TestPool> {
  pool = await startTestPool({
    config: {
      rebalancing: { enabled: true, intervalSeconds: 300, costGapThreshold: 5, maxClientsToMovePerCycle: 2 },
      ...config,
    },
  });
  const c = pool.grpc;
  await c.setPaused({ subscriptionId: "sub2", paused: true });
  await c.setPaused({ subscriptionId: "sub3", paused: true });
  for (const id of ["a", "b", "c", "d"]) await c.allocate({ sessionId: id });
  await c.reportUsage({ sessionId: "a", requestId: "1", source: { case: "usage", value: { costUsd: 12 } } });
  await c.setPaused({ subscriptionId: "sub2", paused: false });
  await c.setPaused({ subscriptionId: "sub3", paused: false });
  pool.clock.advance(10 * MINUTE_MS);
  await c.allocate({ sessionId: "d" }); // d is active again
  return pool;
}

async function sessionsOn(p: TestPool): Promise<Record<string, string>> {
  const status = await p.grpc.getPoolStatus({ includeSessions: true });
  return Object.fromEntries(status.sessions.map((s) => [s.sessionId, s.subscriptionId]));
}

describe("Rebalance", () => {
  it("plans without moving on dry_run", async () => {
    const p = await loadedPool();
    const before = await sessionsOn(p);
    const plan = await p.grpc.rebalance({ dryRun: true });
    expect(plan.dryRun).toBe(true);
    expect(plan.moves).toHaveLength(2);
    expect(plan.moves.map((m) => m.sessionId).sort()).toEqual(["a", "b"]);
    for (const m of plan.moves) {
      expect(m).toMatchObject({ fromSubscriptionId: "sub1", reason: RotationReason.REBALANCE });
      expect(m.toSubscriptionId).not.toBe("sub1");
    }
    expect(plan.before.find((h) => h.subscriptionId === "sub1")?.sessionCount).toBe(4);
    expect(plan.after.find((h) => h.subscriptionId === "sub1")?.sessionCount).toBe(2);
    expect(plan.after.find((h) => h.subscriptionId === "sub1")!.healthScore).toBeGreaterThan(
      plan.before.find((h) => h.subscriptionId === "sub1")!.healthScore,
    );
    expect(await sessionsOn(p)).toEqual(before);
  });

  it("moves idle sessions (never active ones), emits rotations, and tells the gateway on its next Allocate", async () => {
    const p = await loadedPool();
    const res = await p.grpc.rebalance({});
    expect(res.dryRun).toBe(false);
    expect(res.moves.map((m) => m.sessionId).sort()).toEqual(["a", "b"]);
    const on = await sessionsOn(p);
    expect(on.d).toBe("sub1");
    expect(on.c).toBe("sub1");
    const moved = res.moves[0]!;
    expect(on[moved.sessionId]).toBe(moved.toSubscriptionId);

    const next = await p.grpc.allocate({ sessionId: moved.sessionId });
    expect(next.outcome.case).toBe("subscription");
    if (next.outcome.case !== "subscription") return;
    expect(next.outcome.value).toMatchObject({
      subscriptionId: moved.toSubscriptionId,
      rotatedFrom: "sub1",
      resumed: true,
    });
    // Told once: the allocation after that is a plain resume.
    const again = await p.grpc.allocate({ sessionId: moved.sessionId });
    expect(again.outcome.value).toMatchObject({ rotatedFrom: "" });

    const events = [];
    for await (const r of p.grpc.streamEvents(
      { types: [EventType.ROTATION, EventType.REBALANCE_COMPLETED] },
      { timeoutMs: 2000 },
    )) {
      events.push(r.event!);
      if (events.length === 3) break;
    }
    expect(events.map((e) => e.payload.case)).toEqual(["rotation", "rotation", "rebalanceCompleted"]);
    expect(events[2]?.payload.value).toMatchObject({ trigger: "on_demand" });
  });

  it("does nothing when the gap is below the threshold", async () => {
    const p = await loadedPool({
      rebalancing: { enabled: true, intervalSeconds: 300, costGapThreshold: 50, maxClientsToMovePerCycle: 2 },
    });
    const res = await p.grpc.rebalance({});
    expect(res.moves).toHaveLength(0);
  });

  it("runs periodically, driven by the injected clock", async () => {
    const p = await loadedPool();
    const onSub1 = async () => Object.values(await sessionsOn(p)).filter((s) => s === "sub1").length;
    // Ten minutes have passed since start: the 5-minute job is due.
    await p.server.runJobs();
    expect(await onSub1()).toBe(2);
    // Not due again yet.
    p.clock.advance(MINUTE_MS);
    await p.server.runJobs();
    expect(await onSub1()).toBe(2);
    // Due at +15 min: the last idle session (c) moves; d, active a minute
    // ago, stays.
    await p.grpc.allocate({ sessionId: "d" });
    p.clock.advance(4 * MINUTE_MS);
    await p.server.runJobs();
    expect((await sessionsOn(p)).d).toBe("sub1");
    expect(await onSub1()).toBe(1);
    const completed = [];
    for await (const r of p.grpc.streamEvents({ types: [EventType.REBALANCE_COMPLETED] }, { timeoutMs: 2000 })) {
      completed.push(r.event!);
      break;
    }
    expect(completed[0]?.payload.value).toMatchObject({ trigger: "periodic" });
  });

  it("says whether the periodic rebalance is on, as the running config says", async () => {
    pool = await startTestPool({ configFile: true });
    // The default: off. The call runs anyway, and says so.
    expect(await pool.grpc.rebalance({ dryRun: true })).toMatchObject({ dryRun: true, periodicEnabled: false });
    const file = path.join(pool.dir, "config.json");
    const raw = JSON.parse(await readFile(file, "utf8")) as Record<string, unknown>;
    await writeFile(file, JSON.stringify({ ...raw, rebalancing: { enabled: true } }));
    await pool.grpc.reloadConfig({});
    expect(await pool.grpc.rebalance({})).toMatchObject({ dryRun: false, periodicEnabled: true });
  });

  it("moves idle sessions off a subscription that entered cooldown", async () => {
    pool = await startTestPool({
      config: {
        rebalancing: { enabled: false, intervalSeconds: 300, costGapThreshold: 1000, maxClientsToMovePerCycle: 5 },
      },
    });
    const c = pool.grpc;
    const g = await c.allocate({ sessionId: "s" });
    const from = g.outcome.case === "subscription" ? g.outcome.value.subscriptionId : "";
    pool.clock.advance(10 * MINUTE_MS);
    await c.allocate({ sessionId: "busy" });
    await c.reportUsage({
      sessionId: "s",
      source: {
        case: "usage",
        value: {
          rateLimits: [
            {
              window: 1,
              status: 3,
              utilization: 1,
              resetsAt: { seconds: BigInt(Math.floor(pool.clock.now() / 1000) + 3600) },
            },
          ],
        },
      },
    });
    pool.clock.advance(10 * MINUTE_MS);
    const res = await c.rebalance({});
    expect(res.moves).toHaveLength(1);
    expect(res.moves[0]).toMatchObject({ sessionId: "s", fromSubscriptionId: from, reason: RotationReason.COOLDOWN });
  });
});
