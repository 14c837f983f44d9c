/**
 * Upstream: what Claude's own services say about a subscription, read with
 * the subscription's OAuth token (read-only) from its config dir.
 */
export { parseOAuthUsage } from "./oauth-usage.js";
export { CREDENTIALS_FILE, readAccessToken } from "./credentials.js";
export type { AccessTokenResult } from "./credentials.js";
export { MAX_POLL_BACKOFF_MS, OAUTH_BETA, OAUTH_USAGE_ENDPOINT, UsagePoller } from "./usage-poller.js";
export type { PollStatus, PolledSubscription, UsagePollerOptions } from "./usage-poller.js";
