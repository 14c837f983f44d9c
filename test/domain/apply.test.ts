import { describe, it, expect } from "vitest";
import {
  HOUR_MS,
  MINUTE_MS,
  Pool,
  applyEvent,
  createPoolState,
  type Command,
  type LimitWindow,
  type PoolEvent,
  type PoolSettings,
  type PoolState,
  type Priority,
  type RateLimitReading,
  type UsageReport,
} from "../../src/domain/index.js";
import { poolSettings, subscriptionSettings } from "../support/settings.js";

const T0 = Date.parse("2026-11-23T08:13:00Z");
const IDS = ["a", "b", "c"];

/** mulberry32: a tiny seeded PRNG, so a failing sequence can be replayed. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Small budgets and few slots so thresholds, full subscriptions, rotations and
// fallbacks all happen within a couple of hundred commands.
const SETTINGS: PoolSettings = poolSettings(
  IDS.map((id) => subscriptionSettings(id, { maxSessions: 3, weeklyBudgetUsd: 40, fiveHourBudgetUsd: 6 })),
  {
    sessions: { activeMinutes: 5, staleMinutes: 90 },
    cooldown: { defaultMinutes: 45, timeZone: "UTC" },
    dedupeRetentionHours: 6,
  },
);

interface Step {
  command: Command;
  now: number;
}

/** commands generates a seeded, random-ish but reproducible command sequence. */
function commands(seed: number, count: number): Step[] {
  const rand = prng(seed);
  const int = (n: number) => Math.floor(rand() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  const chance = (p: number) => rand() < p;
  const priorities: Priority[] = ["low", "normal", "normal", "high"];
  const models = ["opus", "claude-sonnet-4-5-20250929", "", "claude-haiku-4-5", "claude-opus-4-1"];
  const windows: LimitWindow[] = ["five_hour", "seven_day", "seven_day_opus", "unknown"];
  const steps: Step[] = [];
  let now = T0;
  for (let i = 0; i < count; i++) {
    // Mostly small steps, sometimes a long quiet spell (windows roll over, cooldowns end, sessions go stale).
    now += chance(0.06) ? int(8 * HOUR_MS) : int(25 * MINUTE_MS);
    const session = `s${int(14)}`;
    const r = rand();
    let command: Command;
    if (r < 0.3) {
      command = {
        kind: "allocate",
        sessionId: session,
        priority: pick(priorities),
        model: pick(models),
        estimatedTokens: int(50_000),
      };
    } else if (r < 0.68) {
      const readings: RateLimitReading[] = [];
      if (chance(0.2)) {
        readings.push({
          window: pick(["five_hour", "seven_day"] as const),
          status: "allowed",
          utilization: Math.round(rand() * 100) / 100,
          ...(chance(0.7) ? { resetsAt: now + int(5 * HOUR_MS) - HOUR_MS } : {}),
        });
      }
      if (chance(0.05)) readings.push({ window: "seven_day_sonnet", status: "allowed" });
      const report: UsageReport = {
        costUsd: Math.round(rand() * 400) / 100,
        tokens: {
          inputTokens: int(1000),
          outputTokens: int(500),
          cacheCreationInputTokens: int(100),
          cacheReadInputTokens: int(9000),
        },
        models: {},
        durationMs: int(60_000),
        readings,
        ...(chance(0.5) ? { resultUuid: `u${int(40)}` } : {}),
      };
      if (chance(0.08)) {
        const window = pick(windows);
        report.limit = {
          window,
          estimated: chance(0.3),
          message: `limit ${i}`,
          ...(chance(0.7) ? { resetsAt: now + int(4 * HOUR_MS) } : {}),
          ...(window === "seven_day_opus" ? { modelScope: "opus" as const } : {}),
        };
      }
      command = { kind: "report", sessionId: session, requestId: chance(0.2) ? "" : `r${int(8)}`, report };
    } else if (r < 0.8) {
      command = { kind: "release", sessionId: session };
    } else if (r < 0.85) {
      command = { kind: "set_paused", subscriptionId: pick([...IDS, "zz"]), paused: chance(0.5) };
    } else if (r < 0.95) {
      command = { kind: "sweep" };
    } else {
      command = { kind: "status", includeSessions: false };
    }
    steps.push({ command, now });
  }
  return steps;
}

function run(pool: Pool, steps: Step[]): { events: PoolEvent[]; results: unknown[] } {
  const events: PoolEvent[] = [];
  const results: unknown[] = [];
  for (const { command, now } of steps) {
    const out = pool.run(command, now);
    events.push(...out.events);
    results.push(out.result);
    const wrong = invariants(pool.state, pool.settings);
    if (wrong.length > 0)
      throw new Error(`after ${command.kind} at ${new Date(now).toISOString()}: ${wrong.join("; ")}`);
  }
  return { events, results };
}

/** comparable turns a state into plain data, keeping map order (pruning relies on it). */
function comparable(state: PoolState) {
  return {
    eventSeq: state.eventSeq,
    sessions: [...state.sessions.entries()],
    subscriptions: [...state.subscriptions.entries()],
    dedupe: [...state.dedupe.entries()],
    ended: [...state.ended.entries()],
    bySubscription: [...state.bySubscription.entries()].map(([id, set]) => [id, [...set].sort()]),
  };
}

function replay(events: PoolEvent[], into: PoolState = createPoolState(IDS)): PoolState {
  for (const e of events) applyEvent(into, structuredClone(e));
  return into;
}

/** invariants lists what is wrong with a state (empty when nothing is). */
function invariants(state: PoolState, settings: PoolSettings): string[] {
  const wrong: string[] = [];
  for (const [id, s] of state.sessions) {
    if (state.bySubscription.get(s.subscriptionId)?.has(id) !== true)
      wrong.push(`${id} missing from its subscription's index`);
    if (state.ended.has(id)) wrong.push(`${id} both open and ended`);
  }
  for (const [sub, ids] of state.bySubscription) {
    for (const id of ids)
      if (state.sessions.get(id)?.subscriptionId !== sub) wrong.push(`${sub} indexes ${id} it does not hold`);
    const max = settings.subscriptions.find((c) => c.id === sub)?.maxSessions ?? Infinity;
    if (ids.size > max) wrong.push(`${sub} holds ${ids.size} sessions, max ${max}`);
  }
  for (const sub of state.subscriptions.values()) {
    for (let i = 1; i < sub.buckets.length; i++) {
      if (sub.buckets[i]!.hour <= sub.buckets[i - 1]!.hour) wrong.push(`${sub.id} buckets out of order`);
    }
    const scopes = sub.cooldowns.map((c) => c.modelScope ?? "all");
    if (new Set(scopes).size !== scopes.length) wrong.push(`${sub.id} has two cooldowns of one scope`);
  }
  return wrong;
}

const SEEDS = [1, 7, 42, 2026, 31337];

describe("applyEvent(): replaying the events rebuilds the live state", () => {
  it.each(SEEDS)("seed %i: 200 commands", (seed) => {
    const live = new Pool(createPoolState(IDS), SETTINGS);
    const { events } = run(live, commands(seed, 200));

    // Sequence numbers are consecutive from 1 and end at the state's.
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
    expect(live.state.eventSeq).toBe(events.length);

    const replayed = replay(events);
    expect(comparable(replayed)).toEqual(comparable(live.state));
  });

  it.each(SEEDS)("seed %i: the sequence exercises the interesting paths", (seed) => {
    const live = new Pool(createPoolState(IDS), SETTINGS);
    const { events, results } = run(live, commands(seed, 200));
    const seen = new Set(events.map((e) => e.type));
    for (const type of [
      "session_allocated",
      "session_resumed",
      "session_released",
      "usage_recorded",
      "upstream_observed",
      "limit_reached",
      "cooldown_ended",
      "fallback_used",
      "paused_set",
      "pruned",
    ]) {
      expect(seen, type).toContain(type);
    }
    const kinds = new Set(results.map((r) => (r as { kind: string }).kind));
    expect([...kinds].sort()).toEqual([
      "fallback",
      "granted",
      "paused",
      "rejected",
      "released",
      "reported",
      "status",
      "swept",
    ]);
    expect(results.some((r) => (r as { duplicate?: boolean }).duplicate === true)).toBe(true);
  });

  it("rotations replay too", () => {
    // Rotation needs a held session whose subscription went into cooldown;
    // find it in the union of seeds rather than hoping one seed has it.
    let rotations = 0;
    for (const seed of [...SEEDS, 3, 4, 5, 6, 8, 9, 10]) {
      const live = new Pool(createPoolState(IDS), SETTINGS);
      const { events } = run(live, commands(seed, 200));
      rotations += events.filter((e) => e.type === "session_rotated").length;
      expect(comparable(replay(events))).toEqual(comparable(live.state));
    }
    expect(rotations).toBeGreaterThan(0);
  });

  it.each(SEEDS)("seed %i: replay from a mid-way snapshot plus the rest equals the live state", (seed) => {
    const live = new Pool(createPoolState(IDS), SETTINGS);
    const { events } = run(live, commands(seed, 200));
    const cut = Math.floor(events.length / 2);
    const snapshot = structuredClone(replay(events.slice(0, cut)));
    expect(snapshot.eventSeq).toBe(cut);
    expect(comparable(replay(events.slice(cut), snapshot))).toEqual(comparable(live.state));
  });

  it.each(SEEDS)("seed %i: a pool on the replayed state decides exactly like the live one", (seed) => {
    const steps = commands(seed, 260);
    const live = new Pool(createPoolState(IDS), SETTINGS);
    const { events } = run(live, steps.slice(0, 200));
    const restored = new Pool(replay(events), SETTINGS);
    const rest = steps.slice(200);
    const a = run(live, rest);
    const b = run(restored, rest);
    expect(b.events).toEqual(a.events);
    expect(b.results).toEqual(a.results);
    const now = rest[rest.length - 1]!.now;
    expect(restored.views(now)).toEqual(live.views(now));
  });

  it.each(["usage_recorded", "session_allocated", "session_released", "upstream_observed", "pruned"] as const)(
    "the comparison has teeth: dropping the last %s event gives a different state",
    (type) => {
      const live = new Pool(createPoolState(IDS), SETTINGS);
      const { events } = run(live, commands(1, 200));
      const i = events.findLastIndex((e) => e.type === type);
      expect(i).toBeGreaterThanOrEqual(0);
      const mutated = replay(events.filter((_, j) => j !== i));
      mutated.eventSeq = live.state.eventSeq;
      expect(comparable(mutated)).not.toEqual(comparable(live.state));
    },
  );

  it("the same seed gives the same events (the domain is deterministic)", () => {
    const one = run(new Pool(createPoolState(IDS), SETTINGS), commands(99, 200)).events;
    const two = run(new Pool(createPoolState(IDS), SETTINGS), commands(99, 200)).events;
    expect(two).toEqual(one);
    expect(one.length).toBeGreaterThan(100);
  });
});

describe("applyEvent(): events on their own", () => {
  const base = { seq: 1, at: T0 };

  it.each<{ name: string; event: PoolEvent }>([
    {
      name: "resume of an unknown session",
      event: { ...base, type: "session_resumed", sessionId: "x", subscriptionId: "a" },
    },
    {
      name: "rotation of an unknown session",
      event: { ...base, type: "session_rotated", sessionId: "x", from: "a", to: "b", reason: "cooldown", detail: "" },
    },
    {
      name: "record-only event",
      event: { ...base, type: "status_changed", subscriptionId: "a", from: "available", to: "limited", reason: "" },
    },
    {
      name: "limit without reset time",
      event: {
        ...base,
        type: "limit_reached",
        subscriptionId: "a",
        kind: "upstream",
        window: "five_hour",
        estimated: true,
        message: "",
      },
    },
    {
      name: "local safeguard limit",
      event: {
        ...base,
        type: "limit_reached",
        subscriptionId: "a",
        kind: "weekly_threshold",
        window: "seven_day",
        resetsAt: T0 + HOUR_MS,
        estimated: false,
        message: "",
      },
    },
  ])("$name changes nothing but the sequence", ({ event }) => {
    const state = createPoolState(IDS);
    const before = comparable(state);
    applyEvent(state, event);
    expect(comparable(state)).toEqual({ ...before, eventSeq: 1 });
  });

  it("events naming a subscription the config no longer has still apply", () => {
    const state = createPoolState(["a"]);
    applyEvent(state, {
      seq: 1,
      at: T0,
      type: "session_allocated",
      sessionId: "s",
      subscriptionId: "gone",
      priority: "normal",
      model: "",
      estimatedTokens: 0,
    });
    applyEvent(state, { seq: 2, at: T0, type: "paused_set", subscriptionId: "gone2", paused: true });
    expect(state.sessions.get("s")?.subscriptionId).toBe("gone");
    expect([...state.bySubscription.get("gone")!]).toEqual(["s"]);
    expect(state.subscriptions.get("gone2")?.paused).toBe(true);
  });

  it("pruned forgets dedupe keys and ended sessions before the horizon only", () => {
    const state = createPoolState(["a"]);
    let seq = 0;
    const apply = (e: Record<string, unknown>, at: number) => applyEvent(state, { ...e, seq: ++seq, at } as PoolEvent);
    const usage = (key: string) => ({
      type: "usage_recorded",
      sessionId: "s",
      subscriptionId: "a",
      dedupeKeys: [key],
      costUsd: 1,
      tokens: { inputTokens: 0, outputTokens: 0, cacheCreationInputTokens: 0, cacheReadInputTokens: 0 },
      models: {},
      durationMs: 0,
      sessionOpen: false,
    });
    apply(usage("k1"), T0);
    apply({ type: "session_released", sessionId: "e1", subscriptionId: "a", reason: "released" }, T0 + 1);
    apply(usage("k2"), T0 + 2 * HOUR_MS);
    apply({ type: "session_released", sessionId: "e2", subscriptionId: "a", reason: "released" }, T0 + 2 * HOUR_MS);
    apply({ type: "pruned", before: T0 + HOUR_MS }, T0 + 3 * HOUR_MS);
    expect([...state.dedupe.keys()]).toEqual(["k2"]);
    expect([...state.ended.keys()]).toEqual(["e2"]);
  });
});
