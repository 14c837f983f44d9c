import { describe, expect, it } from "vitest";
import { ManualClock } from "../support/manual-clock.js";
import {
  SLACK_PATH,
  SLACK_TOKEN,
  type SlackBody,
  allDelivered,
  grantOf,
  messageText,
  reportLimit,
  slackPools,
} from "../support/slack.js";

const start = slackPools();
const LIMITS = [{ type: "limit_reached", channels: ["slack"] }];

describe("Slack alerts", () => {
  it("says which account hit which limit, and when it resets, in plain words", async () => {
    const { pool: p, slack: r } = await start({ clock: new ManualClock("2026-11-23T11:50:00Z"), rules: LIMITS });
    const { subscriptionId: sub } = grantOf(await p.grpc.allocate({ sessionId: "s1" }));
    await reportLimit(p.grpc, "s1", 1);
    await r.until(() => r.requests.length >= 1);

    expect(r.requests[0]!.path).toBe(SLACK_PATH);
    const body = r.delivered<SlackBody>()[0]!;
    expect(body.text).toBe(`:no_entry: *${sub}* (${sub}@example.com) hit its 5-hour limit`);
    const text = messageText(body);
    expect(text).toContain("until it resets 14:00 UTC, in 2 h 10 min.");
    expect(text).toContain("> You've hit your 5-hour limit · resets 2pm (UTC)");
    expect(text).toMatch(/Auth Pool · event \d+ at 11:50 UTC/);
  });

  it("sends one message for a burst of 50 identical limits, and another after the reset", async () => {
    const clock = new ManualClock("2026-11-23T11:50:00Z");
    const { pool: p, slack: r } = await start({ clock, rules: LIMITS });
    const { subscriptionId: sub } = grantOf(await p.grpc.allocate({ sessionId: "s1" }));
    for (let n = 1; n <= 50; n++) await reportLimit(p.grpc, "s1", n);
    const limits = [];
    for await (const e of p.server.feed.history(0, p.server.feed.headSeq))
      if (e.type === "limit_reached") limits.push(e);
    expect(limits).toHaveLength(50);
    await allDelivered(p);
    expect(r.requests).toHaveLength(1);

    // The window resets at 14:00: the sweep ends the cooldown, and the next limit is news again.
    clock.set("2026-11-23T14:00:01Z");
    await p.server.runJobs();
    await reportLimit(p.grpc, "s1", 51);
    await r.until(() => r.requests.length >= 2);
    const second = r.delivered<SlackBody>()[1]!;
    expect(second.text).toBe(`:no_entry: *${sub}* (${sub}@example.com) hit its 5-hour limit`);
    expect(messageText(second)).toContain("until it resets Tue 24 Nov 14:00 UTC, in 1 d.");
    await allDelivered(p);
    expect(r.requests).toHaveLength(2);
  });

  it("remembers across a restart what it already said", async () => {
    const { pool: p, slack: r } = await start({ rules: LIMITS });
    grantOf(await p.grpc.allocate({ sessionId: "s1" }));
    await reportLimit(p.grpc, "s1", 1);
    await r.until(() => r.requests.length >= 1);
    await allDelivered(p);
    await p.restart();
    await reportLimit(p.grpc, "s1", 2);
    await allDelivered(p);
    expect(r.requests).toHaveLength(1);
  });

  it("holds back repeats without a reset time for the cool-off", async () => {
    const clock = new ManualClock("2026-11-23T11:50:00Z");
    const { pool: p, slack: r } = await start({
      clock,
      rules: [{ type: "status_changed", channels: ["slack"] }],
      slack: { coolOffMinutes: 30 },
    });
    const pause = (paused: boolean) => p.grpc.setPaused({ subscriptionId: "sub2", paused });
    await pause(true);
    await pause(false);
    await pause(true);
    await pause(false);
    await allDelivered(p);
    expect(r.delivered<SlackBody>().map((b) => b.text)).toEqual([
      ":double_vertical_bar: *sub2* (sub2@example.com) is now paused (was available)",
      ":large_green_circle: *sub2* (sub2@example.com) is now available (was paused)",
    ]);
    clock.advance(30 * 60_000);
    await pause(true);
    await r.until(() => r.requests.length >= 3);
    expect(messageText(r.delivered<SlackBody>()[2]!)).toContain("Why: paused by an operator.");
  });

  it("retries a failing Slack and keeps its URL out of status and logs", async () => {
    const {
      pool: p,
      slack: r,
      lines,
    } = await start({
      rules: LIMITS,
      slack: { maxAttempts: 1 },
      // Slack's errors may quote the request; a leak would show the token.
      answer: (n) => (n < 2 ? { status: 500, body: `no_service for ${SLACK_PATH}` } : 200),
    });
    grantOf(await p.grpc.allocate({ sessionId: "s1" }));
    await reportLimit(p.grpc, "s1", 1);
    await r.until(() => r.delivered().length >= 1);
    expect(r.requests.map((q) => q.status)).toEqual([500, 500, 200]);
    const status = await p.grpc.getPoolStatus({});
    expect(status.notifications?.lastError).toMatch(/^POST http:\/\/127\.0\.0\.1:\d+\/…: HTTP 500/);
    const shown = `${JSON.stringify(status, (_k, v: unknown) => (typeof v === "bigint" ? String(v) : v))}\n${lines.join("\n")}`;
    expect(lines.some((l) => l.includes("slack delivery failing, will retry"))).toBe(true);
    expect(shown).not.toContain(SLACK_TOKEN);
    expect(shown).not.toContain("B0ALERTS");
  });
});
