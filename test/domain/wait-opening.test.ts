import { describe, expect, it } from "vitest";
import { type AllocateResult, Pool, createPoolState } from "../../src/domain/index.js";
import { granted, usage } from "../support/pool-driver.js";
import { poolSettings, subscriptionSettings } from "../support/settings.js";

const T0 = Date.parse("2026-12-02T10:00:00Z");
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

/** A pool of a and b, one session slot each. */
function makePool(): Pool {
  const subs = ["a", "b"].map((id) => subscriptionSettings(id, { maxSessions: 1 }));
  return new Pool(createPoolState(["a", "b"]), poolSettings(subs));
}

function allocate(pool: Pool, sessionId: string, wait = false): AllocateResult {
  const r = pool.run({ kind: "allocate", sessionId, priority: "normal", model: "", estimatedTokens: 0, wait }, T0);
  if (r.result.kind === "rejected") throw new Error(r.result.message);
  return r.result;
}

/** coolDown puts `id` under a 5-hour limit until `until`, through a run that hit it. */
function coolDown(pool: Pool, id: string, until: number): void {
  const other = id === "a" ? "b" : "a";
  pool.run({ kind: "set_paused", subscriptionId: other, paused: true }, T0);
  const s = granted(allocate(pool, `hit-${id}`));
  expect(s.view.cfg.id).toBe(id);
  pool.run(
    {
      kind: "report",
      sessionId: `hit-${id}`,
      requestId: `hit-${id}`,
      report: usage(1, { limit: { window: "five_hour", resetsAt: until, estimated: false, message: "limit" } }),
    },
    T0,
  );
  pool.run({ kind: "release", sessionId: `hit-${id}` }, T0);
  pool.run({ kind: "set_paused", subscriptionId: other, paused: false }, T0);
}

function opensAt(result: AllocateResult): number {
  if (result.kind !== "unavailable") throw new Error(`expected unavailable, got ${result.kind}`);
  return result.opensAt;
}

describe("when a waiting call's slot can open", () => {
  it("is now while a release could free a slot", () => {
    const pool = makePool();
    granted(allocate(pool, "s1"));
    granted(allocate(pool, "s2"));
    expect(opensAt(allocate(pool, "w", true))).toBe(T0);
  });

  it("is the first cooldown to end when every subscription cools down", () => {
    const pool = makePool();
    coolDown(pool, "a", T0 + 2 * HOUR);
    coolDown(pool, "b", T0 + HOUR);
    expect(opensAt(allocate(pool, "w", true))).toBe(T0 + HOUR);
  });

  it("is the window's reset when every subscription is at its 5-hour cap", () => {
    const pool = makePool();
    const resetsAt = T0 + 3 * HOUR;
    for (const id of ["a", "b"]) {
      pool.run(
        {
          kind: "observe",
          subscriptionId: id,
          source: "usage endpoint",
          readings: [{ window: "five_hour", source: "oauth", status: "allowed", utilization: 0.99, resetsAt }],
        },
        T0,
      );
    }
    expect(opensAt(allocate(pool, "w", true))).toBe(resetsAt);
  });

  it("is now while an operator could resume a paused subscription", () => {
    const pool = makePool();
    coolDown(pool, "a", T0 + 2 * HOUR);
    pool.run({ kind: "set_paused", subscriptionId: "b", paused: true }, T0);
    expect(opensAt(allocate(pool, "w", true))).toBe(T0);
  });

  it("counts a held session's own subscription taking it back", () => {
    const pool = makePool();
    pool.run({ kind: "set_paused", subscriptionId: "b", paused: true }, T0);
    granted(allocate(pool, "s"));
    pool.run({ kind: "set_paused", subscriptionId: "b", paused: false }, T0);
    coolDown(pool, "b", T0 + 2 * HOUR);
    pool.run(
      {
        kind: "report",
        sessionId: "s",
        requestId: "s-limit",
        report: usage(1, { limit: { window: "five_hour", resetsAt: T0 + HOUR, estimated: false, message: "limit" } }),
      },
      T0,
    );
    // s cannot stay on a (cooling down until +1h) nor move to b (until +2h): a frees first.
    expect(opensAt(allocate(pool, "s", true))).toBe(T0 + HOUR);
  });
});
