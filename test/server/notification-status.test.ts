import { afterEach, describe, expect, it, vi } from "vitest";
import { NotificationChannel } from "../../gen/authpool/v1/auth_pool_pb.js";
import { type ChannelSnapshot, notificationsToProto } from "../../src/server/notification-status.js";
import { type Answer, Receiver } from "../support/http-receiver.js";
import { SLACK_PATH, SLACK_TOKEN } from "../support/slack.js";
import { type TestPool, startTestPool } from "../support/test-server.js";

const T = Date.parse("2026-11-23T10:00:00Z");
const SECRET = "whsec-s3cret-0123456789";

describe("notificationsToProto()", () => {
  const webhook: ChannelSnapshot = { channel: "webhook", deliveredSequence: 40, pending: 0, lastDeliveredAt: T };
  const slack: ChannelSnapshot = {
    channel: "slack",
    deliveredSequence: 37,
    pending: 3,
    lastError: "POST https://hooks.slack.com/…: HTTP 500",
    lastErrorAt: T + 1000,
    lastDeliveredAt: T - 60_000,
  };

  it("leaves the field unset with no channel running", () => {
    expect(notificationsToProto([])).toBeUndefined();
  });

  it("reports a lone channel as before, and as itself", () => {
    const n = notificationsToProto([slack])!;
    expect(n).toMatchObject({ deliveredSequence: 37n, pending: 3, lastError: slack.lastError });
    expect(n.channels).toMatchObject([{ channel: NotificationChannel.SLACK, pending: 3, lastError: slack.lastError }]);
  });

  it("keeps each channel apart, and says in the old fields which channel the latest error is from", () => {
    const n = notificationsToProto([webhook, slack])!;
    expect(n.channels).toMatchObject([
      { channel: NotificationChannel.WEBHOOK, deliveredSequence: 40n, pending: 0, lastError: "" },
      { channel: NotificationChannel.SLACK, deliveredSequence: 37n, pending: 3, lastError: slack.lastError },
    ]);
    expect(n.channels[0]?.lastErrorAt).toBeUndefined();
    // Old clients read one figure: the channel further behind, and the latest error, named.
    expect(n).toMatchObject({ deliveredSequence: 37n, pending: 3, lastError: `slack: ${slack.lastError}` });
    expect(n.lastDeliveredAt).toEqual(n.channels[0]?.lastDeliveredAt);
  });
});

let opened: { pool: TestPool; receivers: Receiver[] }[] = [];
afterEach(async () => {
  for (const { pool, receivers } of opened.splice(0)) {
    await pool.close();
    await Promise.all(receivers.map((r) => r.close()));
  }
  opened = [];
});

describe("GetPoolStatus.notifications with the webhook and Slack", () => {
  // Each failing receiver echoes what would give a credential away: the webhook its secret, Slack its URL path.
  const echoSecret: Answer = { status: 503, body: `bad secret=${SECRET}` };
  const echoPath: Answer = { status: 500, body: `no_service for ${SLACK_PATH}` };

  it.each([
    { failing: "slack" as const, webhookAnswer: 200 as Answer, slackAnswer: echoPath },
    { failing: "webhook" as const, webhookAnswer: echoSecret, slackAnswer: 200 as Answer },
  ])(
    "says the $failing channel is the one failing, without its secret",
    async ({ failing, webhookAnswer, slackAnswer }) => {
      const webhook = new Receiver();
      const slack = new Receiver();
      webhook.answer = () => webhookAnswer;
      slack.answer = () => slackAnswer;
      const pool = await startTestPool({
        config: {
          notifications: {
            rules: [{ type: "session", channels: ["webhook", "slack"] }],
            webhook: { url: await webhook.listen(), secret: SECRET, maxAttempts: 1, retryPauseSeconds: 0.05 },
            slack: { url: await slack.listen(SLACK_PATH), maxAttempts: 1, retryPauseSeconds: 0.05 },
          },
        },
        webhookBackoff: { baseMs: 1, maxMs: 5 },
      });
      opened.push({ pool, receivers: [webhook, slack] });
      await pool.grpc.allocate({ sessionId: "s1" });
      const healthy = failing === "slack" ? webhook : slack;
      await healthy.until(() => healthy.delivered().length >= 1);

      const status = await vi.waitFor(
        async () => {
          const s = await pool.grpc.getPoolStatus({});
          expect(s.notifications?.channels.find((c) => c.lastError !== "")).toBeDefined();
          expect(s.notifications?.channels.find((c) => c.lastDeliveredAt !== undefined)).toBeDefined();
          return s;
        },
        { timeout: 10_000, interval: 20 },
      );
      const n = status.notifications!;
      const byName = Object.fromEntries(n.channels.map((c) => [NotificationChannel[c.channel].toLowerCase(), c]));
      expect(Object.keys(byName)).toEqual(["webhook", "slack"]);
      const bad = byName[failing]!;
      const good = byName[failing === "slack" ? "webhook" : "slack"]!;
      expect(bad.lastError).toMatch(failing === "slack" ? /^POST http:\/\/127\.0\.0\.1:\d+\/…: HTTP 500/ : /HTTP 503/);
      expect(bad.lastErrorAt).toBeDefined();
      expect(bad.pending).toBeGreaterThan(0);
      expect(bad.lastDeliveredAt).toBeUndefined();
      expect(good).toMatchObject({ pending: 0, lastError: "", deliveredSequence: BigInt(pool.server.feed.headSeq) });
      expect(good.lastDeliveredAt).toBeDefined();
      expect(n.lastError).toBe(`${failing}: ${bad.lastError}`);

      const shown = JSON.stringify(status, (_k, v: unknown) => (typeof v === "bigint" ? String(v) : v));
      for (const secret of [SECRET, SLACK_TOKEN, "B0ALERTS"]) expect(shown).not.toContain(secret);
    },
  );
});
