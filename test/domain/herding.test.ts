import { describe, expect, it } from "vitest";
import { type Command, Pool, createPoolState } from "../../src/domain/index.js";
import { usage } from "../support/pool-driver.js";
import { poolSettings, subscriptionSettings } from "../support/settings.js";

/**
 * No herding: sessions that must leave a subscription at once spread over
 * the others by their room, and a subscription back from a limit takes
 * new sessions gradually.
 */

const T0 = Date.parse("2026-12-02T10:00:00Z");
const MINUTE = 60_000;

function pool(ids: string[], rampMinutes?: number): Pool {
  const subs = ids.map((id) =>
    subscriptionSettings(id, { maxSessions: 15, weeklyBudgetUsd: 1000, fiveHourBudgetUsd: 100 }),
  );
  return new Pool(
    createPoolState(ids),
    poolSettings(subs, {
      cooldown: { defaultMinutes: 60, timeZone: "UTC", ...(rampMinutes !== undefined ? { rampMinutes } : {}) },
    }),
  );
}

function allocate(p: Pool, sessionId: string, at: number) {
  const cmd: Command = { kind: "allocate", sessionId, priority: "normal", model: "", estimatedTokens: 0 };
  return p.run(cmd, at);
}

/** only pauses every subscription but `id`, runs `fn`, and resumes them. */
function only(p: Pool, id: string, at: number, fn: () => void): void {
  const others = p.settings.subscriptions.map((s) => s.id).filter((s) => s !== id);
  for (const o of others) p.run({ kind: "set_paused", subscriptionId: o, paused: true }, at);
  fn();
  for (const o of others) p.run({ kind: "set_paused", subscriptionId: o, paused: false }, at);
}

function limit(p: Pool, sessionId: string, at: number, minutes = 60) {
  p.run(
    {
      kind: "report",
      sessionId,
      requestId: `limit-${at}`,
      report: usage(0, {
        limit: {
          window: "five_hour",
          resetsAt: at + minutes * MINUTE,
          estimated: false,
          message: "5-hour limit reached",
        },
      }),
    },
    at,
  );
}

describe("no herding", () => {
  it("spreads 15 sessions leaving a limited subscription over the others by their room", () => {
    const p = pool(["busy", "b", "c", "d"]);
    only(p, "busy", T0, () => {
      for (let i = 0; i < 15; i++) allocate(p, `s${i}`, T0);
    });
    // b has used a little of its window: it ranks a bit lower than c and d, but has the same free slots.
    only(p, "b", T0, () => {
      allocate(p, "b-own", T0);
      p.run({ kind: "report", sessionId: "b-own", requestId: "1", report: usage(5) }, T0 + MINUTE);
    });
    limit(p, "s0", T0 + 2 * MINUTE);
    for (let i = 0; i < 15; i++) expect(allocate(p, `s${i}`, T0 + 3 * MINUTE + i).result.kind).toBe("granted");
    const per = new Map<string, number>();
    for (let i = 0; i < 15; i++) {
      const sub = p.state.sessions.get(`s${i}`)!.subscriptionId;
      per.set(sub, (per.get(sub) ?? 0) + 1);
    }
    expect(per.has("busy")).toBe(false);
    // By room: 5 each (b's own session and its spend leave it a little less room), not 15 on the best.
    expect([...per.values()].sort()).toEqual([4, 5, 6]);
  });

  it("admits new sessions onto a subscription back from a limit gradually, up to all of them after the ramp", () => {
    const p = pool(["solo"], 15);
    allocate(p, "first", T0);
    limit(p, "first", T0 + MINUTE, 30);
    p.run({ kind: "release", sessionId: "first" }, T0 + 2 * MINUTE);
    // The cooldown ends at T0 + 31 min; the sweep records it.
    const back = T0 + 31 * MINUTE;
    p.run({ kind: "sweep" }, back);
    const granted = (at: number, n: number) => {
      let count = 0;
      for (let i = 0; i < n; i++) if (allocate(p, `at${at}-${i}`, at).result.kind === "granted") count++;
      return count;
    };
    expect(granted(back, 5)).toBe(1);
    // A third of the ramp: a third of the 15 sessions.
    expect(granted(back + 5 * MINUTE, 10)).toBe(4);
    const refused = allocate(p, "over", back + 5 * MINUTE).result;
    expect(refused).toMatchObject({
      kind: "fallback",
      exclusions: [
        expect.objectContaining({
          reason: "sessions_full",
          detail: expect.stringContaining("ramps back up after a limit"),
        }),
      ],
    });
    expect(granted(back + 15 * MINUTE, 20)).toBe(10);
  });

  it("admits at once with rampMinutes 0", () => {
    const p = pool(["solo"], 0);
    allocate(p, "first", T0);
    limit(p, "first", T0 + MINUTE, 30);
    p.run({ kind: "release", sessionId: "first" }, T0 + 2 * MINUTE);
    p.run({ kind: "sweep" }, T0 + 31 * MINUTE);
    let count = 0;
    for (let i = 0; i < 15; i++) if (allocate(p, `n${i}`, T0 + 31 * MINUTE).result.kind === "granted") count++;
    expect(count).toBe(15);
  });
});
