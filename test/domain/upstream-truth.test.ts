import { describe, expect, it } from "vitest";
import {
  Pool,
  type PoolEvent,
  type RateLimitReading,
  type TranscriptRow,
  createPoolState,
} from "../../src/domain/index.js";
import { CALIBRATION_MIN_DELTA, learnedRatio } from "../../src/domain/calibration.js";
import { granted, usage } from "../support/pool-driver.js";
import { poolSettings, subscriptionSettings } from "../support/settings.js";

const T0 = Date.parse("2026-11-23T10:00:00Z");
const MIN = 60_000;
const HOUR = 60 * MIN;
const FIVE_RESET = T0 + 4 * HOUR;
const WEEK_RESET = T0 + 3 * 24 * HOUR;

const types = (events: PoolEvent[]) => events.map((e) => e.type);

function makePool(overrides: Parameters<typeof poolSettings>[1] = {}): Pool {
  // weekly budget $100, 5-hour budget $10.
  return new Pool(createPoolState(["a", "b"]), poolSettings(["a", "b"], overrides));
}

function observe(pool: Pool, at: number, readings: RateLimitReading[], id = "a") {
  return pool.run({ kind: "observe", subscriptionId: id, source: "usage endpoint", readings }, at);
}

const five = (utilization: number): RateLimitReading => ({
  window: "five_hour",
  source: "oauth",
  status: "allowed",
  utilization,
  resetsAt: FIVE_RESET,
});

/** spend allocates (once) and reports cost on subscription a. */
function spend(pool: Pool, at: number, costUsd: number, session = "s") {
  if (!pool.state.sessions.has(session)) {
    // Pause b so the session lands on a.
    pool.run({ kind: "set_paused", subscriptionId: "b", paused: true }, at);
    granted(
      pool.run({ kind: "allocate", sessionId: session, priority: "normal", model: "", estimatedTokens: 0 }, at).result,
    );
    pool.run({ kind: "set_paused", subscriptionId: "b", paused: false }, at);
  }
  pool.run({ kind: "report", sessionId: session, requestId: `r${at}`, report: usage(costUsd) }, at);
}

describe("observations", () => {
  it("keep status and source, and a rejection without a figure counts as the cap", () => {
    const pool = makePool();
    observe(pool, T0, [
      five(0.4),
      { window: "seven_day", source: "headers", status: "rejected", resetsAt: WEEK_RESET },
    ]);
    const sub = pool.state.subscriptions.get("a")!;
    expect(sub.upstream.five_hour).toMatchObject({
      utilization: 0.4,
      status: "allowed",
      source: "oauth",
      observedAt: T0,
    });
    expect(sub.upstream.seven_day).toMatchObject({ utilization: 1, status: "rejected", source: "headers" });
  });

  it.each([
    {
      name: "fresh: the observation plus spend since",
      age: 10 * MIN,
      observed: 0.3,
      spent: 2,
      value: 0.5,
      basis: "upstream",
      stale: false,
    },
    {
      name: "stale but above local: still a floor",
      age: 30 * MIN,
      observed: 0.6,
      spent: 0,
      value: 0.6,
      basis: "upstream",
      stale: true,
    },
    {
      name: "stale and below local: local wins",
      age: 30 * MIN,
      observed: 0.05,
      spent: 0,
      value: 0.4,
      basis: "budget",
      stale: true,
    },
  ])("five-hour figure, $name", ({ age, observed, spent, value, basis, stale }) => {
    const pool = makePool();
    // $4 of local spend in the window ($10 budget: 40%), then the observation.
    spend(pool, T0 - age - MIN, 4);
    observe(pool, T0 - age, [five(observed)]);
    if (spent > 0) spend(pool, T0 - age + MIN, spent);
    const v = pool.view("a", T0)!;
    expect(v.fiveHour.value).toBeCloseTo(value, 10);
    expect(v.fiveHour.basis).toBe(basis);
    expect(v.fiveHour.stale).toBe(stale);
  });

  it("bench a subscription at the 5-hour cap until the window resets, only on upstream truth", () => {
    const pool = makePool();
    // Local spend alone over the budget does not bench: the budget is a guess.
    spend(pool, T0, 12);
    expect(pool.view("a", T0)!.fiveHourCapped).toBe(false);
    observe(pool, T0 + MIN, [five(0.96)]);
    const v = pool.view("a", T0 + MIN)!;
    expect(v.fiveHourCapped).toBe(true);
    expect(v.status).toBe("limited");
    const r = granted(
      pool.run({ kind: "allocate", sessionId: "n", priority: "high", model: "", estimatedTokens: 0 }, T0 + MIN).result,
    );
    expect(r.view.cfg.id).toBe("b");
    // After the reset, the window is new and a is eligible again.
    expect(pool.view("a", FIVE_RESET + MIN)!.fiveHourCapped).toBe(false);
  });

  it.each([
    // The pool's cap (0.95 in these settings) unless the account has its own.
    [undefined, 0.96, true],
    [0.98, 0.96, false],
    [0.98, 0.98, true],
  ])("with a's own 5-hour cap %j, a reading of %j benches it: %j", (cap, reading, capped) => {
    const a = subscriptionSettings("a", cap === undefined ? {} : { fiveHourCap: cap });
    const pool = new Pool(createPoolState(["a", "b"]), poolSettings([a, "b"]));
    observe(pool, T0, [five(reading)]);
    expect(pool.view("a", T0)!.fiveHourCapped).toBe(capped);
    expect(pool.view("b", T0)!.fiveHourCapped).toBe(false);
  });

  it("send a model hint away from an account whose model window is exhausted", () => {
    const pool = makePool();
    observe(pool, T0, [
      { window: "seven_day_opus", source: "oauth", status: "allowed", utilization: 1, resetsAt: WEEK_RESET },
    ]);
    const opus = granted(
      pool.run({ kind: "allocate", sessionId: "o", priority: "normal", model: "opus", estimatedTokens: 0 }, T0).result,
    );
    expect(opus.view.cfg.id).toBe("b");
    pool.run({ kind: "set_paused", subscriptionId: "b", paused: true }, T0);
    const sonnet = granted(
      pool.run(
        { kind: "allocate", sessionId: "s2", priority: "normal", model: "claude-sonnet-4-5", estimatedTokens: 0 },
        T0,
      ).result,
    );
    expect(sonnet.view.cfg.id).toBe("a");
    const refused = pool.run(
      { kind: "allocate", sessionId: "o2", priority: "normal", model: "claude-opus-4-1", estimatedTokens: 0 },
      T0,
    );
    expect(refused.result).toMatchObject({ kind: "fallback" });
    if (refused.result.kind === "fallback") {
      expect(refused.result.exclusions.find((e) => e.subscriptionId === "a")).toMatchObject({ reason: "model_limit" });
    }
  });
});

describe("calibration", () => {
  it("learns the fraction per dollar from pairs of (spend, utilization change)", () => {
    const pool = makePool();
    const sub = pool.state.subscriptions.get("a")!;
    observe(pool, T0, [five(0.1)]);
    // $5 moves utilization by 0.2: a full window is worth $25 here, not the configured $10.
    spend(pool, T0 + MIN, 5);
    observe(pool, T0 + 2 * MIN, [five(0.3)]);
    expect(learnedRatio(sub, "five_hour")).toBeCloseTo(0.04, 10);
    spend(pool, T0 + 3 * MIN, 2.5);
    observe(pool, T0 + 4 * MIN, [five(0.4)]);
    expect(sub.calibration?.five_hour?.samples).toBe(2);
    expect(learnedRatio(sub, "five_hour")).toBeCloseTo(0.04, 10);
    // Between observations, new spend counts at the learned rate.
    spend(pool, T0 + 5 * MIN, 5);
    const v = pool.view("a", T0 + 6 * MIN)!;
    expect(v.fiveHour.value).toBeCloseTo(0.4 + 5 * 0.04, 10);
    expect(v.fiveHour.learned).toBe(true);
  });

  it.each([
    {
      name: "a move below the minimum keeps measuring from the anchor",
      moves: [CALIBRATION_MIN_DELTA / 2],
      samples: 0,
    },
    { name: "a move with no recorded spend (use from elsewhere) is no sample", moves: [0.2], spend: 0, samples: 0 },
    { name: "a drop means an unseen reset: start over", moves: [-0.05], samples: 0 },
  ])("$name", ({ moves, spend: cost = 3, samples }) => {
    const pool = makePool();
    observe(pool, T0, [five(0.3)]);
    if (cost > 0) spend(pool, T0 + MIN, cost);
    let u = 0.3;
    for (const m of moves) {
      u += m;
      observe(pool, T0 + 2 * MIN, [five(u)]);
    }
    expect(pool.state.subscriptions.get("a")!.calibration?.five_hour?.samples ?? 0).toBe(samples);
    expect(learnedRatio(pool.state.subscriptions.get("a")!, "five_hour")).toBeUndefined();
  });

  it("starts over in a new window", () => {
    const pool = makePool();
    observe(pool, T0, [five(0.9)]);
    spend(pool, T0 + MIN, 5);
    observe(pool, FIVE_RESET + MIN, [{ ...five(0.1), resetsAt: FIVE_RESET + 5 * HOUR }]);
    expect(pool.state.subscriptions.get("a")!.calibration?.five_hour).toMatchObject({
      samples: 0,
      anchor: { utilization: 0.1 },
    });
  });
});

const SESSION = "3f9a1c52-7d0e-4b8e-9a61-0c2d5e8f4a17";

function usageRow(
  key: string | undefined,
  at: number,
  output: number,
  sessionId = "outside",
  costUsd = output * 15e-6,
): TranscriptRow {
  return {
    kind: "usage",
    ...(key !== undefined ? { key } : {}),
    sessionId,
    at,
    model: "claude-sonnet-4-5-20250929",
    tokens: { inputTokens: 0, outputTokens: output, cacheCreationInputTokens: 0, cacheReadInputTokens: 0 },
    costUsd,
    costSource: "priced",
    sidechain: false,
  };
}

describe("Pool.run(reconcile)", () => {
  it("counts use outside the pool as external, once, and what a longer copy adds", () => {
    const pool = makePool();
    const reconcile = (rows: TranscriptRow[], at = T0) =>
      pool.run({ kind: "reconcile", subscriptionId: "a", rows }, at);
    const first = reconcile([usageRow("m1:r1", T0 - HOUR, 1000), usageRow("m1:r1", T0 - HOUR, 400)]);
    expect(types(first.events)).toEqual(["transcript_read"]);
    expect(first.result).toMatchObject({ kind: "reconciled", external: 1 });
    expect((first.result as { externalCostUsd: number }).externalCostUsd).toBeCloseTo(0.015, 12);
    // Read again: nothing new.
    expect(reconcile([usageRow("m1:r1", T0 - HOUR, 1000)]).events).toEqual([]);
    // A longer copy of the same message adds only the growth.
    const grown = reconcile([usageRow("m1:r1", T0 - HOUR, 1500)]);
    expect(grown.result).toMatchObject({ external: 1 });
    expect((grown.result as { externalCostUsd: number }).externalCostUsd).toBeCloseTo(0.0075, 12);
    const v = pool.view("a", T0)!;
    expect(v.weeklyExternalUsd).toBeCloseTo(0.0225, 12);
    expect(v.weeklyUsedUsd).toBeCloseTo(0.0225, 12);
  });

  it("takes rows back out of external use when a late report shows they were the pool's own run", () => {
    const pool = makePool();
    observe(pool, T0 - 2 * HOUR, [
      { window: "seven_day", source: "oauth", status: "allowed", utilization: 0.1, resetsAt: WEEK_RESET },
    ]);
    pool.run({ kind: "set_paused", subscriptionId: "b", paused: true }, T0 - HOUR);
    pool.run({ kind: "allocate", sessionId: "gw-long", priority: "normal", model: "", estimatedTokens: 0 }, T0 - HOUR);
    // The run's first rows pass the grace period before it ends: counted as external.
    pool.run(
      {
        kind: "reconcile",
        subscriptionId: "a",
        rows: [usageRow("m1:r1", T0 - 50 * MIN, 1000, SESSION), usageRow("m2:r2", T0 - 40 * MIN, 2000, SESSION)],
      },
      T0 - 20 * MIN,
    );
    expect(pool.view("a", T0 - 20 * MIN)!.weeklyExternalUsd).toBeCloseTo(0.045, 12);
    // Then the run ends and reports its whole cost under that Claude session.
    const { events } = pool.run(
      { kind: "report", sessionId: "gw-long", requestId: "1", report: usage(0.05, { claudeSessionId: SESSION }) },
      T0,
    );
    expect(types(events).slice(0, 2)).toEqual(["transcript_reattributed", "usage_recorded"]);
    const v = pool.view("a", T0)!;
    expect(v.weeklyExternalUsd).toBeCloseTo(0, 12);
    expect(v.weeklyUsedUsd).toBeCloseTo(0.05, 12);
    // The upstream figure counts the run once: 0.1 + $0.05 / $100.
    expect(v.weekly.value).toBeCloseTo(0.1005, 12);
    // Later rows of that session are the pool's; a replay gives the same state.
    const later = pool.run(
      { kind: "reconcile", subscriptionId: "a", rows: [usageRow("m3:r3", T0 + MIN, 500, SESSION)] },
      T0 + 20 * MIN,
    );
    expect(later.result).toMatchObject({ external: 0, pool: 1 });
  });

  it("skips rows of the pool's own Claude sessions and rows older than a week", () => {
    const pool = makePool();
    pool.run({ kind: "allocate", sessionId: "gw-1", priority: "normal", model: "", estimatedTokens: 0 }, T0);
    pool.run({ kind: "report", sessionId: "gw-1", requestId: "1", report: usage(1, { claudeSessionId: SESSION }) }, T0);
    const { result } = pool.run(
      {
        kind: "reconcile",
        subscriptionId: "a",
        rows: [
          usageRow("a:1", T0, 100, SESSION),
          usageRow("b:1", T0, 100, "gw-1"),
          usageRow("c:1", T0 - 8 * 24 * HOUR, 100),
        ],
      },
      T0 + MIN,
    );
    expect(result).toMatchObject({ external: 0, pool: 2, skipped: 1 });
  });

  it("adds external use to the upstream figure only when it came after the observation", () => {
    const pool = makePool();
    observe(pool, T0, [
      { window: "seven_day", source: "oauth", status: "allowed", utilization: 0.2, resetsAt: WEEK_RESET },
    ]);
    pool.run(
      { kind: "reconcile", subscriptionId: "a", rows: [usageRow("old:1", T0 - HOUR, 1_000_000, "x", 10)] },
      T0 + MIN,
    );
    expect(pool.view("a", T0 + MIN)!.weekly.value).toBeCloseTo(0.2, 10);
    pool.run(
      { kind: "reconcile", subscriptionId: "a", rows: [usageRow("new:1", T0 + MIN, 1_000_000, "x", 10)] },
      T0 + 2 * MIN,
    );
    expect(pool.view("a", T0 + 2 * MIN)!.weekly.value).toBeCloseTo(0.3, 10);
  });

  it("turns a usage-limit row into a cooldown until its reset, once", () => {
    const pool = makePool();
    const limit: TranscriptRow = {
      kind: "limit",
      key: "2f0c9b8a",
      at: T0 - MIN,
      signal: {
        window: "five_hour",
        resetsAt: T0 + 2 * HOUR,
        estimated: false,
        message: "You've hit your 5-hour limit",
      },
    };
    const first = pool.run({ kind: "reconcile", subscriptionId: "a", rows: [limit] }, T0);
    expect(types(first.events)).toEqual(["transcript_read", "limit_reached", "status_changed"]);
    expect(pool.view("a", T0)!.cooldown).toMatchObject({
      until: T0 + 2 * HOUR,
      reason: "transcript: You've hit your 5-hour limit",
    });
    expect(pool.run({ kind: "reconcile", subscriptionId: "a", rows: [limit] }, T0 + MIN).events).toEqual([]);
    // A limit whose reset has passed is remembered but benches nothing.
    const past = pool.run(
      { kind: "reconcile", subscriptionId: "b", rows: [{ ...limit, signal: { ...limit.signal, resetsAt: T0 - 1 } }] },
      T0,
    );
    expect(types(past.events)).toEqual(["transcript_read"]);
  });

  it("rejects an unknown subscription without changing anything", () => {
    const pool = makePool();
    const seq = pool.state.eventSeq;
    expect(
      pool.run({ kind: "reconcile", subscriptionId: "zz", rows: [usageRow("k", T0, 1)] }, T0).result,
    ).toMatchObject({
      kind: "rejected",
      code: "not_found",
    });
    expect(pool.state.eventSeq).toBe(seq);
  });
});

describe("sweep", () => {
  it("forgets transcript rows and Claude sessions once they are past the buckets' retention", () => {
    const pool = makePool();
    pool.run({ kind: "reconcile", subscriptionId: "a", rows: [usageRow("m:1", T0, 10)] }, T0);
    pool.run({ kind: "allocate", sessionId: "gw", priority: "normal", model: "", estimatedTokens: 0 }, T0);
    pool.run({ kind: "release", sessionId: "gw" }, T0);
    expect(pool.state.transcriptRows.size).toBe(1);
    expect(pool.state.claudeSessions.has("gw")).toBe(true);
    const week = 7 * 24 * HOUR;
    pool.run({ kind: "sweep" }, T0 + week);
    expect(pool.state.transcriptRows.size).toBe(1);
    expect(pool.state.claudeSessions.has("gw")).toBe(true);
    pool.run({ kind: "sweep" }, T0 + week + 25 * HOUR);
    expect(pool.state.transcriptRows.size).toBe(0);
    expect(pool.state.claudeSessions.has("gw")).toBe(false);
  });
});
