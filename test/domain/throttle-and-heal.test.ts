/**
 * What the pool does with refusals that are not usage limits (a throttle
 * pauses new placements for seconds; an overload does nothing), with
 * estimated cooldowns a fresher reading disproves (they heal), and with an
 * operator's clear_cooldown.
 */
import { describe, expect, it } from "vitest";
import {
  type Command,
  type PoolEvent,
  type RateLimitReading,
  type UsageReport,
  MINUTE_MS,
  Pool,
  applyEvent,
  createPoolState,
} from "../../src/domain/index.js";
import { granted, usage } from "../support/pool-driver.js";
import { poolSettings } from "../support/settings.js";

const T0 = Date.parse("2026-12-02T11:24:00Z");
const HOUR = 3_600_000;

function makePool(throttleSeconds?: number): Pool {
  const settings = poolSettings(["a", "b"], {
    cooldown: { defaultMinutes: 60, timeZone: "UTC", ...(throttleSeconds !== undefined ? { throttleSeconds } : {}) },
  });
  return new Pool(createPoolState(["a", "b"]), settings);
}

const allocate = (sessionId: string, model = ""): Extract<Command, { kind: "allocate" }> => ({
  kind: "allocate",
  sessionId,
  priority: "normal",
  model,
  estimatedTokens: 0,
});
const report = (sessionId: string, r: UsageReport, requestId = ""): Extract<Command, { kind: "report" }> => ({
  kind: "report",
  sessionId,
  requestId,
  report: r,
});
const types = (events: PoolEvent[]) => events.map((e) => e.type);
const zeroUse = (extra: Partial<UsageReport>): UsageReport => ({
  ...usage(0),
  tokens: { inputTokens: 0, outputTokens: 0, cacheCreationInputTokens: 0, cacheReadInputTokens: 0 },
  ...extra,
});

/** onA puts session `s` on subscription a. */
function onA(pool: Pool, now: number, sessionId = "s"): void {
  pool.run({ kind: "set_paused", subscriptionId: "b", paused: true }, now);
  granted(pool.run(allocate(sessionId), now).result);
  pool.run({ kind: "set_paused", subscriptionId: "b", paused: false }, now);
}

describe("a throttle pauses new placements, briefly, and is never a limit", () => {
  const throttle = zeroUse({
    transient: {
      kind: "throttle",
      message: "API Error: Server is temporarily limiting requests (not your usage limit)",
    },
  });

  it.each([
    {
      name: "no retry-after: cooldown.throttleSeconds",
      throttleSeconds: 45,
      retryAfterMs: undefined,
      pauseMs: 45_000,
      estimated: true,
    },
    {
      name: "no retry-after, no setting: 60 s",
      throttleSeconds: undefined,
      retryAfterMs: undefined,
      pauseMs: 60_000,
      estimated: true,
    },
    {
      name: "the retry-after upstream gave",
      throttleSeconds: 45,
      retryAfterMs: 3_000,
      pauseMs: 3_000,
      estimated: false,
    },
  ])("$name", ({ throttleSeconds, retryAfterMs, pauseMs, estimated }) => {
    const pool = makePool(throttleSeconds);
    onA(pool, T0);
    const r: UsageReport = {
      ...throttle,
      transient: { ...throttle.transient!, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) },
    };
    const { events, result } = pool.run(report("s", r), T0);
    // No usage recorded (nothing was used), no limit, no status change.
    expect(types(events)).toEqual(["throttled"]);
    expect(result).toMatchObject({ kind: "reported", countedCostUsd: 0, throttle: { until: T0 + pauseMs, estimated } });
    if (result.kind !== "reported") return;
    expect(result.limit).toBeUndefined();
    expect(result.view.status).toBe("available");
    expect(result.view.cooldown).toBeUndefined();
    expect(result.view.state.buckets).toEqual([]);
    expect(pool.state.sessions.get("s")?.requests).toBe(0);

    // New sessions go elsewhere meanwhile; the one it holds stays.
    const other = granted(pool.run(allocate("n1"), T0 + 1).result);
    expect(other.view.cfg.id).toBe("b");
    const held = granted(pool.run(allocate("s"), T0 + 1).result);
    expect(held).toMatchObject({ resumed: true, view: { cfg: { id: "a" } } });

    // Once it has passed, a is offered again.
    pool.run({ kind: "set_paused", subscriptionId: "b", paused: true }, T0 + pauseMs);
    expect(granted(pool.run(allocate("n2"), T0 + pauseMs).result).view.cfg.id).toBe("a");
  });

  it("names the throttle when nothing else can take the session", () => {
    const pool = makePool();
    onA(pool, T0);
    pool.run(report("s", throttle), T0);
    pool.run({ kind: "set_paused", subscriptionId: "b", paused: true }, T0);
    const { result } = pool.run(allocate("n"), T0 + 1000);
    expect(result).toMatchObject({
      kind: "fallback",
      exclusions: [
        { subscriptionId: "a", reason: "throttled" },
        { subscriptionId: "b", reason: "paused" },
      ],
    });
  });

  it("does not shorten a pause already reaching further, nor announce it again", () => {
    const pool = makePool();
    onA(pool, T0);
    pool.run(report("s", { ...throttle, transient: { kind: "throttle", message: "x", retryAfterMs: 50_000 } }), T0);
    const { events, result } = pool.run(
      report("s", { ...throttle, transient: { kind: "throttle", message: "y", retryAfterMs: 5_000 } }),
      T0 + 1000,
    );
    expect(types(events)).toEqual([]);
    expect(result).toMatchObject({ throttle: { until: T0 + 50_000 } });
  });

  it.each([
    { kind: "overloaded" as const, message: "API Error: 529 Overloaded" },
    { kind: "billing" as const, message: "Extra usage is not enabled" },
    { kind: "server_error" as const, message: "api_error_status 502" },
  ])("$kind: recorded nowhere, pauses nothing", (transient) => {
    const pool = makePool();
    onA(pool, T0);
    const { events, result } = pool.run(report("s", zeroUse({ transient })), T0);
    expect(events).toEqual([]);
    expect(result).toMatchObject({ kind: "reported", countedCostUsd: 0 });
    expect(granted(pool.run(allocate("n"), T0 + 1).result).view.cfg.id).toBe("b");
    expect(pool.view("a", T0 + 1)?.throttle).toBeUndefined();
  });

  it("a throttled run that did use something still counts it", () => {
    const pool = makePool();
    onA(pool, T0);
    const { events } = pool.run(report("s", usage(0.25, { transient: throttle.transient! })), T0);
    expect(types(events)).toEqual(["usage_recorded", "throttled"]);
  });
});

describe("output that proved no use records none", () => {
  it.each([
    { name: "text", extra: { format: "text" as const, costUnknown: true } },
    { name: "empty", extra: { format: "empty" as const, costUnknown: true } },
    { name: "a stream cut short", extra: { format: "stream_json" as const, costUnknown: true, partial: true } },
  ])("$name", ({ extra }) => {
    const pool = makePool();
    onA(pool, T0);
    const { events, result } = pool.run(report("s", zeroUse(extra), "r1"), T0);
    expect(events).toEqual([]);
    expect(result).toMatchObject({ kind: "reported", duplicate: false, countedCostUsd: 0 });
  });

  it("but keeps the limit it carried", () => {
    const pool = makePool();
    onA(pool, T0);
    const limit = {
      window: "five_hour" as const,
      resetsAt: T0 + 2 * HOUR,
      estimated: false,
      message: "You've hit your 5-hour limit",
    };
    const { events } = pool.run(report("s", zeroUse({ format: "text", costUnknown: true, limit })), T0);
    expect(types(events)).toEqual(["limit_reached", "status_changed"]);
  });
});

describe("a model-family limit benches that family only", () => {
  it("an Opus limit keeps the subscription available for other models", () => {
    const pool = makePool();
    onA(pool, T0);
    const limit = {
      window: "seven_day_opus" as const,
      resetsAt: T0 + 48 * HOUR,
      estimated: false,
      message: "You've hit your Opus limit",
      modelScope: "opus" as const,
    };
    const { result } = pool.run(report("s", zeroUse({ limit })), T0);
    expect(result).toMatchObject({
      view: { status: "available", cooldown: undefined, scopedCooldowns: [{ modelScope: "opus" }] },
    });
    pool.run({ kind: "set_paused", subscriptionId: "b", paused: true }, T0);
    expect(pool.run(allocate("o", "claude-opus-5-5"), T0 + 1).result).toMatchObject({ kind: "fallback" });
    expect(granted(pool.run(allocate("n", "claude-sonnet-5-5"), T0 + 1).result).view.cfg.id).toBe("a");
  });
});

describe("estimated cooldowns heal when a fresher reading shows the window allowed", () => {
  const estimatedLimit = (window: "five_hour" | "seven_day" | "unknown" | "seven_day_opus") => ({
    window,
    estimated: true,
    message: "You've hit your limit",
    ...(window === "seven_day_opus" ? { modelScope: "opus" as const } : {}),
  });
  const allowed = (window: RateLimitReading["window"], utilization = 0.3): RateLimitReading => ({
    window,
    source: "stream",
    status: "allowed",
    utilization,
    resetsAt: T0 + 3 * HOUR,
  });

  it.each([
    {
      name: "five_hour, by a stream reading",
      limit: "five_hour" as const,
      readings: [allowed("five_hour")],
      heals: true,
    },
    {
      name: "seven_day, by an allowed_warning reading",
      limit: "seven_day" as const,
      readings: [{ ...allowed("seven_day", 0.85), status: "allowed_warning" as const }],
      heals: true,
    },
    {
      name: "unknown window, by the whole subscription's windows",
      limit: "unknown" as const,
      readings: [allowed("five_hour"), allowed("seven_day")],
      heals: true,
    },
    {
      name: "not unknown, when a whole window is rejected",
      limit: "unknown" as const,
      readings: [allowed("five_hour"), { ...allowed("seven_day", 1), status: "rejected" as const }],
      heals: false,
    },
    {
      name: "not five_hour by another window",
      limit: "five_hour" as const,
      readings: [allowed("seven_day")],
      heals: false,
    },
    {
      name: "opus, by its own window",
      limit: "seven_day_opus" as const,
      readings: [allowed("seven_day_opus")],
      heals: true,
    },
    {
      name: "not opus, by the whole subscription's windows",
      limit: "seven_day_opus" as const,
      readings: [allowed("five_hour"), allowed("seven_day")],
      heals: false,
    },
  ])("$name", ({ limit, readings, heals }) => {
    const pool = makePool();
    onA(pool, T0);
    onA(pool, T0, "s2");
    // No reset in the signal: the default cooldown, estimated.
    pool.run(report("s", zeroUse({ limit: estimatedLimit(limit) })), T0);
    expect(pool.state.subscriptions.get("a")!.cooldowns).toHaveLength(1);
    const { events, result } = pool.run(report("s2", usage(0.1, { readings })), T0 + 5 * MINUTE_MS);
    const cleared = events.filter((e) => e.type === "cooldown_cleared");
    expect(cleared).toHaveLength(heals ? 1 : 0);
    expect(pool.state.subscriptions.get("a")!.cooldowns).toHaveLength(heals ? 0 : 1);
    if (result.kind !== "reported") throw new Error("not reported");
    expect(result.healed?.length ?? 0).toBe(heals ? 1 : 0);
    if (heals) {
      expect(cleared[0]).toMatchObject({ cause: "upstream", target: "cooldown", window: limit });
      if (limit !== "seven_day_opus") {
        expect(events.find((e) => e.type === "status_changed")).toMatchObject({
          from: "cooldown",
          reason: expect.stringMatching(/^cooldown cleared: stream reading/),
        });
      }
    }
  });

  it("an exact reset stands against an allowed reading", () => {
    const pool = makePool();
    onA(pool, T0);
    onA(pool, T0, "s2");
    pool.run(
      report("s", zeroUse({ limit: { window: "five_hour", resetsAt: T0 + 2 * HOUR, estimated: false, message: "m" } })),
      T0,
    );
    const { events } = pool.run(report("s2", usage(0.1, { readings: [allowed("five_hour")] })), T0 + MINUTE_MS);
    expect(types(events)).not.toContain("cooldown_cleared");
    expect(pool.view("a", T0 + MINUTE_MS)?.status).toBe("cooldown");
  });

  it("heals on a poll (observe) too", () => {
    const pool = makePool();
    onA(pool, T0);
    pool.run(report("s", zeroUse({ limit: estimatedLimit("seven_day") })), T0);
    const { events, result } = pool.run(
      {
        kind: "observe",
        subscriptionId: "a",
        source: "usage endpoint",
        readings: [{ ...allowed("seven_day"), source: "oauth" }],
      },
      T0 + 2 * MINUTE_MS,
    );
    expect(types(events)).toEqual(["upstream_observed", "cooldown_cleared", "status_changed"]);
    expect(result).toMatchObject({ kind: "observed", view: { status: "available" } });
  });
});

describe("clear_cooldown: an operator who knows better", () => {
  it("clears every cooldown and the throttle pause, each recorded, and says why in the status change", () => {
    const pool = makePool();
    onA(pool, T0);
    onA(pool, T0, "s2");
    // With the readings that came with them (2.1.328 stream-json): the 5-hour window at 100%, Opus rejected.
    const rejected = (window: RateLimitReading["window"], resetsAt: number): RateLimitReading => ({
      window,
      source: "stream",
      status: "rejected",
      utilization: 1,
      resetsAt,
    });
    pool.run(
      report(
        "s",
        zeroUse({
          limit: { window: "five_hour", resetsAt: T0 + 2 * HOUR, estimated: false, message: "5h" },
          readings: [rejected("five_hour", T0 + 2 * HOUR)],
        }),
      ),
      T0,
    );
    pool.run(
      report(
        "s2",
        zeroUse({
          limit: {
            window: "seven_day_opus",
            resetsAt: T0 + 48 * HOUR,
            estimated: false,
            message: "opus",
            modelScope: "opus",
          },
          readings: [rejected("seven_day_opus", T0 + 48 * HOUR)],
        }),
      ),
      T0,
    );
    pool.run(report("s2", zeroUse({ transient: { kind: "throttle", message: "t" } })), T0);
    const { events, result } = pool.run(
      { kind: "clear_cooldown", subscriptionId: "a", reason: "limit lifted by support" },
      T0 + 1000,
    );
    expect(types(events)).toEqual(["cooldown_cleared", "cooldown_cleared", "cooldown_cleared", "status_changed"]);
    expect(
      events
        .filter((e) => e.type === "cooldown_cleared")
        .map((e) => (e.type === "cooldown_cleared" ? [e.target, e.modelScope ?? "", e.cause] : [])),
    ).toEqual([
      ["cooldown", "", "operator"],
      ["cooldown", "opus", "operator"],
      ["throttle", "", "operator"],
    ]);
    expect(events.at(-1)).toMatchObject({
      type: "status_changed",
      from: "cooldown",
      to: "available",
      reason: "cleared by an operator: limit lifted by support",
    });
    expect(result).toMatchObject({
      kind: "cleared",
      throttleCleared: true,
      cleared: [{ window: "five_hour" }, { modelScope: "opus" }],
    });
    // The rejected figures went with them: nothing keeps the subscription out, not even for Opus.
    pool.run({ kind: "set_paused", subscriptionId: "b", paused: true }, T0 + 1000);
    expect(granted(pool.run(allocate("n", "opus"), T0 + 1000).result).view.cfg.id).toBe("a");
  });

  it("clears one model family's cooldown only", () => {
    const pool = makePool();
    onA(pool, T0);
    pool.run(
      report(
        "s",
        zeroUse({ limit: { window: "five_hour", resetsAt: T0 + 2 * HOUR, estimated: false, message: "5h" } }),
      ),
      T0,
    );
    pool.run(
      report(
        "s",
        zeroUse({
          limit: {
            window: "seven_day_opus",
            resetsAt: T0 + 48 * HOUR,
            estimated: false,
            message: "opus",
            modelScope: "opus",
          },
        }),
      ),
      T0,
    );
    const { result } = pool.run(
      { kind: "clear_cooldown", subscriptionId: "a", modelScope: "opus", reason: "" },
      T0 + 1,
    );
    expect(result).toMatchObject({
      kind: "cleared",
      throttleCleared: false,
      cleared: [{ modelScope: "opus" }],
      view: { status: "cooldown" },
    });
  });

  it("with nothing to clear, changes nothing; an unknown subscription is not found", () => {
    const pool = makePool();
    expect(pool.run({ kind: "clear_cooldown", subscriptionId: "a", reason: "" }, T0)).toMatchObject({
      events: [],
      result: { kind: "cleared", cleared: [], throttleCleared: false },
    });
    expect(pool.run({ kind: "clear_cooldown", subscriptionId: "zz", reason: "" }, T0)).toMatchObject({
      events: [],
      result: { kind: "rejected", code: "not_found" },
    });
  });

  it("replays to the same state", () => {
    const pool = makePool();
    onA(pool, T0);
    const all: PoolEvent[] = [];
    const run = (c: Command, at: number) => all.push(...pool.run(c, at).events);
    run(
      report("s", zeroUse({ limit: { window: "five_hour", resetsAt: T0 + 2 * HOUR, estimated: true, message: "5h" } })),
      T0,
    );
    run(report("s", zeroUse({ transient: { kind: "throttle", message: "t" } })), T0 + 1);
    run(
      report(
        "s",
        usage(0.1, { readings: [{ window: "five_hour", source: "stream", status: "allowed", utilization: 0.2 }] }),
      ),
      T0 + 2,
    );
    run({ kind: "clear_cooldown", subscriptionId: "a", reason: "x" }, T0 + 3);
    const replayed = createPoolState(["a", "b"]);
    // The allocations before `all` began are replayed from the pool's own start.
    for (const e of all) applyEvent(replayed, e);
    expect(replayed.subscriptions.get("a")!.cooldowns).toEqual(pool.state.subscriptions.get("a")!.cooldowns);
    expect(replayed.subscriptions.get("a")!.throttle).toEqual(pool.state.subscriptions.get("a")!.throttle);
    expect(pool.state.subscriptions.get("a")!.cooldowns).toEqual([]);
    expect(pool.state.subscriptions.get("a")!.throttle).toBeUndefined();
  });
});

describe("upstream's allowed_warning", () => {
  it("makes the subscription approaching, even below the local thresholds", () => {
    const pool = makePool();
    onA(pool, T0);
    const { result } = pool.run(
      report(
        "s",
        usage(0.01, {
          readings: [
            {
              window: "seven_day",
              source: "stream",
              status: "allowed_warning",
              utilization: 0.6,
              surpassedThreshold: 0.5,
            },
          ],
        }),
      ),
      T0,
    );
    expect(result).toMatchObject({ view: { status: "approaching" } });
  });
});
