import { writeFile } from "node:fs/promises";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { verifyWebhook } from "../../src/notify/signature.js";
import { Receiver } from "../support/http-receiver.js";
import { SLACK_PATH, SLACK_TOKEN, type SlackBody, allDelivered } from "../support/slack.js";
import { type TestPool, startTestPool, testConfigRaw } from "../support/test-server.js";

let pool: TestPool | undefined;
const receivers: Receiver[] = [];
afterEach(async () => {
  await pool?.close();
  pool = undefined;
  await Promise.all(receivers.splice(0).map((r) => r.close()));
});

async function receiver(pathname?: string): Promise<{ r: Receiver; url: string }> {
  const r = new Receiver();
  receivers.push(r);
  return { r, url: await r.listen(pathname) };
}

/** reloadWith writes the pool's config file with these notifications and reloads it over gRPC. */
async function reloadWith(p: TestPool, notifications: Record<string, unknown>) {
  const raw = { ...testConfigRaw(p.dir), notifications };
  await writeFile(path.join(p.dir, "config.json"), JSON.stringify(raw, null, 2));
  return p.grpc.reloadConfig({});
}

const FAST = { maxAttempts: 2, retryPauseSeconds: 0.05 };

describe("ReloadConfig and notifications", () => {
  it("starts, restarts and stops the webhook and Slack, says so, and keeps the cursor", async () => {
    const lines: string[] = [];
    pool = await startTestPool({ configFile: true, logLines: lines, webhookBackoff: { baseMs: 5, maxMs: 50 } });
    const p = pool;
    expect((await p.grpc.getPoolStatus({})).notifications).toBeUndefined();
    const hook = await receiver();
    const slack = await receiver(SLACK_PATH);

    // Added: both start at once, from the head (no history is sent).
    await p.grpc.allocate({ sessionId: "before" });
    const rules = [
      { type: "session", channels: ["webhook"] },
      { type: "status_changed", channels: ["slack"] },
    ];
    const added = await reloadWith(p, {
      rules,
      webhook: { url: hook.url, secret: "first-secret", ...FAST },
      slack: { url: slack.url, ...FAST },
    });
    expect(added.changed).toBe(true);
    expect(added.settings).toEqual([
      "notifications.rules",
      "notifications.webhook (added)",
      "notifications.slack (added)",
    ]);
    expect((await p.grpc.getPoolStatus({})).notifications).toBeDefined();
    await p.grpc.allocate({ sessionId: "after" });
    await p.grpc.setPaused({ subscriptionId: "sub1", paused: true });
    await hook.r.until(() => hook.r.delivered().length >= 1);
    await slack.r.until(() => slack.r.delivered().length >= 1);
    expect(hook.r.delivered().map((d) => (d.event.session as { sessionId: string }).sessionId)).toEqual(["after"]);
    expect(verifyWebhook("first-secret", hook.r.requests[0]!.signature, hook.r.requests[0]!.body)).toBe(true);
    expect(slack.r.delivered<SlackBody>()[0]!.text).toContain("*sub1* (sub1@example.com) is now paused");
    await allDelivered(p);

    // Changed: the new endpoint and secret take over where the old one stopped.
    const moved = await receiver();
    const changed = await reloadWith(p, {
      rules,
      webhook: { url: moved.url, secret: "second-secret", ...FAST },
      slack: { url: slack.url, ...FAST },
    });
    expect(changed.settings).toEqual(["notifications.webhook (url, secret changed)"]);
    await p.grpc.release({ sessionId: "after" });
    await moved.r.until(() => moved.r.delivered().length >= 1);
    await allDelivered(p);
    expect(moved.r.delivered()).toHaveLength(1);
    expect(moved.r.delivered()[0]!.event.session).toMatchObject({
      sessionId: "after",
      kind: "SESSION_EVENT_KIND_RELEASED",
    });
    expect(verifyWebhook("second-secret", moved.r.requests[0]!.signature, moved.r.requests[0]!.body)).toBe(true);
    expect(hook.r.requests).toHaveLength(1);

    // Removed: Slack stops; the webhook goes on.
    const removed = await reloadWith(p, {
      rules: [rules[0]],
      webhook: { url: moved.url, secret: "second-secret", ...FAST },
    });
    expect(removed.settings).toEqual(["notifications.rules", "notifications.slack (removed)"]);
    await p.grpc.setPaused({ subscriptionId: "sub1", paused: false });
    await p.grpc.allocate({ sessionId: "last" });
    await moved.r.until(() => moved.r.delivered().length >= 2);
    await allDelivered(p);
    expect(slack.r.requests).toHaveLength(1);

    // Nothing new: nothing restarts.
    const same = await reloadWith(p, {
      rules: [rules[0]],
      webhook: { url: moved.url, secret: "second-secret", ...FAST },
    });
    expect(same.changed).toBe(false);

    const log = lines.map((l) => JSON.parse(l) as { message: string; changes?: string[]; settings?: string[] });
    expect(log.filter((l) => l.message === "notifications").map((l) => l.changes)).toEqual([
      ["webhook started", "slack started"],
      ["webhook restarted"],
      ["slack stopped"],
    ]);
    expect(log.find((l) => l.message === "config reloaded")?.settings).toContain("notifications.webhook (added)");
    const text = lines.join("\n");
    for (const secret of [SLACK_TOKEN, "first-secret", "second-secret"]) expect(text).not.toContain(secret);
  });
});
