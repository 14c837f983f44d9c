/**
 * Notifications: events routed by rules to log lines, a signed webhook and
 * Slack (alerts with repeats held back, and a daily digest).
 */
export { Notifications } from "./notifications.js";
export type { NotificationsOptions } from "./notifications.js";
export type { DeliveryCounts } from "./delivery-counts.js";
export { SIGNATURE_HEADER, signWebhook, verifyWebhook } from "./signature.js";
