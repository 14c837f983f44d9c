import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { GetPoolStatusResponseSchema } from "../../src/client/index.js";
import { Ledger, type Tokens, checkStatus } from "../../bench/torture/ledger.js";

/**
 * The torture runs are only as good as their checks: each case here breaks
 * the pool's books one way and expects checkStatus to say so.
 */
const tokens: Tokens = { input: 100, output: 50, cacheCreation: 10, cacheRead: 1000 };
const LEDGER = { sessionsStay: true };

/** A quiet ledger: a on sub1 with one report of $1.5 counted, b granted and released. */
function books(): Ledger {
  const l = new Ledger(LEDGER);
  l.allocateSent("a", false);
  l.allocateGranted("a", "sub1", false, false);
  const r = l.reportSent("a", "a-1", 1.5, tokens);
  l.reportAcked(r, { duplicate: false, countedCostUsd: 1.5, subscriptionId: "sub1" });
  l.allocateSent("b", false);
  l.allocateGranted("b", "sub1", false, false);
  l.releaseSent("b", false);
  l.releaseAcked("b", true, false);
  return l;
}

interface Shape {
  sessions?: { id: string; sub: string; requests?: number; cost?: number; input?: number }[];
  weekly?: number;
  count?: number;
  max?: number;
  total?: number;
}

/** status builds the reply a correct pool gives for books(), with the given parts changed. */
function status(shape: Shape = {}) {
  const sessions = shape.sessions ?? [{ id: "a", sub: "sub1" }];
  return create(GetPoolStatusResponseSchema, {
    subscriptions: [
      {
        id: "sub1",
        weeklyUsedUsd: shape.weekly ?? 1.5,
        sessionCount: shape.count ?? sessions.filter((s) => s.sub === "sub1").length,
        maxSessions: shape.max ?? 2,
      },
    ],
    sessions: sessions.map((s) => ({
      sessionId: s.id,
      subscriptionId: s.sub,
      requests: s.requests ?? 1,
      costUsd: s.cost ?? 1.5,
      inputTokens: BigInt(s.input ?? tokens.input),
      outputTokens: BigInt(tokens.output),
      cacheCreationInputTokens: BigInt(tokens.cacheCreation),
      cacheReadInputTokens: BigInt(tokens.cacheRead),
    })),
    totalSessions: shape.total ?? sessions.length,
  });
}

describe("checkStatus()", () => {
  it("should pass the books as they are", () => {
    const l = books();
    expect(checkStatus(status(), l.capture(), l.capture(), { ...LEDGER, exact: true })).toEqual([]);
  });

  it.each<[string, Shape, RegExp]>([
    [
      "a report counted twice",
      { weekly: 3, sessions: [{ id: "a", sub: "sub1", requests: 2, cost: 3, input: 200 }] },
      /requests 2, expected 1/,
    ],
    [
      "a report lost",
      { weekly: 0, sessions: [{ id: "a", sub: "sub1", requests: 0, cost: 0, input: 0 }] },
      /weekly_used_usd 0, expected 1.5/,
    ],
    ["tokens off by one", { sessions: [{ id: "a", sub: "sub1", input: 101 }] }, /input_tokens 101, expected 100/],
    ["an acknowledged allocation lost", { sessions: [], weekly: 1.5 }, /session a was granted .* but is not held/],
    [
      "a released session back",
      {
        sessions: [
          { id: "a", sub: "sub1" },
          { id: "b", sub: "sub1", requests: 0, cost: 0, input: 0 },
        ],
      },
      /session b is held after its release/,
    ],
    [
      "a session never asked for",
      {
        sessions: [
          { id: "a", sub: "sub1" },
          { id: "zz", sub: "sub1", requests: 0, cost: 0, input: 0 },
        ],
      },
      /zz is held but was never allocated/,
    ],
    [
      "a session held twice",
      {
        sessions: [
          { id: "a", sub: "sub1" },
          { id: "a", sub: "sub1" },
        ],
      },
      /session a is listed twice/,
    ],
    ["over capacity", { max: 0 }, /over its max_sessions 0/],
    ["counts that disagree", { count: 2 }, /session_count 2 but 1 sessions listed/],
    [
      "a session on another subscription",
      { sessions: [{ id: "a", sub: "sub2" }] },
      /session a is on sub2, granted on sub1/,
    ],
  ])("should catch %s", (_name, shape, expected) => {
    const l = books();
    const problems = checkStatus(status(shape), l.capture(), l.capture(), { ...LEDGER, exact: true });
    expect(problems.join("\n")).toMatch(expected);
  });

  it("should accept, while a report is in flight, either side of it but nothing beyond", () => {
    const l = books();
    const before = l.capture();
    l.reportSent("a", "a-2", 0.25, tokens);
    const after = l.capture();
    const counted = { weekly: 1.75, sessions: [{ id: "a", sub: "sub1", requests: 2, cost: 1.75, input: 200 }] };
    expect(checkStatus(status(), before, after, LEDGER)).toEqual([]);
    expect(checkStatus(status(counted), before, after, LEDGER)).toEqual([]);
    const twice = { weekly: 2, sessions: [{ id: "a", sub: "sub1", requests: 3, cost: 2, input: 300 }] };
    expect(checkStatus(status(twice), before, after, LEDGER).join("\n")).toMatch(/requests 3, expected 1..2/);
  });
});

describe("Ledger", () => {
  it("should count a retried report once whichever attempt landed", () => {
    const l = books();
    const r = l.reportSent("a", "a-2", 0.5, tokens);
    // The first attempt's connection died; the retry says it had landed.
    l.reportSent("a", "a-2", 0.5, tokens);
    l.reportAcked(r, { duplicate: true, countedCostUsd: 0, subscriptionId: "sub1" });
    expect(l.totals().usd).toBe(2);
    expect(l.retries.report).toEqual({ sent: 1, landed: 1 });
    expect(l.violations).toEqual([]);
  });

  it.each<[string, (l: Ledger) => void, RegExp]>([
    [
      "a first attempt answered duplicate",
      (l) =>
        l.reportAcked(l.reportSent("a", "a-9", 1, tokens), {
          duplicate: true,
          countedCostUsd: 0,
          subscriptionId: "sub1",
        }),
      /first attempt was answered "duplicate"/,
    ],
    [
      "a counted cost that differs",
      (l) =>
        l.reportAcked(l.reportSent("a", "a-9", 1, tokens), {
          duplicate: false,
          countedCostUsd: 2,
          subscriptionId: "sub1",
        }),
      /counted_cost_usd 2, expected 1/,
    ],
    [
      "a fresh session answered resumed",
      (l) => {
        l.allocateSent("c", false);
        l.allocateGranted("c", "sub1", true, false);
      },
      /not held was answered "resumed"/,
    ],
    [
      "a held session answered not held",
      (l) => {
        l.releaseSent("a", false);
        l.releaseAcked("a", false, false);
      },
      /a held session was answered "not held"/,
    ],
  ])("should flag %s", (_name, act, expected) => {
    const l = books();
    act(l);
    expect(l.violations.join("\n")).toMatch(expected);
  });
});
