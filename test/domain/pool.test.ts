import { describe, it, expect } from "vitest";
import {
  HOUR_MS,
  MINUTE_MS,
  Pool,
  createPoolState,
  sessionsOf,
  type AllocateResult,
  type Command,
  type EventOf,
  type LimitSignal,
  type PoolEvent,
  type PoolSettings,
  type Priority,
  type Rejection,
  type UsageReport,
} from "../../src/domain/index.js";
import { poolSettings, subscriptionSettings } from "../support/settings.js";

const T0 = Date.parse("2026-11-23T10:00:00Z");
const IDS = ["a", "b", "c"];

function makePool(ids: string[] = IDS, overrides: Partial<PoolSettings> = {}): Pool {
  return new Pool(createPoolState(ids), poolSettings(ids, overrides));
}

function usage(costUsd: number, extra: Partial<UsageReport> = {}): UsageReport {
  return {
    costUsd,
    tokens: { inputTokens: 100, outputTokens: 50, cacheCreationInputTokens: 0, cacheReadInputTokens: 0 },
    models: {},
    durationMs: 1000,
    readings: [],
    ...extra,
  };
}

function allocate(pool: Pool, sessionId: string, now: number, opts: { priority?: Priority; model?: string } = {}) {
  return pool.run(
    {
      kind: "allocate",
      sessionId,
      priority: opts.priority ?? "normal",
      model: opts.model ?? "sonnet",
      estimatedTokens: 1000,
    },
    now,
  );
}

function report(
  pool: Pool,
  sessionId: string,
  now: number,
  costUsd: number,
  extra: Partial<UsageReport> & { requestId?: string } = {},
) {
  const { requestId = "", ...rest } = extra;
  return pool.run({ kind: "report", sessionId, requestId, report: usage(costUsd, rest) }, now);
}

type Granted = Extract<AllocateResult, { kind: "granted" }>;
type Fallback = Extract<AllocateResult, { kind: "fallback" }>;

function granted(r: AllocateResult | Rejection): Granted {
  if (r.kind !== "granted") throw new Error(`expected granted, got ${JSON.stringify(r)}`);
  return r;
}

function fallback(r: AllocateResult | Rejection): Fallback {
  if (r.kind !== "fallback") throw new Error(`expected fallback, got ${r.kind}`);
  return r;
}

/** Announcements (status, thresholds, local safeguards) are tested in observe.test.ts. */
function isAnnouncement(e: PoolEvent): boolean {
  return (
    e.type === "status_changed" ||
    e.type === "usage_threshold" ||
    e.type === "usage_threshold_cleared" ||
    (e.type === "limit_reached" && e.kind !== "upstream")
  );
}

/** types lists a command's own events, without announcements. */
function types(events: PoolEvent[]): string[] {
  return events.filter((e) => !isAnnouncement(e)).map((e) => e.type);
}

function eventOf<T extends PoolEvent["type"]>(events: PoolEvent[], type: T): EventOf<T> {
  const e = events.find((x) => x.type === type);
  if (e === undefined) throw new Error(`no ${type} event in ${types(events).join(",")}`);
  return e as EventOf<T>;
}

/** Spend costUsd on subscription `sub` through a throw-away session that is released again. */
function spend(pool: Pool, sub: string, costUsd: number, now: number): void {
  // Pause every other subscription so the session lands where we want it.
  const others = pool.settings.subscriptions.map((s) => s.id).filter((id) => id !== sub);
  const wasPaused = others.filter((id) => pool.state.subscriptions.get(id)!.paused);
  for (const id of others) pool.run({ kind: "set_paused", subscriptionId: id, paused: true }, now);
  const sid = `spend-${sub}-${pool.state.eventSeq}`;
  expect(granted(allocate(pool, sid, now).result).view.cfg.id).toBe(sub);
  report(pool, sid, now, costUsd);
  pool.run({ kind: "release", sessionId: sid }, now);
  for (const id of others)
    if (!wasPaused.includes(id)) pool.run({ kind: "set_paused", subscriptionId: id, paused: false }, now);
}

describe("Pool.run(allocate): choosing a subscription", () => {
  it("picks the healthiest subscription", () => {
    const pool = makePool();
    spend(pool, "a", 30, T0);
    spend(pool, "c", 10, T0);
    const views = pool.views(T0 + MINUTE_MS);
    const scores = Object.fromEntries(views.map((v) => [v.cfg.id, v.health.score]));
    expect(scores.b).toBeGreaterThan(scores.c!);
    expect(scores.c).toBeGreaterThan(scores.a!);
    const { result, events } = allocate(pool, "s1", T0 + MINUTE_MS);
    const g = granted(result);
    expect(g.view.cfg.id).toBe("b");
    expect(g.resumed).toBe(false);
    expect(g.rotatedFrom).toBeUndefined();
    expect(events).toMatchObject([
      {
        type: "session_allocated",
        sessionId: "s1",
        subscriptionId: "b",
        priority: "normal",
        model: "sonnet",
        estimatedTokens: 1000,
      },
    ]);
    expect([...sessionsOf(pool.state, "b")]).toEqual(["s1"]);
  });

  it.each<{ name: string; weights: PoolSettings["health"]["weights"]; expected: string[] }>([
    {
      name: "default weights: sessions and activity lower the score, so allocations round-robin",
      weights: { weekly: 40, fiveHour: 30, sessions: 15, burnRate: 10, idle: 5 },
      expected: ["a", "b", "c", "a", "b", "c"],
    },
    {
      name: "equal scores: fewer sessions first, then config order",
      weights: { weekly: 1, fiveHour: 0, sessions: 0, burnRate: 0, idle: 0 },
      expected: ["a", "b", "c", "a", "b", "c"],
    },
  ])("breaks ties deterministically: $name", ({ weights, expected }) => {
    const pool = makePool(IDS, { health: { weights } });
    const got = expected.map((_, i) => granted(allocate(pool, `s${i}`, T0).result).view.cfg.id);
    expect(got).toEqual(expected);
  });

  it("resumes a session on the subscription that holds it", () => {
    const pool = makePool();
    const first = granted(allocate(pool, "s1", T0).result);
    allocate(pool, "s2", T0);
    const { result, events } = allocate(pool, "s1", T0 + 10 * MINUTE_MS);
    const again = granted(result);
    expect(again.resumed).toBe(true);
    expect(again.view.cfg.id).toBe(first.view.cfg.id);
    expect(again.rotatedFrom).toBeUndefined();
    expect(events).toMatchObject([{ type: "session_resumed", sessionId: "s1", subscriptionId: first.view.cfg.id }]);
    expect(pool.state.sessions.get("s1")!.lastActivityAt).toBe(T0 + 10 * MINUTE_MS);
    expect(pool.state.sessions.size).toBe(2);
  });

  it("resumes a session even when its subscription is full", () => {
    const pool = new Pool(createPoolState(["a"]), poolSettings([subscriptionSettings("a", { maxSessions: 1 })]));
    granted(allocate(pool, "s1", T0).result);
    expect(fallback(allocate(pool, "s2", T0).result).exclusions[0]!.reason).toBe("sessions_full");
    expect(granted(allocate(pool, "s1", T0).result).resumed).toBe(true);
  });

  it("spreads a burst of 45 allocations 15/15/15, and the 46th falls back naming every subscription", () => {
    const pool = makePool();
    const placed: Record<string, number> = { a: 0, b: 0, c: 0 };
    for (let i = 0; i < 45; i++) {
      const g = granted(allocate(pool, `s${i}`, T0).result);
      placed[g.view.cfg.id]!++;
    }
    expect(placed).toEqual({ a: 15, b: 15, c: 15 });
    expect(pool.views(T0).map((v) => [v.cfg.id, v.sessionCount, v.status])).toEqual([
      ["a", 15, "limited"],
      ["b", 15, "limited"],
      ["c", 15, "limited"],
    ]);
    const { result, events } = allocate(pool, "s45", T0);
    const f = fallback(result);
    expect(f.provider).toBe("anthropic-api");
    expect(f.exclusions).toEqual([
      { subscriptionId: "a", reason: "sessions_full", detail: "15 of 15 sessions" },
      { subscriptionId: "b", reason: "sessions_full", detail: "15 of 15 sessions" },
      { subscriptionId: "c", reason: "sessions_full", detail: "15 of 15 sessions" },
    ]);
    for (const id of IDS) expect(f.reason).toContain(`${id}: 15 of 15 sessions`);
    expect(events).toMatchObject([
      { type: "fallback_used", sessionId: "s45", provider: "anthropic-api", reason: f.reason },
    ]);
    expect(pool.state.sessions.has("s45")).toBe(false);
  });

  it("rejects with resource_exhausted when the fallback is disabled", () => {
    const pool = new Pool(
      createPoolState(["a"]),
      poolSettings([subscriptionSettings("a", { maxSessions: 1 })], { fallback: { enabled: false, provider: "" } }),
    );
    granted(allocate(pool, "s1", T0).result);
    const { result, events } = allocate(pool, "s2", T0);
    expect(result).toMatchObject({ kind: "rejected", code: "resource_exhausted" });
    expect((result as Rejection).exclusions).toEqual([
      { subscriptionId: "a", reason: "sessions_full", detail: "1 of 1 sessions" },
    ]);
    expect((result as Rejection).message).toContain("a: 1 of 1 sessions");
    expect(events).toEqual([]);
  });

  it("with no subscription configured, falls back saying so", () => {
    const pool = makePool([]);
    const f = fallback(allocate(pool, "s1", T0).result);
    expect(f.reason).toBe("no subscription is configured");
    expect(f.exclusions).toEqual([]);
  });
});

describe("Pool.run(report): cooldowns from usage limits", () => {
  const LIMIT: LimitSignal = {
    window: "five_hour",
    resetsAt: T0 + 2 * HOUR_MS,
    estimated: false,
    message: "You've hit your limit · resets 12pm (UTC)",
  };

  function limited(ids: string[], limit: LimitSignal = LIMIT): Pool {
    const pool = makePool(ids);
    granted(allocate(pool, "x", T0).result);
    const { result, events } = report(pool, "x", T0, 0, { limit });
    expect(result).toMatchObject({ kind: "reported", duplicate: false });
    expect(types(events)).toEqual(["usage_recorded", "limit_reached"]);
    return pool;
  }

  it("a limit with a reset time benches the subscription until then", () => {
    const pool = limited(["a", "b"]);
    const v = pool.view("a", T0)!;
    expect(v.status).toBe("cooldown");
    expect(v.cooldown).toMatchObject({ since: T0, until: T0 + 2 * HOUR_MS, window: "five_hour", estimated: false });
    const g = granted(allocate(pool, "s1", T0 + MINUTE_MS).result);
    expect(g.view.cfg.id).toBe("b");
  });

  it.each<{ name: string; offset: number; eligible: boolean; status: string }>([
    { name: "a minute after the limit", offset: -2 * HOUR_MS + MINUTE_MS, eligible: false, status: "cooldown" },
    { name: "1 ms before the reset", offset: -1, eligible: false, status: "cooldown" },
    { name: "exactly at the reset", offset: 0, eligible: true, status: "available" },
    { name: "an hour after the reset", offset: HOUR_MS, eligible: true, status: "available" },
  ])("eligibility is derived from time, without an event: $name", ({ offset, eligible, status }) => {
    const pool = limited(["a"]);
    const seq = pool.state.eventSeq;
    const now = T0 + 2 * HOUR_MS + offset;
    expect(pool.view("a", now)!.status).toBe(status);
    expect(pool.state.eventSeq).toBe(seq);
    const { result, events } = allocate(pool, "s1", now);
    if (eligible) {
      expect(granted(result).view.cfg.id).toBe("a");
      expect(types(events)).toEqual(["session_allocated"]);
    } else {
      const f = fallback(result);
      expect(f.exclusions).toHaveLength(1);
      expect(f.exclusions[0]).toMatchObject({ subscriptionId: "a", reason: "cooldown" });
      expect(f.exclusions[0]!.detail).toContain(new Date(T0 + 2 * HOUR_MS).toISOString());
      expect(types(events)).toEqual(["fallback_used"]);
    }
  });

  it("a limit without a reset time gets the default cooldown, estimated", () => {
    const pool = limited(["a"], { window: "unknown", estimated: false, message: "You've hit your usage limit" });
    const v = pool.view("a", T0)!;
    expect(v.cooldown).toMatchObject({
      until: T0 + 60 * MINUTE_MS,
      estimated: true,
      reason: "You've hit your usage limit",
    });
    const f = fallback(allocate(pool, "s1", T0 + 59 * MINUTE_MS).result);
    expect(f.exclusions[0]!.detail).toContain("(estimated)");
    expect(granted(allocate(pool, "s2", T0 + 60 * MINUTE_MS).result).view.cfg.id).toBe("a");
  });

  it.each([15, 240])("the default cooldown follows settings.cooldown.defaultMinutes = %i", (minutes) => {
    const pool = makePool(["a"], { cooldown: { defaultMinutes: minutes, timeZone: "UTC" } });
    allocate(pool, "x", T0);
    const { result, events } = report(pool, "x", T0, 0, {
      limit: { window: "five_hour", estimated: false, message: "limit" },
    });
    expect(result).toMatchObject({ kind: "reported", limit: { resetsAt: T0 + minutes * MINUTE_MS, estimated: true } });
    expect(eventOf(events, "limit_reached")).toMatchObject({
      resetsAt: T0 + minutes * MINUTE_MS,
      estimated: true,
      kind: "upstream",
    });
  });

  it.each<{ name: string; model: string; excluded: boolean }>([
    { name: "opus alias", model: "opus", excluded: true },
    { name: "full opus model id", model: "claude-opus-4-1-20250805", excluded: true },
    { name: "sonnet", model: "claude-sonnet-4-5-20250929", excluded: false },
    { name: "haiku", model: "claude-haiku-4-5", excluded: false },
    { name: "no model hint", model: "", excluded: false },
  ])("a model-scoped (opus) limit excludes only opus allocations: $name", ({ model, excluded }) => {
    const pool = limited(["a"], {
      window: "seven_day_opus",
      resetsAt: T0 + 3 * 24 * HOUR_MS,
      estimated: false,
      message: "You've hit your Opus limit",
      modelScope: "opus",
    });
    const v = pool.view("a", T0)!;
    expect(v.cooldown).toBeUndefined();
    expect(v.scopedCooldowns).toMatchObject([{ modelScope: "opus", window: "seven_day_opus" }]);
    expect(v.status).not.toBe("cooldown");
    const { result } = allocate(pool, "s1", T0 + HOUR_MS, { model });
    if (excluded) {
      expect(fallback(result).exclusions).toMatchObject([{ subscriptionId: "a", reason: "model_limit" }]);
    } else {
      expect(granted(result).view.cfg.id).toBe("a");
    }
  });

  it("a scoped limit and a whole-subscription limit coexist; a new one of the same scope replaces the old", () => {
    const pool = limited(["a"], {
      window: "seven_day_opus",
      resetsAt: T0 + 10 * HOUR_MS,
      estimated: false,
      message: "opus",
      modelScope: "opus",
    });
    report(pool, "x", T0, 0, {
      limit: { window: "five_hour", resetsAt: T0 + HOUR_MS, estimated: false, message: "5h" },
    });
    report(pool, "x", T0, 0, {
      limit: {
        window: "seven_day_opus",
        resetsAt: T0 + 20 * HOUR_MS,
        estimated: false,
        message: "opus2",
        modelScope: "opus",
      },
    });
    const cooldowns = pool.state.subscriptions.get("a")!.cooldowns;
    expect(cooldowns.map((c) => [c.modelScope ?? "all", c.until])).toEqual([
      ["all", T0 + HOUR_MS],
      ["opus", T0 + 20 * HOUR_MS],
    ]);
    expect(granted(allocate(pool, "s1", T0 + HOUR_MS, { model: "sonnet" }).result).view.cfg.id).toBe("a");
    expect(fallback(allocate(pool, "s2", T0 + HOUR_MS, { model: "opus" }).result).exclusions[0]!.reason).toBe(
      "model_limit",
    );
  });

  it("a session whose subscription went into cooldown is rotated on its next allocate", () => {
    const pool = makePool(["a", "b"]);
    expect(granted(allocate(pool, "s1", T0).result).view.cfg.id).toBe("a");
    report(pool, "s1", T0 + MINUTE_MS, 1, { limit: LIMIT });
    const { result, events } = allocate(pool, "s1", T0 + 2 * MINUTE_MS);
    const g = granted(result);
    expect(g).toMatchObject({ resumed: false, rotatedFrom: "a", sessionId: "s1" });
    expect(g.view.cfg.id).toBe("b");
    expect(types(events)).toEqual(["session_rotated", "session_resumed"]);
    expect(eventOf(events, "session_rotated")).toMatchObject({
      sessionId: "s1",
      from: "a",
      to: "b",
      reason: "cooldown",
    });
    expect(eventOf(events, "session_rotated").detail).toContain("cooling down until");
    expect(pool.state.sessions.get("s1")!.subscriptionId).toBe("b");
    expect([...sessionsOf(pool.state, "a")]).toEqual([]);
    expect([...sessionsOf(pool.state, "b")]).toEqual(["s1"]);
    // The session keeps its books across the move.
    expect(pool.state.sessions.get("s1")!.costUsd).toBe(1);
    // The gateway was told: the next allocate is a plain resume.
    const again = granted(allocate(pool, "s1", T0 + 3 * MINUTE_MS).result);
    expect(again).toMatchObject({ resumed: true });
    expect(again.rotatedFrom).toBeUndefined();
    expect(again.view.cfg.id).toBe("b");
  });

  it("a paused subscription's session rotates with reason not_eligible", () => {
    const pool = makePool(["a", "b"]);
    allocate(pool, "s1", T0);
    pool.run({ kind: "set_paused", subscriptionId: "a", paused: true }, T0);
    const { result, events } = allocate(pool, "s1", T0 + MINUTE_MS);
    expect(granted(result)).toMatchObject({ resumed: false, rotatedFrom: "a" });
    expect(eventOf(events, "session_rotated")).toMatchObject({
      from: "a",
      to: "b",
      reason: "not_eligible",
      detail: "paused by an operator",
    });
  });

  it("a session that cannot move anywhere is released and falls back", () => {
    const pool = limited(["a"]);
    const { result, events } = allocate(pool, "x", T0 + MINUTE_MS);
    const f = fallback(result);
    expect(f.exclusions).toMatchObject([{ subscriptionId: "a", reason: "cooldown" }]);
    expect(types(events)).toEqual(["session_released", "fallback_used"]);
    expect(eventOf(events, "session_released")).toMatchObject({
      sessionId: "x",
      subscriptionId: "a",
      reason: "fallback",
    });
    expect(pool.state.sessions.has("x")).toBe(false);
  });
});

describe("Pool.run(allocate): the weekly threshold by priority", () => {
  // Weekly budget $100; normal stops at 0.85, low at 0.765, high at 1.0.
  it.each<{ name: string; spent: number; priority: Priority; eligible: boolean }>([
    { name: "normal below the threshold", spent: 84, priority: "normal", eligible: true },
    { name: "normal at the threshold", spent: 85, priority: "normal", eligible: false },
    { name: "normal above the threshold", spent: 90, priority: "normal", eligible: false },
    { name: "high at the normal threshold", spent: 85, priority: "high", eligible: true },
    { name: "high just under the budget", spent: 99.9, priority: "high", eligible: true },
    { name: "high at the budget", spent: 100, priority: "high", eligible: false },
    { name: "high over the budget", spent: 120, priority: "high", eligible: false },
    { name: "low below its threshold", spent: 76, priority: "low", eligible: true },
    { name: "low at its threshold", spent: 76.5, priority: "low", eligible: false },
    { name: "low between the low and normal thresholds", spent: 80, priority: "low", eligible: false },
    { name: "normal between the low and normal thresholds", spent: 80, priority: "normal", eligible: true },
  ])("$name ($spent USD of 100, $priority)", ({ spent, priority, eligible }) => {
    const pool = makePool(["a"]);
    spend(pool, "a", spent, T0);
    const { result } = allocate(pool, "s1", T0 + MINUTE_MS, { priority });
    if (eligible) {
      expect(granted(result).view.cfg.id).toBe("a");
    } else {
      const f = fallback(result);
      expect(f.exclusions).toMatchObject([{ subscriptionId: "a", reason: "weekly_threshold" }]);
      expect(f.exclusions[0]!.detail).toMatch(/^weekly use \d+\.\d% >= \d+\.\d% threshold$/);
    }
  });

  it("upstream seven_day utilization drives the threshold when known", () => {
    const pool = makePool(["a"]);
    allocate(pool, "x", T0);
    report(pool, "x", T0, 1, {
      readings: [{ window: "seven_day", status: "allowed_warning", utilization: 0.9, resetsAt: T0 + 3 * 24 * HOUR_MS }],
    });
    const v = pool.view("a", T0)!;
    expect(v.weekly.basis).toBe("upstream");
    expect(v.weekly.value).toBe(0.9);
    expect(v.weeklyUsedUsd).toBe(1);
    expect(fallback(allocate(pool, "s1", T0).result).exclusions[0]!.reason).toBe("weekly_threshold");
    expect(granted(allocate(pool, "s2", T0, { priority: "high" }).result).view.cfg.id).toBe("a");
  });

  it("an upstream 5-hour reading at 100% excludes the subscription", () => {
    const pool = makePool(["a"]);
    allocate(pool, "x", T0);
    report(pool, "x", T0, 0, {
      readings: [{ window: "five_hour", status: "rejected", utilization: 1, resetsAt: T0 + HOUR_MS }],
    });
    expect(fallback(allocate(pool, "s1", T0).result).exclusions[0]!.reason).toBe("five_hour_exhausted");
    expect(granted(allocate(pool, "s2", T0 + HOUR_MS).result).view.cfg.id).toBe("a");
  });
});

describe("Pool.run(report): dedupe", () => {
  it.each<{
    name: string;
    reports: { session: string; requestId: string; uuid?: string }[];
    duplicates: boolean[];
    weekly: number;
  }>([
    {
      name: "same requestId twice on one session counts once",
      reports: [
        { session: "s1", requestId: "r1" },
        { session: "s1", requestId: "r1" },
      ],
      duplicates: [false, true],
      weekly: 2,
    },
    {
      name: "same result uuid under different request ids counts once",
      reports: [
        { session: "s1", requestId: "r1", uuid: "u1" },
        { session: "s1", requestId: "r2", uuid: "u1" },
      ],
      duplicates: [false, true],
      weekly: 2,
    },
    {
      name: "same result uuid on another session counts once",
      reports: [
        { session: "s1", requestId: "", uuid: "u1" },
        { session: "s2", requestId: "", uuid: "u1" },
      ],
      duplicates: [false, true],
      weekly: 2,
    },
    {
      name: "same requestId on two different sessions counts twice",
      reports: [
        { session: "s1", requestId: "r1" },
        { session: "s2", requestId: "r1" },
      ],
      duplicates: [false, false],
      weekly: 4,
    },
    {
      name: "no request id and no uuid: every report counts",
      reports: [
        { session: "s1", requestId: "" },
        { session: "s1", requestId: "" },
      ],
      duplicates: [false, false],
      weekly: 4,
    },
    {
      name: "different request ids, different uuids",
      reports: [
        { session: "s1", requestId: "r1", uuid: "u1" },
        { session: "s1", requestId: "r2", uuid: "u2" },
      ],
      duplicates: [false, false],
      weekly: 4,
    },
    {
      name: "a repeat of either key is a duplicate",
      reports: [
        { session: "s1", requestId: "r1", uuid: "u1" },
        { session: "s1", requestId: "r2", uuid: "u2" },
        { session: "s1", requestId: "r1", uuid: "u3" },
        { session: "s1", requestId: "r4", uuid: "u2" },
      ],
      duplicates: [false, false, true, true],
      weekly: 4,
    },
  ])("$name", ({ reports, duplicates, weekly }) => {
    const pool = makePool(["a"]);
    allocate(pool, "s1", T0);
    allocate(pool, "s2", T0);
    const got = reports.map((r, i) => {
      const { result, events } = report(pool, r.session, T0 + i * MINUTE_MS, 2, {
        requestId: r.requestId,
        ...(r.uuid ? { resultUuid: r.uuid } : {}),
      });
      if (result.kind !== "reported") throw new Error(result.message);
      expect(result.countedCostUsd).toBe(result.duplicate ? 0 : 2);
      expect(events).toHaveLength(result.duplicate ? 0 : 1);
      return result.duplicate;
    });
    expect(got).toEqual(duplicates);
    expect(pool.view("a", T0 + HOUR_MS)!.weeklyUsedUsd).toBe(weekly);
    const sessionCost = (pool.state.sessions.get("s1")?.costUsd ?? 0) + (pool.state.sessions.get("s2")?.costUsd ?? 0);
    expect(sessionCost).toBe(weekly);
  });

  it("a duplicate carrying a limit does not start a cooldown", () => {
    const pool = makePool(["a"]);
    allocate(pool, "s1", T0);
    report(pool, "s1", T0, 1, { requestId: "r1" });
    const { result, events } = report(pool, "s1", T0, 1, {
      requestId: "r1",
      limit: { window: "five_hour", resetsAt: T0 + HOUR_MS, estimated: false, message: "limit" },
    });
    expect(result).toMatchObject({ kind: "reported", duplicate: true });
    expect(events).toEqual([]);
    expect(pool.view("a", T0)!.cooldown).toBeUndefined();
  });

  it("report on an unknown session is rejected not_found", () => {
    const pool = makePool();
    const { result, events } = report(pool, "nope", T0, 1, { requestId: "r1" });
    expect(result).toMatchObject({ kind: "rejected", code: "not_found" });
    expect(events).toEqual([]);
    expect(pool.state.dedupe.size).toBe(0);
  });

  it("a report after release still counts on the subscription (late report)", () => {
    const pool = makePool(["a", "b"]);
    const sub = granted(allocate(pool, "s1", T0).result).view.cfg.id;
    report(pool, "s1", T0 + MINUTE_MS, 1, { requestId: "r1" });
    pool.run({ kind: "release", sessionId: "s1" }, T0 + 2 * MINUTE_MS);
    const { result, events } = report(pool, "s1", T0 + 3 * MINUTE_MS, 2.5, { requestId: "r2" });
    expect(result).toMatchObject({ kind: "reported", duplicate: false, countedCostUsd: 2.5 });
    expect(eventOf(events, "usage_recorded")).toMatchObject({ subscriptionId: sub, sessionOpen: false, costUsd: 2.5 });
    expect(pool.view(sub, T0 + 3 * MINUTE_MS)!.weeklyUsedUsd).toBe(3.5);
    expect(pool.state.sessions.has("s1")).toBe(false);
    // ...and a retry of the late report is still a duplicate.
    expect(report(pool, "s1", T0 + 4 * MINUTE_MS, 2.5, { requestId: "r2" }).result).toMatchObject({ duplicate: true });
  });
});

describe("Pool.run(release)", () => {
  it("releasing twice: the second is released:false and emits nothing", () => {
    const pool = makePool();
    const sub = granted(allocate(pool, "s1", T0).result).view.cfg.id;
    const first = pool.run({ kind: "release", sessionId: "s1" }, T0 + MINUTE_MS);
    expect(first.result).toEqual({ kind: "released", released: true, subscriptionId: sub });
    expect(first.events).toMatchObject([
      { type: "session_released", sessionId: "s1", subscriptionId: sub, reason: "released" },
    ]);
    expect(pool.view(sub, T0 + MINUTE_MS)!.sessionCount).toBe(0);
    const second = pool.run({ kind: "release", sessionId: "s1" }, T0 + 2 * MINUTE_MS);
    expect(second.result).toMatchObject({ kind: "released", released: false });
    expect(second.events).toEqual([]);
  });

  it("a released session id can be allocated afresh", () => {
    const pool = makePool(["a"]);
    allocate(pool, "s1", T0);
    pool.run({ kind: "release", sessionId: "s1" }, T0);
    const g = granted(allocate(pool, "s1", T0 + MINUTE_MS).result);
    expect(g.resumed).toBe(false);
    expect(pool.state.ended.has("s1")).toBe(false);
  });
});

describe("Pool.run(sweep)", () => {
  it("releases sessions idle past staleMinutes and keeps active ones", () => {
    const pool = makePool(); // staleMinutes 60
    allocate(pool, "old", T0);
    allocate(pool, "reported", T0);
    allocate(pool, "resumed", T0);
    allocate(pool, "young", T0 + 30 * MINUTE_MS);
    report(pool, "reported", T0 + 20 * MINUTE_MS, 1);
    allocate(pool, "resumed", T0 + 10 * MINUTE_MS);
    const { result, events } = pool.run({ kind: "sweep" }, T0 + 60 * MINUTE_MS);
    expect(result).toEqual({ kind: "swept", expired: 1 });
    expect(events).toMatchObject([{ type: "session_released", sessionId: "old", reason: "expired" }]);
    expect([...pool.state.sessions.keys()].sort()).toEqual(["reported", "resumed", "young"]);

    const later = pool.run({ kind: "sweep" }, T0 + 80 * MINUTE_MS);
    expect(later.result).toEqual({ kind: "swept", expired: 2 });
    expect(
      later.events.map((e) => (e.type === "session_released" ? `${e.sessionId}:${e.reason}` : e.type)).sort(),
    ).toEqual(["reported:expired", "resumed:expired"]);
    expect([...pool.state.sessions.keys()]).toEqual(["young"]);
  });

  it("emits cooldown_ended for cooldowns past their reset, and only those", () => {
    const pool = makePool(["a", "b"]);
    allocate(pool, "sa", T0);
    allocate(pool, "sb", T0);
    report(pool, "sa", T0, 0, {
      limit: { window: "five_hour", resetsAt: T0 + HOUR_MS, estimated: false, message: "5h" },
    });
    report(pool, "sa", T0, 0, {
      limit: {
        window: "seven_day_opus",
        resetsAt: T0 + 3 * HOUR_MS,
        estimated: false,
        message: "opus",
        modelScope: "opus",
      },
    });
    report(pool, "sb", T0, 0, {
      limit: { window: "seven_day", resetsAt: T0 + 2 * HOUR_MS, estimated: false, message: "7d" },
    });

    expect(pool.run({ kind: "sweep" }, T0 + 30 * MINUTE_MS).events).toEqual([]);
    const at1 = pool.run({ kind: "sweep" }, T0 + HOUR_MS).events.filter((e) => e.type === "cooldown_ended");
    expect(at1).toEqual([
      { type: "cooldown_ended", subscriptionId: "a", window: "five_hour", seq: expect.any(Number), at: T0 + HOUR_MS },
    ]);
    expect(pool.state.subscriptions.get("a")!.cooldowns.map((c) => c.modelScope)).toEqual(["opus"]);

    const at3 = pool.run({ kind: "sweep" }, T0 + 3 * HOUR_MS).events.filter((e) => e.type === "cooldown_ended");
    expect(at3).toMatchObject([
      { subscriptionId: "a", window: "seven_day_opus", modelScope: "opus" },
      { subscriptionId: "b", window: "seven_day" },
    ]);
    expect(pool.state.subscriptions.get("a")!.cooldowns).toEqual([]);
    expect(pool.state.subscriptions.get("b")!.cooldowns).toEqual([]);
    // Nothing left to end.
    expect(pool.run({ kind: "sweep" }, T0 + 3 * HOUR_MS).events.filter((e) => e.type === "cooldown_ended")).toEqual([]);
  });

  it("forgets dedupe keys past retention, so a very late retry counts again", () => {
    const pool = makePool(["a"]); // dedupeRetentionHours 48
    allocate(pool, "s1", T0);
    report(pool, "s1", T0, 1, { requestId: "r1" });
    expect(pool.run({ kind: "sweep" }, T0 + 30 * MINUTE_MS).events).toEqual([]);
    expect(report(pool, "s1", T0 + 47 * HOUR_MS, 1, { requestId: "r1" }).result).toMatchObject({ duplicate: true });
    const swept = pool.run({ kind: "sweep" }, T0 + 49 * HOUR_MS);
    expect(types(swept.events)).toEqual(["session_released", "pruned"]);
    expect(pool.state.dedupe.has("r:s1:r1")).toBe(false);
    expect(report(pool, "s1", T0 + 49 * HOUR_MS, 1, { requestId: "r1" }).result).toMatchObject({ duplicate: false });
  });
});

describe("Pool.run(set_paused)", () => {
  it("a paused subscription is excluded until unpaused", () => {
    const pool = makePool(["a", "b"]);
    const paused = pool.run({ kind: "set_paused", subscriptionId: "a", paused: true }, T0);
    expect(paused.events).toMatchObject([
      { type: "paused_set", subscriptionId: "a", paused: true },
      { type: "status_changed", subscriptionId: "a", from: "available", to: "paused" },
    ]);
    expect(paused.result).toMatchObject({ kind: "paused", view: { status: "paused" } });
    expect(granted(allocate(pool, "s1", T0).result).view.cfg.id).toBe("b");
    expect(granted(allocate(pool, "s2", T0).result).view.cfg.id).toBe("b");
    // Pausing again changes nothing and emits nothing.
    expect(pool.run({ kind: "set_paused", subscriptionId: "a", paused: true }, T0).events).toEqual([]);
    pool.run({ kind: "set_paused", subscriptionId: "a", paused: false }, T0);
    expect(granted(allocate(pool, "s3", T0).result).view.cfg.id).toBe("a");
  });

  it("all paused: falls back with reason paused", () => {
    const pool = makePool(["a"]);
    pool.run({ kind: "set_paused", subscriptionId: "a", paused: true }, T0);
    expect(fallback(allocate(pool, "s1", T0).result).exclusions).toEqual([
      { subscriptionId: "a", reason: "paused", detail: "paused by an operator" },
    ]);
  });

  it("set_paused on an unknown id is rejected not_found", () => {
    const pool = makePool();
    const { result, events } = pool.run({ kind: "set_paused", subscriptionId: "zz", paused: true }, T0);
    expect(result).toMatchObject({ kind: "rejected", code: "not_found" });
    expect(events).toEqual([]);
    expect(pool.state.subscriptions.has("zz")).toBe(false);
  });
});

describe("Pool.run(status)", () => {
  it("derives every configured subscription's view in config order, without events", () => {
    const pool = makePool();
    allocate(pool, "s1", T0);
    const { result, events } = pool.run({ kind: "status", includeSessions: false } satisfies Command, T0 + MINUTE_MS);
    expect(events).toEqual([]);
    expect(result.now).toBe(T0 + MINUTE_MS);
    expect(result.views.map((v) => [v.cfg.id, v.sessionCount, v.activeSessions])).toEqual([
      ["a", 1, 1],
      ["b", 0, 0],
      ["c", 0, 0],
    ]);
  });

  it("events carry consecutive sequence numbers and the command's time", () => {
    const pool = makePool();
    const a = allocate(pool, "s1", T0).events;
    const b = report(pool, "s1", T0 + 5, 1, { limit: { window: "five_hour", estimated: true, message: "m" } }).events;
    // allocated; usage, limit, status_changed (available -> cooldown)
    expect([...a, ...b].map((e) => [e.seq, e.at])).toEqual([
      [1, T0],
      [2, T0 + 5],
      [3, T0 + 5],
      [4, T0 + 5],
    ]);
    expect(pool.state.eventSeq).toBe(4);
  });
});
