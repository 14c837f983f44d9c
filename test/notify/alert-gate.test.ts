import { describe, expect, it } from "vitest";
import type { EventBody, PoolEvent } from "../../src/domain/index.js";
import { AlertGate } from "../../src/notify/alert-gate.js";

const T0 = Date.parse("2026-11-23T10:00:00Z");
const MIN = 60_000;
const HOUR = 60 * MIN;
const COOL_OFF = HOUR;

let seq = 0;
const at = (ms: number, body: EventBody): PoolEvent => ({ ...body, seq: ++seq, at: T0 + ms });

const limit = (ms: number, over: Partial<Extract<EventBody, { type: "limit_reached" }>> = {}) =>
  at(ms, {
    type: "limit_reached",
    subscriptionId: "sub1",
    kind: "upstream",
    window: "five_hour",
    resetsAt: T0 + 4 * HOUR,
    estimated: false,
    message: "You've hit your 5-hour limit",
    ...over,
  });
const status = (ms: number, to: "paused" | "available" | "signed_out", subscriptionId = "sub1") =>
  at(ms, { type: "status_changed", subscriptionId, from: "available", to, reason: "r" });
const threshold = (ms: number, value = 0.82) =>
  at(ms, { type: "usage_threshold", subscriptionId: "sub1", value, threshold: 0.8, basis: "weekly_budget" });

/** sent plays events through a gate as the dispatcher does and returns the sequences it let through. */
function sent(events: PoolEvent[], gate = new AlertGate(COOL_OFF)): number[] {
  const out: number[] = [];
  for (const e of events) {
    const admitted = gate.admits(e);
    // Events that only clear a condition are no alert: the gate has no say on them.
    if (admitted && !e.type.endsWith("_cleared")) out.push(e.seq);
    gate.passed(e, admitted);
  }
  return out;
}

describe("AlertGate", () => {
  it.each<[string, () => PoolEvent[], number[]]>([
    ["a limit repeated before its reset: once", () => [limit(0), limit(MIN), limit(2 * HOUR)], [0]],
    ["a limit after its reset time: again", () => [limit(0), limit(4 * HOUR + 1)], [0, 1]],
    [
      "a limit after its cooldown ended early: again",
      () => [
        limit(0),
        at(MIN, {
          type: "cooldown_cleared",
          subscriptionId: "sub1",
          target: "cooldown",
          window: "five_hour",
          cause: "operator",
          detail: "",
        }),
        limit(2 * MIN),
      ],
      [0, 2],
    ],
    [
      "a throttle cleared does not end a limit",
      () => [
        limit(0),
        at(MIN, {
          type: "cooldown_cleared",
          subscriptionId: "sub1",
          target: "throttle",
          window: "five_hour",
          cause: "operator",
          detail: "",
        }),
        limit(2 * MIN),
      ],
      [0],
    ],
    [
      "another window of the same account: its own alert",
      () => [limit(0), limit(MIN, { window: "seven_day" })],
      [0, 1],
    ],
    ["another account: its own alert", () => [limit(0), limit(MIN, { subscriptionId: "sub2" })], [0, 1]],
    ["another model scope: its own alert", () => [limit(0), limit(MIN, { modelScope: "opus" })], [0, 1]],
    [
      "a limit without a reset time: the cool-off",
      () => [
        limit(0, { resetsAt: undefined }),
        limit(59 * MIN, { resetsAt: undefined }),
        limit(HOUR, { resetsAt: undefined }),
      ],
      [0, 2],
    ],
    [
      "a status flapping: once per cool-off",
      () => [status(0, "paused"), status(MIN, "paused"), status(HOUR + 1, "paused")],
      [0, 2],
    ],
    [
      "a status change to another status: its own alert",
      () => [status(0, "paused"), status(MIN, "signed_out")],
      [0, 1],
    ],
    [
      "a threshold: until use drops back below it",
      () => [
        threshold(0),
        threshold(2 * HOUR),
        at(3 * HOUR, { type: "usage_threshold_cleared", subscriptionId: "sub1", threshold: 0.8 }),
        threshold(4 * HOUR),
      ],
      [0, 3],
    ],
    [
      "failovers: once per client and cool-off",
      () => [
        at(0, {
          type: "fallback_used",
          sessionId: "a",
          provider: "api",
          reason: "all busy",
          exclusions: [],
          client: "ci",
        }),
        at(MIN, {
          type: "fallback_used",
          sessionId: "b",
          provider: "api",
          reason: "all busy",
          exclusions: [],
          client: "ci",
        }),
        at(2 * MIN, {
          type: "fallback_used",
          sessionId: "c",
          provider: "api",
          reason: "all busy",
          exclusions: [],
          client: "bob",
        }),
      ],
      [0, 2],
    ],
    [
      "client refusals: once per client and limit within the cool-off",
      () => {
        const limited = (t: number, client: string, kind: "max_sessions" | "weekly_usd") =>
          at(t, { type: "client_limited", sessionId: `s${t}`, clientLimit: { client, kind, detail: "" } });
        return [
          limited(0, "ci", "max_sessions"),
          limited(MIN, "ci", "max_sessions"),
          limited(2 * MIN, "ci", "weekly_usd"),
          limited(3 * MIN, "bob", "max_sessions"),
          limited(2 * HOUR, "ci", "max_sessions"),
        ];
      },
      [0, 2, 3, 4],
    ],
  ])("%s", (_name, events, expected) => {
    seq = 0;
    const list = events();
    expect(sent(list)).toEqual(expected.map((i) => list[i]!.seq));
  });

  it("holds an alert only once it was sent: one not sent (closing mid-delivery) goes out again", () => {
    const gate = new AlertGate(COOL_OFF);
    const first = limit(0);
    expect(gate.admits(first)).toBe(true);
    gate.passed(first, false);
    expect(gate.admits(limit(MIN))).toBe(true);
  });

  it("restores what it saved, and starts empty from garbage", () => {
    const gate = new AlertGate(COOL_OFF);
    gate.passed(limit(0), true);
    const copy = new AlertGate(COOL_OFF);
    copy.restore(gate.save());
    expect(copy.admits(limit(MIN))).toBe(false);
    expect(copy.save()).toBe(gate.save());
    for (const garbage of ["{", "[1,2]", '{"a":1}', '[["k","soon"]]']) {
      copy.restore(garbage);
      expect(copy.admits(limit(MIN))).toBe(true);
    }
  });

  it("forgets holds that ran out, so what it saves stays small", () => {
    const gate = new AlertGate(COOL_OFF);
    for (let i = 0; i < 100; i++) gate.passed(status(i * 2 * HOUR, "paused", `sub${i}`), true);
    expect(JSON.parse(gate.save())).toHaveLength(1);
  });
});
