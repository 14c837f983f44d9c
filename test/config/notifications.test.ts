import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, applyEnv, configDefaults, loadConfigFile, parseConfig } from "../../src/config/index.js";
import { parseError } from "../support/config-error.js";

const SLACK_URL = "https://hooks.slack.com/services/T0AUTH/B0POOL/slackT0kenValue9";
const SECRET = "whsec-from-a-file-0123";

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), "authpool-notify-config-"));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

function raw(notifications: Record<string, unknown>): Record<string, unknown> {
  return {
    subscriptions: [{ id: "a", email: "a@example.com", type: "claude-pro", configDir: "/srv/a", weeklyBudgetUsd: 100 }],
    notifications,
  };
}

async function secretFile(name: string, content: string): Promise<string> {
  const file = path.join(tmp, name);
  await writeFile(file, content, { mode: 0o600 });
  return file;
}

describe("notifications.rules", () => {
  it("resolves a client_limited rule: its channels and enabled, or the defaults", () => {
    const config = parseConfig(
      raw({
        webhook: { url: "https://hooks.example.com/n" },
        rules: [{ type: "client_limited" }, { type: "client_limited", channels: ["webhook", "log"], enabled: false }],
      }),
      "pool.yaml",
    );
    expect(config.notifications.rules).toStrictEqual([
      { type: "client_limited", channels: [...configDefaults.notificationChannels], enabled: true },
      { type: "client_limited", channels: ["webhook", "log"], enabled: false },
    ]);
  });

  it("refuses a misspelled type, naming the file, the path and the types it may be", async () => {
    const file = path.join(tmp, "misspelled-rule.yaml");
    await writeFile(
      file,
      [
        "subscriptions:",
        "  - { id: a, email: a@example.com, type: claude-pro, configDir: /srv/a, weeklyBudgetUsd: 100 }",
        "notifications:",
        "  rules:",
        "    - type: client_limited",
        "    - type: client_limitted",
        "",
      ].join("\n"),
    );
    const error = await loadConfigFile(file).then(
      () => expect.fail("expected a ConfigError"),
      (e: unknown) => e as ConfigError,
    );
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.file).toBe(file);
    expect(error.path).toBe("notifications.rules[1].type");
    expect(error.expected).toBe(
      'expected one of "usage_threshold", "failover", "rotation", "limit_reached", "status_changed", ' +
        '"rebalance_completed", "session", "client_limited", got "client_limitted"',
    );
  });
});

describe("notifications.slack", () => {
  it("takes a URL, routes rules to it and fills in the defaults", () => {
    const config = parseConfig(
      raw({ rules: [{ type: "limit_reached", channels: ["slack", "log"] }], slack: { url: SLACK_URL } }),
      "pool.yaml",
    );
    expect(config.notifications.slack).toStrictEqual({ url: SLACK_URL, ...configDefaults.slack });
    expect(config.notifications.rules[0]?.channels).toEqual(["slack", "log"]);
  });

  it("reads the URL from urlFile, and a reload reads it again", async () => {
    const file = await secretFile("slack-url", `${SLACK_URL}\n`);
    const configFile = path.join(tmp, "pool.json");
    await writeFile(configFile, JSON.stringify(raw({ slack: { urlFile: file, digest: { enabled: true, hour: 7 } } })));
    expect((await loadConfigFile(configFile)).notifications.slack).toMatchObject({
      url: SLACK_URL,
      digest: { enabled: true, hour: 7 },
    });
    await writeFile(file, `${SLACK_URL}x\n`);
    expect((await loadConfigFile(configFile)).notifications.slack?.url).toBe(`${SLACK_URL}x`);
  });

  it.each<[string, Record<string, unknown>, string, RegExp]>([
    [
      "the slack channel without a slack section",
      { rules: [{ type: "failover", channels: ["slack"] }] },
      "notifications.rules[0].channels",
      /expected a notifications\.slack section .*AUTHPOOL_SLACK_URL.* for the "slack" channel, but it is missing/,
    ],
    [
      "an unknown channel",
      { rules: [{ type: "failover", channels: ["teams"] }] },
      "notifications.rules[0].channels[0]",
      /"webhook", "log" or "slack"/,
    ],
    [
      "a URL that is no URL",
      { slack: { url: "hooks.slack.com/services/T0AUTH/B0POOL/slackT0kenValue9" } },
      "notifications.slack.url",
      /http:\/\/ or https:\/\/ URL, got a hidden value/,
    ],
    [
      "both url and urlFile",
      { slack: { url: SLACK_URL, urlFile: "/run/secrets/slack" } },
      "notifications.slack.urlFile",
      /only one of notifications\.slack\.url and notifications\.slack\.urlFile/,
    ],
    [
      "a missing urlFile",
      { slack: { urlFile: "/nonexistent/slack-url" } },
      "notifications.slack.urlFile",
      /readable file holding a Slack incoming-webhook URL.*\/nonexistent\/slack-url: no such file/,
    ],
    [
      "a digest hour out of range",
      { slack: { url: SLACK_URL, digest: { hour: 24 } } },
      "notifications.slack.digest.hour",
      /an integer hour from 0 to 23 \(UTC\), got 24/,
    ],
    [
      "a cool-off of zero",
      { slack: { url: SLACK_URL, coolOffMinutes: 0 } },
      "notifications.slack.coolOffMinutes",
      /a number > 0/,
    ],
  ])("refuses %s, naming the file and the key", (_name, notifications, at, expected) => {
    const error = parseError(() => parseConfig(raw(notifications), "pool.yaml"));
    expect(error.file).toBe("pool.yaml");
    expect(error.path).toBe(at);
    expect(error.expected).toMatch(expected);
    expect(error.message).not.toContain("slackT0kenValue9");
  });

  it("refuses a urlFile holding no URL, without showing what it holds", async () => {
    const file = await secretFile("not-a-url", "slackT0kenValue9\n");
    const error = parseError(() => parseConfig(raw({ slack: { urlFile: file } }), "pool.yaml"));
    expect(error.path).toBe("notifications.slack.urlFile");
    expect(error.message).toContain(file);
    expect(error.message).not.toContain("slackT0kenValue9");
  });
});

describe("secrets from files and the environment", () => {
  it("reads the webhook secret from secretFile", async () => {
    const file = await secretFile("webhook-secret", `${SECRET}\n`);
    const config = parseConfig(raw({ webhook: { url: "https://hooks.example.com/n", secretFile: file } }), "pool.yaml");
    expect(config.notifications.webhook?.secret).toBe(SECRET);
  });

  it.each<[string, string, RegExp]>([
    ["empty", "\n", /a webhook secret in .*, got an empty file/],
    ["several lines", "one\ntwo\n", /on one line of .*, got several lines/],
  ])("refuses a secretFile that is %s", async (name, content, expected) => {
    const file = await secretFile(`secret-${name.replace(/\s/g, "-")}`, content);
    const error = parseError(() =>
      parseConfig(raw({ webhook: { url: "https://hooks.example.com/n", secretFile: file } }), "pool.yaml"),
    );
    expect(error.path).toBe("notifications.webhook.secretFile");
    expect(error.expected).toMatch(expected);
  });

  it("refuses secret and secretFile together", async () => {
    const file = await secretFile("webhook-secret-2", SECRET);
    const error = parseError(() =>
      parseConfig(
        raw({ webhook: { url: "https://hooks.example.com/n", secret: "inline", secretFile: file } }),
        "pool.yaml",
      ),
    );
    expect(error.path).toBe("notifications.webhook.secretFile");
    expect(error.message).not.toContain("inline");
  });

  it("takes AUTHPOOL_WEBHOOK_SECRET and AUTHPOOL_SLACK_URL over the file's", () => {
    const config = parseConfig(
      raw({
        webhook: { url: "https://hooks.example.com/n", secret: "from-file" },
        slack: { url: "https://example.com/x" },
      }),
      "pool.yaml",
    );
    const applied = applyEnv(config, { AUTHPOOL_WEBHOOK_SECRET: SECRET, AUTHPOOL_SLACK_URL: SLACK_URL });
    expect(applied.notifications.webhook?.secret).toBe(SECRET);
    expect(applied.notifications.slack?.url).toBe(SLACK_URL);
    expect(Object.isFrozen(applied.notifications.slack)).toBe(true);
  });

  it("lets the environment alone give the Slack URL to an empty section", () => {
    const config = parseConfig(
      raw({ rules: [{ type: "limit_reached", channels: ["slack"] }], slack: {} }),
      "pool.yaml",
    );
    expect(applyEnv(config, { AUTHPOOL_SLACK_URL: SLACK_URL }).notifications.slack?.url).toBe(SLACK_URL);
    const error = parseError(() => applyEnv(config, {}));
    expect(error.file).toBe("pool.yaml");
    expect(error.path).toBe("notifications.slack.url");
    expect(error.expected).toMatch(/url, urlFile or env AUTHPOOL_SLACK_URL/);
  });

  it.each<[string, Record<string, unknown>, NodeJS.ProcessEnv, string]>([
    ["a webhook secret without a webhook", {}, { AUTHPOOL_WEBHOOK_SECRET: SECRET }, "AUTHPOOL_WEBHOOK_SECRET"],
    ["a Slack URL without a slack section", {}, { AUTHPOOL_SLACK_URL: SLACK_URL }, "AUTHPOOL_SLACK_URL"],
    ["a Slack URL that is no URL", { slack: {} }, { AUTHPOOL_SLACK_URL: "slackT0kenValue9" }, "AUTHPOOL_SLACK_URL"],
  ])("refuses %s, never echoing it", (_name, notifications, env, variable) => {
    const error = parseError(() => applyEnv(parseConfig(raw(notifications), "pool.yaml"), env));
    expect(error.file).toBe("env");
    expect(error.path).toBe(variable);
    expect(error.message).not.toContain(SECRET);
    expect(error.message).not.toContain("slackT0kenValue9");
  });
});

describe("notifications.webhook.retryPauseSeconds", () => {
  it("has a default and may be set (fractions too)", () => {
    const url = "https://hooks.example.com/n";
    expect(parseConfig(raw({ webhook: { url } }), "pool.yaml").notifications.webhook?.retryPauseSeconds).toBe(
      configDefaults.webhook.retryPauseSeconds,
    );
    expect(
      parseConfig(raw({ webhook: { url, retryPauseSeconds: 2.5 } }), "pool.yaml").notifications.webhook
        ?.retryPauseSeconds,
    ).toBe(2.5);
    const error = parseError(() => parseConfig(raw({ webhook: { url, retryPauseSeconds: -1 } }), "pool.yaml"));
    expect(error.path).toBe("notifications.webhook.retryPauseSeconds");
    expect(error.expected).toBe("expected a number > 0, got -1");
  });
});
