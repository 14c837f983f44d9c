import { describe, expect, it } from "vitest";
import { type EventBody, relativeTime } from "../../src/domain/index.js";
import { utcTime, whenText } from "../../src/notify/human-time.js";
import { type SlackContext, slackAlert } from "../../src/notify/slack-alert.js";
import { slackBody } from "../../src/notify/slack-payload.js";

const NOW = Date.parse("2026-11-23T11:50:00Z");
const MIN = 60_000;
const HOUR = 60 * MIN;

const ctx: SlackContext = {
  now: NOW,
  email: (id) => (id === "sub3" ? "" : `${id}@example.com`),
  cooldownEnd: (id) => (id === "sub1" ? Date.parse("2026-11-23T14:00:00Z") : undefined),
  weeklyReset: (id) => (id === "sub1" ? Date.parse("2026-11-27T09:00:00Z") : undefined),
};

describe("human times", () => {
  it.each<[string, number, string]>([
    ["later today", Date.parse("2026-11-23T14:00:00Z"), "14:00 UTC, in 2 h 10 min"],
    ["whole hours", NOW + 3 * HOUR, "14:50 UTC, in 3 h"],
    ["minutes", NOW + 5 * MIN + 20_000, "11:55 UTC, in 5 min"],
    ["under a minute", NOW + 20_000, "11:50 UTC, in less than a minute"],
    ["another day", Date.parse("2026-11-27T09:00:00Z"), "Fri 27 Nov 09:00 UTC, in 3 d 21 h"],
    ["the past", NOW - 90 * MIN, "10:20 UTC, 1 h 30 min ago"],
  ])("%s", (_name, t, expected) => {
    expect(whenText(t, NOW)).toBe(expected);
  });

  it("names the day only when it is not today", () => {
    expect(utcTime(Date.parse("2026-11-23T23:59:00Z"), NOW)).toBe("23:59 UTC");
    expect(utcTime(Date.parse("2026-11-24T00:00:00Z"), NOW)).toBe("Tue 24 Nov 00:00 UTC");
    expect(relativeTime(NOW + 26 * HOUR, NOW)).toBe("in 1 d 2 h");
  });
});

describe("slackAlert()", () => {
  const cases: [string, EventBody, string, string[]][] = [
    [
      "a limit with its reset",
      {
        type: "limit_reached",
        subscriptionId: "sub1",
        kind: "upstream",
        window: "seven_day_opus",
        resetsAt: Date.parse("2026-11-23T14:00:00Z"),
        estimated: true,
        message: "You've hit your Opus limit",
        modelScope: "opus",
      },
      ":no_entry: *sub1* (sub1@example.com) hit its weekly Opus limit",
      ["until it resets 14:00 UTC, in 2 h 10 min (estimated).", "> You've hit your Opus limit"],
    ],
    [
      "a limit without a reset time, on an account without an email",
      {
        type: "limit_reached",
        subscriptionId: "sub3",
        kind: "upstream",
        window: "unknown",
        estimated: false,
        message: "",
      },
      ":no_entry: *sub3* hit its usage limit",
      ["no reset time was given"],
    ],
    [
      "the weekly threshold",
      {
        type: "limit_reached",
        subscriptionId: "sub1",
        kind: "weekly_threshold",
        window: "seven_day",
        estimated: false,
        message: "weekly use 86.0% reached the 85.0% threshold",
      },
      ":warning: *sub1* (sub1@example.com) reached its weekly threshold",
      ["weekly use 86.0% reached the 85.0% threshold.", "Its week resets Fri 27 Nov 09:00 UTC, in 3 d 21 h."],
    ],
    [
      "a failover: from which accounts, to what, and why",
      {
        type: "fallback_used",
        sessionId: "s9",
        provider: "anthropic-api",
        reason: "no eligible subscription: sub1: cooling down until 2026-11-23T14:00:00.000Z; sub2: expired",
        client: "ci",
        exclusions: [
          { subscriptionId: "sub1", reason: "cooldown", detail: "cooling down until 2026-11-23T14:00:00.000Z" },
          { subscriptionId: "sub2", reason: "credentials_expired", detail: "" },
          { subscriptionId: "sub3", reason: "weekly_threshold", detail: "weekly use 90.0% >= 85.0% threshold" },
        ],
      },
      ":money_with_wings: Session s9 of client *ci* failed over to the paid API (anthropic-api)",
      [
        "No subscription could take it:",
        "• *sub1* (sub1@example.com): in cooldown until 14:00 UTC, in 2 h 10 min",
        "• *sub2* (sub2@example.com): login expired",
        "• *sub3*: over its weekly threshold (weekly use 90.0% &gt;= 85.0% threshold)",
      ],
    ],
    [
      "a failover for a client over its own limit",
      {
        type: "fallback_used",
        sessionId: "s10",
        provider: "anthropic-api",
        reason: "client ci: $41.20 of its $40.00 a week (weekly_usd limit)",
        client: "ci",
        exclusions: [],
        clientLimit: { client: "ci", kind: "weekly_usd", detail: "client ci: $41.20 of its $40.00 a week" },
      },
      ":money_with_wings: Session s10 of client *ci* failed over to the paid API (anthropic-api)",
      ["Why: the client is over a limit of its own: client ci: $41.20 of its $40.00 a week."],
    ],
    [
      "a client refused by its own limit, with fallback off",
      {
        type: "client_limited",
        sessionId: "s11",
        clientLimit: {
          client: "ci",
          kind: "max_sessions",
          detail: "client ci: holds 4 sessions, its most (maxSessions 4)",
        },
      },
      ":no_entry_sign: Client *ci* is refused new sessions (its max_sessions limit)",
      [
        "Why: client ci: holds 4 sessions, its most (maxSessions 4).",
        "Its fallback to the paid API is off: its calls get RESOURCE_EXHAUSTED until its use drops or its limit is raised.",
      ],
    ],
    [
      "a session moved between accounts",
      { type: "session_rotated", sessionId: "s1", from: "sub1", to: "sub2", reason: "cooldown", detail: "" },
      ":twisted_rightwards_arrows: Session s1 moved from *sub1* (sub1@example.com) to *sub2* (sub2@example.com)",
      ["Why: its subscription hit a limit."],
    ],
    [
      "a usage threshold, with the run-out time and the week's reset",
      {
        type: "usage_threshold",
        subscriptionId: "sub1",
        value: 0.823,
        threshold: 0.8,
        basis: "upstream_seven_day",
        timeToExhaustionMs: 10 * HOUR,
      },
      ":chart_with_upwards_trend: *sub1* (sub1@example.com) passed 80% of its week",
      ["82% used (as Claude reports it).", "runs out in 10 h.", "Its week resets Fri 27 Nov 09:00 UTC"],
    ],
    [
      "a status change with why, and until when",
      { type: "status_changed", subscriptionId: "sub1", from: "available", to: "cooldown", reason: "usage limit" },
      ":red_circle: *sub1* (sub1@example.com) is now in cooldown (was available)",
      ["Why: usage limit.", "Until 14:00 UTC, in 2 h 10 min."],
    ],
    [
      "a login lost",
      {
        type: "status_changed",
        subscriptionId: "sub2",
        from: "available",
        to: "signed_out",
        reason: "credentials expired at 09:00",
      },
      ":lock: *sub2* (sub2@example.com) lost its login",
      ["Why: credentials expired at 09:00.", "claude /login"],
    ],
    [
      "markup from outside is escaped",
      { type: "status_changed", subscriptionId: "sub2", from: "available", to: "paused", reason: "<!channel> & co" },
      ":double_vertical_bar: *sub2* (sub2@example.com) is now paused (was available)",
      ["Why: &lt;!channel&gt; &amp; co."],
    ],
  ];

  it.each(cases)("%s", (_name, body, headline, details) => {
    const text = slackAlert({ ...body, seq: 7, at: NOW }, ctx);
    expect(text?.headline).toBe(headline);
    for (const d of details) expect(text?.details.join("\n")).toContain(d);
  });

  it("is silent on bookkeeping", () => {
    expect(
      slackAlert({ type: "paused_set", subscriptionId: "sub1", paused: true, seq: 1, at: NOW }, ctx),
    ).toBeUndefined();
  });
});

describe("slackBody()", () => {
  it("is an incoming-webhook payload: text, and blocks Slack accepts", () => {
    const details = Array.from({ length: 400 }, (_, i) => `• line ${i} ${"x".repeat(100)}`);
    const body = JSON.parse(slackBody({ headline: "*head*", details }, "footer")) as {
      text: string;
      blocks: { type: string; text?: { text: string } }[];
    };
    expect(body.text).toBe("*head*");
    expect(body.blocks.length).toBeLessThanOrEqual(50);
    for (const b of body.blocks.filter((x) => x.type === "section"))
      expect(b.text!.text.length).toBeLessThanOrEqual(3000);
    expect(body.blocks.at(-1)).toEqual({ type: "context", elements: [{ type: "mrkdwn", text: "footer" }] });
  });
});
