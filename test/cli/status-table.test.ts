import { create } from "@bufbuild/protobuf";
import pc from "picocolors";
import { describe, expect, it } from "vitest";
import {
  ClientLimitKind,
  FigureBasis,
  GetPoolStatusResponseSchema,
  InstanceRole,
  LimitWindow,
  NotificationChannel,
  ObservationSource,
  SubscriptionState,
  UsageFigureSchema,
} from "../../gen/authpool/v1/auth_pool_pb.js";
import { renderStatus } from "../../src/cli/status-table.js";
import { figureTag, usageBar } from "../../src/cli/usage-cell.js";

const plain = pc.createColors(false);
const colored = pc.createColors(true);
const NOW = Date.parse("2026-11-23T10:00:00Z");
const ts = (ms: number) => ({ seconds: BigInt(Math.floor(ms / 1000)), nanos: 0 });

describe("usageBar()", () => {
  it.each([
    { name: "empty", percent: 0, expected: "░░░░░░░░░░   0%" },
    { name: "half", percent: 52, expected: "█████░░░░░  52%" },
    { name: "full", percent: 100, expected: "██████████ 100%" },
    { name: "past full, the number says by how much", percent: 130, expected: "██████████ 130%" },
  ])("should draw $name", ({ percent, expected }) => {
    expect(usageBar(percent, plain)).toBe(expected);
  });
});

describe("figureTag()", () => {
  it.each([
    {
      name: "a fresh OAuth reading",
      figure: { basis: FigureBasis.UPSTREAM, source: ObservationSource.OAUTH_USAGE, age: { seconds: 42n } },
      tag: "oauth 42s",
    },
    {
      name: "a stale header reading",
      figure: {
        basis: FigureBasis.UPSTREAM_STALE,
        source: ObservationSource.RESPONSE_HEADERS,
        age: { seconds: 1200n },
      },
      tag: "stale headers 20m",
    },
    {
      name: "an old transcript reading",
      figure: { basis: FigureBasis.UPSTREAM, source: ObservationSource.TRANSCRIPT, age: { seconds: 10800n } },
      tag: "transcript 3h",
    },
    { name: "the learned ratio", figure: { basis: FigureBasis.LEARNED_ESTIMATE }, tag: "learned" },
    { name: "the budget", figure: { basis: FigureBasis.BUDGET_ESTIMATE }, tag: "budget" },
  ])("should tag $name as $tag", ({ figure, tag }) => {
    expect(figureTag(create(UsageFigureSchema, figure))).toBe(tag);
  });
});

describe("renderStatus()", () => {
  const res = create(GetPoolStatusResponseSchema, {
    now: ts(NOW),
    fallbackEnabled: true,
    fallbackProvider: "anthropic-api",
    totalSessions: 3,
    eligibleSubscriptions: 1,
    subscriptions: [
      {
        id: "pro-1",
        email: "ana@example.com",
        status: SubscriptionState.AVAILABLE,
        healthScore: 71.25,
        sessionCount: 3,
        activeSessions: 2,
        maxSessions: 15,
        fiveHourWindow: { percentUsed: 52, end: ts(NOW + 3 * 3600_000) },
        fiveHour: {
          percentUsed: 52,
          basis: FigureBasis.UPSTREAM,
          source: ObservationSource.OAUTH_USAGE,
          age: { seconds: 42n },
        },
        weeklyPercentUsed: 12,
        weekly: {
          percentUsed: 12,
          basis: FigureBasis.UPSTREAM,
          source: ObservationSource.OAUTH_USAGE,
          age: { seconds: 42n },
          resetsAt: ts(NOW + 2 * 86_400_000),
        },
      },
      {
        id: "pro-2",
        status: SubscriptionState.COOLDOWN,
        maxSessions: 15,
        fiveHourWindow: { percentUsed: 100 },
        weekly: {
          basis: FigureBasis.UPSTREAM_STALE,
          source: ObservationSource.RESPONSE_HEADERS,
          age: { seconds: 1200n },
        },
        cooldown: { until: ts(NOW + 80 * 60_000), window: LimitWindow.FIVE_HOUR, estimated: true },
      },
      {
        id: "max-1",
        status: SubscriptionState.PAUSED,
        maxSessions: 15,
        weekly: { basis: FigureBasis.LEARNED_ESTIMATE },
        external: { weeklyUsd: 1.2, fiveHourUsd: 0.3, weeklyEstimatedUsd: 0.4 },
        warnings: ["config dir /x does not exist"],
        usagePolling: { lastError: "no credentials" },
      },
      {
        id: "max-2",
        status: SubscriptionState.DRAINING,
        maxSessions: 15,
        weekly: { basis: FigureBasis.BUDGET_ESTIMATE },
      },
    ],
  });

  it("should show every figure with what it rests on", () => {
    const text = renderStatus(res, { colors: plain });
    expect(text.split("\n")[0]).toBe(
      "Auth Pool at 2026-11-23 10:00Z · 4 subscriptions (1 eligible) · 3 sessions · fallback anthropic-api",
    );
    for (const expected of [
      "█████░░░░░  52%",
      "resets in 3h",
      "resets in 2d",
      "oauth 42s",
      "stale headers 20m",
      "learned",
      "budget",
      "3/15",
      "2 active",
      "1h 20m left",
      "until 2026-11-23 11:20Z",
      "five_hour, estimated",
      "$1.20 this week (~$0.40 est.)",
      "usage polling: no credentials",
    ]) {
      expect(text).toContain(expected);
    }
    for (const [id, state] of [
      ["pro-1", "available"],
      ["pro-2", "cooldown"],
      ["max-1", "paused"],
      ["max-2", "draining"],
    ]) {
      expect(text.split("\n").find((line) => line.includes(` ${id} `))).toContain(state);
    }
  });

  it.each([
    {
      name: "an owner's use under a fixed threshold, and what auto would do",
      ownerUse: { outsideWeek: 0.184, learned: false, keptBack: 0 },
      shown: ["outside the pool", "18% of its week", "(auto would keep it back)"],
    },
    {
      name: "what a learned reserve keeps back",
      ownerUse: { outsideWeek: 0.184, learned: true, keptBack: 0.1 },
      shown: ["outside the pool", "18% of its week", "keeps back 10%"],
    },
    {
      name: "nothing for use under the reserve's 2% floor",
      ownerUse: { outsideWeek: 0.015, learned: false, keptBack: 0 },
      shown: [],
    },
  ])("should show $name", ({ ownerUse, shown }) => {
    const one = create(GetPoolStatusResponseSchema, {
      now: ts(NOW),
      subscriptions: [{ id: "pro-1", status: SubscriptionState.AVAILABLE, ownerUse }],
    });
    const text = renderStatus(one, { colors: plain });
    for (const expected of shown) expect(text).toContain(expected);
    if (shown.length === 0) expect(text).not.toMatch(/outside the pool|of its week/);
  });

  it("should leave out columns no subscription needs", () => {
    const quiet = create(GetPoolStatusResponseSchema, {
      now: ts(NOW),
      subscriptions: [{ id: "only", status: SubscriptionState.AVAILABLE }],
    });
    const text = renderStatus(quiet, { colors: plain });
    expect(text).not.toMatch(/cooldown|outside the pool|warnings/);
    expect(text).toContain("fallback off");
  });

  it.each([
    { state: "available", code: "\x1b[32m" },
    { state: "cooldown", code: "\x1b[31m" },
    { state: "paused", code: "\x1b[90m" },
    { state: "draining", code: "\x1b[90m" },
  ])("should colour $state", ({ state, code }) => {
    expect(renderStatus(res, { colors: colored })).toContain(`${code}${state}\x1b[39m`);
  });
});

describe("renderStatus() cluster line", () => {
  const base = { now: ts(NOW), subscriptions: [] };
  it("names a leader by its instance and epoch", () => {
    const res = create(GetPoolStatusResponseSchema, {
      ...base,
      cluster: {
        role: InstanceRole.LEADER,
        instanceId: "pool-a:50051",
        leaderId: "pool-a:50051",
        epoch: 4n,
        journalRecord: 12n,
      },
    });
    expect(renderStatus(res, { colors: plain }).split("\n")[1]).toBe("instance pool-a:50051 · leader · epoch 4");
  });

  it("says a standby follows which leader, where, and how far", () => {
    const res = create(GetPoolStatusResponseSchema, {
      ...base,
      cluster: {
        role: InstanceRole.STANDBY,
        instanceId: "0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d",
        leaderId: "pool-a:50051",
        leaderAddress: "http://pool-a:50051",
        epoch: 4n,
        leaseExpiresAt: ts(NOW + 60_000),
        journalRecord: 8812n,
        storeError: "",
      },
    });
    expect(renderStatus(res, { colors: plain }).split("\n")[1]).toBe(
      "instance 0b1c2d3e… · standby · leader pool-a:50051 at http://pool-a:50051 · epoch 4, lease until 2026-11-23 10:01Z · journal #8812",
    );
  });

  it("prints no cluster line for a server that sends none", () => {
    const res = create(GetPoolStatusResponseSchema, base);
    expect(renderStatus(res, { colors: plain })).not.toMatch(/instance|leader|standby/);
  });
});

describe("renderStatus() clients", () => {
  const res = create(GetPoolStatusResponseSchema, {
    now: ts(NOW),
    subscriptions: [{ id: "only", status: SubscriptionState.AVAILABLE }],
    totalSessions: 4,
    waiting: 3,
    clients: [
      {
        name: "ci-bot",
        sessions: 2,
        maxSessions: 2,
        weeklyUsd: 41.2,
        weeklyLimitUsd: 40,
        fiveHourUsd: 8.5,
        fiveHourLimitUsd: 10,
        share: 0.25,
        weight: 1,
        waiting: 3,
        limitedBy: {
          client: "ci-bot",
          kind: ClientLimitKind.WEEKLY_USD,
          detail: "client ci-bot: spent $41.20 in 7 days, its limit is $40.00",
        },
      },
      { name: "default", sessions: 2, weeklyUsd: 1.25, fiveHourUsd: 0.5, weight: 1 },
    ],
  });
  const text = renderStatus(res, { colors: plain });
  const cells = (name: string) =>
    (text.split("\n").find((l) => l.startsWith(`│ ${name} `)) ?? "")
      .split("│")
      .slice(1, -1)
      .map((c) => c.trim());

  it("should count the waiting calls in the summary line", () => {
    expect(text.split("\n")[0]).toBe(
      "Auth Pool at 2026-11-23 10:00Z · 1 subscription (0 eligible) · 4 sessions · 3 waiting · fallback off",
    );
  });

  it("should show each client's sessions, spend against its limits, waiting calls and the limit refusing it", () => {
    expect(cells("client")).toEqual(["client", "sessions", "weekly", "5-hour", "waiting", "limited by"]);
    expect(cells("ci-bot")).toEqual(["ci-bot", "2/2", "$41.20 of $40.00", "$8.50 of $10.00", "3", "weekly_usd"]);
    expect(text).toContain("share 25%");
    // No limit: the spend alone, no "of $0.00".
    expect(cells("default")).toEqual(["default", "2", "$1.25", "$0.50", "", ""]);
  });

  it("should colour spend red at the limit and yellow from 80% of it", () => {
    const coloured = renderStatus(res, { colors: colored });
    expect(coloured).toContain("\x1b[31m$41.20 of $40.00\x1b[39m");
    expect(coloured).toContain("\x1b[33m$8.50 of $10.00\x1b[39m");
  });

  it("should print no clients table and no waiting count when there are none", () => {
    const quiet = renderStatus(create(GetPoolStatusResponseSchema, { now: ts(NOW), subscriptions: [{ id: "only" }] }), {
      colors: plain,
    });
    expect(quiet).not.toMatch(/limited by|waiting/);
  });
});

describe("renderStatus() totals, --compact and --problems", () => {
  const sub = (i: number, extra: Record<string, unknown> = {}) => ({
    id: `subscription-with-a-long-name-${i}`,
    status: SubscriptionState.AVAILABLE,
    healthScore: 93.94,
    sessionCount: i % 16,
    maxSessions: 15,
    weeklyBudgetUsd: 456,
    weeklyPercentUsed: 50,
    fiveHourWindow: { percentUsed: 31 },
    ...extra,
  });
  const fifty = create(GetPoolStatusResponseSchema, {
    now: ts(NOW),
    subscriptions: Array.from({ length: 50 }, (_, i) =>
      i === 7
        ? sub(i, {
            status: SubscriptionState.COOLDOWN,
            weeklyPercentUsed: 120,
            cooldown: { until: ts(NOW + 80 * 60_000), window: LimitWindow.FIVE_HOUR },
            warnings: ["config dir /home/somebody/.claude-accounts/a-very-long-directory-name does not exist"],
          })
        : sub(i),
    ),
  });

  it("should sum the pool up under the subscriptions", () => {
    const res = create(GetPoolStatusResponseSchema, {
      now: ts(NOW),
      subscriptions: [
        sub(1, { sessionCount: 3, weeklyPercentUsed: 10 }),
        sub(2, { status: SubscriptionState.APPROACHING, sessionCount: 1, weeklyPercentUsed: 85 }),
        sub(3, {
          status: SubscriptionState.PAUSED,
          sessionCount: 0,
          maxSessions: 30,
          weeklyBudgetUsd: 2280,
          weeklyPercentUsed: 130,
        }),
      ],
    });
    const lines = renderStatus(res, { colors: plain }).split("\n");
    // $456 × 0.9 + $456 × 0.15 + nothing of the over-used $2280.
    expect(lines.at(-1)).toBe("total: 2/3 subscriptions available · sessions 4/60 · weekly left 15% (~$479 of $3192)");
  });

  it("should print one line per subscription, none wider than 100 columns, at 50 subscriptions", () => {
    const text = renderStatus(fifty, { colors: plain, compact: true });
    const lines = text.split("\n");
    const rows = lines.filter((l) => l.startsWith("subscriptio…"));
    expect(rows).toHaveLength(50);
    for (const line of lines.slice(1)) expect(line.length, line).toBeLessThanOrEqual(100);
    expect(lines[1]).toMatch(/^subscription +status +health +5-hour +weekly +sessions +note$/);
    // Ids are clipped in the middle: they differ at the end.
    expect(rows[0]).toMatch(/^subscriptio…-long-name-0 {2}available +93\.9 +31% +50% +0\/15$/);
    expect(rows[7]).toMatch(/cooldown +93\.9 +31% +120% +7\/15 {2}cooldown 1h 20m left; con…$/);
  });

  it("should keep the colours out of the width", () => {
    const lines = renderStatus(fifty, { colors: colored, compact: true }).split("\n");
    for (const line of lines.slice(1)) expect(line.replace(/\x1b\[[0-9;]*m/g, "").length).toBeLessThanOrEqual(100);
  });

  it("should show only the subscriptions that are not available with --problems, and total them all", () => {
    const text = renderStatus(fifty, { colors: plain, compact: true, problems: true });
    expect(text.split("\n").filter((l) => l.startsWith("subscriptio…"))).toEqual([
      expect.stringMatching(/^subscriptio…-long-name-7 {2}cooldown /),
    ]);
    expect(text).toContain("total: 49/50 subscriptions available");
    const table = renderStatus(fifty, { colors: plain, problems: true });
    expect(table.match(/│ subscription-with/g)).toHaveLength(1);
  });

  it("should say when there is no problem", () => {
    const fine = create(GetPoolStatusResponseSchema, { now: ts(NOW), subscriptions: [sub(1), sub(2)] });
    expect(renderStatus(fine, { colors: plain, problems: true })).toContain(
      "no problems: all 2 subscriptions are available",
    );
  });
});

describe("renderStatus() notifications", () => {
  const summary = (notifications: Record<string, unknown>) =>
    renderStatus(create(GetPoolStatusResponseSchema, { now: ts(NOW), notifications }), { colors: plain }).split(
      "\n",
    )[0];
  const error = "POST https://hooks.slack.com/…: HTTP 500";

  it("should say how far each channel got and which one is failing", () => {
    expect(
      summary({
        deliveredSequence: 40n,
        pending: 2,
        lastError: `slack: ${error}`,
        channels: [
          { channel: NotificationChannel.WEBHOOK, deliveredSequence: 42n, lastDeliveredAt: ts(NOW - 1000) },
          {
            channel: NotificationChannel.SLACK,
            deliveredSequence: 40n,
            pending: 2,
            lastError: error,
            lastErrorAt: ts(NOW),
            lastDeliveredAt: ts(NOW - 60_000),
          },
        ],
      }),
    ).toBe(
      "Auth Pool at 2026-11-23 10:00Z · 0 subscriptions (0 eligible) · 0 sessions · fallback off · " +
        `webhook delivered #42, 0 pending · slack delivered #40, 2 pending · slack failing: ${error}`,
    );
  });

  it("should not call a channel failing once it delivered after its last error", () => {
    const line = summary({
      channels: [
        {
          channel: NotificationChannel.SLACK,
          deliveredSequence: 41n,
          lastError: error,
          lastErrorAt: ts(NOW - 60_000),
          lastDeliveredAt: ts(NOW),
        },
      ],
    });
    expect(line).toContain("slack delivered #41, 0 pending");
    expect(line).not.toContain("failing");
  });

  it("should show an older server's one summary as before", () => {
    expect(summary({ deliveredSequence: 7n, pending: 1, lastError: error })).toContain(
      `webhook delivered #7, 1 pending · last error: ${error}`,
    );
  });
});
