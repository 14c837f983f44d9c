import { describe, expect, it } from "vitest";
import {
  type CredentialFacts,
  decideCredentials,
  retryDelay,
  statusWhileFailing,
} from "../../src/credentials/index.js";

const NOW = Date.parse("2026-11-23T10:00:00Z");
const MIN = 60_000;
const policy = { refreshBeforeMs: 60 * MIN, checkIntervalMs: MIN };

function stored(over: Partial<Extract<CredentialFacts, { kind: "stored" }>> = {}): CredentialFacts {
  return {
    kind: "stored",
    hasAccessToken: true,
    hasRefreshToken: true,
    refreshTokenDead: false,
    expiresAt: NOW + 8 * 60 * MIN,
    ...over,
  };
}

describe("decideCredentials()", () => {
  it.each<[string, CredentialFacts, string, string | RegExp | undefined]>([
    [
      "no file",
      { kind: "absent", reason: "no .credentials.json in /x" },
      "no_credentials",
      "no .credentials.json in /x",
    ],
    ["fresh login", stored(), "ok", undefined],
    [
      "blanked by Claude Code",
      stored({ hasAccessToken: false, hasRefreshToken: false, expiresAt: 0 }),
      "login_required",
      /tokens are blank/,
    ],
    [
      "ended by time limit",
      stored({ hasAccessToken: false, hasRefreshToken: false, loginEnded: "time_limit" }),
      "login_required",
      /loginEnded: time_limit/,
    ],
    ["refresh token refused before", stored({ refreshTokenDead: true }), "login_required", /invalid_grant/],
    ["no refresh token, still valid", stored({ hasRefreshToken: false }), "ok", /cannot be renewed/],
    [
      "no refresh token, expired",
      stored({ hasRefreshToken: false, expiresAt: NOW - 1 }),
      "credentials_expired",
      /no refresh token/,
    ],
    [
      "no refresh token, no access token",
      stored({
        hasAccessToken: false,
        hasRefreshToken: false,
        refreshTokenDead: false,
        expiresAt: NOW + MIN,
        loginEnded: undefined,
      }),
      "login_required",
      /blank/,
    ],
    ["no expiry recorded", stored({ expiresAt: undefined }), "ok", /no expiry recorded/],
  ])("%s: %s", (_name, facts, kind, reason) => {
    const decision = decideCredentials(facts, NOW, policy);
    expect(decision.action).toBe("wait");
    if (decision.action !== "wait") return;
    expect(decision.status.kind).toBe(kind);
    if (reason === undefined) expect(decision.status.reason).toBeUndefined();
    else if (typeof reason === "string") expect(decision.status.reason).toBe(reason);
    else expect(decision.status.reason).toMatch(reason);
  });

  it.each<[string, CredentialFacts, boolean]>([
    ["inside the margin", stored({ expiresAt: NOW + 59 * MIN }), false],
    ["exactly at the margin", stored({ expiresAt: NOW + 60 * MIN }), false],
    ["expired", stored({ expiresAt: NOW - MIN }), true],
    ["no access token but a refresh token", stored({ hasAccessToken: false }), true],
  ])("refreshes %s", (_name, facts, expired) => {
    expect(decideCredentials(facts, NOW, policy)).toEqual({ action: "refresh", expired });
  });

  it("looks again at the check interval, or at the margin when that comes first", () => {
    expect(decideCredentials(stored(), NOW, policy)).toMatchObject({ nextCheckAt: NOW + MIN });
    expect(decideCredentials(stored({ expiresAt: NOW + 60 * MIN + 30_000 }), NOW, policy)).toMatchObject({
      nextCheckAt: NOW + 30_000,
    });
    expect(decideCredentials({ kind: "absent", reason: "x" }, NOW, policy)).toMatchObject({ nextCheckAt: NOW + MIN });
  });

  it("never puts a token in a status (facts carry none)", () => {
    const decision = decideCredentials(stored({ refreshTokenDead: true }), NOW, policy);
    expect(JSON.stringify(decision)).not.toMatch(/sk-ant/);
  });
});

describe("statusWhileFailing()", () => {
  it.each<[string, CredentialFacts, "ok" | "refreshed" | undefined, string]>([
    ["valid token, was ok", stored({ expiresAt: NOW + 30 * MIN }), "ok", "ok"],
    ["valid token, pool refreshed it last", stored({ expiresAt: NOW + 30 * MIN }), "refreshed", "refreshed"],
    ["first check", stored({ expiresAt: NOW + 30 * MIN }), undefined, "ok"],
    ["expired token", stored({ expiresAt: NOW - 1 }), "ok", "credentials_expired"],
    ["no access token", stored({ hasAccessToken: false }), "ok", "credentials_expired"],
    ["file gone", { kind: "absent", reason: "gone" }, "ok", "credentials_expired"],
  ])("%s", (_name, facts, previous, kind) => {
    const status = statusWhileFailing(
      facts,
      NOW,
      previous === undefined ? undefined : { kind: previous },
      "token endpoint answered 503",
    );
    expect(status.kind).toBe(kind);
    expect(status.reason).toContain("token endpoint answered 503");
  });
});

describe("retryDelay()", () => {
  const backoff = { minMs: 30_000, maxMs: 600_000 };

  it.each([
    [1, 15_000, 30_000],
    [2, 30_000, 60_000],
    [3, 60_000, 120_000],
    [5, 240_000, 480_000],
    [6, 300_000, 600_000],
    [40, 300_000, 600_000],
  ])("failure %i waits between %i and %i ms", (failures, low, high) => {
    expect(retryDelay(failures, backoff, () => 0)).toBe(low);
    expect(retryDelay(failures, backoff, () => 0.999_999)).toBeLessThanOrEqual(high);
    expect(retryDelay(failures, backoff, () => 0.999_999)).toBeGreaterThan(high - 2);
  });
});
