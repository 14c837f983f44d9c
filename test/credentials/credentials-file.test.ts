import { mkdir, mkdtemp, readFile, readdir, rm, stat, symlink, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { readCredentialsFile, withRenewedTokens, writeCredentialsFile } from "../../src/credentials/index.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "authpool-creds-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const file = () => path.join(dir, ".credentials.json");

/** A file as Claude Code 2.1.328 leaves it, plus keys of its own the pool must keep. */
const stored = {
  claudeAiOauth: {
    accessToken: "sk-ant-oat01-old-access",
    refreshToken: "sk-ant-ort01-old-refresh",
    expiresAt: 1_795_480_000_000,
    scopes: ["user:inference", "user:profile", "user:sessions:claude_code"],
    subscriptionType: "max",
    rateLimitTier: "default_claude_max_20x",
    clientId: null,
    accountUuid: "acc-1",
  },
  mcpOAuth: { "server-x": { accessToken: "other-secret" } },
  somethingNew: [1, 2, 3],
};

describe("readCredentialsFile()", () => {
  it("reads the login and keeps the whole object", async () => {
    await writeFile(file(), JSON.stringify(stored), { mode: 0o600 });
    const read = await readCredentialsFile(dir);
    expect(read.kind).toBe("present");
    if (read.kind !== "present") return;
    expect(read.oauth).toEqual({
      accessToken: "sk-ant-oat01-old-access",
      refreshToken: "sk-ant-ort01-old-refresh",
      expiresAt: 1_795_480_000_000,
      scopes: ["user:inference", "user:profile", "user:sessions:claude_code"],
    });
    expect(read.data).toEqual(stored);
    expect(read.symlink).toBe(false);
  });

  it.each([
    ["no file", undefined, /no \.credentials\.json in .* \(log in with claude there\)/],
    ["not JSON", '{"claudeAiOauth":{"accessToken":"sk-ant-oat01-SECRET"', /is not JSON$/],
    ["not an object", "[1]", /is not a JSON object$/],
    ["API key login only", JSON.stringify({ primaryApiKey: "sk-ant-api03-SECRET" }), /has no claudeAiOauth login/],
  ])("%s: absent, with a reason that quotes nothing from the file", async (_name, text, reason) => {
    if (text !== undefined) await writeFile(file(), text, { mode: 0o600 });
    const read = await readCredentialsFile(dir);
    expect(read).toMatchObject({ kind: "absent", reason: expect.stringMatching(reason) });
    expect(JSON.stringify(read)).not.toContain("SECRET");
  });

  it("reads a blanked login as empty tokens and keeps loginEnded", async () => {
    await writeFile(
      file(),
      JSON.stringify({ claudeAiOauth: { accessToken: "", refreshToken: "", expiresAt: 0, loginEnded: "time_limit" } }),
    );
    const read = await readCredentialsFile(dir);
    expect(read).toMatchObject({
      kind: "present",
      oauth: { accessToken: "", refreshToken: "", expiresAt: 0, loginEnded: "time_limit" },
    });
  });

  it("reports a config dir that does not exist", async () => {
    const read = await readCredentialsFile(path.join(dir, "missing"));
    expect(read).toMatchObject({ kind: "absent" });
  });
});

describe("writeCredentialsFile()", () => {
  const renewed = {
    accessToken: "sk-ant-oat01-new-access",
    refreshToken: "sk-ant-ort01-new-refresh",
    expiresAt: 1_795_500_000_000,
  };

  it("replaces the three token fields, keeps every other key, mode 0600, no temp file left", async () => {
    await writeFile(
      file(),
      JSON.stringify({ ...stored, claudeAiOauth: { ...stored.claudeAiOauth, loginEnded: "time_limit" } }),
      { mode: 0o644 },
    );
    const read = await readCredentialsFile(dir);
    if (read.kind !== "present") throw new Error("expected a login");
    const result = await writeCredentialsFile(dir, withRenewedTokens(read.data, renewed), read);
    expect(result).toEqual({ ok: true });
    const after = JSON.parse(await readFile(file(), "utf8")) as typeof stored;
    expect(after).toEqual({ ...stored, claudeAiOauth: { ...stored.claudeAiOauth, ...renewed } });
    expect(Object.keys(after.claudeAiOauth)).toEqual(Object.keys(stored.claudeAiOauth));
    expect((await stat(file())).mode & 0o777).toBe(0o600);
    expect(await readdir(dir)).toEqual([".credentials.json"]);
  });

  it("renames over the old file (a reader holding the old inode still sees a whole file)", async () => {
    await writeFile(file(), JSON.stringify(stored), { mode: 0o600 });
    const before = await stat(file());
    const read = await readCredentialsFile(dir);
    if (read.kind !== "present") throw new Error("expected a login");
    await writeCredentialsFile(dir, withRenewedTokens(read.data, renewed), read);
    expect((await stat(file())).ino).not.toBe(before.ino);
  });

  it("does not replace a symlink", async () => {
    const real = path.join(dir, "real.json");
    await writeFile(real, JSON.stringify(stored), { mode: 0o600 });
    await symlink(real, file());
    const read = await readCredentialsFile(dir);
    if (read.kind !== "present") throw new Error("expected a login");
    expect(read.symlink).toBe(true);
    const result = await writeCredentialsFile(dir, withRenewedTokens(read.data, renewed), read);
    expect(result).toMatchObject({ ok: false, reason: expect.stringMatching(/is a symlink/) });
    expect(JSON.parse(await readFile(real, "utf8"))).toEqual(stored);
  });

  it("fails with a reason, and leaves nothing behind, when the dir is gone", async () => {
    const gone = path.join(dir, "gone");
    await mkdir(gone);
    await writeFile(path.join(gone, ".credentials.json"), JSON.stringify(stored));
    const read = await readCredentialsFile(gone);
    if (read.kind !== "present") throw new Error("expected a login");
    await rm(gone, { recursive: true });
    const result = await writeCredentialsFile(gone, withRenewedTokens(read.data, renewed), read);
    expect(result).toMatchObject({ ok: false, reason: expect.stringMatching(/cannot write .* \(ENOENT\)/) });
    expect(JSON.stringify(result)).not.toContain("sk-ant");
  });
});
