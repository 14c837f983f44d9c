import { describe, expect, it } from "vitest";
import { EventQueue } from "../../bench/sim/event-queue.js";
import { createRng } from "../../bench/sim/prng.js";
import { runSimulation } from "../../bench/sim/run-simulation.js";
import { STRATEGIES, createScenario, createStrategy } from "../../bench/sim/scenario.js";
import { SimAccount } from "../../bench/sim/sim-account.js";
import { totalsOf, verdictOf } from "../../bench/sim/sim-report.js";
import { HOUR_MS } from "../../src/domain/index.js";

const T0 = Date.parse("2026-11-02T09:00:00Z");

describe("createRng()", () => {
  it("gives the same stream for the same seed and another for another seed", () => {
    const draw = (seed: number) => {
      const r = createRng(seed);
      return Array.from({ length: 5 }, () => r.next());
    };
    expect(draw(7)).toEqual(draw(7));
    expect(draw(7)).not.toEqual(draw(8));
    expect(draw(7).every((x) => x >= 0 && x < 1)).toBe(true);
  });
});

describe("EventQueue", () => {
  it("pops by time, and in push order at the same instant", () => {
    const q = new EventQueue<string>();
    q.push(20, "late");
    q.push(10, "first");
    q.push(10, "second");
    q.push(5, "earliest");
    expect([q.pop()?.item, q.pop()?.item, q.pop()?.item, q.pop()?.item, q.pop()]).toEqual([
      "earliest",
      "first",
      "second",
      "late",
      undefined,
    ]);
  });
});

describe("SimAccount", () => {
  it("refuses at the 5-hour cap until the window resets, and opens the next window with the next use", () => {
    const a = new SimAccount("a", 100, 10, T0 + 100 * HOUR_MS);
    a.use(T0, 10);
    expect(a.limitAt(T0 + HOUR_MS)).toEqual({ window: "five_hour", resetsAt: T0 + 5 * HOUR_MS });
    expect(a.limitAt(T0 + 5 * HOUR_MS)).toBeUndefined();
    expect(a.roomAt(T0 + 5 * HOUR_MS)).toBe(10);
  });

  it("reports both windows and records the weekly utilization at its reset", () => {
    const a = new SimAccount("a", 100, 50, T0 + 2 * HOUR_MS, 40);
    a.use(T0, 20);
    expect(a.readings(T0).map((r) => [r.window, r.utilization])).toEqual([
      ["five_hour", 0.4],
      ["seven_day", 0.6],
    ]);
    a.limitAt(T0 + 3 * HOUR_MS);
    expect(a.utilizationAtResets).toEqual([0.6]);
  });
});

describe("runSimulation()", () => {
  const scenario = createScenario({ seed: 3, accounts: 2 });

  it("is deterministic for a seed", () => {
    const once = () => runSimulation(scenario.workload, scenario.accounts(), scenario.external, createStrategy("auth pool", scenario));
    expect(once()).toEqual(once());
    expect(createScenario({ seed: 3, accounts: 2 }).workload).toEqual(scenario.workload);
  });

  it.each(STRATEGIES.map((s) => [s]))("%s produces every metric over the same runs", (name) => {
    const m = runSimulation(scenario.workload, scenario.accounts(), scenario.external, createStrategy(name, scenario));
    const runs = scenario.workload.sessions.reduce((n, s) => n + s.turns.length, 0);
    expect(m.strategy).toBe(name);
    expect(m.runs).toBe(runs);
    expect(m.fallbackRuns).toBeLessThanOrEqual(runs);
    for (const x of [m.refused, m.fallbackUsd, m.servedUsd, m.wastedUsd, m.moves, m.servedBeforeFirstLimitUsd]) {
      expect(Number.isFinite(x) && x >= 0).toBe(true);
    }
    expect(m.servedBeforeFirstLimitUsd).toBeLessThanOrEqual(m.servedUsd);
    expect(m.weeklyUtilization).toHaveLength(2);
    expect(m.weeklyUtilization.every((u) => Number.isFinite(u) && u >= 0)).toBe(true);
  });

  it("totals and judges a pool size", () => {
    const byStrategy = new Map(
      (["auth pool", "round-robin"] as const).map((name) => [
        name,
        [runSimulation(scenario.workload, scenario.accounts(), scenario.external, createStrategy(name, scenario))],
      ]),
    );
    const result = { accounts: 2, people: scenario.workload.people, seeds: 1, demandUsd: scenario.workload.demandUsd, runs: 0, byStrategy };
    const t = totalsOf(byStrategy.get("auth pool")!);
    expect(t.utilizationAtReset).toBeGreaterThan(0);
    const v = verdictOf(result, "auth pool", []);
    expect(v.fewer429s).toBe(v.refusedBy.length === 0);
    expect(v.lessFallback).toBe(v.fallbackBy.length === 0);
  });
});
