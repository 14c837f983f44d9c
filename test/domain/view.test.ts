import { describe, it, expect } from "vitest";
import {
  HOUR_MS,
  MINUTE_MS,
  applyEvent,
  createPoolState,
  exclusionOf,
  thresholdFor,
  viewSubscription,
  type AllocationNeed,
  type EventBody,
  type PoolSettings,
  type PoolState,
  type Priority,
} from "../../src/domain/index.js";
import { poolSettings, subscriptionSettings } from "../support/settings.js";

const NOW = Date.parse("2026-11-23T10:30:00Z");
// Weekly budget $100 (threshold 0.85, low 0.765), 5-hour budget $10, 2 sessions.
const CFG = subscriptionSettings("a", { maxSessions: 2 });
const SETTINGS = poolSettings([CFG]);

/** Builder applies hand-made events to a one-subscription state. */
class Builder {
  readonly state: PoolState = createPoolState(["a"]);
  private n = 0;

  private apply(body: EventBody, at = NOW): this {
    applyEvent(this.state, { ...body, seq: this.state.eventSeq + 1, at } as Parameters<typeof applyEvent>[1]);
    return this;
  }

  spend(costUsd: number, at = NOW - 2 * 24 * HOUR_MS): this {
    return this.apply(
      {
        type: "usage_recorded",
        sessionId: "gone",
        subscriptionId: "a",
        dedupeKeys: [],
        costUsd,
        tokens: { inputTokens: 0, outputTokens: 0, cacheCreationInputTokens: 0, cacheReadInputTokens: 0 },
        models: {},
        durationMs: 0,
        sessionOpen: false,
      },
      at,
    );
  }

  sessions(count: number, at = NOW): this {
    for (let i = 0; i < count; i++) {
      this.apply(
        {
          type: "session_allocated",
          sessionId: `s${++this.n}`,
          subscriptionId: "a",
          priority: "normal",
          model: "",
          estimatedTokens: 0,
        },
        at,
      );
    }
    return this;
  }

  paused(): this {
    return this.apply({ type: "paused_set", subscriptionId: "a", paused: true });
  }

  cooldown(modelScope?: "opus"): this {
    return this.apply({
      type: "limit_reached",
      subscriptionId: "a",
      kind: "upstream",
      window: modelScope ? "seven_day_opus" : "five_hour",
      resetsAt: NOW + HOUR_MS,
      estimated: false,
      message: "limit",
      ...(modelScope ? { modelScope } : {}),
    });
  }

  fiveHourUpstream(utilization: number): this {
    return this.apply({
      type: "upstream_observed",
      subscriptionId: "a",
      readings: [
        {
          window: "five_hour",
          status: utilization >= 1 ? "rejected" : "allowed",
          utilization,
          resetsAt: NOW + HOUR_MS,
        },
      ],
    });
  }

  view(settings: PoolSettings = SETTINGS, now = NOW) {
    return viewSubscription(this.state, settings, settings.subscriptions[0]!, now);
  }
}

describe("viewSubscription(): status", () => {
  it.each<{ name: string; build: (b: Builder) => Builder; status: string }>([
    { name: "fresh", build: (b) => b, status: "available" },
    { name: "weekly just under 80% of the threshold", build: (b) => b.spend(67), status: "available" },
    { name: "weekly at 80% of the threshold", build: (b) => b.spend(68), status: "approaching" },
    { name: "5-hour window at 80%", build: (b) => b.spend(8, NOW - 10 * MINUTE_MS), status: "approaching" },
    { name: "5-hour window at 79%", build: (b) => b.spend(7.9, NOW - 10 * MINUTE_MS), status: "available" },
    { name: "weekly at the threshold", build: (b) => b.spend(85), status: "limited" },
    { name: "sessions at the maximum", build: (b) => b.sessions(2), status: "limited" },
    { name: "one session below the maximum", build: (b) => b.sessions(1), status: "available" },
    { name: "cooldown wins over limited", build: (b) => b.spend(90).cooldown(), status: "cooldown" },
    { name: "paused wins over cooldown", build: (b) => b.cooldown().paused(), status: "paused" },
    {
      name: "a model-scoped cooldown is not a cooldown of the subscription",
      build: (b) => b.cooldown("opus"),
      status: "available",
    },
  ])("$name -> $status", ({ build, status }) => {
    expect(build(new Builder()).view().status).toBe(status);
  });
});

describe("viewSubscription(): derived figures", () => {
  it.each<{ name: string; build: (b: Builder) => Builder; hours: number | undefined }>([
    { name: "not burning", build: (b) => b.spend(10), hours: undefined },
    { name: "$10/h with $90 left", build: (b) => b.spend(10, NOW - 10 * MINUTE_MS), hours: 9 },
    { name: "$10/h with $40 left", build: (b) => b.spend(50).spend(10, NOW - 10 * MINUTE_MS), hours: 4 },
    { name: "over the budget: nothing left", build: (b) => b.spend(120).spend(10, NOW - 10 * MINUTE_MS), hours: 0 },
  ])("hoursToExhaustion: $name", ({ build, hours }) => {
    const v = build(new Builder()).view();
    if (hours === undefined) expect(v.hoursToExhaustion).toBeUndefined();
    else expect(v.hoursToExhaustion).toBeCloseTo(hours, 10);
  });

  it("counts active and idle sessions apart", () => {
    const b = new Builder().sessions(1, NOW - 30 * MINUTE_MS).sessions(1, NOW - MINUTE_MS);
    const v = b.view(poolSettings([subscriptionSettings("a", { maxSessions: 5 })]));
    expect([v.sessionCount, v.activeSessions, v.idleSessions]).toEqual([2, 1, 1]);
    expect(v.health.components.find((c) => c.name === "idle_bonus")!.points).toBe(0);
  });

  it("the view's health is computeHealth of the same inputs", () => {
    const v = new Builder().spend(30).sessions(1).view();
    expect(v.health.components.find((c) => c.name === "weekly_use")!.value).toBe(0.3);
    expect(v.health.components.find((c) => c.name === "sessions")!.detail).toBe("1 of 2 sessions");
  });
});

describe("thresholdFor()", () => {
  it.each<{ priority: Priority; threshold: number }>([
    { priority: "high", threshold: 1 },
    { priority: "normal", threshold: 0.85 },
    { priority: "low", threshold: 0.765 },
  ])("$priority -> $threshold", ({ priority, threshold }) => {
    expect(thresholdFor(priority, new Builder().view(SETTINGS))).toBe(threshold);
  });
});

describe("exclusionOf(): safeguards in order", () => {
  const need = (over: Partial<AllocationNeed> = {}): AllocationNeed => ({
    priority: "normal",
    model: "opus",
    holdsSlot: false,
    ...over,
  });

  it.each<{ name: string; build: (b: Builder) => Builder; need: AllocationNeed; reason: string | undefined }>([
    { name: "nothing wrong", build: (b) => b, need: need(), reason: undefined },
    {
      name: "paused first of all",
      build: (b) => b.paused().cooldown().spend(100).sessions(2),
      need: need(),
      reason: "paused",
    },
    {
      name: "then cooldown",
      build: (b) => b.cooldown().cooldown("opus").spend(100).sessions(2),
      need: need(),
      reason: "cooldown",
    },
    {
      name: "then a model limit for that model",
      build: (b) => b.cooldown("opus").spend(100).sessions(2),
      need: need(),
      reason: "model_limit",
    },
    {
      name: "a model limit for another model is skipped",
      build: (b) => b.cooldown("opus").spend(100),
      need: need({ model: "sonnet" }),
      reason: "weekly_threshold",
    },
    {
      name: "then the weekly threshold",
      build: (b) => b.spend(100).fiveHourUpstream(1).sessions(2),
      need: need(),
      reason: "weekly_threshold",
    },
    {
      name: "then an exhausted 5-hour window",
      build: (b) => b.fiveHourUpstream(1).sessions(2),
      need: need(),
      reason: "five_hour_exhausted",
    },
    {
      name: "a 5-hour window at the 95% cap is exhausted",
      build: (b) => b.fiveHourUpstream(0.95),
      need: need(),
      reason: "five_hour_exhausted",
    },
    {
      name: "a 5-hour window just below the cap is not",
      build: (b) => b.fiveHourUpstream(0.94),
      need: need(),
      reason: undefined,
    },
    { name: "then full sessions", build: (b) => b.sessions(2), need: need(), reason: "sessions_full" },
    {
      name: "a session holding its slot ignores full sessions",
      build: (b) => b.sessions(2),
      need: need({ holdsSlot: true }),
      reason: undefined,
    },
    {
      name: "high priority passes the normal threshold",
      build: (b) => b.spend(90),
      need: need({ priority: "high" }),
      reason: undefined,
    },
    {
      name: "low priority stops before normal",
      build: (b) => b.spend(80),
      need: need({ priority: "low" }),
      reason: "weekly_threshold",
    },
  ])("$name", ({ build, need: n, reason }) => {
    const ex = exclusionOf(build(new Builder()).view(), n, SETTINGS);
    expect(ex?.reason).toBe(reason);
    if (ex !== undefined) {
      expect(ex.subscriptionId).toBe("a");
      expect(ex.detail).not.toBe("");
    }
  });

  it.each<{ name: string; build: (b: Builder) => Builder; need: AllocationNeed; detail: string }>([
    { name: "paused", build: (b) => b.paused(), need: need(), detail: "paused by an operator" },
    {
      name: "cooldown",
      build: (b) => b.cooldown(),
      need: need(),
      detail: "cooling down until 2026-11-23T11:30:00.000Z: limit",
    },
    {
      name: "model limit",
      build: (b) => b.cooldown("opus"),
      need: need(),
      detail: "opus limit until 2026-11-23T11:30:00.000Z",
    },
    { name: "weekly", build: (b) => b.spend(90), need: need(), detail: "weekly use 90.0% >= 85.0% threshold" },
    {
      name: "5-hour",
      build: (b) => b.fiveHourUpstream(1),
      need: need(),
      detail: "5-hour window at 100.0% >= 95.0% cap until 2026-11-23T11:30:00.000Z",
    },
    { name: "sessions", build: (b) => b.sessions(2), need: need(), detail: "2 of 2 sessions" },
  ])("detail says why: $name", ({ build, need: n, detail }) => {
    expect(exclusionOf(build(new Builder()).view(), n, SETTINGS)?.detail).toBe(detail);
  });
});
