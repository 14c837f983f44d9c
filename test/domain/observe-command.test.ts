import { describe, expect, it } from "vitest";
import { Pool, createPoolState, type PoolEvent } from "../../src/domain/index.js";
import { poolSettings } from "../support/settings.js";

const T0 = Date.parse("2026-11-23T10:00:00Z");
const HOUR = 3_600_000;

function makePool(): Pool {
  return new Pool(createPoolState(["a", "b"]), poolSettings(["a", "b"]));
}

const types = (events: PoolEvent[]) => events.map((e) => e.type);

describe("Pool.run(observe)", () => {
  it("records readings: upstream utilization replaces the local weekly estimate", () => {
    const pool = makePool();
    const { events, result } = pool.run(
      {
        kind: "observe",
        subscriptionId: "a",
        source: "usage endpoint",
        readings: [{ window: "seven_day", status: "allowed", utilization: 0.42, resetsAt: T0 + 48 * HOUR }],
      },
      T0,
    );
    expect(types(events)).toEqual(["upstream_observed"]);
    expect(result).toMatchObject({ kind: "observed", view: { weekly: { value: 0.42, basis: "upstream" } } });
  });

  it("benches a subscription whose window upstream reports rejected, once per limit", () => {
    const pool = makePool();
    const reading = {
      window: "five_hour" as const,
      status: "rejected" as const,
      utilization: 1,
      resetsAt: T0 + 2 * HOUR,
    };
    const first = pool.run({ kind: "observe", subscriptionId: "a", source: "usage endpoint", readings: [reading] }, T0);
    expect(types(first.events)).toEqual(["upstream_observed", "limit_reached", "status_changed"]);
    expect(first.result).toMatchObject({ view: { status: "cooldown" } });
    const again = pool.run(
      { kind: "observe", subscriptionId: "a", source: "usage endpoint", readings: [reading] },
      T0 + 90_000,
    );
    expect(types(again.events)).toEqual(["upstream_observed"]);
    const grant = pool.run(
      { kind: "allocate", sessionId: "s", priority: "normal", model: "", estimatedTokens: 0 },
      T0 + 100_000,
    );
    expect(grant.result).toMatchObject({ kind: "granted", view: { cfg: { id: "b" } } });
  });

  it("scopes an Opus cap to opus sessions", () => {
    const pool = makePool();
    pool.run(
      {
        kind: "observe",
        subscriptionId: "a",
        source: "usage endpoint",
        readings: [{ window: "seven_day_opus", status: "rejected", utilization: 1, resetsAt: T0 + 24 * HOUR }],
      },
      T0,
    );
    pool.run({ kind: "set_paused", subscriptionId: "b", paused: true }, T0);
    const opus = pool.run(
      { kind: "allocate", sessionId: "o", priority: "normal", model: "opus", estimatedTokens: 0 },
      T0,
    );
    expect(opus.result).toMatchObject({ kind: "fallback" });
    const sonnet = pool.run(
      { kind: "allocate", sessionId: "s", priority: "normal", model: "sonnet", estimatedTokens: 0 },
      T0,
    );
    expect(sonnet.result).toMatchObject({ kind: "granted", view: { cfg: { id: "a" } } });
  });

  it("refuses an unknown subscription without changing anything", () => {
    const pool = makePool();
    const { events, result } = pool.run({ kind: "observe", subscriptionId: "zz", source: "x", readings: [] }, T0);
    expect(events).toEqual([]);
    expect(result).toMatchObject({ kind: "rejected", code: "not_found" });
  });
});
