import { describe, it, expect } from "vitest";
import {
  DAY_MS,
  HOUR_MS,
  MINUTE_MS,
  Pool,
  createPoolState,
  observeSubscription,
  usageThresholds,
  type Command,
  type EventBody,
  type PoolEvent,
  type PoolSettings,
  type RateLimitReading,
  type SubscriptionSettings,
  type UsageReport,
} from "../../src/domain/index.js";
import { ManualClock } from "../support/manual-clock.js";
import { granted, usage } from "../support/pool-driver.js";
import { poolSettings, subscriptionSettings } from "../support/settings.js";

/** On the hour, so the burn rate at T0 + m minutes is the whole current hour's cost. */
const T0 = Date.parse("2026-11-23T10:00:00Z");

type Rule = PoolSettings["notifications"]["rules"][number];

const THRESHOLD_RULES: Rule[] = [
  { type: "usage_threshold", threshold: 0.8, enabled: true },
  { type: "usage_threshold", threshold: 0.9, enabled: true },
];

/** A $100/week subscription whose 5-hour window ($1000) never gets in the way of weekly tests. */
function sub(id: string, overrides: Partial<SubscriptionSettings> = {}): SubscriptionSettings {
  return subscriptionSettings(id, { weeklyBudgetUsd: 100, fiveHourBudgetUsd: 1000, ...overrides });
}

function makePool(
  subs: SubscriptionSettings[] = [sub("a")],
  rules: Rule[] = [],
  overrides: Partial<PoolSettings> = {},
): Pool {
  const settings = poolSettings(subs, { notifications: { rules }, ...overrides });
  return new Pool(createPoolState(subs.map((s) => s.id)), settings);
}

function allocate(pool: Pool, sessionId: string, now: number) {
  return pool.run({ kind: "allocate", sessionId, priority: "normal", model: "sonnet", estimatedTokens: 1000 }, now);
}

function report(pool: Pool, sessionId: string, now: number, costUsd: number, extra: Partial<UsageReport> = {}) {
  return pool.run({ kind: "report", sessionId, requestId: "", report: usage(costUsd, extra) }, now);
}

function isAnnouncement(e: PoolEvent): boolean {
  return (
    e.type === "status_changed" ||
    e.type === "usage_threshold" ||
    e.type === "usage_threshold_cleared" ||
    (e.type === "limit_reached" && e.kind !== "upstream")
  );
}

/** announcements: the events observeSubscription added, without seq and at. */
function announcements(events: PoolEvent[]): EventBody[] {
  return events.filter(isAnnouncement).map(({ seq: _seq, at: _at, ...body }) => body as EventBody);
}

function ofType<T extends EventBody["type"]>(events: EventBody[], type: T): Extract<EventBody, { type: T }>[] {
  return events.filter((e) => e.type === type) as Extract<EventBody, { type: T }>[];
}

describe("observe: status transitions", () => {
  it("available → approaching → limited on weekly use, with limit_reached only on entering limited", () => {
    const pool = makePool();
    expect(announcements(allocate(pool, "s1", T0).events)).toEqual([]);
    const steps: { at: number; cost: number; expected: EventBody[] }[] = [
      { at: T0, cost: 50, expected: [] },
      {
        at: T0 + 10 * MINUTE_MS,
        cost: 20, // 70% >= 0.8 × 85%
        expected: [
          {
            type: "status_changed",
            subscriptionId: "a",
            from: "available",
            to: "approaching",
            reason: "weekly use 70.0%, 5-hour window 7.0%",
          },
        ],
      },
      { at: T0 + 15 * MINUTE_MS, cost: 5, expected: [] }, // 75%: still approaching
      {
        at: T0 + 20 * MINUTE_MS,
        cost: 10, // 85%: at the threshold
        expected: [
          {
            type: "status_changed",
            subscriptionId: "a",
            from: "approaching",
            to: "limited",
            reason: "weekly use 85.0% >= 85.0%",
          },
          {
            type: "limit_reached",
            subscriptionId: "a",
            kind: "weekly_threshold",
            window: "seven_day",
            estimated: false,
            message: "weekly use 85.0% reached the 85.0% threshold",
          },
        ],
      },
      { at: T0 + 30 * MINUTE_MS, cost: 5, expected: [] }, // 90%: still limited, no repeat
    ];
    for (const step of steps) {
      const { events } = report(pool, "s1", step.at, step.cost);
      expect(announcements(events), `after +$${step.cost}`).toEqual(step.expected);
    }
    expect(pool.state.subscriptions.get("a")!.status).toBe("limited");
  });

  it.each<{
    name: string;
    subs?: SubscriptionSettings[];
    act: (pool: Pool) => PoolEvent[];
    expected: EventBody[];
  }>([
    {
      name: "5-hour window at 80% → approaching",
      subs: [sub("a", { fiveHourBudgetUsd: 10 })],
      act: (p) => {
        allocate(p, "s1", T0);
        return report(p, "s1", T0, 8).events;
      },
      expected: [
        {
          type: "status_changed",
          subscriptionId: "a",
          from: "available",
          to: "approaching",
          reason: "weekly use 8.0%, 5-hour window 80.0%",
        },
      ],
    },
    {
      name: "straight from available to limited (weekly)",
      act: (p) => {
        allocate(p, "s1", T0);
        return report(p, "s1", T0, 90).events;
      },
      expected: [
        {
          type: "status_changed",
          subscriptionId: "a",
          from: "available",
          to: "limited",
          reason: "weekly use 90.0% >= 85.0%",
        },
        {
          type: "limit_reached",
          subscriptionId: "a",
          kind: "weekly_threshold",
          window: "seven_day",
          estimated: false,
          message: "weekly use 90.0% reached the 85.0% threshold",
        },
      ],
    },
    {
      name: "sessions full → limited with limit_reached kind sessions",
      subs: [sub("a", { maxSessions: 2 })],
      act: (p) => {
        expect(announcements(allocate(p, "s1", T0).events)).toEqual([]);
        return allocate(p, "s2", T0).events;
      },
      expected: [
        { type: "status_changed", subscriptionId: "a", from: "available", to: "limited", reason: "2 of 2 sessions" },
        {
          type: "limit_reached",
          subscriptionId: "a",
          kind: "sessions",
          window: "unknown",
          estimated: false,
          message: "2 of 2 sessions",
        },
      ],
    },
    {
      name: "a session released from a full subscription → available",
      subs: [sub("a", { maxSessions: 2 })],
      act: (p) => {
        allocate(p, "s1", T0);
        allocate(p, "s2", T0);
        return p.run({ kind: "release", sessionId: "s2" }, T0 + MINUTE_MS).events;
      },
      expected: [
        {
          type: "status_changed",
          subscriptionId: "a",
          from: "limited",
          to: "available",
          reason: "below every safeguard",
        },
      ],
    },
    {
      name: "paused → paused by an operator",
      act: (p) => p.run({ kind: "set_paused", subscriptionId: "a", paused: true }, T0).events,
      expected: [
        {
          type: "status_changed",
          subscriptionId: "a",
          from: "available",
          to: "paused",
          reason: "paused by an operator",
        },
      ],
    },
    {
      name: "unpaused → resumed by an operator",
      act: (p) => {
        p.run({ kind: "set_paused", subscriptionId: "a", paused: true }, T0);
        return p.run({ kind: "set_paused", subscriptionId: "a", paused: false }, T0 + MINUTE_MS).events;
      },
      expected: [
        {
          type: "status_changed",
          subscriptionId: "a",
          from: "paused",
          to: "available",
          reason: "resumed by an operator",
        },
      ],
    },
    {
      name: "an upstream limit → cooldown, the reason is the limit's message (and no local limit_reached)",
      act: (p) => {
        allocate(p, "s1", T0);
        return report(p, "s1", T0, 1, {
          limit: {
            window: "five_hour",
            resetsAt: T0 + HOUR_MS,
            estimated: false,
            message: "You've hit your limit · resets 11am",
          },
        }).events;
      },
      expected: [
        {
          type: "status_changed",
          subscriptionId: "a",
          from: "available",
          to: "cooldown",
          reason: "You've hit your limit · resets 11am",
        },
      ],
    },
    {
      name: "no change → no announcement",
      act: (p) => {
        allocate(p, "s1", T0);
        return report(p, "s1", T0, 10).events;
      },
      expected: [],
    },
  ])("$name", ({ subs, act, expected }) => {
    const pool = makePool(subs ?? [sub("a")]);
    expect(announcements(act(pool))).toEqual(expected);
    const last = ofType(expected, "status_changed").at(-1);
    if (last !== undefined) expect(pool.state.subscriptions.get("a")!.status).toBe(last.to);
  });

  it("observeSubscription compares with what was last announced, and changes nothing itself", () => {
    const pool = makePool([sub("a")], THRESHOLD_RULES);
    allocate(pool, "s1", T0);
    report(pool, "s1", T0, 85); // announced by the report itself
    expect(observeSubscription(pool.view("a", T0)!, pool.settings)).toEqual([]);
    // Forget what was announced: the same view now announces everything again, every time it is asked.
    pool.state.subscriptions.get("a")!.status = "available";
    pool.state.subscriptions.get("a")!.crossed = [];
    const snapshot = structuredClone(pool.state);
    const first = observeSubscription(pool.view("a", T0)!, pool.settings);
    expect(first.map((e) => e.type)).toEqual(["status_changed", "limit_reached", "usage_threshold"]);
    expect(observeSubscription(pool.view("a", T0)!, pool.settings)).toEqual(first);
    expect(pool.state).toEqual(snapshot);
  });
});

describe("observe: usage thresholds", () => {
  it("fires once per crossing, with value, threshold, basis and time to exhaustion; re-arms when use drops", () => {
    const pool = makePool([sub("a")], THRESHOLD_RULES);
    allocate(pool, "s1", T0);
    const thresholdEvents = (events: PoolEvent[]) =>
      announcements(events).filter((e) => e.type === "usage_threshold" || e.type === "usage_threshold_cleared");

    expect(thresholdEvents(report(pool, "s1", T0, 50).events)).toEqual([]);

    // 80%: burning $80 in the current hour with $20 left → 15 minutes.
    expect(thresholdEvents(report(pool, "s1", T0 + 30 * MINUTE_MS, 30).events)).toEqual([
      {
        type: "usage_threshold",
        subscriptionId: "a",
        value: 0.8,
        threshold: 0.8,
        basis: "weekly_budget",
        timeToExhaustionMs: 15 * MINUTE_MS,
      },
    ]);
    expect(pool.state.subscriptions.get("a")!.crossed).toEqual([0.8]);

    // 84%: above 0.8 already, below 0.9: nothing new.
    expect(thresholdEvents(report(pool, "s1", T0 + 40 * MINUTE_MS, 4).events)).toEqual([]);

    // 90%: only the 0.9 threshold; $10 left at $90/h → 400 s.
    const at90 = thresholdEvents(report(pool, "s1", T0 + 50 * MINUTE_MS, 6).events);
    expect(at90).toHaveLength(1);
    expect(at90[0]).toMatchObject({
      type: "usage_threshold",
      threshold: 0.9,
      basis: "weekly_budget",
      timeToExhaustionMs: 400_000,
    });
    expect((at90[0] as Extract<EventBody, { type: "usage_threshold" }>).value).toBeCloseTo(0.9, 12);
    expect(pool.state.subscriptions.get("a")!.crossed).toEqual([0.8, 0.9]);

    // Still above both: nothing.
    expect(thresholdEvents(report(pool, "s1", T0 + 55 * MINUTE_MS, 1).events)).toEqual([]);

    // Eight days later the week has rolled past the spend: a sweep clears both, silently (no usage_threshold).
    const later = T0 + 8 * DAY_MS;
    const swept = announcements(pool.run({ kind: "sweep" }, later).events);
    expect(ofType(swept, "usage_threshold")).toEqual([]);
    expect(ofType(swept, "usage_threshold_cleared")).toEqual([
      { type: "usage_threshold_cleared", subscriptionId: "a", threshold: 0.8 },
      { type: "usage_threshold_cleared", subscriptionId: "a", threshold: 0.9 },
    ]);
    expect(ofType(swept, "status_changed")).toMatchObject([{ from: "limited", to: "available" }]);
    expect(pool.state.subscriptions.get("a")!.crossed).toEqual([]);
    expect(announcements(pool.run({ kind: "sweep" }, later + MINUTE_MS).events)).toEqual([]);

    // Re-armed: the next crossing fires again.
    granted(allocate(pool, "s2", later).result);
    const again = thresholdEvents(report(pool, "s2", later, 80).events);
    expect(again).toMatchObject([{ type: "usage_threshold", threshold: 0.8, value: 0.8 }]);
  });

  it.each<{
    name: string;
    reports: { cost: number; readings?: RateLimitReading[] }[];
    fired: number[][];
  }>([
    { name: "below every threshold", reports: [{ cost: 50 }], fired: [[]] },
    { name: "just below 0.8", reports: [{ cost: 79.99 }], fired: [[]] },
    { name: "exactly at 0.8", reports: [{ cost: 80 }], fired: [[0.8]] },
    { name: "straight past both in one report", reports: [{ cost: 95 }], fired: [[0.8, 0.9]] },
    {
      name: "one at a time",
      reports: [{ cost: 80 }, { cost: 5 }, { cost: 5 }, { cost: 5 }],
      fired: [[0.8], [], [0.9], []],
    },
    { name: "above 100%", reports: [{ cost: 120 }, { cost: 10 }], fired: [[0.8, 0.9], []] },
  ])("$name → $fired", ({ reports, fired }) => {
    const pool = makePool([sub("a")], THRESHOLD_RULES);
    allocate(pool, "s1", T0);
    const got = reports.map((r, i) =>
      ofType(
        announcements(report(pool, "s1", T0 + i * MINUTE_MS, r.cost, { readings: r.readings ?? [] }).events),
        "usage_threshold",
      ).map((e) => e.threshold),
    );
    expect(got).toEqual(fired);
  });

  it("on an upstream seven_day reading: basis upstream_seven_day, and no time to exhaustion when not burning", () => {
    const pool = makePool([sub("a")], THRESHOLD_RULES);
    allocate(pool, "s1", T0);
    const { events } = report(pool, "s1", T0, 0, {
      readings: [{ window: "seven_day", status: "allowed_warning", utilization: 0.82, resetsAt: T0 + 3 * DAY_MS }],
    });
    const fired = ofType(announcements(events), "usage_threshold");
    expect(fired).toEqual([
      { type: "usage_threshold", subscriptionId: "a", value: 0.82, threshold: 0.8, basis: "upstream_seven_day" },
    ]);
    expect("timeToExhaustionMs" in fired[0]!).toBe(false);
  });
});

describe("observe: which thresholds", () => {
  it.each<{ name: string; rules: Rule[]; thresholds: number[] }>([
    { name: "no rules", rules: [], thresholds: [] },
    { name: "enabled usage_threshold rules, ascending", rules: [...THRESHOLD_RULES].reverse(), thresholds: [0.8, 0.9] },
    {
      name: "disabled rules are ignored",
      rules: [{ type: "usage_threshold", threshold: 0.5, enabled: false }, THRESHOLD_RULES[0]!],
      thresholds: [0.8],
    },
    {
      name: "other rule types are ignored even with a threshold",
      rules: [
        { type: "status_changed", threshold: 0.6, enabled: true },
        { type: "limit_reached", threshold: 0.7, enabled: true },
      ],
      thresholds: [],
    },
    {
      name: "a usage_threshold rule without a threshold is ignored",
      rules: [{ type: "usage_threshold", enabled: true }],
      thresholds: [],
    },
    {
      name: "duplicates count once",
      rules: [...THRESHOLD_RULES, { type: "usage_threshold", threshold: 0.8, enabled: true }],
      thresholds: [0.8, 0.9],
    },
  ])("usageThresholds: $name", ({ rules, thresholds }) => {
    expect(usageThresholds(poolSettings(["a"], { notifications: { rules } }))).toEqual(thresholds);
  });

  it("only enabled usage_threshold rules are announced by the pool", () => {
    const pool = makePool(
      [sub("a")],
      [
        { type: "usage_threshold", threshold: 0.5, enabled: false },
        { type: "status_changed", threshold: 0.6, enabled: true },
        { type: "usage_threshold", threshold: 0.7, enabled: true },
        { type: "usage_threshold", threshold: 0.95, enabled: true },
      ],
    );
    allocate(pool, "s1", T0);
    const fired = ofType(announcements(report(pool, "s1", T0, 75).events), "usage_threshold");
    expect(fired.map((e) => e.threshold)).toEqual([0.7]);
    expect(pool.state.subscriptions.get("a")!.crossed).toEqual([0.7]);
  });

  it("with no rules, crossing any level announces no usage_threshold", () => {
    const pool = makePool([sub("a")], []);
    allocate(pool, "s1", T0);
    const all = announcements(report(pool, "s1", T0, 99).events);
    expect(all.map((e) => e.type)).toEqual(["status_changed", "limit_reached"]);
    expect(pool.state.subscriptions.get("a")!.crossed ?? []).toEqual([]);
  });
});

describe("observe: cooldowns ending", () => {
  const RESET = T0 + HOUR_MS;

  function cooling(): Pool {
    const pool = makePool([sub("a"), sub("b")]);
    // Steer the session onto a.
    pool.run({ kind: "set_paused", subscriptionId: "b", paused: true }, T0);
    expect(granted(allocate(pool, "s1", T0).result).view.cfg.id).toBe("a");
    pool.run({ kind: "set_paused", subscriptionId: "b", paused: false }, T0);
    const { events } = report(pool, "s1", T0, 0, {
      limit: { window: "five_hour", resetsAt: RESET, estimated: false, message: "limit" },
    });
    expect(announcements(events)).toEqual([
      { type: "status_changed", subscriptionId: "a", from: "available", to: "cooldown", reason: "limit" },
    ]);
    pool.run({ kind: "release", sessionId: "s1" }, T0);
    return pool;
  }

  it.each<{ name: string; at: number; ended: boolean }>([
    { name: "half way", at: T0 + 30 * MINUTE_MS, ended: false },
    { name: "1 ms before the reset", at: RESET - 1, ended: false },
    { name: "exactly at the reset", at: RESET, ended: true },
    { name: "an hour after the reset", at: RESET + HOUR_MS, ended: true },
  ])("a sweep $name: cooldown ended = $ended", ({ at, ended }) => {
    const pool = cooling();
    const events = pool.run({ kind: "sweep" }, at).events.map(({ seq: _s, at: _a, ...body }) => body);
    if (ended) {
      expect(events).toEqual([
        { type: "cooldown_ended", subscriptionId: "a", window: "five_hour" },
        { type: "status_changed", subscriptionId: "a", from: "cooldown", to: "available", reason: "cooldown ended" },
      ]);
      expect(pool.state.subscriptions.get("a")!.status).toBe("available");
      expect(pool.run({ kind: "sweep" }, at + MINUTE_MS).events).toEqual([]);
    } else {
      expect(events).toEqual([]);
      expect(pool.state.subscriptions.get("a")!.status).toBe("cooldown");
    }
  });

  it("time passing alone announces nothing: a status read emits no event, the sweep does", () => {
    const pool = cooling();
    const { events, result } = pool.run({ kind: "status", includeSessions: false }, RESET + MINUTE_MS);
    expect(events).toEqual([]);
    expect(result.views[0]!.status).toBe("available");
    expect(pool.state.subscriptions.get("a")!.status).toBe("cooldown");
    expect(announcements(pool.run({ kind: "sweep" }, RESET + MINUTE_MS).events)).toMatchObject([
      { type: "status_changed", from: "cooldown", to: "available", reason: "cooldown ended" },
    ]);
  });

  it("a model-scoped cooldown ending emits cooldown_ended but no status change", () => {
    const pool = makePool([sub("a")]);
    allocate(pool, "s1", T0);
    const limited = report(pool, "s1", T0, 0, {
      limit: { window: "seven_day_opus", resetsAt: RESET, estimated: false, message: "opus limit", modelScope: "opus" },
    });
    expect(announcements(limited.events)).toEqual([]);
    pool.run({ kind: "release", sessionId: "s1" }, T0);
    const events = pool.run({ kind: "sweep" }, RESET).events.map(({ seq: _s, at: _a, ...body }) => body);
    expect(events).toEqual([
      { type: "cooldown_ended", subscriptionId: "a", window: "seven_day_opus", modelScope: "opus" },
    ]);
  });
});

describe("observe: determinism", () => {
  /** A script of commands at times a manual clock walks through. */
  function script(): { command: Command; advance: number }[] {
    return [
      {
        command: { kind: "allocate", sessionId: "s1", priority: "normal", model: "sonnet", estimatedTokens: 10 },
        advance: 0,
      },
      {
        command: { kind: "allocate", sessionId: "s2", priority: "low", model: "opus", estimatedTokens: 10 },
        advance: MINUTE_MS,
      },
      { command: { kind: "report", sessionId: "s1", requestId: "r1", report: usage(70) }, advance: 10 * MINUTE_MS },
      { command: { kind: "report", sessionId: "s2", requestId: "r1", report: usage(85) }, advance: MINUTE_MS },
      {
        command: {
          kind: "report",
          sessionId: "s1",
          requestId: "r2",
          report: usage(15, {
            limit: { window: "five_hour", resetsAt: T0 + 2 * HOUR_MS, estimated: false, message: "limit" },
          }),
        },
        advance: MINUTE_MS,
      },
      { command: { kind: "rebalance", dryRun: false, trigger: "periodic" }, advance: 10 * MINUTE_MS },
      { command: { kind: "set_paused", subscriptionId: "b", paused: true }, advance: MINUTE_MS },
      { command: { kind: "sweep" }, advance: 3 * HOUR_MS },
      { command: { kind: "set_paused", subscriptionId: "b", paused: false }, advance: MINUTE_MS },
      { command: { kind: "sweep" }, advance: 8 * DAY_MS },
    ];
  }

  function run(): PoolEvent[] {
    const clock = new ManualClock(T0);
    const pool = makePool([sub("a"), sub("b"), sub("c")], THRESHOLD_RULES);
    const events: PoolEvent[] = [];
    for (const step of script()) {
      clock.advance(step.advance);
      events.push(...pool.run(step.command, clock.now()).events);
    }
    return events;
  }

  it("the same commands at the same times give the same events", () => {
    const first = run();
    const second = run();
    expect(second).toEqual(first);
    // The script exercises every kind of announcement, so the comparison means something.
    const kinds = new Set(
      first.filter(isAnnouncement).map((e) => (e.type === "limit_reached" ? `limit_reached:${e.kind}` : e.type)),
    );
    expect([...kinds].sort()).toEqual([
      "limit_reached:weekly_threshold",
      "status_changed",
      "usage_threshold",
      "usage_threshold_cleared",
    ]);
    expect(first.map((e) => e.seq)).toEqual(first.map((_, i) => i + 1));
  });
});
