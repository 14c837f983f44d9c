import type { NotificationRule, SlackConfig } from "../config/index.js";
import { MINUTE_MS } from "../domain/index.js";
import { AlertGate } from "./alert-gate.js";
import type { DeliveryChannel } from "./event-dispatcher.js";
import { utcTime } from "./human-time.js";
import { routed } from "./rules.js";
import { type SlackContext, slackAlert } from "./slack-alert.js";
import { slackBody } from "./slack-payload.js";
import { type WebhookTarget, webhookTarget } from "./webhook-request.js";

/** SLACK_CURSOR_KEY is the store key of the last event sequence Slack is done with. */
export const SLACK_CURSOR_KEY = "notify:slack:cursor";
/** SLACK_ALERTS_KEY is the store key of the alert gate's holds, saved with the cursor. */
export const SLACK_ALERTS_KEY = "notify:slack:alerts";

/**
 * slackChannel posts every event a rule routes to "slack" as a message a
 * person can act on, except repeats the alert gate holds back.
 */
export function slackChannel(
  url: string,
  slack: SlackConfig,
  rules: readonly NotificationRule[],
  context: () => SlackContext,
): DeliveryChannel {
  const gate = new AlertGate(slack.coolOffMinutes * MINUTE_MS);
  return {
    name: "slack",
    cursorKey: SLACK_CURSOR_KEY,
    target: slackTarget(url, slack),
    render(e) {
      if (!routed(rules, e, "slack") || !gate.admits(e)) return undefined;
      const ctx = context();
      const text = slackAlert(e, ctx);
      if (text === undefined) return undefined;
      return { id: String(e.seq), body: slackBody(text, `Auth Pool · event ${e.seq} at ${utcTime(e.at, ctx.now)}`) };
    },
    memory: {
      key: SLACK_ALERTS_KEY,
      restore: (saved) => gate.restore(saved),
      passed: (e, sent) => gate.passed(e, sent),
      save: () => gate.save(),
    },
  };
}

/** slackTarget: the whole incoming-webhook URL is the credential, so logs and status show only its origin. */
export function slackTarget(url: string, slack: SlackConfig): WebhookTarget {
  return webhookTarget({ url, timeoutMs: slack.timeoutMs }, { secretPath: true });
}
