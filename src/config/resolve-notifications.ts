/**
 * The notifications section: rules, the webhook and Slack, with defaults
 * applied. Secrets kept in files (secretFile, urlFile) are read here, so a
 * missing file stops start-up and reloads naming its key, and a reload picks
 * up a rotated one. Environment variables come on top (notification-env.ts).
 */
import { configDefaults } from "./defaults.js";
import { type ConfigIssue, type ConfigPath, formatPath } from "./errors.js";
import { expandConfigDir } from "./paths.js";
import { pickOne } from "./pick-one.js";
import { type RawConfig, isHttpUrl } from "./schema.js";
import { readSecretFile } from "./secret-file.js";
import type { NotificationRule, PoolConfig, SlackConfig, WebhookConfig } from "./types.js";

type RawNotifications = NonNullable<RawConfig["notifications"]>;

/** SLACK_URL_PHRASE names where a Slack URL may come from, for "expected ..." texts. */
export const SLACK_URL_PHRASE = "a Slack incoming-webhook URL (url, urlFile or env AUTHPOOL_SLACK_URL)";

/** resolveNotifications resolves the section; `~/` and relative secret files are taken as the token file's are. */
export function resolveNotifications(
  raw: RawConfig,
  homeDir: string,
  issues: ConfigIssue[],
): PoolConfig["notifications"] {
  const section = raw.notifications ?? undefined;
  const webhook = resolveWebhook(section, homeDir, issues);
  const slack = resolveSlack(section, homeDir, issues);

  const rules = (section?.rules ?? []).map((rule, index): NotificationRule => {
    const at = (key: string): string => formatPath(["notifications", "rules", index, key]);
    const channels = rule.channels ?? [...configDefaults.notificationChannels];
    const enabled = rule.enabled ?? true;
    if (rule.type === "usage_threshold" && rule.threshold === undefined) {
      issues.push({
        path: at("threshold"),
        expected: "expected a number in (0, 1] for a usage_threshold rule, but it is missing",
      });
    }
    if (enabled && channels.includes("webhook") && webhook === undefined) {
      issues.push({
        path: at("channels"),
        expected: 'expected notifications.webhook.url to be set for the "webhook" channel, but it is missing',
      });
    }
    if (enabled && channels.includes("slack") && slack === undefined) {
      issues.push({
        path: at("channels"),
        expected: `expected a notifications.slack section with ${SLACK_URL_PHRASE} for the "slack" channel, but it is missing`,
      });
    }
    return {
      type: rule.type,
      ...(rule.threshold !== undefined ? { threshold: rule.threshold } : {}),
      channels,
      enabled,
    };
  });

  return { rules, ...(webhook !== undefined ? { webhook } : {}), ...(slack !== undefined ? { slack } : {}) };
}

function resolveWebhook(
  section: RawNotifications | undefined,
  homeDir: string,
  issues: ConfigIssue[],
): WebhookConfig | undefined {
  const given = section?.webhook ?? undefined;
  const url = pickOne(
    issues,
    [["notifications", "webhook", "url"], given?.url],
    [["notifications", "webhookUrl"], section?.webhookUrl],
  );
  const inline = pickOne(
    issues,
    [["notifications", "webhook", "secret"], given?.secret],
    [["notifications", "webhookSecret"], section?.webhookSecret],
  );
  const secret = secretOrFile(
    issues,
    [given?.secret !== undefined ? ["notifications", "webhook", "secret"] : ["notifications", "webhookSecret"], inline],
    ["notifications", "webhook", "secretFile"],
    given?.secretFile,
    homeDir,
    "a webhook secret",
  );
  if (url === undefined) {
    // Webhook settings without a URL are a half-finished edit, not a choice.
    if (given != null || inline !== undefined) {
      issues.push({
        path: "notifications.webhook.url",
        expected: "expected an http:// or https:// URL, but it is missing",
      });
    }
    return undefined;
  }
  const defaults = configDefaults.webhook;
  return {
    url,
    ...(secret !== undefined ? { secret } : {}),
    timeoutMs: given?.timeoutMs ?? defaults.timeoutMs,
    maxAttempts: given?.maxAttempts ?? defaults.maxAttempts,
    retryPauseSeconds: given?.retryPauseSeconds ?? defaults.retryPauseSeconds,
  };
}

function resolveSlack(
  section: RawNotifications | undefined,
  homeDir: string,
  issues: ConfigIssue[],
): SlackConfig | undefined {
  const given = section?.slack ?? undefined;
  if (given === undefined) return undefined;
  const url = secretOrFile(
    issues,
    [["notifications", "slack", "url"], given.url],
    ["notifications", "slack", "urlFile"],
    given.urlFile,
    homeDir,
    "a Slack incoming-webhook URL (http:// or https://)",
    isHttpUrl,
  );
  const defaults = configDefaults.slack;
  return {
    // Without one here, AUTHPOOL_SLACK_URL must give it (applyEnv checks).
    ...(url !== undefined ? { url } : {}),
    timeoutMs: given.timeoutMs ?? defaults.timeoutMs,
    maxAttempts: given.maxAttempts ?? defaults.maxAttempts,
    retryPauseSeconds: given.retryPauseSeconds ?? defaults.retryPauseSeconds,
    coolOffMinutes: given.coolOffMinutes ?? defaults.coolOffMinutes,
    digest: {
      enabled: given.digest?.enabled ?? defaults.digest.enabled,
      hour: given.digest?.hour ?? defaults.digest.hour,
    },
  };
}

/**
 * secretOrFile: a secret written in the config, or read from the file a
 * sibling key names; giving both is an error (which one would win is a
 * guess). A file's problems are reported at its key.
 */
function secretOrFile(
  issues: ConfigIssue[],
  [inlinePath, inline]: readonly [ConfigPath, string | undefined],
  filePath: ConfigPath,
  file: string | undefined,
  homeDir: string,
  what: string,
  accept?: (value: string) => boolean,
): string | undefined {
  if (file === undefined) return inline;
  if (inline !== undefined) {
    issues.push({
      path: formatPath(filePath),
      expected: `expected only one of ${formatPath(inlinePath)} and ${formatPath(filePath)}, got both`,
    });
    return inline;
  }
  const read = readSecretFile(expandConfigDir(file, homeDir), what, accept);
  if (read.ok) return read.value;
  issues.push({ path: formatPath(filePath), expected: read.expected });
  return undefined;
}
