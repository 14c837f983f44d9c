/**
 * Notification secrets from the environment: AUTHPOOL_WEBHOOK_SECRET signs
 * webhook deliveries and AUTHPOOL_SLACK_URL is the Slack incoming webhook.
 * Like AUTHPOOL_TOKENS, each replaces what the config file gave, so one
 * file can be shared while each deployment keeps its secrets to itself.
 * Values are never echoed.
 */
import { deepFreeze } from "./defaults.js";
import { ConfigError } from "./errors.js";
import { SLACK_URL_PHRASE } from "./resolve-notifications.js";
import { isHttpUrl } from "./schema.js";
import type { PoolConfig } from "./types.js";

/**
 * applyNotificationEnv applies both variables (unset or empty: ignored) and
 * then requires a URL for a Slack section, wherever it came from. Throws
 * ConfigError: file "env" for a variable with nothing to apply to, the
 * config's source for a Slack section left without a URL.
 */
export function applyNotificationEnv(config: PoolConfig, env: NodeJS.ProcessEnv, envSource: string): PoolConfig {
  const secret = nonEmpty(env.AUTHPOOL_WEBHOOK_SECRET);
  const slackUrl = nonEmpty(env.AUTHPOOL_SLACK_URL);
  let { webhook, slack } = config.notifications;
  if (secret !== undefined) {
    if (webhook === undefined) throw missing(envSource, "AUTHPOOL_WEBHOOK_SECRET", "notifications.webhook.url", config);
    webhook = { ...webhook, secret };
  }
  if (slackUrl !== undefined) {
    if (slack === undefined) throw missing(envSource, "AUTHPOOL_SLACK_URL", "notifications.slack section", config);
    if (!isHttpUrl(slackUrl)) {
      throw new ConfigError(envSource, [
        { path: "AUTHPOOL_SLACK_URL", expected: "expected an http:// or https:// URL, got something else (not shown)" },
      ]);
    }
    slack = { ...slack, url: slackUrl };
  }
  if (slack !== undefined && slack.url === undefined) {
    throw new ConfigError(config.source, [
      { path: "notifications.slack.url", expected: `expected ${SLACK_URL_PHRASE}, but none is set` },
    ]);
  }
  if (secret === undefined && slackUrl === undefined) return config;
  const notifications = {
    ...config.notifications,
    ...(webhook !== undefined ? { webhook } : {}),
    ...(slack !== undefined ? { slack } : {}),
  };
  return deepFreeze({ ...config, notifications });
}

function missing(envSource: string, variable: string, what: string, config: PoolConfig): ConfigError {
  return new ConfigError(envSource, [
    { path: variable, expected: `expected a ${what} in ${config.source} to apply it to, but it is missing` },
  ]);
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === "" ? undefined : value;
}
