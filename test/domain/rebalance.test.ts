import { describe, it, expect } from "vitest";
import {
  DAY_MS,
  HOUR_MS,
  MINUTE_MS,
  Pool,
  createPoolState,
  loadUsd,
  planRebalance,
  sessionsOf,
  type LimitSignal,
  type PoolEvent,
  type PoolSettings,
  type Priority,
  type RateLimitReading,
  type RebalanceMove,
  type SubscriptionSettings,
  type UsageReport,
} from "../../src/domain/index.js";
import { granted, usage } from "../support/pool-driver.js";
import { poolSettings, subscriptionSettings } from "../support/settings.js";

/** On the hour, so a 5-hour window opened at T0 is [T0, T0 + 5h). */
const T0 = Date.parse("2026-11-23T10:00:00Z");
/** When most plans are made: sessions placed at T0 are idle (10 min > activeMinutes 5, < staleMinutes 60). */
const NOW = T0 + 10 * MINUTE_MS;

type SubSpec = string | SubscriptionSettings;

function makePool(subs: SubSpec[] = ["a", "b", "c"], overrides: Partial<PoolSettings> = {}): Pool {
  const settings = poolSettings(subs, overrides);
  return new Pool(createPoolState(settings.subscriptions.map((s) => s.id)), settings);
}

/** onlyOn runs fn with every other subscription paused, so allocations land on `sub`. */
function onlyOn(pool: Pool, sub: string, at: number, fn: () => void): void {
  const others = pool.settings.subscriptions
    .map((s) => s.id)
    .filter((id) => id !== sub && !pool.state.subscriptions.get(id)!.paused);
  for (const id of others) pool.run({ kind: "set_paused", subscriptionId: id, paused: true }, at);
  fn();
  for (const id of others) pool.run({ kind: "set_paused", subscriptionId: id, paused: false }, at);
}

/** place allocates session `sid` on subscription `sub` at time `at`. */
function place(
  pool: Pool,
  sid: string,
  sub: string,
  at: number,
  opts: { priority?: Priority; model?: string } = {},
): void {
  onlyOn(pool, sub, at, () => {
    const { result } = pool.run(
      {
        kind: "allocate",
        sessionId: sid,
        priority: opts.priority ?? "normal",
        model: opts.model ?? "sonnet",
        estimatedTokens: 1000,
      },
      at,
    );
    expect(granted(result).view.cfg.id).toBe(sub);
  });
}

let throwaway = 0;

/** spend reports costUsd (and readings / a limit) on `sub` through a session released again at once. */
function spend(pool: Pool, sub: string, costUsd: number, at: number, extra: Partial<UsageReport> = {}): void {
  const sid = `spend-${sub}-${throwaway++}`;
  place(pool, sid, sub, at);
  const { result } = pool.run({ kind: "report", sessionId: sid, requestId: "", report: usage(costUsd, extra) }, at);
  expect(result.kind).toBe("reported");
  pool.run({ kind: "release", sessionId: sid }, at);
}

function coolDown(pool: Pool, sub: string, at: number, limit: Partial<LimitSignal> = {}): void {
  spend(pool, sub, 0, at, {
    limit: {
      window: "five_hour",
      resetsAt: at + 3 * HOUR_MS,
      estimated: false,
      message: "You've hit your limit",
      ...limit,
    },
  });
}

function fiveHourReading(utilization: number, at: number): RateLimitReading {
  return { window: "five_hour", status: "allowed_warning", utilization, resetsAt: at + 4 * HOUR_MS };
}

function plan(pool: Pool, now = NOW): RebalanceMove[] {
  return planRebalance(pool.views(now), pool.state, pool.settings, now);
}

/** A move as [session, from, to]: the shape most assertions care about. */
function triples(moves: RebalanceMove[]): [string, string, string][] {
  return moves.map((m) => [m.sessionId, m.from, m.to]);
}

function isAnnouncement(e: PoolEvent): boolean {
  return (
    e.type === "status_changed" ||
    e.type === "usage_threshold" ||
    e.type === "usage_threshold_cleared" ||
    (e.type === "limit_reached" && e.kind !== "upstream")
  );
}

describe("loadUsd: the 5-hour load in USD", () => {
  it.each<{ name: string; budget: number; act: (pool: Pool) => void; load: number }>([
    { name: "no use", budget: 10, act: () => {}, load: 0 },
    { name: "local cost 7 of a $10 window", budget: 10, act: (p) => spend(p, "a", 7, T0), load: 7 },
    { name: "local cost 5 of a $20 window", budget: 20, act: (p) => spend(p, "a", 5, T0), load: 5 },
    {
      name: "cost from a window that has ended does not count",
      budget: 10,
      act: (p) => spend(p, "a", 7, NOW - 6 * HOUR_MS),
      load: 0,
    },
    {
      name: "upstream five_hour utilization 0.9 on a $20 window, no local cost",
      budget: 20,
      act: (p) => spend(p, "a", 0, T0, { readings: [fiveHourReading(0.9, T0)] }),
      load: 18,
    },
    {
      name: "upstream 0.5 plus $2 of local cost since the reading, on a $20 window",
      budget: 20,
      act: (p) => {
        spend(p, "a", 0, T0, { readings: [fiveHourReading(0.5, T0)] });
        spend(p, "a", 2, T0 + MINUTE_MS);
      },
      load: 12,
    },
    {
      name: "upstream utilization wins over a larger local cost",
      budget: 20,
      act: (p) => {
        spend(p, "a", 15, T0);
        spend(p, "a", 0, T0 + MINUTE_MS, { readings: [fiveHourReading(0.25, T0)] });
      },
      load: 5,
    },
  ])("$name → $load", ({ budget, act, load }) => {
    const pool = makePool([subscriptionSettings("a", { fiveHourBudgetUsd: budget })]);
    act(pool);
    const v = pool.view("a", NOW)!;
    expect(loadUsd(v)).toBeCloseTo(load, 9);
    expect(loadUsd(v)).toBeCloseTo(v.fiveHour.value * budget, 9);
  });

  it("the upstream reading makes a subscription the source even though its local cost is lower", () => {
    // a: no local cost but upstream says 90% of a $20 window (load 18); b: $10 local of $20 (load 10).
    const pool = makePool([
      subscriptionSettings("a", { fiveHourBudgetUsd: 20 }),
      subscriptionSettings("b", { fiveHourBudgetUsd: 20 }),
    ]);
    spend(pool, "a", 0, T0, { readings: [fiveHourReading(0.9, T0)] });
    spend(pool, "b", 10, T0);
    place(pool, "sa", "a", T0);
    place(pool, "sb", "b", T0);
    expect(pool.views(NOW).map((v) => [v.cfg.id, v.windowCostUsd, loadUsd(v)])).toEqual([
      ["a", 0, 18],
      ["b", 10, 10],
    ]);
    const moves = plan(pool);
    expect(triples(moves)).toEqual([["sa", "a", "b"]]);
    expect(moves[0]).toMatchObject({ reason: "rebalance", detail: "5-hour load $18.00 vs $10.00 (gap $8.00)" });
  });
});

describe("planRebalance: the cost gap", () => {
  // The loop stops while `gap < costGapThreshold`: a gap equal to the threshold moves.
  it.each<{ name: string; loadA: number; loadB: number; threshold: number; moves: number }>([
    { name: "no gap", loadA: 0, loadB: 0, threshold: 5, moves: 0 },
    { name: "gap well below the threshold", loadA: 3, loadB: 0, threshold: 5, moves: 0 },
    { name: "gap just below the threshold (4.99)", loadA: 6.99, loadB: 2, threshold: 5, moves: 0 },
    { name: "gap exactly at the threshold (5)", loadA: 7, loadB: 2, threshold: 5, moves: 1 },
    { name: "gap above the threshold", loadA: 9, loadB: 2, threshold: 5, moves: 1 },
    { name: "a larger threshold keeps the same gap still", loadA: 9, loadB: 2, threshold: 8, moves: 0 },
    { name: "a smaller threshold lets a small gap move", loadA: 3, loadB: 2, threshold: 1, moves: 1 },
  ])("$name: a=$loadA b=$loadB threshold=$threshold → $moves move(s)", ({ loadA, loadB, threshold, moves }) => {
    const pool = makePool(["a", "b"], {
      rebalancing: { enabled: true, intervalSeconds: 300, costGapThreshold: threshold, maxMovesPerCycle: 3 },
    });
    if (loadA > 0) spend(pool, "a", loadA, T0);
    if (loadB > 0) spend(pool, "b", loadB, T0);
    place(pool, "s1", "a", T0);
    const got = plan(pool);
    expect(got).toHaveLength(moves);
    if (moves > 0) {
      const gap = (loadA - loadB).toFixed(2);
      expect(got[0]).toEqual({
        sessionId: "s1",
        from: "a",
        to: "b",
        reason: "rebalance",
        detail: `5-hour load $${loadA.toFixed(2)} vs $${loadB.toFixed(2)} (gap $${gap})`,
      });
    }
  });

  it("moves from the most loaded subscription that has idle sessions to the least loaded one", () => {
    // c is the most loaded but has no idle session; a is next; b is the least loaded.
    const pool = makePool(["a", "b", "c"], {
      rebalancing: { enabled: true, intervalSeconds: 300, costGapThreshold: 5, maxMovesPerCycle: 1 },
    });
    spend(pool, "a", 8, T0);
    spend(pool, "b", 1, T0);
    spend(pool, "c", 9.5, T0);
    place(pool, "sa", "a", T0);
    place(pool, "sc", "c", NOW - MINUTE_MS); // active
    expect(triples(plan(pool))).toEqual([["sa", "a", "b"]]);
  });
});

describe("planRebalance: how many and which sessions move", () => {
  it.each<{ name: string; max: number; resumed?: string; expected: [string, string, string][] }>([
    { name: "max 1: only the longest idle", max: 1, expected: [["s0", "a", "b"]] },
    {
      name: "max 3: the three longest idle, spread b, c, b (equal load: fewer sessions, then config order)",
      max: 3,
      expected: [
        ["s0", "a", "b"],
        ["s1", "a", "c"],
        ["s2", "a", "b"],
      ],
    },
    {
      name: "max 10: every idle session, never more than there are",
      max: 10,
      expected: [
        ["s0", "a", "b"],
        ["s1", "a", "c"],
        ["s2", "a", "b"],
        ["s3", "a", "c"],
        ["s4", "a", "b"],
      ],
    },
    { name: "max 0: nothing moves", max: 0, expected: [] },
    {
      name: "a session resumed since is no longer the longest idle",
      max: 2,
      resumed: "s0",
      expected: [
        ["s1", "a", "b"],
        ["s2", "a", "c"],
      ],
    },
  ])("$name", ({ max, resumed, expected }) => {
    const pool = makePool(["a", "b", "c"], {
      rebalancing: { enabled: true, intervalSeconds: 300, costGapThreshold: 5, maxMovesPerCycle: max },
    });
    spend(pool, "a", 9, T0);
    // s0 is the longest idle, s4 the shortest.
    for (let i = 0; i < 5; i++) place(pool, `s${i}`, "a", T0 + i * MINUTE_MS);
    const now = T0 + 30 * MINUTE_MS;
    if (resumed !== undefined) {
      pool.run(
        { kind: "allocate", sessionId: resumed, priority: "normal", model: "sonnet", estimatedTokens: 1 },
        now - 20 * MINUTE_MS,
      );
    }
    const moves = plan(pool, now);
    expect(triples(moves)).toEqual(expected);
    expect(moves.every((m) => m.reason === "rebalance")).toBe(true);
  });

  it("sessions with the same idle time move in id order", () => {
    const pool = makePool(["a", "b"], {
      rebalancing: { enabled: true, intervalSeconds: 300, costGapThreshold: 5, maxMovesPerCycle: 2 },
    });
    spend(pool, "a", 9, T0);
    for (const id of ["s-c", "s-a", "s-b"]) place(pool, id, "a", T0);
    expect(triples(plan(pool))).toEqual([
      ["s-a", "a", "b"],
      ["s-b", "a", "b"],
    ]);
  });

  it("skips a longest-idle session that no subscription can take and moves the next one", () => {
    // b (load 0) has an opus cooldown: the older opus session on a cannot go there, the sonnet one can.
    const pool = makePool(["a", "b"]);
    spend(pool, "a", 9, T0);
    place(pool, "opus", "a", T0, { model: "opus" });
    place(pool, "sonnet", "a", T0 + MINUTE_MS, { model: "sonnet" });
    coolDown(pool, "b", T0 + MINUTE_MS, { window: "seven_day_opus", modelScope: "opus", resetsAt: T0 + DAY_MS });
    expect(triples(plan(pool))).toEqual([["sonnet", "a", "b"]]);
  });

  it("counts the sessions it has already moved against the target's maxSessions", () => {
    // b (load 0) has room for one more; the rest go to c (load 2).
    const pool = makePool(["a", subscriptionSettings("b", { maxSessions: 2 }), "c"], {
      rebalancing: { enabled: true, intervalSeconds: 300, costGapThreshold: 5, maxMovesPerCycle: 3 },
    });
    spend(pool, "a", 9, T0);
    spend(pool, "c", 2, T0);
    for (let i = 0; i < 3; i++) place(pool, `s${i}`, "a", T0 + i * MINUTE_MS);
    place(pool, "busy", "b", NOW - MINUTE_MS);
    expect(triples(plan(pool))).toEqual([
      ["s0", "a", "b"],
      ["s1", "a", "c"],
      ["s2", "a", "c"],
    ]);
  });
});

describe("planRebalance: only idle sessions move", () => {
  // activeMinutes 5, staleMinutes 60: active below 5, idle in [5, 60), stale from 60.
  it.each<{ name: string; quietMinutes: number; moves: boolean }>([
    { name: "active (1 min quiet)", quietMinutes: 1, moves: false },
    { name: "active (4.9 min quiet)", quietMinutes: 4.9, moves: false },
    { name: "idle at exactly activeMinutes", quietMinutes: 5, moves: true },
    { name: "idle (30 min quiet)", quietMinutes: 30, moves: true },
    { name: "idle (59.9 min quiet)", quietMinutes: 59.9, moves: true },
    { name: "stale at exactly staleMinutes", quietMinutes: 60, moves: false },
    { name: "stale (90 min quiet)", quietMinutes: 90, moves: false },
  ])("$name → moves: $moves", ({ quietMinutes, moves }) => {
    const pool = makePool(["a", "b"]);
    const now = T0 + 2 * HOUR_MS;
    spend(pool, "a", 9, T0);
    place(pool, "s1", "a", now - quietMinutes * MINUTE_MS);
    expect(triples(plan(pool, now))).toEqual(moves ? [["s1", "a", "b"]] : []);
  });

  it("skips active and stale sessions and moves the idle one, even though they are older", () => {
    const pool = makePool(["a", "b"]);
    const now = T0 + 2 * HOUR_MS;
    spend(pool, "a", 9, T0);
    place(pool, "stale", "a", now - 61 * MINUTE_MS);
    place(pool, "active", "a", now - 50 * MINUTE_MS);
    place(pool, "idle", "a", now - 40 * MINUTE_MS);
    // "active" was allocated before "idle" but has been resumed a minute ago.
    pool.run(
      { kind: "allocate", sessionId: "active", priority: "normal", model: "sonnet", estimatedTokens: 1 },
      now - MINUTE_MS,
    );
    expect(triples(plan(pool, now))).toEqual([["idle", "a", "b"]]);
  });
});

describe("planRebalance: which subscriptions can take a session", () => {
  // a (load 9) holds one idle session; b (load 0) is the preferred target
  // unless its condition excludes it; c (load 2, gap 7) is the next one.
  interface Case {
    name: string;
    session?: { priority?: Priority; model?: string };
    b?: Partial<SubscriptionSettings>;
    setupB?: (pool: Pool) => void;
    withC: string | undefined;
    withoutC: string | undefined;
  }
  it.each<Case>([
    { name: "b eligible", withC: "b", withoutC: "b" },
    {
      name: "b full (maxSessions reached)",
      b: { maxSessions: 1 },
      setupB: (p) => place(p, "busy", "b", NOW - MINUTE_MS),
      withC: "c",
      withoutC: undefined,
    },
    {
      name: "b with room left",
      b: { maxSessions: 2 },
      setupB: (p) => place(p, "busy", "b", NOW - MINUTE_MS),
      withC: "b",
      withoutC: "b",
    },
    { name: "b in cooldown", setupB: (p) => coolDown(p, "b", T0), withC: "c", withoutC: undefined },
    {
      name: "b's cooldown already over",
      setupB: (p) => coolDown(p, "b", T0 - 4 * HOUR_MS),
      withC: "b",
      withoutC: "b",
    },
    {
      name: "b paused",
      setupB: (p) => p.run({ kind: "set_paused", subscriptionId: "b", paused: true }, T0),
      withC: "c",
      withoutC: undefined,
    },
    {
      name: "b at 90% weekly: a normal session may not go (threshold 85%)",
      setupB: (p) => spend(p, "b", 90, T0 - DAY_MS),
      withC: "c",
      withoutC: undefined,
    },
    {
      name: "b at 90% weekly: a high session may (threshold 100%)",
      session: { priority: "high" },
      setupB: (p) => spend(p, "b", 90, T0 - DAY_MS),
      withC: "b",
      withoutC: "b",
    },
    {
      name: "b at 80% weekly: a normal session may",
      setupB: (p) => spend(p, "b", 80, T0 - DAY_MS),
      withC: "b",
      withoutC: "b",
    },
    {
      name: "b at 80% weekly: a low session may not (threshold 76.5%)",
      session: { priority: "low" },
      setupB: (p) => spend(p, "b", 80, T0 - DAY_MS),
      withC: "c",
      withoutC: undefined,
    },
    {
      name: "b has an opus cooldown: an opus session may not go",
      session: { model: "claude-opus-4-1" },
      setupB: (p) => coolDown(p, "b", T0, { window: "seven_day_opus", modelScope: "opus", resetsAt: T0 + DAY_MS }),
      withC: "c",
      withoutC: undefined,
    },
    {
      name: "b has an opus cooldown: a sonnet session may",
      session: { model: "claude-sonnet-4-5" },
      setupB: (p) => coolDown(p, "b", T0, { window: "seven_day_opus", modelScope: "opus", resetsAt: T0 + DAY_MS }),
      withC: "b",
      withoutC: "b",
    },
  ])("$name → with c: $withC, without c: $withoutC", ({ session, b, setupB, withC, withoutC }) => {
    for (const hasC of [true, false]) {
      const subs: SubSpec[] = ["a", subscriptionSettings("b", b ?? {})];
      if (hasC) subs.push("c");
      const pool = makePool(subs);
      spend(pool, "a", 9, T0);
      if (hasC) spend(pool, "c", 2, T0);
      setupB?.(pool);
      place(pool, "s1", "a", T0, session ?? {});
      expect(pool.view("b", NOW)!.fiveHour.value).toBe(0);
      const expected = hasC ? withC : withoutC;
      expect(triples(plan(pool)), hasC ? "with c" : "without c").toEqual(
        expected === undefined ? [] : [["s1", "a", expected]],
      );
    }
  });
});

describe("planRebalance: draining subscriptions that cannot serve", () => {
  it.each<{ name: string; setupA: (pool: Pool) => void; reason: string; detail: string }>([
    {
      name: "cooldown",
      setupA: (p) => coolDown(p, "a", T0, { message: "You've hit your limit · resets 1pm" }),
      reason: "cooldown",
      detail: "a is cooling down: You've hit your limit · resets 1pm",
    },
    {
      name: "paused",
      setupA: (p) => p.run({ kind: "set_paused", subscriptionId: "a", paused: true }, T0),
      reason: "drain",
      detail: "a is paused",
    },
  ])("a $name source drains its idle sessions although the load gap is 0", ({ setupA, reason, detail }) => {
    const pool = makePool(["a", "b"]);
    place(pool, "s0", "a", T0);
    place(pool, "s1", "a", T0 + MINUTE_MS);
    place(pool, "active", "a", NOW - MINUTE_MS);
    setupA(pool);
    expect(pool.views(NOW).map(loadUsd)).toEqual([0, 0]);
    expect(plan(pool)).toEqual([
      { sessionId: "s0", from: "a", to: "b", reason, detail },
      { sessionId: "s1", from: "a", to: "b", reason, detail },
    ]);
  });

  it("drains to the least loaded target, respects maxMovesPerCycle, and moves nothing when no target exists", () => {
    const pool = makePool(["a", "b", "c"], {
      rebalancing: { enabled: true, intervalSeconds: 300, costGapThreshold: 5, maxMovesPerCycle: 3 },
    });
    spend(pool, "b", 4, T0);
    spend(pool, "c", 1, T0);
    for (let i = 0; i < 4; i++) place(pool, `s${i}`, "a", T0 + i * MINUTE_MS);
    coolDown(pool, "a", T0);
    const moves = plan(pool);
    expect(triples(moves)).toEqual([
      ["s0", "a", "c"],
      ["s1", "a", "c"],
      ["s2", "a", "c"],
    ]);
    expect(moves.every((m) => m.reason === "cooldown")).toBe(true);

    pool.run({ kind: "set_paused", subscriptionId: "b", paused: true }, NOW);
    pool.run({ kind: "set_paused", subscriptionId: "c", paused: true }, NOW);
    expect(plan(pool)).toEqual([]);
  });

  it("drains before rebalancing, within one maxMovesPerCycle budget", () => {
    const pool = makePool(["a", "b", "c"], {
      rebalancing: { enabled: true, intervalSeconds: 300, costGapThreshold: 5, maxMovesPerCycle: 2 },
    });
    spend(pool, "b", 9, T0);
    place(pool, "onB", "b", T0);
    place(pool, "onA", "a", T0 + MINUTE_MS);
    pool.run({ kind: "set_paused", subscriptionId: "a", paused: true }, T0 + MINUTE_MS);
    const moves = plan(pool);
    expect(moves.map((m) => [m.sessionId, m.from, m.to, m.reason])).toEqual([
      ["onA", "a", "c", "drain"],
      ["onB", "b", "c", "rebalance"],
    ]);
  });

  it("a session that has no target does not keep the others on a cooling-down subscription", () => {
    // b has an opus cooldown: the (older) opus session cannot move, the sonnet one can.
    const pool = makePool(["a", "b"]);
    place(pool, "opus", "a", T0, { model: "opus" });
    place(pool, "sonnet", "a", T0 + MINUTE_MS, { model: "sonnet" });
    coolDown(pool, "b", T0 + MINUTE_MS, { window: "seven_day_opus", modelScope: "opus", resetsAt: T0 + DAY_MS });
    coolDown(pool, "a", T0 + MINUTE_MS);
    expect(triples(plan(pool))).toEqual([["sonnet", "a", "b"]]);
  });
});

describe("Pool.run(rebalance)", () => {
  /** a (load 9) holds two idle sessions and an active one; b and c are empty. */
  function scenario(): Pool {
    const pool = makePool(["a", "b", "c"], {
      rebalancing: { enabled: true, intervalSeconds: 300, costGapThreshold: 5, maxMovesPerCycle: 3 },
    });
    spend(pool, "a", 9, T0);
    place(pool, "s0", "a", T0);
    place(pool, "s1", "a", T0 + MINUTE_MS);
    place(pool, "busy", "a", NOW - MINUTE_MS);
    return pool;
  }

  it("dryRun returns the moves and the projected after, and emits and changes nothing", () => {
    const pool = scenario();
    const snapshot = structuredClone(pool.state);
    const { events, result } = pool.run({ kind: "rebalance", dryRun: true, trigger: "on_demand" }, NOW);
    expect(events).toEqual([]);
    expect(pool.state).toEqual(snapshot);
    expect(result.kind).toBe("rebalanced");
    expect(result.dryRun).toBe(true);
    expect(triples(result.moves)).toEqual([
      ["s0", "a", "b"],
      ["s1", "a", "c"],
    ]);
    expect(result.before.map((s) => [s.subscriptionId, s.sessionCount])).toEqual([
      ["a", 3],
      ["b", 0],
      ["c", 0],
    ]);
    expect(result.after.map((s) => [s.subscriptionId, s.sessionCount])).toEqual([
      ["a", 1],
      ["b", 1],
      ["c", 1],
    ]);
    // Fewer sessions on a: better health; one more on b and c: worse.
    const score = (list: typeof result.before, id: string) => list.find((s) => s.subscriptionId === id)!.healthScore;
    expect(score(result.after, "a")).toBeGreaterThan(score(result.before, "a"));
    expect(score(result.after, "b")).toBeLessThan(score(result.before, "b"));
    expect(result.after.map((s) => s.fiveHourCostUsd)).toEqual(result.before.map((s) => s.fiveHourCostUsd));

    // The projection is what a real run then produces.
    const real = scenario().run({ kind: "rebalance", dryRun: false, trigger: "on_demand" }, NOW).result;
    expect(real.moves).toEqual(result.moves);
    expect(real.before).toEqual(result.before);
    expect(real.after).toEqual(result.after);
    // And repeating the dry run gives the same answer.
    expect(pool.run({ kind: "rebalance", dryRun: true, trigger: "on_demand" }, NOW).result).toEqual(result);
  });

  it.each<{ trigger: "periodic" | "on_demand" }>([{ trigger: "periodic" }, { trigger: "on_demand" }])(
    "trigger $trigger: one session_rotated per move, then rebalance_completed; the next allocate says rotatedFrom once",
    ({ trigger }) => {
      const pool = scenario();
      const { events, result } = pool.run({ kind: "rebalance", dryRun: false, trigger }, NOW);
      expect(result.dryRun).toBe(false);
      const own = events.filter((e) => !isAnnouncement(e));
      expect(own.map((e) => e.type)).toEqual(["session_rotated", "session_rotated", "rebalance_completed"]);
      expect(own).toMatchObject([
        { type: "session_rotated", sessionId: "s0", from: "a", to: "b", reason: "rebalance", at: NOW },
        { type: "session_rotated", sessionId: "s1", from: "a", to: "c", reason: "rebalance", at: NOW },
        { type: "rebalance_completed", trigger, moves: result.moves, at: NOW },
      ]);
      for (let i = 0; i < own.length; i++) {
        const e = own[i]!;
        if (e.type === "session_rotated") expect(e.detail).toBe(result.moves[i]!.detail);
      }
      expect(result.after.map((s) => [s.subscriptionId, s.sessionCount])).toEqual([
        ["a", 1],
        ["b", 1],
        ["c", 1],
      ]);
      expect([...sessionsOf(pool.state, "a")]).toEqual(["busy"]);
      expect([...sessionsOf(pool.state, "b")]).toEqual(["s0"]);
      expect(pool.state.sessions.get("s0")).toMatchObject({
        subscriptionId: "b",
        rotatedFrom: "a",
        lastActivityAt: T0,
      });

      const first = pool.run(
        { kind: "allocate", sessionId: "s0", priority: "normal", model: "sonnet", estimatedTokens: 1 },
        NOW + MINUTE_MS,
      );
      const g1 = granted(first.result);
      expect(g1).toMatchObject({ resumed: true, rotatedFrom: "a" });
      expect(g1.view.cfg.id).toBe("b");
      expect(first.events.filter((e) => !isAnnouncement(e))).toMatchObject([
        { type: "session_resumed", sessionId: "s0", subscriptionId: "b" },
      ]);

      const second = granted(
        pool.run(
          { kind: "allocate", sessionId: "s0", priority: "normal", model: "sonnet", estimatedTokens: 1 },
          NOW + 2 * MINUTE_MS,
        ).result,
      );
      expect(second.resumed).toBe(true);
      expect(second.view.cfg.id).toBe("b");
      expect(second.rotatedFrom).toBeUndefined();
      expect("rotatedFrom" in second).toBe(false);
    },
  );

  it.each<{ trigger: "periodic" | "on_demand"; types: string[] }>([
    { trigger: "periodic", types: [] },
    { trigger: "on_demand", types: ["rebalance_completed"] },
  ])("with nothing to move, a real $trigger run emits $types and announces nothing", ({ trigger, types }) => {
    const pool = makePool(["a", "b"]);
    place(pool, "s0", "a", T0);
    const seq = pool.state.eventSeq;
    const { events, result } = pool.run({ kind: "rebalance", dryRun: false, trigger }, NOW);
    expect(result.moves).toEqual([]);
    expect(result.after).toEqual(result.before);
    expect(events.map((e) => e.type)).toEqual(types);
    if (types.length > 0) expect(events[0]).toMatchObject({ type: "rebalance_completed", trigger, moves: [] });
    expect(pool.state.eventSeq).toBe(seq + types.length);
  });

  it("a moved session's cooldown drain is replayed by the next allocate as a resume on the new subscription", () => {
    const pool = makePool(["a", "b"]);
    place(pool, "s0", "a", T0);
    coolDown(pool, "a", T0);
    const { events } = pool.run({ kind: "rebalance", dryRun: false, trigger: "periodic" }, NOW);
    expect(events.filter((e) => !isAnnouncement(e))).toMatchObject([
      { type: "session_rotated", sessionId: "s0", from: "a", to: "b", reason: "cooldown" },
      { type: "rebalance_completed", moves: [{ sessionId: "s0", reason: "cooldown" }] },
    ]);
    const g = granted(
      pool.run({ kind: "allocate", sessionId: "s0", priority: "normal", model: "sonnet", estimatedTokens: 1 }, NOW)
        .result,
    );
    expect(g).toMatchObject({ resumed: true, rotatedFrom: "a" });
    expect(g.view.cfg.id).toBe("b");
  });
});
