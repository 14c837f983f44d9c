import { describe, it, expect } from "vitest";
import {
  BUCKET_RETENTION_MS,
  DAY_MS,
  HOUR_MS,
  MINUTE_MS,
  Pool,
  applyEvent,
  burnRateUsdPerHour,
  createPoolState,
  currentWindow,
  nextWindow,
  weeklyUsedUsd,
  windowCostUsd,
  type PoolEvent,
  type RateLimitReading,
  type SubscriptionState,
  type UsageReport,
} from "../../src/domain/index.js";
import { poolSettings } from "../support/settings.js";

const DAY = "2026-11-23";
const at = (hhmm: string, day = DAY): number => Date.parse(`${day}T${hhmm}:00Z`);
const iso = (ms: number | undefined): string | undefined => (ms === undefined ? undefined : new Date(ms).toISOString());

function report(costUsd: number, readings: RateLimitReading[] = []): UsageReport {
  return {
    costUsd,
    tokens: { inputTokens: 10, outputTokens: 20, cacheCreationInputTokens: 0, cacheReadInputTokens: 0 },
    models: {},
    durationMs: 1000,
    readings,
  };
}

/** A one-subscription pool with one open session "s", allocated at the first use. */
class Harness {
  readonly pool = new Pool(
    createPoolState(["a"]),
    poolSettings(["a"], { sessions: { activeMinutes: 5, staleMinutes: 60 * 24 * 30 } }),
  );
  private allocated = false;
  private n = 0;

  use(t: number, costUsd = 1, readings: RateLimitReading[] = []): PoolEvent[] {
    const events: PoolEvent[] = [];
    if (!this.allocated) {
      const r = this.pool.run(
        { kind: "allocate", sessionId: "s", priority: "normal", model: "sonnet", estimatedTokens: 0 },
        t,
      );
      expect(r.result.kind).toBe("granted");
      events.push(...r.events);
      this.allocated = true;
    }
    const r = this.pool.run(
      { kind: "report", sessionId: "s", requestId: `req-${++this.n}`, report: report(costUsd, readings) },
      t,
    );
    expect(r.result).toMatchObject({ kind: "reported", duplicate: false });
    events.push(...r.events);
    return events;
  }

  get sub(): SubscriptionState {
    return this.pool.state.subscriptions.get("a")!;
  }

  window(): { start?: string; end?: string; estimated?: boolean } {
    const w = this.sub.window;
    return { start: iso(w?.start), end: iso(w?.end), estimated: w?.estimated };
  }
}

describe("5-hour window roll-over", () => {
  it.each<{ name: string; uses: string[]; start: string; end: string; windowCost: number }>([
    {
      name: "first use at 10:37 opens 10:00-15:00",
      uses: ["10:37"],
      start: "10:00",
      end: "15:00",
      windowCost: 1,
    },
    {
      name: "not a fixed UTC slot: a first use at 06:20 opens 06:00-11:00",
      uses: ["06:20"],
      start: "06:00",
      end: "11:00",
      windowCost: 1,
    },
    {
      name: "a use at 14:59 stays in the 10:00 window",
      uses: ["10:37", "14:59"],
      start: "10:00",
      end: "15:00",
      windowCost: 2,
    },
    {
      name: "a use at 15:00 opens a new window starting 15:00",
      uses: ["10:37", "15:00"],
      start: "15:00",
      end: "20:00",
      windowCost: 1,
    },
    {
      name: "a use just after the end opens a window floored to its hour",
      uses: ["10:37", "15:20"],
      start: "15:00",
      end: "20:00",
      windowCost: 1,
    },
    {
      name: "after a 5+ hour gap the next use starts a fresh window floored to its hour",
      uses: ["10:37", "14:30", "19:45"],
      start: "19:00",
      end: "00:00",
      windowCost: 1,
    },
    {
      name: "a long gap from the first window",
      uses: ["06:20", "17:05"],
      start: "17:00",
      end: "22:00",
      windowCost: 1,
    },
    {
      name: "crossing an hour boundary stays in the same window",
      uses: ["10:37", "11:05", "12:59", "13:00"],
      start: "10:00",
      end: "15:00",
      windowCost: 4,
    },
    {
      name: "three windows in a row",
      uses: ["01:10", "05:50", "06:00", "10:59", "11:00"],
      start: "11:00",
      end: "16:00",
      windowCost: 1,
    },
  ])("$name", ({ uses, start, end, windowCost }) => {
    const h = new Harness();
    for (const u of uses) h.use(at(u));
    const last = at(uses[uses.length - 1]!);
    const endDay = end < start ? "2026-11-24" : DAY;
    expect(h.window()).toEqual({ start: iso(at(start)), end: iso(at(end, endDay)), estimated: true });
    const view = h.pool.view("a", last)!;
    expect(iso(view.window?.start)).toBe(iso(at(start)));
    expect(view.windowCostUsd).toBe(windowCost);
  });

  it("crossing an hour boundary adds a new bucket to the same window", () => {
    const h = new Harness();
    h.use(at("10:37"), 2);
    h.use(at("10:59"), 3);
    h.use(at("11:05"), 4);
    expect(h.sub.buckets.map((b) => [iso(b.hour), b.costUsd, b.requests])).toEqual([
      [iso(at("10:00")), 5, 2],
      [iso(at("11:00")), 4, 1],
    ]);
    expect(h.window()).toEqual({ start: iso(at("10:00")), end: iso(at("15:00")), estimated: true });
    expect(windowCostUsd(h.sub, at("11:05"))).toBe(9);
    expect(h.sub.buckets[0]!.tokens).toEqual({
      inputTokens: 20,
      outputTokens: 40,
      cacheCreationInputTokens: 0,
      cacheReadInputTokens: 0,
    });
  });

  it("the window is gone once it ended, until the next use", () => {
    const h = new Harness();
    h.use(at("10:37"), 2);
    expect(currentWindow(h.sub, at("14:59"))).toBeDefined();
    expect(currentWindow(h.sub, at("15:00"))).toBeUndefined();
    expect(windowCostUsd(h.sub, at("15:00"))).toBe(0);
    expect(h.pool.view("a", at("16:00"))!.window).toBeUndefined();
  });

  it.each<{ name: string; previous?: [string, string]; t: string; start: string; end: string; same: boolean }>([
    { name: "no previous window", t: "10:37", start: "10:00", end: "15:00", same: false },
    { name: "inside the previous", previous: ["10:00", "15:00"], t: "12:00", start: "10:00", end: "15:00", same: true },
    {
      name: "at the previous start",
      previous: ["10:00", "15:00"],
      t: "10:00",
      start: "10:00",
      end: "15:00",
      same: true,
    },
    {
      name: "at the previous end",
      previous: ["10:00", "15:00"],
      t: "15:00",
      start: "15:00",
      end: "20:00",
      same: false,
    },
    {
      name: "before the previous start (clock stepped back)",
      previous: ["10:00", "15:00"],
      t: "09:30",
      start: "09:00",
      end: "14:00",
      same: false,
    },
  ])("nextWindow(): $name", ({ previous, t, start, end, same }) => {
    const prev = previous && { start: at(previous[0]), end: at(previous[1]), estimated: false };
    const w = nextWindow(prev, at(t));
    expect({ start: iso(w.start), end: iso(w.end) }).toEqual({ start: iso(at(start)), end: iso(at(end)) });
    expect(w === prev).toBe(same);
    if (!same) expect(w.estimated).toBe(true);
  });
});

describe("weeklyUsedUsd(): the rolling 7 days", () => {
  const NOW = at("12:30");

  it.each<{ name: string; ago: number; counts: boolean }>([
    { name: "now", ago: 0, counts: true },
    { name: "an hour ago", ago: HOUR_MS, counts: true },
    { name: "6 days ago", ago: 6 * DAY_MS, counts: true },
    { name: "6 days 23 hours ago", ago: 7 * DAY_MS - HOUR_MS, counts: true },
    { name: "7 days ago", ago: 7 * DAY_MS, counts: false },
    { name: "7 days + 1 hour ago", ago: 7 * DAY_MS + HOUR_MS, counts: false },
    { name: "7 days + 90 minutes ago", ago: 7 * DAY_MS + HOUR_MS + 30 * MINUTE_MS, counts: false },
  ])("usage $name counts: $counts", ({ ago, counts }) => {
    const h = new Harness();
    h.use(NOW - ago, 7);
    h.use(NOW - 3 * DAY_MS, 1); // a control that always counts
    expect(weeklyUsedUsd(h.sub, NOW)).toBe(counts ? 8 : 1);
    expect(h.pool.view("a", NOW)!.weeklyUsedUsd).toBe(counts ? 8 : 1);
    expect(h.pool.view("a", NOW)!.weekly.value).toBe(counts ? 0.08 : 0.01);
  });

  it("usage drops out of the week as time passes, without any event", () => {
    const h = new Harness();
    const t0 = at("10:37", "2026-11-16");
    h.use(t0, 5);
    h.use(t0 + DAY_MS, 3);
    const seq = h.pool.state.eventSeq;
    expect(weeklyUsedUsd(h.sub, t0 + 7 * DAY_MS - HOUR_MS)).toBe(8);
    expect(weeklyUsedUsd(h.sub, t0 + 7 * DAY_MS + HOUR_MS)).toBe(3);
    expect(weeklyUsedUsd(h.sub, t0 + 8 * DAY_MS + HOUR_MS)).toBe(0);
    expect(h.pool.state.eventSeq).toBe(seq);
  });

  it.each<{ name: string; gap: number; hours: number }>([
    { name: "7 days 12 hours later: kept", gap: 7 * DAY_MS + 12 * HOUR_MS, hours: 2 },
    {
      name: "8 days later, same minute: kept (not older than 8 days)",
      gap: BUCKET_RETENTION_MS - 37 * MINUTE_MS,
      hours: 2,
    },
    { name: "8 days 2 hours later: dropped", gap: BUCKET_RETENTION_MS + 2 * HOUR_MS, hours: 1 },
    { name: "30 days later: dropped", gap: 30 * DAY_MS, hours: 1 },
  ])("buckets older than 8 days are dropped on the next usage: $name", ({ gap, hours }) => {
    const h = new Harness();
    const t0 = at("10:37", "2026-11-10");
    h.use(t0, 5);
    h.use(t0 + gap, 2);
    expect(h.sub.buckets).toHaveLength(hours);
    expect(h.sub.buckets[h.sub.buckets.length - 1]!.costUsd).toBe(2);
  });
});

describe("burnRateUsdPerHour(): the trailing hour", () => {
  it.each<{ name: string; uses: [string, number][]; now: string; rate: number }>([
    { name: "nothing used", uses: [], now: "11:15", rate: 0 },
    { name: "the current hour counts in full", uses: [["10:10", 6]], now: "10:50", rate: 6 },
    { name: "previous hour at the top of the hour counts in full", uses: [["10:10", 6]], now: "11:00", rate: 6 },
    { name: "previous hour a quarter past counts three quarters", uses: [["10:10", 6]], now: "11:15", rate: 4.5 },
    { name: "previous hour at half past counts half", uses: [["10:10", 6]], now: "11:30", rate: 3 },
    { name: "two hours back does not count", uses: [["10:10", 6]], now: "12:00", rate: 0 },
    {
      name: "current plus pro-rata previous",
      uses: [
        ["10:10", 6],
        ["11:05", 1],
      ],
      now: "11:15",
      rate: 5.5,
    },
  ])("$name", ({ uses, now, rate }) => {
    const h = new Harness();
    for (const [t, cost] of uses) h.use(at(t), cost);
    expect(burnRateUsdPerHour(h.sub, at(now))).toBeCloseTo(rate, 10);
    expect(h.pool.view("a", at(now))!.burnRateUsdPerHour).toBeCloseTo(rate, 10);
  });
});

describe("upstream five_hour readings", () => {
  it.each<{ name: string; reading: RateLimitReading; window: { start: string; end: string; estimated: boolean } }>([
    {
      name: "a reset time replaces the estimated bounds",
      reading: { window: "five_hour", status: "allowed", utilization: 0.3, resetsAt: at("13:20") },
      window: { start: "08:20", end: "13:20", estimated: false },
    },
    {
      name: "no reset time keeps the estimate",
      reading: { window: "five_hour", status: "allowed", utilization: 0.3 },
      window: { start: "10:00", end: "15:00", estimated: true },
    },
    {
      name: "a reset time already past keeps the estimate",
      reading: { window: "five_hour", status: "allowed", utilization: 0.3, resetsAt: at("10:30") },
      window: { start: "10:00", end: "15:00", estimated: true },
    },
    {
      name: "a seven_day reading does not touch the 5-hour window",
      reading: { window: "seven_day", status: "allowed", utilization: 0.3, resetsAt: at("13:20", "2026-11-27") },
      window: { start: "10:00", end: "15:00", estimated: true },
    },
  ])("$name", ({ reading, window }) => {
    const h = new Harness();
    const events = h.use(at("10:37"), 1, [reading]);
    expect(events.map((e) => e.type)).toEqual(["session_allocated", "usage_recorded", "upstream_observed"]);
    expect(h.window()).toEqual({ start: iso(at(window.start)), end: iso(at(window.end)), estimated: window.estimated });
  });

  it("later uses stay in the upstream window; a use after its end opens a new estimated one", () => {
    const h = new Harness();
    h.use(at("10:37"), 1, [{ window: "five_hour", status: "allowed", utilization: 0.3, resetsAt: at("13:20") }]);
    h.use(at("13:10"), 2);
    expect(h.window()).toEqual({ start: iso(at("08:20")), end: iso(at("13:20")), estimated: false });
    // 30% upstream plus $2 of the $10 window budget since the reading.
    expect(h.pool.view("a", at("13:10"))!.fiveHour.value).toBeCloseTo(0.5, 10);
    h.use(at("13:25"), 1);
    expect(h.window()).toMatchObject({ end: iso(at("18:00")), estimated: true });
    // The reading's window has reset: back to the local estimate.
    expect(h.pool.view("a", at("13:25"))!.upstream).toEqual([]);
  });

  it("a limit with an exact 5-hour reset time also sets the window", () => {
    const h = new Harness();
    h.use(at("10:37"), 1);
    h.pool.run(
      {
        kind: "report",
        sessionId: "s",
        requestId: "limit",
        report: {
          ...report(0),
          limit: { window: "five_hour", resetsAt: at("14:40"), estimated: false, message: "limit" },
        },
      },
      at("11:00"),
    );
    expect(h.window()).toEqual({ start: iso(at("09:40")), end: iso(at("14:40")), estimated: false });
  });

  it("an estimated limit reset time leaves the window alone", () => {
    const h = new Harness();
    h.use(at("10:37"), 1);
    h.pool.run(
      {
        kind: "report",
        sessionId: "s",
        requestId: "limit",
        report: {
          ...report(0),
          limit: { window: "five_hour", resetsAt: at("14:40"), estimated: true, message: "limit" },
        },
      },
      at("11:00"),
    );
    expect(h.window()).toEqual({ start: iso(at("10:00")), end: iso(at("15:00")), estimated: true });
  });
});

describe("applyEvent(): usage_recorded by hand", () => {
  it("a late report counts on the subscription but not on the (ended) session", () => {
    const state = createPoolState(["a"]);
    let seq = 0;
    const apply = (e: Record<string, unknown>, t: number) =>
      applyEvent(state, { ...e, seq: ++seq, at: t } as PoolEvent);
    apply(
      {
        type: "session_allocated",
        sessionId: "s",
        subscriptionId: "a",
        priority: "normal",
        model: "",
        estimatedTokens: 0,
      },
      at("10:00"),
    );
    apply({ type: "session_released", sessionId: "s", subscriptionId: "a", reason: "released" }, at("10:05"));
    apply(
      {
        type: "usage_recorded",
        sessionId: "s",
        subscriptionId: "a",
        dedupeKeys: ["r:s:1"],
        costUsd: 2.5,
        tokens: { inputTokens: 1, outputTokens: 2, cacheCreationInputTokens: 3, cacheReadInputTokens: 4 },
        models: {},
        durationMs: 1,
        sessionOpen: false,
      },
      at("10:06"),
    );
    const sub = state.subscriptions.get("a")!;
    expect(weeklyUsedUsd(sub, at("10:06"))).toBe(2.5);
    expect(sub.lastUsedAt).toBe(at("10:06"));
    expect(state.sessions.has("s")).toBe(false);
    expect(state.dedupe.get("r:s:1")).toBe(at("10:06"));
    expect(state.eventSeq).toBe(3);
  });
});
