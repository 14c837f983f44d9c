import type { NotificationRule, WebhookConfig } from "../config/index.js";
import { toPublicEvent } from "../server/event-to-proto.js";
import type { DeliveryChannel } from "./event-dispatcher.js";
import { routed } from "./rules.js";
import { webhookBody, webhookTarget } from "./webhook-request.js";

/** WEBHOOK_CURSOR_KEY is the store key of the last event sequence the webhook is done with. */
export const WEBHOOK_CURSOR_KEY = "notify:webhook:cursor";

/**
 * webhookChannel posts every event a rule routes to "webhook" as
 * `{type, sequence, event}`, signed when the webhook has a secret.
 */
export function webhookChannel(webhook: WebhookConfig, rules: readonly NotificationRule[]): DeliveryChannel {
  return {
    name: "webhook",
    cursorKey: WEBHOOK_CURSOR_KEY,
    target: webhookTarget(webhook),
    render(e) {
      if (!routed(rules, e, "webhook")) return undefined;
      const pub = toPublicEvent(e);
      return pub === undefined ? undefined : { id: String(e.seq), body: webhookBody(pub) };
    },
  };
}
