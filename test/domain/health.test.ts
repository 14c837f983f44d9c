import { describe, it, expect } from "vitest";
import {
  HOUR_MS,
  computeHealth,
  createPoolState,
  floorHour,
  type Health,
  type HealthInput,
  type HealthWeights,
  type SubscriptionState,
  type UpstreamObservation,
} from "../../src/domain/index.js";
import { fiveHourFraction, weeklyFraction } from "../../src/domain/accounting.js";
import { subscriptionSettings } from "../support/settings.js";

// Monday 2026-11-23 12:30 UTC: half way through the hour, so the previous
// hour counts half in the burn rate.
const NOW = Date.parse("2026-11-23T12:30:00Z");
const HOUR = floorHour(NOW);
const DEFAULT_WEIGHTS: HealthWeights = { weekly: 40, fiveHour: 30, sessions: 15, burnRate: 10, idle: 5 };

// weekly budget $100, 5-hour budget $10 (sustainable burn $2/h), 15 sessions.
const CFG = subscriptionSettings("a");

interface SubSpec {
  /** Cost per bucket, keyed by the bucket's hour offset from the current hour (0 = this hour). */
  buckets?: Record<number, number>;
  /** 5-hour window as hour offsets from the current hour. */
  window?: { start: number; end: number };
  upstream?: SubscriptionState["upstream"];
}

function sub({ buckets = {}, window, upstream = {} }: SubSpec = {}): SubscriptionState {
  const s = createPoolState(["a"]).subscriptions.get("a")!;
  s.buckets = Object.entries(buckets)
    .map(([offset, costUsd]) => ({
      hour: HOUR + Number(offset) * HOUR_MS,
      costUsd,
      tokens: { inputTokens: 0, outputTokens: 0, cacheCreationInputTokens: 0, cacheReadInputTokens: 0 },
      requests: 1,
    }))
    .sort((x, y) => x.hour - y.hour);
  if (window !== undefined) {
    s.window = { start: HOUR + window.start * HOUR_MS, end: HOUR + window.end * HOUR_MS, estimated: true };
  }
  s.upstream = upstream;
  return s;
}

const STALE_AFTER_MS = 15 * 60_000;

function input(overrides: Partial<HealthInput> & { spec?: SubSpec } = {}): HealthInput {
  const { spec, ...rest } = overrides;
  const s = sub(spec);
  return {
    cfg: CFG,
    sub: s,
    // The shares as the view derives them.
    weekly: weeklyFraction(CFG, s, NOW, STALE_AFTER_MS),
    fiveHour: fiveHourFraction(CFG, s, NOW, STALE_AFTER_MS),
    sessionCount: 0,
    activeSessions: 0,
    now: NOW,
    weights: DEFAULT_WEIGHTS,
    ...rest,
  };
}

type Points = Record<"weekly_use" | "five_hour_use" | "sessions" | "burn_rate" | "idle_bonus", number>;

function pointsOf(h: Health): Points {
  return Object.fromEntries(h.components.map((c) => [c.name, c.points])) as Points;
}

function componentsSum(h: Health): number {
  return Math.round(h.components.reduce((s, c) => s + c.points, 0) * 100) / 100;
}

describe("computeHealth()", () => {
  it.each<{ name: string; in: HealthInput; points: Points; score: number }>([
    {
      name: "fresh subscription, nothing used, no sessions",
      in: input(),
      points: { weekly_use: 40, five_hour_use: 30, sessions: 15, burn_rate: 10, idle_bonus: 5 },
      score: 100,
    },
    {
      name: "half the weekly budget spent two days ago",
      in: input({ spec: { buckets: { [-48]: 50 } } }),
      points: { weekly_use: 20, five_hour_use: 30, sessions: 15, burn_rate: 10, idle_bonus: 5 },
      score: 80,
    },
    {
      name: "weekly budget exactly spent",
      in: input({ spec: { buckets: { [-48]: 100 } } }),
      points: { weekly_use: 0, five_hour_use: 30, sessions: 15, burn_rate: 10, idle_bonus: 5 },
      score: 60,
    },
    {
      name: "weekly budget overspent clamps at zero points",
      in: input({ spec: { buckets: { [-48]: 130 } } }),
      points: { weekly_use: 0, five_hour_use: 30, sessions: 15, burn_rate: 10, idle_bonus: 5 },
      score: 60,
    },
    {
      name: "half the 5-hour window budget, spent two hours ago",
      in: input({ spec: { buckets: { [-2]: 5 }, window: { start: -2, end: 3 } } }),
      // weekly 5% -> 38; 5-hour 50% -> 15; nothing in the trailing hour.
      points: { weekly_use: 38, five_hour_use: 15, sessions: 15, burn_rate: 10, idle_bonus: 5 },
      score: 83,
    },
    {
      name: "5-hour window over budget",
      in: input({ spec: { buckets: { [-3]: 12 }, window: { start: -3, end: 2 } } }),
      points: { weekly_use: 35.2, five_hour_use: 0, sessions: 15, burn_rate: 10, idle_bonus: 5 },
      score: 65.2,
    },
    {
      name: "cost of an ended window does not count as 5-hour use",
      in: input({ spec: { buckets: { [-8]: 5 }, window: { start: -8, end: -3 } } }),
      points: { weekly_use: 38, five_hour_use: 30, sessions: 15, burn_rate: 10, idle_bonus: 5 },
      score: 98,
    },
    {
      name: "half the sessions, all active",
      in: input({ cfg: subscriptionSettings("a", { maxSessions: 10 }), sessionCount: 5, activeSessions: 5 }),
      points: { weekly_use: 40, five_hour_use: 30, sessions: 7.5, burn_rate: 10, idle_bonus: 0 },
      score: 87.5,
    },
    {
      name: "all sessions held but none active keeps the idle bonus",
      in: input({ sessionCount: 15, activeSessions: 0 }),
      points: { weekly_use: 40, five_hour_use: 30, sessions: 0, burn_rate: 10, idle_bonus: 5 },
      score: 85,
    },
    {
      name: "a third of the sessions, one active",
      in: input({ sessionCount: 5, activeSessions: 1 }),
      points: { weekly_use: 40, five_hour_use: 30, sessions: 10, burn_rate: 10, idle_bonus: 0 },
      score: 90,
    },
    {
      name: "burning half the sustainable rate this hour",
      in: input({ spec: { buckets: { 0: 1 }, window: { start: 0, end: 5 } } }),
      // weekly 1% -> 39.6; 5-hour 10% -> 27; $1/h of $2/h -> 5.
      points: { weekly_use: 39.6, five_hour_use: 27, sessions: 15, burn_rate: 5, idle_bonus: 5 },
      score: 91.6,
    },
    {
      name: "burning the sustainable rate this hour",
      in: input({ spec: { buckets: { 0: 2 }, window: { start: 0, end: 5 } } }),
      points: { weekly_use: 39.2, five_hour_use: 24, sessions: 15, burn_rate: 0, idle_bonus: 5 },
      score: 83.2,
    },
    {
      name: "burning double the sustainable rate",
      in: input({ spec: { buckets: { 0: 4 }, window: { start: 0, end: 5 } } }),
      points: { weekly_use: 38.4, five_hour_use: 18, sessions: 15, burn_rate: 0, idle_bonus: 5 },
      score: 76.4,
    },
    {
      name: "previous hour counts pro rata (half of $2 at half past)",
      in: input({ spec: { buckets: { [-1]: 2 }, window: { start: -1, end: 4 } } }),
      points: { weekly_use: 39.2, five_hour_use: 24, sessions: 15, burn_rate: 5, idle_bonus: 5 },
      score: 88.2,
    },
    {
      name: "everything at once",
      in: input({
        spec: { buckets: { [-48]: 40, [-1]: 1, 0: 1 }, window: { start: -1, end: 4 } },
        sessionCount: 3,
        activeSessions: 2,
      }),
      // weekly 42% -> 23.2; 5-hour 20% -> 24; sessions 3/15 -> 12; burn 1 + 0.5 = 1.5 of 2 -> 2.5.
      points: { weekly_use: 23.2, five_hour_use: 24, sessions: 12, burn_rate: 2.5, idle_bonus: 0 },
      score: 61.7,
    },
  ])("$name", ({ in: hi, points, score }) => {
    const h = computeHealth(hi);
    expect(pointsOf(h)).toEqual(points);
    expect(h.score).toBe(score);
    expect(componentsSum(h)).toBe(h.score);
    expect(h.components.map((c) => c.maxPoints)).toEqual([40, 30, 15, 10, 5]);
  });

  it.each<{ name: string; weights: HealthWeights; spec?: SubSpec; max: number[]; points: number[]; score: number }>([
    {
      name: "all weights 1: each component is worth 20",
      weights: { weekly: 1, fiveHour: 1, sessions: 1, burnRate: 1, idle: 1 },
      max: [20, 20, 20, 20, 20],
      points: [20, 20, 20, 20, 20],
      score: 100,
    },
    {
      name: "all weights 1 with half the weekly budget spent",
      weights: { weekly: 1, fiveHour: 1, sessions: 1, burnRate: 1, idle: 1 },
      spec: { buckets: { [-48]: 50 } },
      max: [20, 20, 20, 20, 20],
      points: [10, 20, 20, 20, 20],
      score: 90,
    },
    {
      name: "weights summing to 10 scale like the defaults",
      weights: { weekly: 4, fiveHour: 3, sessions: 1.5, burnRate: 1, idle: 0.5 },
      spec: { buckets: { [-48]: 50 } },
      max: [40, 30, 15, 10, 5],
      points: [20, 30, 15, 10, 5],
      score: 80,
    },
    {
      name: "only the weekly weight set: weekly is worth everything",
      weights: { weekly: 3, fiveHour: 0, sessions: 0, burnRate: 0, idle: 0 },
      spec: { buckets: { [-48]: 25 } },
      max: [100, 0, 0, 0, 0],
      points: [75, 0, 0, 0, 0],
      score: 75,
    },
    {
      name: "weights summing over 100 are scaled down",
      weights: { weekly: 100, fiveHour: 100, sessions: 0, burnRate: 0, idle: 0 },
      spec: { buckets: { [-48]: 50 } },
      max: [50, 50, 0, 0, 0],
      points: [25, 50, 0, 0, 0],
      score: 75,
    },
    {
      name: "thirds: the cent lost to rounding goes to the first",
      weights: { weekly: 1, fiveHour: 1, sessions: 1, burnRate: 0, idle: 0 },
      max: [33.34, 33.33, 33.33, 0, 0],
      points: [33.34, 33.33, 33.33, 0, 0],
      score: 100,
    },
    {
      name: "1,1,1,1,2: maxima add up to 100, not 100.01",
      weights: { weekly: 1, fiveHour: 1, sessions: 1, burnRate: 1, idle: 2 },
      max: [16.67, 16.67, 16.67, 16.66, 33.33],
      points: [16.67, 16.67, 16.67, 16.66, 33.33],
      score: 100,
    },
    {
      name: "all weights 0: a score of 0, not NaN",
      weights: { weekly: 0, fiveHour: 0, sessions: 0, burnRate: 0, idle: 0 },
      max: [0, 0, 0, 0, 0],
      points: [0, 0, 0, 0, 0],
      score: 0,
    },
  ])("normalises weights: $name", ({ weights, spec, max, points, score }) => {
    const h = computeHealth(input({ weights, spec }));
    expect(h.components.map((c) => c.maxPoints)).toEqual(max);
    expect(h.components.map((c) => c.points)).toEqual(points);
    expect(h.score).toBe(score);
    expect(componentsSum(h)).toBe(h.score);
  });

  it.each<{ name: string; weights: HealthWeights }>([
    { name: "thirds", weights: { weekly: 1, fiveHour: 1, sessions: 1, burnRate: 0, idle: 0 } },
    { name: "1,1,1,1,2", weights: { weekly: 1, fiveHour: 1, sessions: 1, burnRate: 1, idle: 2 } },
    { name: "3,3,3,3,1", weights: { weekly: 3, fiveHour: 3, sessions: 3, burnRate: 3, idle: 1 } },
    { name: "sevenths", weights: { weekly: 1, fiveHour: 2, sessions: 1, burnRate: 2, idle: 1 } },
    { name: "fractional", weights: { weekly: 0.7, fiveHour: 0.1, sessions: 0.1, burnRate: 0.05, idle: 0.05 } },
  ])("components sum to the score for awkward weights: $name", ({ weights }) => {
    const fresh = computeHealth(input({ weights }));
    expect(fresh.score).toBe(100);
    expect(Math.round(fresh.components.reduce((s, c) => s + c.maxPoints, 0) * 100)).toBe(10_000);
    for (const used of [0, 7, 33, 50, 61, 99]) {
      const h = computeHealth(
        input({
          weights,
          spec: { buckets: { [-48]: used, 0: used / 50 }, window: { start: 0, end: 5 } },
          sessionCount: used % 15,
          activeSessions: 1,
        }),
      );
      expect(componentsSum(h)).toBe(h.score);
      expect(h.score).toBeGreaterThanOrEqual(0);
      expect(h.score).toBeLessThanOrEqual(100);
    }
  });

  it("is deterministic: the same input twice gives equal health", () => {
    const hi = input({
      spec: { buckets: { [-30]: 12.5, [-1]: 0.7, 0: 1.3 }, window: { start: -1, end: 4 } },
      sessionCount: 4,
      activeSessions: 2,
    });
    const first = computeHealth(hi);
    const second = computeHealth(hi);
    expect(second).toEqual(first);
    expect(second).not.toBe(first);
    // And it does not mutate its input.
    expect(computeHealth(structuredClone(hi))).toEqual(first);
  });

  it.each<{
    name: string;
    seven?: UpstreamObservation;
    five?: UpstreamObservation;
    weekly: number;
    weeklyDetail: string;
    five_hour: number;
    fiveDetail: string;
  }>([
    {
      name: "no upstream: local budget",
      weekly: 0.1,
      weeklyDetail: "10.0% of the weekly budget",
      five_hour: 0.2,
      fiveDetail: "20.0% of the 5-hour window budget",
    },
    {
      name: "fresh seven_day utilization replaces the budget",
      seven: { utilization: 0.7, resetsAt: NOW + 2 * 24 * HOUR_MS, observedAt: NOW - 10 * 60_000, costSinceUsd: 0 },
      weekly: 0.7,
      weeklyDetail: "70.0% of the weekly limit (upstream)",
      five_hour: 0.2,
      fiveDetail: "20.0% of the 5-hour window budget",
    },
    {
      name: "local cost since the reading is added to upstream utilization",
      seven: { utilization: 0.7, resetsAt: NOW + 2 * 24 * HOUR_MS, observedAt: NOW - 10 * 60_000, costSinceUsd: 5 },
      weekly: 0.75,
      weeklyDetail: "75.0% of the weekly limit (upstream)",
      five_hour: 0.2,
      fiveDetail: "20.0% of the 5-hour window budget",
    },
    {
      name: "a stale reading still above the local estimate stays a floor",
      seven: { utilization: 0.7, resetsAt: NOW + 2 * 24 * HOUR_MS, observedAt: NOW - HOUR_MS, costSinceUsd: 0 },
      weekly: 0.7,
      weeklyDetail: "70.0% of the weekly limit (upstream, stale)",
      five_hour: 0.2,
      fiveDetail: "20.0% of the 5-hour window budget",
    },
    {
      name: "a stale reading below the local estimate gives way to it",
      seven: { utilization: 0.05, resetsAt: NOW + 2 * 24 * HOUR_MS, observedAt: NOW - HOUR_MS, costSinceUsd: 0 },
      weekly: 0.1,
      weeklyDetail: "10.0% of the weekly budget",
      five_hour: 0.2,
      fiveDetail: "20.0% of the 5-hour window budget",
    },
    {
      name: "upstream reading whose window has reset is ignored",
      seven: { utilization: 0.7, resetsAt: NOW, observedAt: NOW - 3 * HOUR_MS, costSinceUsd: 0 },
      weekly: 0.1,
      weeklyDetail: "10.0% of the weekly budget",
      five_hour: 0.2,
      fiveDetail: "20.0% of the 5-hour window budget",
    },
    {
      name: "upstream reading without reset time expires after a week",
      seven: { utilization: 0.7, observedAt: NOW - 8 * 24 * HOUR_MS, costSinceUsd: 0 },
      weekly: 0.1,
      weeklyDetail: "10.0% of the weekly budget",
      five_hour: 0.2,
      fiveDetail: "20.0% of the 5-hour window budget",
    },
    {
      name: "fresh five_hour utilization replaces the window budget",
      five: { utilization: 0.9, resetsAt: NOW + HOUR_MS, observedAt: NOW - 1000, costSinceUsd: 0 },
      weekly: 0.1,
      weeklyDetail: "10.0% of the weekly budget",
      five_hour: 0.9,
      fiveDetail: "90.0% of the 5-hour limit (upstream)",
    },
  ])(
    "upstream takes precedence over the local budget: $name",
    ({ seven, five, weekly, weeklyDetail, five_hour, fiveDetail }) => {
      // Locally: $10 of $100 weekly (10%), $2 of the $10 window (20%).
      const upstream: SubscriptionState["upstream"] = {};
      if (seven !== undefined) upstream.seven_day = seven;
      if (five !== undefined) upstream.five_hour = five;
      const h = computeHealth(
        input({ spec: { buckets: { [-48]: 8, [-3]: 2 }, window: { start: -3, end: 2 }, upstream } }),
      );
      const w = h.components.find((c) => c.name === "weekly_use")!;
      const f = h.components.find((c) => c.name === "five_hour_use")!;
      expect(w.value).toBe(weekly);
      expect(w.detail).toBe(weeklyDetail);
      expect(w.points).toBe(Math.round(40 * (1 - weekly) * 100) / 100);
      expect(f.value).toBe(five_hour);
      expect(f.detail).toBe(fiveDetail);
      expect(f.points).toBe(Math.round(30 * (1 - five_hour) * 100) / 100);
    },
  );

  it.each([
    { name: "no sessions", sessionCount: 0, activeSessions: 0, detail: "0 of 15 sessions", idle: "no active session" },
    { name: "some active", sessionCount: 4, activeSessions: 3, detail: "4 of 15 sessions", idle: "3 active sessions" },
  ])("describes sessions and idleness: $name", ({ sessionCount, activeSessions, detail, idle }) => {
    const h = computeHealth(input({ sessionCount, activeSessions }));
    expect(h.components.find((c) => c.name === "sessions")!.detail).toBe(detail);
    const bonus = h.components.find((c) => c.name === "idle_bonus")!;
    expect(bonus.detail).toBe(idle);
    expect(bonus.value).toBe(activeSessions === 0 ? 1 : 0);
  });

  it("describes the burn rate against the sustainable rate", () => {
    const h = computeHealth(input({ spec: { buckets: { 0: 3 }, window: { start: 0, end: 5 } } }));
    const burn = h.components.find((c) => c.name === "burn_rate")!;
    expect(burn.detail).toBe("$3.00/h against a sustainable $2.00/h");
    expect(burn.value).toBe(1.5);
  });
});
