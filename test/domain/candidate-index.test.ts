import { describe, expect, it } from "vitest";
import {
  DAY_MS,
  HOUR_MS,
  Pool,
  type PoolSettings,
  type RateLimitReading,
  createPoolState,
} from "../../src/domain/index.js";
import { usage } from "../support/pool-driver.js";
import { poolSettings, subscriptionSettings } from "../support/settings.js";

const T0 = Date.parse("2026-11-23T08:00:00Z");

/** mulberry32, so a failing sequence can be replayed. */
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

const SETTINGS = poolSettings(
  ["a", "b", "c", "d", "e"].map((id) =>
    subscriptionSettings(id, { maxSessions: 6, weeklyBudgetUsd: 60, fiveHourBudgetUsd: 8 }),
  ),
);

describe("Pool: the candidate index and the session counts it ranks by", () => {
  // The pool keeps views between decisions; a fresh pool on a copy of the
  // same state derives every view at that instant. Steps of 10 s or more
  // outlast the burn rate's allowed drift, so both must choose the same.
  it.each([[1], [7], [42], [2026], [31337], [8]])(
    "seed %i: chooses as a pool that derives every view afresh",
    (seed) => {
      const rand = prng(seed);
      const settings: PoolSettings = { ...SETTINGS, pacing: seed % 2 === 0 };
      const pool = new Pool(createPoolState(settings.subscriptions.map((s) => s.id)), settings);
      let now = T0;
      let compared = 0;
      for (let i = 0; i < 400; i++) {
        now += 10_000 + Math.floor(rand() * (rand() < 0.1 ? 3 * HOUR_MS : 10 * 60_000));
        const session = `s${Math.floor(rand() * 40)}`;
        const r = rand();
        if (r < 0.45) {
          const command = {
            kind: "allocate" as const,
            sessionId: session,
            priority: "normal" as const,
            model: "sonnet",
            estimatedTokens: 0,
          };
          const fresh = new Pool(structuredClone(pool.state), settings);
          // The counts kept across events equal a count from scratch.
          const counts = (p: Pool) =>
            p.views(now).map((v) => [v.cfg.id, v.sessionCount, v.activeSessions, v.idleSessions]);
          expect(counts(pool)).toEqual(counts(fresh));
          const expected = fresh.run(command, now).result;
          const actual = pool.run(command, now).result;
          expect(actual.kind).toBe(expected.kind);
          if (actual.kind === "granted" && expected.kind === "granted")
            expect(actual.view.cfg.id).toBe(expected.view.cfg.id);
          compared++;
        } else if (r < 0.85) {
          const readings: RateLimitReading[] =
            rand() < 0.3
              ? [
                  {
                    window: "five_hour",
                    status: "allowed",
                    utilization: Math.round(rand() * 100) / 100,
                    resetsAt: now + Math.floor(rand() * 5 * HOUR_MS),
                  },
                  {
                    window: "seven_day",
                    status: "allowed",
                    utilization: Math.round(rand() * 100) / 100,
                    resetsAt: now + Math.floor(rand() * 7 * DAY_MS),
                  },
                ]
              : [];
          pool.run(
            {
              kind: "report",
              sessionId: session,
              requestId: `r${i}`,
              report: usage(Math.round(rand() * 300) / 100, { readings }),
            },
            now,
          );
        } else if (r < 0.95) {
          pool.run({ kind: "release", sessionId: session }, now);
        } else {
          pool.run({ kind: "sweep" }, now);
        }
      }
      expect(compared).toBeGreaterThan(100);
    },
  );
});

describe("Pool: pacing", () => {
  const week = (utilization: number, resetsAt: number): RateLimitReading => ({
    window: "seven_day",
    status: "allowed",
    utilization,
    resetsAt,
  });

  /** Two accounts: "a" has less room left but its week resets tomorrow; "b" has more, for six more days. */
  function twoAccounts(pacing: boolean): Pool {
    const settings: PoolSettings = { ...poolSettings(["a", "b"]), pacing };
    const pool = new Pool(createPoolState(["a", "b"]), settings);
    pool.run({ kind: "observe", subscriptionId: "a", readings: [week(0.7, T0 + DAY_MS)], source: "test" }, T0);
    pool.run({ kind: "observe", subscriptionId: "b", readings: [week(0.4, T0 + 6 * DAY_MS)], source: "test" }, T0);
    return pool;
  }

  const chosen = (pool: Pool) => {
    const r = pool.run(
      { kind: "allocate", sessionId: "x", priority: "normal", model: "sonnet", estimatedTokens: 0 },
      T0 + 60_000,
    ).result;
    return r.kind === "granted" ? r.view.cfg.id : r.kind;
  };

  it("ranks by health alone without it: the account with more room left", () => {
    expect(chosen(twoAccounts(false))).toBe("b");
  });

  it("spends the room a reset is about to take away first", () => {
    expect(chosen(twoAccounts(true))).toBe("a");
  });

  it("leaves the rank at the health score where no reset time is known", () => {
    const settings: PoolSettings = { ...poolSettings(["a"]), pacing: true };
    const pool = new Pool(createPoolState(["a"]), settings);
    pool.run(
      {
        kind: "observe",
        subscriptionId: "a",
        readings: [{ window: "seven_day", status: "allowed", utilization: 0.5 }],
        source: "test",
      },
      T0,
    );
    const v = pool.view("a", T0 + 60_000)!;
    expect(v.rank).toBe(v.health.score);
  });
});
