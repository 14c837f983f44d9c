import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CREDENTIALS_FILE, readAccessToken } from "../../src/upstream/index.js";

const FIXTURE = new URL("../fixtures/credentials/config-a/.credentials.json", import.meta.url);
const TOKEN = "sk-ant-oat01-FIXTURE-not-a-real-token";
const EXPIRES_AT = 1795480000000;

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "authpool-creds-"));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** installFixture copies the fixture into the temp config dir with the mode Claude Code gives it (git keeps none). */
async function installFixture(): Promise<string> {
  const file = path.join(dir, CREDENTIALS_FILE);
  await copyFile(FIXTURE, file);
  await chmod(file, 0o600);
  return file;
}

async function writeCredentials(content: string): Promise<void> {
  const file = path.join(dir, CREDENTIALS_FILE);
  await writeFile(file, content);
  await chmod(file, 0o600);
}

describe("readAccessToken", () => {
  it("reads the access token and its expiry", async () => {
    await installFixture();
    const result = await readAccessToken(dir, EXPIRES_AT - 60_000);
    expect(result).toStrictEqual({ ok: true, token: TOKEN, expiresAt: EXPIRES_AT });
  });

  it("never writes the credentials file", async () => {
    const file = await installFixture();
    const before = await stat(file);
    const content = await readFile(file, "utf8");
    await readAccessToken(dir, EXPIRES_AT + 1);
    await readAccessToken(dir, 0);
    const after = await stat(file);
    expect(await readFile(file, "utf8")).toBe(content);
    expect(after.mtimeMs).toBe(before.mtimeMs);
    expect(after.mode & 0o777).toBe(0o600);
  });

  it("says where the token is when the file is missing", async () => {
    const result = await readAccessToken(dir, 0);
    expect(result).toStrictEqual({
      ok: false,
      reason: "no credentials: no .credentials.json in the config dir (macOS keeps the token in the keychain)",
    });
    expect(await readAccessToken(path.join(dir, "no-such-dir"), 0)).toMatchObject({
      ok: false,
      reason: expect.stringContaining("keychain"),
    });
  });

  it("refuses an expired token and tells how to refresh it", async () => {
    await installFixture();
    for (const now of [EXPIRES_AT, EXPIRES_AT + 1]) {
      const result = await readAccessToken(dir, now);
      expect(result).toStrictEqual({
        ok: false,
        reason: `credentials expired at ${new Date(EXPIRES_AT).toISOString()}; run claude once in this config dir to refresh them`,
      });
    }
  });

  it("accepts a token without a recorded expiry", async () => {
    await writeCredentials(JSON.stringify({ claudeAiOauth: { accessToken: TOKEN } }));
    expect(await readAccessToken(dir, 0)).toStrictEqual({ ok: true, token: TOKEN });
  });

  it.each([
    ["not JSON", `{"claudeAiOauth":{"accessToken":"${TOKEN}"`],
    ["a JSON array", `["${TOKEN}"]`],
    ["no claudeAiOauth", `{"accessToken":"${TOKEN}"}`],
    ["no accessToken", `{"claudeAiOauth":{"refreshToken":"${TOKEN}"}}`],
    ["an empty accessToken", `{"claudeAiOauth":{"accessToken":"  "}}`],
    ["a numeric accessToken", `{"claudeAiOauth":{"accessToken":42}}`],
    ["an empty file", ""],
  ])("reports a malformed file (%s) without quoting it", async (_name, content) => {
    await writeCredentials(content);
    const result = await readAccessToken(dir, 0);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.reason).toMatch(/^malformed credentials file/);
    expect(result.reason).not.toContain(TOKEN);
    expect(result.reason).not.toContain("sk-ant");
  });

  it("never puts the token in a reason", async () => {
    const reasons: string[] = [];
    await installFixture();
    const expired = await readAccessToken(dir, EXPIRES_AT + 1);
    if (!expired.ok) reasons.push(expired.reason);
    // A file that is not readable as a file (a directory) fails with its error code only.
    await rm(path.join(dir, CREDENTIALS_FILE));
    await mkdir(path.join(dir, CREDENTIALS_FILE));
    const unreadable = await readAccessToken(dir, 0);
    if (!unreadable.ok) reasons.push(unreadable.reason);
    expect(reasons).toHaveLength(2);
    expect(reasons[1]).toBe("cannot read .credentials.json (EISDIR)");
    for (const reason of reasons) expect(reason).not.toContain(TOKEN);
  });
});
