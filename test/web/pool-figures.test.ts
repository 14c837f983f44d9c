import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { GetPoolStatusResponseSchema, SubscriptionState } from "../../src/client/index.js";
import { agoText, poolFigures, untilText, usdText } from "../../src/web/pool-figures.js";

const NOW = Date.parse("2026-11-23T10:00:00Z");
const HOUR = 3_600_000;

const status = (subs: { status: SubscriptionState; percent: number; threshold?: number; burn?: number }[]) =>
  create(GetPoolStatusResponseSchema, {
    subscriptions: subs.map((s, i) => ({
      id: `s${i}`,
      status: s.status,
      weeklyPercentUsed: s.percent,
      weeklyThreshold: s.threshold ?? 1,
      weeklyBudgetUsd: 100,
      burnRateUsdPerHour: s.burn ?? 0,
      sessionCount: 1,
      maxSessions: 15,
    })),
  });

describe("poolFigures()", () => {
  it("sums the capacity left before each threshold, over subscriptions that can run", () => {
    const f = poolFigures(
      status([
        { status: SubscriptionState.AVAILABLE, percent: 40, burn: 5 },
        { status: SubscriptionState.APPROACHING, percent: 80, threshold: 0.9, burn: 5 },
        { status: SubscriptionState.COOLDOWN, percent: 10 },
        { status: SubscriptionState.PAUSED, percent: 0 },
        { status: SubscriptionState.LIMITED, percent: 120 },
      ]),
      NOW,
    );
    expect(f.capacityLeftUsd).toBeCloseTo(60 + 10, 10);
    expect(f.burnUsdPerHour).toBe(10);
    expect(f.exhaustedAt).toBe(NOW + 7 * HOUR);
    expect([f.available, f.total, f.sessions, f.maxSessions]).toEqual([2, 5, 5, 75]);
  });

  it("forecasts nothing when nothing burns", () => {
    expect(
      poolFigures(status([{ status: SubscriptionState.AVAILABLE, percent: 10 }]), NOW).exhaustedAt,
    ).toBeUndefined();
  });
});

describe("time and money in words", () => {
  it.each([
    [NOW + 45_000, "in 45 s"],
    [NOW + 2 * HOUR + 10 * 60_000, "in 2 h 10 min"],
    [NOW + 50 * HOUR, "in 2 d 2 h"],
    // As Slack says it (one formatter for both): whole hours without "0 min", days from the first.
    [NOW + 3 * HOUR, "in 3 h"],
    [NOW + 26 * HOUR, "in 1 d 2 h"],
    [NOW - 1, "now"],
  ])("untilText(%d) is %s", (at, text) => expect(untilText(at, NOW)).toBe(text));

  it("says how long ago, and dollars at two decimals under $100", () => {
    expect(agoText(NOW - 3 * 60_000, NOW)).toBe("3 min ago");
    expect([usdText(12.345), usdText(1234.5)]).toEqual(["$12.35", "$1,235"]);
  });
});
