import { describe, expect, it } from "vitest";
import { ConfigError, parseConfig } from "../../src/config/index.js";

const homeDir = "/home/pooluser";

function raw(extra: Record<string, unknown> = {}, subs: Record<string, unknown>[] = []): Record<string, unknown> {
  return {
    subscriptions: [
      { id: "a", type: "claude-max", configDir: "~/.claude-a", weeklyBudgetUsd: 100 },
      { id: "b", type: "claude-pro", configDir: "~/.claude-b", weeklyBudgetUsd: 100 },
      { id: "c", type: "api", configDir: "~/.claude-c", weeklyBudgetUsd: 100 },
    ].map((s, i) => ({ ...s, ...subs[i] })),
    ...extra,
  };
}

function refusal(input: Record<string, unknown>): ConfigError {
  try {
    parseConfig(input, "<inline>", { homeDir });
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  return expect.fail("expected a ConfigError");
}

describe("config: credentials", () => {
  it("is off by default, with Claude Code's endpoint and client id and an hour's margin", () => {
    const config = parseConfig(raw(), "<inline>", { homeDir });
    expect(config.credentials).toEqual({
      manage: false,
      tokenEndpoint: "https://platform.claude.com/v1/oauth/token",
      clientId: "9d1c250a-e61b-44d9-88ed-5944d1962f5e",
      refreshBeforeMinutes: 60,
      checkIntervalSeconds: 60,
      timeoutSeconds: 15,
      backoffMinSeconds: 30,
      backoffMaxSeconds: 600,
    });
    expect(config.subscriptions.map((s) => s.manageCredentials)).toEqual([false, false, false]);
  });

  it("credentials.manage is every OAuth subscription's default; each may say otherwise; api subscriptions never", () => {
    const config = parseConfig(raw({ credentials: { manage: true } }, [{}, { manageCredentials: false }]), "<inline>", {
      homeDir,
    });
    expect(config.subscriptions.map((s) => [s.id, s.manageCredentials])).toEqual([
      ["a", true],
      ["b", false],
      ["c", false],
    ]);
    const one = parseConfig(raw({}, [{ manageCredentials: true }]), "<inline>", { homeDir });
    expect(one.subscriptions.map((s) => s.manageCredentials)).toEqual([true, false, false]);
  });

  it("takes every key", () => {
    const config = parseConfig(
      raw({
        credentials: {
          manage: true,
          tokenEndpoint: "http://127.0.0.1:9999/v1/oauth/token",
          clientId: "my-client",
          refreshBeforeMinutes: 120,
          checkIntervalSeconds: 30,
          timeoutSeconds: 5,
          backoffMinSeconds: 10,
          backoffMaxSeconds: 60,
        },
      }),
      "<inline>",
      { homeDir },
    );
    expect(config.credentials).toMatchObject({
      tokenEndpoint: "http://127.0.0.1:9999/v1/oauth/token",
      clientId: "my-client",
      refreshBeforeMinutes: 120,
      timeoutSeconds: 5,
    });
  });

  it.each<[string, Record<string, unknown>, Record<string, unknown>[], string]>([
    [
      "a margin inside Claude Code's own 5 minutes",
      { credentials: { refreshBeforeMinutes: 5 } },
      [],
      "credentials.refreshBeforeMinutes",
    ],
    [
      "a margin over half a token's life",
      { credentials: { refreshBeforeMinutes: 241 } },
      [],
      "credentials.refreshBeforeMinutes",
    ],
    [
      "a timeout that could outlast the refresh lock",
      { credentials: { timeoutSeconds: 31 } },
      [],
      "credentials.timeoutSeconds",
    ],
    [
      "an endpoint that is not a URL",
      { credentials: { tokenEndpoint: "platform.claude.com" } },
      [],
      "credentials.tokenEndpoint",
    ],
    [
      "backoff bounds out of order",
      { credentials: { backoffMinSeconds: 60, backoffMaxSeconds: 30 } },
      [],
      "credentials.backoffMaxSeconds",
    ],
    [
      "a min backoff over the default max",
      { credentials: { backoffMinSeconds: 601 } },
      [],
      "credentials.backoffMinSeconds",
    ],
    ["an unknown key", { credentials: { refreshBefore: 60 } }, [], "credentials.refreshBefore"],
    ["managing an api subscription", {}, [{}, {}, { manageCredentials: true }], "subscriptions[2].manageCredentials"],
    ["a flag that is not a boolean", {}, [{ manageCredentials: "yes" }], "subscriptions[0].manageCredentials"],
  ])("refuses %s", (_name, extra, subs, path) => {
    const error = refusal(raw(extra, subs));
    expect(error.issues.map((i) => i.path)).toContain(path);
  });
});
