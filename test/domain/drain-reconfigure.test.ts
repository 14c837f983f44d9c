import { describe, expect, it } from "vitest";
import { Pool, type PoolEvent, createPoolState } from "../../src/domain/index.js";
import { granted, usage } from "../support/pool-driver.js";
import { poolSettings, subscriptionSettings } from "../support/settings.js";

const T0 = Date.parse("2026-11-23T10:00:00Z");
const MIN = 60_000;
const types = (events: PoolEvent[]) => events.map((e) => e.type);

function allocate(pool: Pool, sessionId: string, at = T0) {
  return pool.run({ kind: "allocate", sessionId, priority: "normal", model: "", estimatedTokens: 0 }, at);
}

describe("Pool.run(set_drained)", () => {
  it("takes no new sessions but lets the ones it holds resume there", () => {
    const pool = new Pool(createPoolState(["a", "b"]), poolSettings(["a", "b"]));
    const first = granted(allocate(pool, "s1").result);
    expect(first.view.cfg.id).toBe("a");
    const drained = pool.run({ kind: "set_drained", subscriptionId: "a", drained: true }, T0);
    expect(types(drained.events)).toEqual(["drained_set", "status_changed"]);
    expect(drained.result).toMatchObject({ kind: "drained", view: { status: "draining" } });
    // The session on a resumes there; a new one goes to b.
    expect(granted(allocate(pool, "s1", T0 + MIN).result)).toMatchObject({ resumed: true, view: { cfg: { id: "a" } } });
    expect(granted(allocate(pool, "s2", T0 + MIN).result).view.cfg.id).toBe("b");
    // Draining again is not news; undraining is.
    expect(pool.run({ kind: "set_drained", subscriptionId: "a", drained: true }, T0 + MIN).events).toEqual([]);
    expect(types(pool.run({ kind: "set_drained", subscriptionId: "a", drained: false }, T0 + MIN).events)).toEqual([
      "drained_set",
      "status_changed",
    ]);
  });

  it("moves its idle sessions at the next rebalance", () => {
    const pool = new Pool(createPoolState(["a", "b"]), poolSettings(["a", "b"]));
    granted(allocate(pool, "s1").result);
    pool.run({ kind: "set_drained", subscriptionId: "a", drained: true }, T0);
    // Idle after activeMinutes (5).
    const { result } = pool.run({ kind: "rebalance", dryRun: false, trigger: "on_demand" }, T0 + 10 * MIN);
    expect(result.moves).toEqual([expect.objectContaining({ sessionId: "s1", from: "a", to: "b", reason: "drain" })]);
  });

  it("refuses an unknown subscription", () => {
    const pool = new Pool(createPoolState(["a"]), poolSettings(["a"]));
    expect(pool.run({ kind: "set_drained", subscriptionId: "zz", drained: true }, T0).result).toMatchObject({
      kind: "rejected",
      code: "not_found",
    });
  });
});

describe("Pool.run(reconfigure)", () => {
  it("applies changed limits at once", () => {
    const pool = new Pool(createPoolState(["a"]), poolSettings(["a"]));
    granted(allocate(pool, "s1").result);
    pool.run({ kind: "reconfigure", settings: poolSettings([subscriptionSettings("a", { maxSessions: 1 })]) }, T0);
    expect(pool.view("a", T0)!.status).toBe("limited");
    expect(allocate(pool, "s2").result).toMatchObject({ kind: "fallback" });
  });

  it("adds new subscriptions, and drains removed ones until their sessions end", () => {
    const pool = new Pool(createPoolState(["a", "b"]), poolSettings(["a", "b"]));
    granted(allocate(pool, "s1").result); // on a
    const { events, result } = pool.run({ kind: "reconfigure", settings: poolSettings(["b", "c"]) }, T0);
    expect(result).toEqual({ kind: "reconfigured", draining: ["a"] });
    expect(events.find((e) => e.type === "drained_set")).toMatchObject({
      subscriptionId: "a",
      cause: "removed",
      drained: true,
    });
    // a still shows (draining) while it holds s1, and s1 resumes there; new sessions go to b or c.
    expect(pool.views(T0).map((v) => [v.cfg.id, v.status])).toEqual([
      ["b", "available"],
      ["c", "available"],
      ["a", "draining"],
    ]);
    expect(granted(allocate(pool, "s1", T0 + MIN).result)).toMatchObject({ resumed: true, view: { cfg: { id: "a" } } });
    expect(["b", "c"]).toContain(granted(allocate(pool, "s2", T0 + MIN).result).view.cfg.id);
    // A report on the draining subscription still counts.
    const report = pool.run({ kind: "report", sessionId: "s1", requestId: "r", report: usage(2) }, T0 + MIN);
    expect(report.result).toMatchObject({ kind: "reported", view: { cfg: { id: "a" } } });
    // Once empty it is gone.
    pool.run({ kind: "release", sessionId: "s1" }, T0 + 2 * MIN);
    expect(pool.views(T0 + 2 * MIN).map((v) => v.cfg.id)).toEqual(["b", "c"]);
    expect(pool.view("a", T0 + 2 * MIN)).toBeUndefined();
  });

  it("drops a removed subscription that holds nothing at once, and ends the drain if it comes back", () => {
    const pool = new Pool(createPoolState(["a", "b"]), poolSettings(["a", "b"]));
    granted(allocate(pool, "s1").result); // on a
    pool.run({ kind: "reconfigure", settings: poolSettings(["a"]) }, T0);
    expect(pool.views(T0).map((v) => v.cfg.id)).toEqual(["a"]);
    pool.run({ kind: "reconfigure", settings: poolSettings(["b"]) }, T0);
    expect(pool.views(T0).map((v) => [v.cfg.id, v.status])).toEqual([
      ["b", "available"],
      ["a", "draining"],
    ]);
    const back = pool.run({ kind: "reconfigure", settings: poolSettings(["a", "b"]) }, T0 + MIN);
    expect(back.events.find((e) => e.type === "drained_set")).toMatchObject({ subscriptionId: "a", drained: false });
    expect(pool.view("a", T0 + MIN)!.status).toBe("available");
  });
});
