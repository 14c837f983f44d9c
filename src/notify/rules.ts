import type { NotificationChannel, NotificationRule } from "../config/index.js";
import type { PoolEvent } from "../domain/index.js";

/**
 * ruleMatches says whether a notification rule routes a domain event to a
 * channel. Rule types are the public event types; a usage_threshold rule
 * fires only for the crossing of its own threshold.
 */
export function ruleMatches(rule: NotificationRule, event: PoolEvent, channel: NotificationChannel): boolean {
  if (!rule.enabled || !rule.channels.includes(channel)) return false;
  switch (rule.type) {
    case "usage_threshold":
      return event.type === "usage_threshold" && (rule.threshold === undefined || rule.threshold === event.threshold);
    case "failover":
      return event.type === "fallback_used";
    case "rotation":
      return event.type === "session_rotated";
    case "limit_reached":
      return event.type === "limit_reached";
    case "status_changed":
      return event.type === "status_changed";
    case "rebalance_completed":
      return event.type === "rebalance_completed";
    case "session":
      return event.type === "session_allocated" || event.type === "session_released";
    case "client_limited":
      return event.type === "client_limited";
  }
}

/** routed says whether any rule routes the event to the channel. */
export function routed(rules: readonly NotificationRule[], event: PoolEvent, channel: NotificationChannel): boolean {
  return rules.some((r) => ruleMatches(r, event, channel));
}
