import { describe, expect, it } from "vitest";
import { ManualClock } from "../support/manual-clock.js";
import { SLACK_PATH, type SlackBody, grantOf, messageText, reportLimit, slackPools } from "../support/slack.js";
import { fixture } from "../support/test-server.js";

const start = slackPools();
const DIGEST_AT_9 = { digest: { enabled: true, hour: 9 } };

describe("Slack daily digest", () => {
  it("posts one summary a day at the hour, by the injected clock, and none twice across a restart", async () => {
    const clock = new ManualClock("2026-11-23T08:00:00Z");
    const { pool: p, slack: r } = await start({ clock, slack: DIGEST_AT_9 });

    // A day's work: use, a limit, and a session every subscription refused.
    const { subscriptionId: used } = grantOf(await p.grpc.allocate({ sessionId: "s1" }));
    const success = await fixture("claude-cli/success.json");
    await p.grpc.reportUsage({ sessionId: "s1", requestId: "ok", source: { case: "claudeOutput", value: success } });
    await reportLimit(p.grpc, "s1", 1);
    for (const id of ["sub1", "sub2", "sub3"]) await p.grpc.setPaused({ subscriptionId: id, paused: true });
    await p.grpc.allocate({ sessionId: "f1", client: "ci" });
    for (const id of ["sub1", "sub2", "sub3"]) await p.grpc.setPaused({ subscriptionId: id, paused: false });

    clock.set("2026-11-23T08:59:59Z");
    await p.server.runJobs();
    expect(r.requests).toHaveLength(0);

    clock.set("2026-11-23T09:00:00Z");
    await p.server.runJobs();
    expect(r.requests).toHaveLength(1);
    expect(r.requests[0]!.path).toBe(SLACK_PATH);
    const first = r.delivered<SlackBody>()[0]!;
    expect(first.text).toBe(":bar_chart: *Auth Pool daily digest*, the 24 h to Mon 23 Nov 09:00 UTC");
    const text = messageText(first);
    const line = (id: string) => text.split("\n").find((l) => l.startsWith(`• *${id}*`)) ?? "";
    expect(line(used)).toMatch(
      new RegExp(
        `^• \\*${used}\\* \\(${used}@example\\.com\\): weekly \\d+% used; 1 limit hit \\(5-hour\\); \\$0\\.06 in 24 h, \\$0\\.06 this week; in cooldown$`,
      ),
    );
    const idle = ["sub1", "sub2", "sub3"].find((id) => id !== used)!;
    expect(line(idle)).toBe(
      `• *${idle}* (${idle}@example.com): weekly 0% used; no limit hit; $0.00 in 24 h, $0.00 this week; available`,
    );
    expect(text).toContain("1 session failed over to the paid API (by client: ci 1).");
    expect(text).toContain("Auth Pool · daily digest for 2026-11-23");

    clock.set("2026-11-23T09:30:00Z");
    await p.server.runJobs();
    await p.restart();
    await p.server.runJobs();
    expect(r.requests).toHaveLength(1);

    // The next day's covers only its own 24 hours.
    clock.set("2026-11-24T09:00:00Z");
    await p.server.runJobs();
    expect(r.requests).toHaveLength(2);
    const second = messageText(r.delivered<SlackBody>()[1]!);
    expect(second).toContain(`• *${used}* (${used}@example.com): weekly`);
    expect(second).not.toContain("limit hit (");
    expect(second).toContain("No session failed over to the paid API.");
  });

  it("starts with the next hour when enabled after today's, and sends one missed while the pool was down", async () => {
    const clock = new ManualClock("2026-11-23T15:00:00Z");
    const { pool, slack: r } = await start({ clock, slack: DIGEST_AT_9 });
    await pool.server.runJobs();
    expect(r.requests).toHaveLength(0);
    await pool.server.close();
    clock.set("2026-11-24T11:00:00Z");
    await pool.restart();
    await pool.server.runJobs();
    expect(r.requests).toHaveLength(1);
    expect(r.delivered<SlackBody>()[0]!.text).toContain("the 24 h to Tue 24 Nov 11:00 UTC");
  });

  it("tries a failed digest again after the retry pause, still once that day", async () => {
    const clock = new ManualClock("2026-11-23T08:00:00Z");
    const { pool, slack: r } = await start({
      clock,
      slack: { ...DIGEST_AT_9, maxAttempts: 2, retryPauseSeconds: 600 },
      answer: (n) => (n < 2 ? 503 : 200),
    });
    await pool.server.runJobs();
    clock.set("2026-11-23T09:00:00Z");
    await pool.server.runJobs();
    expect(r.requests.map((q) => q.status)).toEqual([503, 503]);
    clock.set("2026-11-23T09:09:59Z");
    await pool.server.runJobs();
    expect(r.requests).toHaveLength(2);
    clock.set("2026-11-23T09:10:00Z");
    await pool.server.runJobs();
    expect(r.requests.map((q) => q.status)).toEqual([503, 503, 200]);
    clock.set("2026-11-23T12:00:00Z");
    await pool.server.runJobs();
    expect(r.requests).toHaveLength(3);
  });
});
