import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LoginFacts, loginStatus, readLoginFacts } from "../../src/credentials/index.js";

const NOW = Date.parse("2026-11-23T10:00:00Z");
const HOUR = 3_600_000;
const ACCESS = "sk-ant-oat01-LOGINCHECK-secret-access";
const REFRESH = "sk-ant-ort01-LOGINCHECK-secret-refresh";

function stored(over: Partial<Extract<LoginFacts, { kind: "stored" }>> = {}): LoginFacts {
  return { kind: "stored", hasAccessToken: true, hasRefreshToken: true, expiresAt: NOW + 8 * HOUR, ...over };
}

describe("loginStatus()", () => {
  it.each<[string, LoginFacts, NodeJS.Platform, string, RegExp | undefined]>([
    [
      "config dir missing",
      { kind: "no_config_dir", configDir: "/x/a" },
      "linux",
      "no_credentials",
      /^config dir \/x\/a does not exist/,
    ],
    [
      "config dir missing, macOS too",
      { kind: "no_config_dir", configDir: "/x/a" },
      "darwin",
      "no_credentials",
      /does not exist/,
    ],
    [
      "config dir is a file",
      { kind: "no_config_dir", configDir: "/x/a", notDirectory: true },
      "linux",
      "no_credentials",
      /is not a directory/,
    ],
    [
      "file missing",
      { kind: "no_file", configDir: "/x/a" },
      "linux",
      "no_credentials",
      /^no \.credentials\.json in \/x\/a/,
    ],
    ["file missing on macOS (Keychain login)", { kind: "no_file", configDir: "/x/a" }, "darwin", "ok", /Keychain/],
    [
      "file unreadable or not JSON",
      { kind: "unusable", reason: "/x/a/.credentials.json is not JSON" },
      "linux",
      "no_credentials",
      /is not JSON$/,
    ],
    [
      "file unusable on macOS too",
      { kind: "unusable", reason: "cannot read it (EACCES)" },
      "darwin",
      "no_credentials",
      /EACCES/,
    ],
    ["fresh login", stored(), "linux", "ok", undefined],
    [
      "blanked by Claude Code",
      stored({ hasAccessToken: false, hasRefreshToken: false, expiresAt: 0 }),
      "linux",
      "login_required",
      /the login was ended; run claude \/login/,
    ],
    [
      "blanked, on macOS",
      stored({ hasAccessToken: false, hasRefreshToken: false }),
      "darwin",
      "login_required",
      /ended/,
    ],
    [
      "loginEnded with tokens left",
      stored({ loginEnded: "time_limit" }),
      "linux",
      "login_required",
      /\(loginEnded: time_limit\)/,
    ],
    [
      "loginEnded that is not a plain word",
      stored({ loginEnded: "Bearer xyz" }),
      "linux",
      "login_required",
      /^the login was ended; /,
    ],
    [
      "expired, no refresh token",
      stored({ hasRefreshToken: false, expiresAt: NOW - 1 }),
      "linux",
      "credentials_expired",
      /^expired at 2026-11-23T09:59:59\.999Z and there is no refresh token/,
    ],
    [
      "expires exactly now, no refresh token",
      stored({ hasRefreshToken: false, expiresAt: NOW }),
      "linux",
      "credentials_expired",
      /no refresh token/,
    ],
    ["expired with a refresh token (the CLI renews it)", stored({ expiresAt: NOW - HOUR }), "linux", "ok", undefined],
    ["no access token but a refresh token", stored({ hasAccessToken: false }), "linux", "ok", undefined],
    ["valid, no refresh token", stored({ hasRefreshToken: false }), "linux", "ok", undefined],
    [
      "no expiry recorded, no refresh token",
      stored({ hasRefreshToken: false, expiresAt: undefined }),
      "linux",
      "ok",
      undefined,
    ],
  ])("%s", (_name, facts, platform, kind, reason) => {
    const status = loginStatus(facts, NOW, platform);
    expect(status.kind).toBe(kind);
    if (reason === undefined) expect(status.reason).toBeUndefined();
    else expect(status.reason).toMatch(reason);
  });

  it("keeps the expiry the file records", () => {
    expect(loginStatus(stored({ hasRefreshToken: false, expiresAt: NOW - 1 }), NOW, "linux").expiresAt).toBe(NOW - 1);
    expect(loginStatus(stored(), NOW, "linux").expiresAt).toBe(NOW + 8 * HOUR);
  });
});

describe("readLoginFacts()", () => {
  let tmp: string;
  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), "authpool-login-check-"));
  });
  afterAll(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  /** dir makes a config dir holding `content` as .credentials.json (undefined: no file). */
  async function dir(name: string, content?: string | object): Promise<string> {
    const configDir = path.join(tmp, name);
    await mkdir(configDir, { recursive: true });
    if (content !== undefined) {
      const file = path.join(configDir, ".credentials.json");
      await writeFile(file, typeof content === "string" ? content : JSON.stringify(content));
      await chmod(file, 0o600);
    }
    return configDir;
  }

  const login = (oauth: Record<string, unknown>) => ({ claudeAiOauth: { scopes: ["user:inference"], ...oauth } });

  it.each<[string, string | object | undefined, string, RegExp | undefined]>([
    ["a fresh login", login({ accessToken: ACCESS, refreshToken: REFRESH, expiresAt: NOW + HOUR }), "ok", undefined],
    ["no file", undefined, "no_credentials", /^no \.credentials\.json in /],
    ["an empty file", "", "no_credentials", /is not JSON/],
    ["a file that is not JSON (with a token in it)", `{"accessToken": "${ACCESS}"`, "no_credentials", /is not JSON/],
    ["an API-key login only", { primaryApiKey: "sk-ant-api03-secret" }, "no_credentials", /no claudeAiOauth login/],
    ["blanked tokens", login({ accessToken: "", refreshToken: "  ", expiresAt: 0 }), "login_required", /ended/],
    [
      "loginEnded",
      login({ accessToken: ACCESS, refreshToken: REFRESH, expiresAt: NOW + HOUR, loginEnded: "time_limit" }),
      "login_required",
      /time_limit/,
    ],
    [
      "expired without refresh token",
      login({ accessToken: ACCESS, expiresAt: NOW - HOUR }),
      "credentials_expired",
      /no refresh token/,
    ],
    [
      "expired with refresh token",
      login({ accessToken: ACCESS, refreshToken: REFRESH, expiresAt: NOW - HOUR }),
      "ok",
      undefined,
    ],
  ])("%s", async (name, content, kind, reason) => {
    const configDir = await dir(name.replaceAll(/\W+/g, "-"), content);
    const facts = await readLoginFacts(configDir);
    const status = loginStatus(facts, NOW, "linux");
    expect(status.kind).toBe(kind);
    if (reason !== undefined) expect(status.reason).toMatch(reason);
    // Neither the facts nor the status carry a token.
    expect(JSON.stringify([facts, status])).not.toMatch(/sk-ant|LOGINCHECK/);
  });

  it("tells a missing config dir from a missing file, and a file from a dir", async () => {
    expect(await readLoginFacts(path.join(tmp, "nowhere"))).toEqual({
      kind: "no_config_dir",
      configDir: path.join(tmp, "nowhere"),
    });
    const plain = path.join(tmp, "plain-file");
    await writeFile(plain, "x");
    expect(await readLoginFacts(plain)).toMatchObject({ kind: "no_config_dir", notDirectory: true });
    const empty = await dir("empty");
    expect(await readLoginFacts(empty)).toEqual({ kind: "no_file", configDir: empty });
    // Only the missing file is normal on macOS; a broken one is not.
    expect(loginStatus(await readLoginFacts(empty), NOW, "darwin").kind).toBe("ok");
    expect(loginStatus(await readLoginFacts(await dir("broken", "{")), NOW, "darwin").kind).toBe("no_credentials");
  });

  it("reports a credentials path it cannot read (a directory) as unusable, also on macOS", async () => {
    const configDir = await dir("dir-as-file");
    await mkdir(path.join(configDir, ".credentials.json"));
    const status = loginStatus(await readLoginFacts(configDir), NOW, "darwin");
    expect(status).toMatchObject({ kind: "no_credentials", reason: expect.stringMatching(/cannot read .*\(EISDIR\)/) });
  });

  // Root reads any file: only a non-root run can see EACCES.
  it.skipIf(process.getuid?.() === 0)("reports an unreadable file without its content", async () => {
    const configDir = await dir("unreadable", login({ accessToken: ACCESS, refreshToken: REFRESH }));
    await chmod(path.join(configDir, ".credentials.json"), 0o000);
    const status = loginStatus(await readLoginFacts(configDir), NOW, "darwin");
    expect(status).toMatchObject({ kind: "no_credentials", reason: expect.stringMatching(/cannot read .*\(EACCES\)/) });
  });
});
