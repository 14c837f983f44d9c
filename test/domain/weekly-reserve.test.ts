import { describe, expect, it } from "vitest";
import { Pool, type RateLimitReading, createPoolState } from "../../src/domain/index.js";
import { learnedRatio } from "../../src/domain/calibration.js";
import { MAX_RESERVE, learnedReserve } from "../../src/domain/reserve.js";
import { granted, usage } from "../support/pool-driver.js";
import { poolSettings, subscriptionSettings } from "../support/settings.js";

const T0 = Date.parse("2026-11-23T10:00:00Z");
const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const WEEK_RESET = T0 + 4 * DAY;

describe("learnedReserve()", () => {
  it.each([
    { name: "no outside use keeps nothing back", outside: 0, span: 7 * DAY, left: 4 * DAY, reserve: 0 },
    { name: "a week's 20% with 3.5 days left keeps 10%", outside: 0.2, span: 7 * DAY, left: 3.5 * DAY, reserve: 0.1 },
    { name: "just before the reset nearly nothing", outside: 0.2, span: 7 * DAY, left: HOUR, reserve: 0 },
    { name: "under the noise floor keeps nothing", outside: 0.01, span: 7 * DAY, left: 7 * DAY, reserve: 0 },
    { name: "a measurement gone wrong is capped", outside: 3, span: 7 * DAY, left: 7 * DAY, reserve: MAX_RESERVE },
    { name: "six hours of history count as a day", outside: 0.05, span: 6 * HOUR, left: 2 * DAY, reserve: 0.1 },
    { name: "taken back by later readings, nothing", outside: -0.04, span: 7 * DAY, left: 4 * DAY, reserve: 0 },
  ])("$name", ({ outside, span, left, reserve }) => {
    const r = learnedReserve(outside, span, T0 + left, T0);
    expect(r.fraction).toBeCloseTo(reserve, 10);
    expect(r.outsideWeek).toBe(Math.max(0, outside));
  });

  it("projects over a whole week when the reset is unknown", () => {
    expect(learnedReserve(0.1, 7 * DAY, undefined, T0).fraction).toBeCloseTo(0.1, 10);
  });
});

const week = (utilization: number): RateLimitReading => ({
  window: "seven_day",
  source: "oauth",
  status: "allowed",
  utilization,
  resetsAt: WEEK_RESET,
});

/**
 * A pool of a and b (b paused, so sessions land on a) with the weekly
 * threshold given, and a's own when `ofA` is given.
 */
function makePool(weeklyBudgetThreshold: number | "auto", ofA?: number | "auto"): Pool {
  const a = subscriptionSettings("a", ofA === undefined ? {} : { weeklyBudgetThreshold: ofA });
  const pool = new Pool(
    createPoolState(["a", "b"]),
    poolSettings([a, "b"], { weeklyBudgetThreshold, lowPriorityThreshold: "auto" }),
  );
  pool.run({ kind: "set_paused", subscriptionId: "b", paused: true }, T0);
  granted(pool.run({ kind: "allocate", sessionId: "s", priority: "normal", model: "", estimatedTokens: 0 }, T0).result);
  return pool;
}

function observe(pool: Pool, at: number, utilization: number) {
  pool.run({ kind: "observe", subscriptionId: "a", source: "usage endpoint", readings: [week(utilization)] }, at);
}

function spend(pool: Pool, at: number, costUsd: number) {
  pool.run({ kind: "report", sessionId: "s", requestId: `r${at}`, report: usage(costUsd) }, at);
}

/** learn gives a the ratio 0.01 of the week per dollar: three pairs of $5 moving it 5 points. */
function learn(pool: Pool): number {
  let u = 0.1;
  let at = T0;
  observe(pool, at, u);
  for (let i = 0; i < 3; i++) {
    at += 10 * MIN;
    spend(pool, at, 5);
    u += 0.05;
    at += MIN;
    observe(pool, at, u);
  }
  expect(learnedRatio(pool.state.subscriptions.get("a")!, "seven_day")).toBeCloseTo(0.01, 10);
  return at;
}

describe("the learned weekly reserve", () => {
  it("keeps back what readings show was used outside the pool, until the reset", () => {
    const pool = makePool("auto");
    let at = learn(pool);
    expect(pool.view("a", at)!.weeklyThreshold).toBe(1);
    // Overnight nobody in the pool ran on a, and its week rose by 12 points.
    at += 8 * HOUR;
    observe(pool, at, 0.37);
    const v = pool.view("a", at)!;
    expect(v.reserve?.outsideWeek).toBeCloseTo(0.12, 10);
    // 12% over the day of history it has, projected to the reset (about 3.6 days away).
    const left = WEEK_RESET - at;
    expect(v.reserve?.fraction).toBeCloseTo(Math.min(MAX_RESERVE, (0.12 / DAY) * left), 10);
    expect(v.weeklyThreshold).toBeCloseTo(1 - v.reserve!.fraction, 10);
    expect(v.lowPriorityThreshold).toBeCloseTo(v.weeklyThreshold * 0.9, 10);
  });

  it.each<[string, number | "auto", number | "auto" | undefined, boolean]>([
    ["the pool's auto", "auto", undefined, true],
    ["a's own auto under the pool's 1", 1, "auto", true],
    ["a's own 1 under the pool's auto", "auto", 1, false],
    ["the pool's 1", 1, undefined, false],
  ])("with %s (pool %j, a %j), a keeps back its owner's use: %j", (_, pool_, ofA, keeps) => {
    const pool = makePool(pool_, ofA);
    let at = learn(pool);
    at += 8 * HOUR;
    observe(pool, at, 0.37);
    const v = pool.view("a", at)!;
    // Measured whatever the threshold: status shows it, so an operator sees whose account an owner uses.
    expect(v.outsideWeek).toBeCloseTo(0.12, 10);
    expect(v.reserve !== undefined).toBe(keeps);
    if (keeps) expect(v.weeklyThreshold).toBeCloseTo(1 - v.reserve!.fraction, 10);
    else expect(v.weeklyThreshold).toBe(1);
    expect(v.lowPriorityThreshold).toBeCloseTo(v.weeklyThreshold * 0.9, 10);
  });

  it("spends the reserve on high priority only", () => {
    const pool = makePool("auto");
    let at = learn(pool);
    at += 8 * HOUR;
    observe(pool, at, 0.37);
    // Fill a to just under 1 but over its learned threshold.
    const threshold = pool.view("a", at)!.weeklyThreshold;
    observe(pool, at + MIN, threshold + 0.01);
    at += 2 * MIN;
    const normal = pool.run(
      { kind: "allocate", sessionId: "n", priority: "normal", model: "", estimatedTokens: 0 },
      at,
    );
    expect(normal.result).toMatchObject({ kind: "fallback" });
    const high = pool.run({ kind: "allocate", sessionId: "h", priority: "high", model: "", estimatedTokens: 0 }, at);
    expect(high.result).toMatchObject({ kind: "granted" });
  });

  it("does not learn the ratio from a pair that mostly measured outside use, and counts it as outside", () => {
    const pool = makePool("auto");
    let at = learn(pool);
    // $1 of the pool's spend while the owner used 15 points: 16x the ratio.
    spend(pool, at + MIN, 1);
    at += 2 * MIN;
    observe(pool, at, 0.41);
    expect(learnedRatio(pool.state.subscriptions.get("a")!, "seven_day")).toBeCloseTo(0.01, 10);
    expect(pool.view("a", at)!.reserve?.outsideWeek).toBeCloseTo(0.15, 10);
  });

  it("a reading under the prediction takes back what one over it added", () => {
    const pool = makePool("auto");
    let at = learn(pool);
    observe(pool, at + MIN, 0.3); // 5 points over
    spend(pool, at + 2 * MIN, 10);
    at += 3 * MIN;
    observe(pool, at, 0.38); // $10 predicted 10 points, it moved 8
    expect(pool.view("a", at)!.reserve?.outsideWeek).toBeCloseTo(0.03, 10);
  });

  it("learns the ratio from runs' exact readings, not from a rounded poll between them", () => {
    // Polling on: runs bring exact readings, the usage endpoint the same
    // week rounded to whole percents. A poll just after a reading of 10.49%
    // says 10%: measured from there, $3 that moved the week 3 points would
    // seem to have moved it 3.49.
    const pool = makePool("auto");
    const stream = (at: number, utilization: number) =>
      pool.run(
        {
          kind: "observe",
          subscriptionId: "a",
          source: "stream",
          readings: [{ ...week(utilization), source: "stream" }],
        },
        at,
      );
    let at = T0;
    let u = 0.1049;
    stream(at, u);
    for (let i = 0; i < 3; i++) {
      observe(pool, at + 30_000, Math.round(u * 100) / 100);
      at += 5 * MIN;
      spend(pool, at, 3);
      u += 0.03; // the true ratio: 1% of the week per dollar
      stream(at + 1_000, u);
      at += 1_000;
    }
    expect(learnedRatio(pool.state.subscriptions.get("a")!, "seven_day")).toBeCloseTo(0.01, 10);
  });

  it("does not measure across a reset", () => {
    const pool = makePool("auto");
    const at = learn(pool);
    pool.run(
      {
        kind: "observe",
        subscriptionId: "a",
        source: "usage endpoint",
        readings: [{ ...week(0.3), resetsAt: WEEK_RESET + 7 * DAY }],
      },
      WEEK_RESET + HOUR,
    );
    expect(pool.view("a", WEEK_RESET + HOUR)!.reserve?.outsideWeek ?? 0).toBe(0);
    expect(at).toBeLessThan(WEEK_RESET);
  });

  it("a fixed threshold keeps no learned reserve", () => {
    const pool = makePool(0.85);
    let at = learn(pool);
    at += 8 * HOUR;
    observe(pool, at, 0.37);
    const v = pool.view("a", at)!;
    expect(v.reserve).toBeUndefined();
    expect([v.weeklyThreshold, v.lowPriorityThreshold]).toEqual([0.85, 0.85 * 0.9]);
  });
});
