import { writeFile } from "node:fs/promises";
import path from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { type Sample, sampleValue, scrape } from "../support/exposition.js";
import { type Answer, Receiver } from "../support/http-receiver.js";
import { SLACK_PATH, SLACK_TOKEN, allDelivered } from "../support/slack.js";
import { type TestPool, startTestPool, testConfigRaw } from "../support/test-server.js";

let opened: { pool: TestPool; receivers: Receiver[] }[] = [];
afterEach(async () => {
  for (const { pool, receivers } of opened.splice(0)) {
    await pool.close();
    await Promise.all(receivers.map((r) => r.close()));
  }
  opened = [];
});

/** startBoth starts a pool whose session events go to a local webhook and a local stand-in for Slack. */
async function startBoth(answers: { webhook?: (n: number) => Answer; slack?: (n: number) => Answer }) {
  const webhook = new Receiver();
  const slack = new Receiver();
  if (answers.webhook !== undefined) webhook.answer = answers.webhook;
  if (answers.slack !== undefined) slack.answer = answers.slack;
  const pool = await startTestPool({
    config: {
      notifications: {
        rules: [{ type: "session", channels: ["webhook", "slack"] }],
        webhook: { url: await webhook.listen(), secret: "whsec-0123456789", maxAttempts: 1, retryPauseSeconds: 0.05 },
        slack: { url: await slack.listen(SLACK_PATH), maxAttempts: 1, retryPauseSeconds: 0.05, timeoutMs: 60_000 },
      },
    },
    webhookBackoff: { baseMs: 1, maxMs: 5 },
  });
  opened.push({ pool, receivers: [webhook, slack] });
  return { pool, webhook, slack };
}

const metric = (samples: Sample[], name: string, labels: Record<string, string> = {}) =>
  sampleValue(samples, `authpool_${name}`, labels);

describe("GET /metrics for notification channels", () => {
  it("counts Slack's deliveries, refusals and failures beside the webhook's, by channel", async () => {
    // Slack fails twice, then refuses the first event for good (400), then takes the rest.
    const { pool: p, webhook, slack } = await startBoth({ slack: (n) => (n < 2 ? 500 : n === 2 ? 400 : 200) });
    await p.grpc.allocate({ sessionId: "s1" });
    await slack.until(() => slack.requests.length >= 3);
    await p.grpc.allocate({ sessionId: "s2" });
    await allDelivered(p);
    expect(slack.requests.map((r) => r.status)).toEqual([500, 500, 400, 200]);
    const delivered = webhook.delivered().length;
    expect(delivered).toBe(2);

    const s = await scrape(p);
    expect(metric(s, "notification_deliveries_total", { channel: "slack", outcome: "delivered" })).toBe(1);
    expect(metric(s, "notification_deliveries_total", { channel: "slack", outcome: "refused" })).toBe(1);
    // Two failed attempts and the refusal, as the webhook's webhook_failures_total has always counted.
    expect(metric(s, "notification_failures_total", { channel: "slack" })).toBe(3);
    expect(metric(s, "notification_pending_events", { channel: "slack" })).toBe(0);
    expect(metric(s, "notification_deliveries_total", { channel: "webhook", outcome: "delivered" })).toBe(delivered);
    expect(metric(s, "notification_deliveries_total", { channel: "webhook", outcome: "refused" })).toBe(0);
    expect(metric(s, "notification_failures_total", { channel: "webhook" })).toBe(0);
    expect(metric(s, "notification_pending_events", { channel: "webhook" })).toBe(0);
    // The webhook's old names stay, and stay the webhook's alone.
    expect(metric(s, "webhook_failures_total")).toBe(0);
    expect(metric(s, "webhook_pending_events")).toBe(0);
  });

  it("shows a stuck Slack's backlog under its own channel, not under the webhook's old name", async () => {
    const { pool: p, webhook, slack } = await startBoth({ slack: () => "hang" });
    for (const id of ["s1", "s2", "s3"]) await p.grpc.allocate({ sessionId: id });
    await webhook.until(() => webhook.delivered().length >= 3);
    await slack.until(() => slack.hanging >= 1);

    const s = await vi.waitFor(
      async () => {
        const samples = await scrape(p);
        expect(metric(samples, "notification_pending_events", { channel: "webhook" })).toBe(0);
        return samples;
      },
      { timeout: 10_000, interval: 20 },
    );
    // Slack is held at the first session event: that one and everything after it are pending.
    let first = 0;
    for await (const e of p.server.feed.history(0, p.server.feed.headSeq))
      if (first === 0 && e.type === "session_allocated") first = e.seq;
    expect(metric(s, "notification_pending_events", { channel: "slack" })).toBe(p.server.feed.headSeq - first + 1);
    expect(metric(s, "webhook_pending_events")).toBe(0);
    // No label or help text carries Slack's credential.
    expect(await (await fetch(`${p.server.url}/metrics`)).text()).not.toContain(SLACK_TOKEN);
  });

  it("shows Slack once a reload adds it, and keeps counting when a reload restarts it", async () => {
    const p = await startTestPool({ configFile: true, webhookBackoff: { baseMs: 1, maxMs: 5 } });
    const slack = new Receiver();
    opened.push({ pool: p, receivers: [slack] });
    const url = await slack.listen(SLACK_PATH);
    const reloadWith = async (slackSettings: Record<string, unknown>) => {
      const notifications = { rules: [{ type: "session", channels: ["slack"] }], slack: { url, ...slackSettings } };
      await writeFile(path.join(p.dir, "config.json"), JSON.stringify({ ...testConfigRaw(p.dir), notifications }));
      expect((await p.grpc.reloadConfig({})).settings.some((c) => c.startsWith("notifications.slack"))).toBe(true);
    };
    const delivered = async () =>
      metric(await scrape(p), "notification_deliveries_total", { channel: "slack", outcome: "delivered" });
    expect(await delivered()).toBeUndefined();

    await reloadWith({});
    expect(await delivered()).toBe(0);
    await p.grpc.allocate({ sessionId: "s1" });
    await allDelivered(p);
    expect(await delivered()).toBe(1);

    await reloadWith({ coolOffMinutes: 5 });
    await p.grpc.allocate({ sessionId: "s2" });
    await allDelivered(p);
    expect(slack.delivered()).toHaveLength(2);
    expect(await delivered()).toBe(2);
  });

  it("exposes no notification samples when no channel runs", async () => {
    const p = await startTestPool();
    opened.push({ pool: p, receivers: [] });
    const s = await scrape(p);
    expect(s.filter((x) => x.name.startsWith("authpool_notification_"))).toEqual([]);
    expect(metric(s, "webhook_pending_events")).toBeUndefined();
  });
});
