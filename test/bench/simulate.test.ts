import { describe, expect, it } from "vitest";
import { EventQueue } from "../../bench/sim/event-queue.js";
import { createRng } from "../../bench/sim/prng.js";
import { BATCH, BOT, clientLimits } from "../../bench/sim/client-workload.js";
import { byGroup, percentile } from "../../bench/sim/client-report.js";
import { runHerding } from "../../bench/sim/herding.js";
import { runSimulation } from "../../bench/sim/run-simulation.js";
import {
  STRATEGIES,
  createScenario,
  createStrategy,
  poolStrategyFor,
  simPoolConfig,
} from "../../bench/sim/scenario.js";
import { SimAccount } from "../../bench/sim/sim-account.js";
import { totalsOf, verdictOf } from "../../bench/sim/sim-report.js";
import type { SimSession } from "../../bench/sim/workload.js";
import { configDefaults } from "../../src/config/index.js";
import { HOUR_MS, MINUTE_MS } from "../../src/domain/index.js";

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

  it("is deterministic for a seed", async () => {
    const once = () =>
      runSimulation(scenario.workload, scenario.accounts(), scenario.external, createStrategy("auth pool", scenario));
    expect(await once()).toEqual(await once());
    expect(createScenario({ seed: 3, accounts: 2 }).workload).toEqual(scenario.workload);
  });

  it.each(STRATEGIES.map((s) => [s]))("%s produces every metric over the same runs", async (name) => {
    const m = await runSimulation(
      scenario.workload,
      scenario.accounts(),
      scenario.external,
      createStrategy(name, scenario),
    );
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
    expect(m.ownersRefusedUsd).toBeGreaterThanOrEqual(0);
    expect(m.byClient.get("default")?.runs).toBe(runs);
  });

  it("totals and judges a pool size", async () => {
    const byStrategy = new Map();
    for (const name of ["auth pool", "round-robin"] as const) {
      byStrategy.set(name, [
        await runSimulation(scenario.workload, scenario.accounts(), scenario.external, createStrategy(name, scenario)),
      ]);
    }
    const ownersUsd = scenario.external.reduce((sum, u) => sum + u.usageUsd, 0);
    const result = {
      accounts: 2,
      people: scenario.workload.people,
      seeds: 1,
      demandUsd: scenario.workload.demandUsd,
      ownersUsd,
      runs: 0,
      byStrategy,
    };
    const t = totalsOf(byStrategy.get("auth pool")!);
    expect(t.utilizationAtReset).toBeGreaterThan(0);
    const v = verdictOf(result, "auth pool", []);
    expect(v.fewer429s).toBe(v.refusedBy.length === 0);
    expect(v.lessFallback).toBe(v.fallbackBy.length === 0);
  });
});

describe("simPoolConfig()", () => {
  it("runs the defaults row on the config module's defaults", () => {
    const config = simPoolConfig(2, 500, "defaults");
    expect(config.weeklyBudgetThreshold).toBe(configDefaults.weeklyBudgetThreshold);
    expect(config.pacing).toBe(configDefaults.pacing);
    expect(config.upstream).toMatchObject({
      enabled: configDefaults.upstream.enabled,
      staleAfterSeconds: configDefaults.upstream.staleAfterSeconds,
      fiveHourCap: configDefaults.upstream.fiveHourCap,
    });
    expect(config.subscriptions.map((s) => [s.id, s.weeklyBudgetUsd, s.fiveHourBudgetUsd])).toEqual([
      ["acct1", 500, 50],
      ["acct2", 500, 50],
    ]);
  });
});

describe("clients in the simulation", () => {
  it("books every run to a client, the people's sessions unchanged, and adds the bot and the batch job", async () => {
    const plain = createScenario({ seed: 3, accounts: 2 });
    const withClients = createScenario({ seed: 3, accounts: 2, clients: true });
    const people = withClients.workload.sessions.filter((s) => s.client?.startsWith("person-"));
    expect(people.map(({ client, ...s }) => s)).toEqual(plain.workload.sessions);
    expect(withClients.workload.sessions.some((s) => s.client === BOT)).toBe(true);
    expect(withClients.workload.sessions.filter((s) => s.client === BATCH).every((s) => s.priority === "low")).toBe(
      true,
    );

    const config = simPoolConfig(2, withClients.nominalWeeklyUsd, "defaults", {
      clients: clientLimits(withClients.workload),
    });
    for (const wait of [false, true]) {
      const m = await runSimulation(
        withClients.workload,
        withClients.accounts(),
        withClients.external,
        poolStrategyFor("clients", config, { wait }),
      );
      const groups = byGroup([m], (c) => (c.startsWith("person-") ? "people" : c));
      const runs = [...groups.values()].reduce((n, c) => n + c.runs, 0);
      expect(runs).toBe(m.runs);
      const bot = groups.get(BOT)!;
      expect(bot.servedRuns + bot.fallbackRuns).toBe(bot.runs);
      if (!wait) expect([...groups.values()].every((c) => c.waitsMs.length === 0)).toBe(true);
    }
  });

  it("holds a run in the wait queue until a slot frees, then runs it, and delays the rest of its session", async () => {
    const start = Date.parse("2026-11-02T09:00:00Z");
    const session = (id: string, at: number, runs: number): SimSession => ({
      id,
      user: 0,
      model: "sonnet",
      client: id,
      turns: Array.from({ length: runs }, (_, k) => ({
        at: at + k * 2 * MINUTE_MS,
        costUsd: 0.1,
        durationMs: MINUTE_MS,
      })),
    });
    // One account of one slot: "b" arrives while "a" holds it.
    const sessions = [session("a", start, 2), session("b", start + 10_000, 2)];
    const workload = {
      start,
      end: start + HOUR_MS,
      people: 2,
      heavyUsers: 0,
      sessions,
      demandUsd: 0.4,
      demandUsageUsd: 0.4,
    };
    const config = simPoolConfig(1, 1_000, "defaults", { maxSessionsPerSubscription: 1 });
    const accounts = () => [new SimAccount("acct1", 1_000, 200, start + 3 * 24 * HOUR_MS)];
    const off = await runSimulation(workload, accounts(), [], poolStrategyFor("off", config));
    expect(off.byClient.get("b")).toMatchObject({ servedRuns: 0, fallbackRuns: 2 });

    const on = await runSimulation(workload, accounts(), [], poolStrategyFor("on", config, { wait: true }));
    const b = on.byClient.get("b")!;
    expect(b).toMatchObject({ servedRuns: 2, fallbackRuns: 0, expiredRuns: 0 });
    // "a" ends its second run at 3 min and is released a minute later: "b" waited from 10 s until then.
    expect(b.waitsMs).toEqual([4 * MINUTE_MS - 10_000]);
    expect(percentile(b.waitsMs, 99)).toBe(4 * MINUTE_MS - 10_000);
  });
});

describe("runHerding()", () => {
  it("moves every session off the account that reached its limit, and is the same on a rerun", async () => {
    const r = await runHerding({ profile: "defaults" });
    expect(r.accounts).toHaveLength(5);
    expect(r.accounts.slice(1).reduce((n, t) => n + t.firstMoves, 0)).toBe(r.sessions);
    expect(r.limitedAtMin).toBeLessThan(5);
    expect(await runHerding({ profile: "defaults" })).toEqual(r);
  });
});
