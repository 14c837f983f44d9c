import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, applyEnv, loadConfigFile, parseConfig } from "../../src/config/index.js";
import { parseTokenEntry } from "../../src/config/auth-tokens.js";
import { testConfigRaw } from "../support/test-server.js";

/**
 * Where bearer tokens come from (a token file, AUTHPOOL_TOKENS(_FILE), the
 * config file itself) and how a bad one is reported: the file, the key path
 * and the line or entry, never the token or a part of it.
 */

const GOOD = "good-token-0123456789";
const SECRETISH = "Zq9-secret-part-of-a-token";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "authpool-tokens-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** withTokenFile writes a token file and a config naming it, and loads the config. */
async function load(
  tokenText: string | undefined,
  server: Record<string, unknown> = {},
): Promise<ReturnType<typeof loadConfigFile>> {
  const sub = await mkdtemp(path.join(dir, "case-"));
  const tokenFile = path.join(sub, "tokens");
  if (tokenText !== undefined) await writeFile(tokenFile, tokenText);
  const configFile = path.join(sub, "pool.json");
  await writeFile(
    configFile,
    JSON.stringify({ ...testConfigRaw(sub), server: { authTokensFile: tokenFile, ...server } }),
  );
  return loadConfigFile(configFile);
}

async function refusal(promise: Promise<unknown>): Promise<ConfigError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ConfigError);
  return error as ConfigError;
}

describe("server.authTokensFile", () => {
  it("reads role:token lines, skipping comments and blank lines (CRLF and a BOM too)", async () => {
    const config = await load(
      `\uFEFF# pool tokens\r\nclient:${GOOD}-c\r\n\r\n  reader : ${GOOD}-r   # grafana\r\nADMIN:${GOOD}-a\r\n${GOOD}-bare\r\n`,
    );
    expect(config.server.authTokens).toEqual([
      { role: "client", token: `${GOOD}-c`, from: "file" },
      { role: "reader", token: `${GOOD}-r`, from: "file" },
      { role: "admin", token: `${GOOD}-a`, from: "file" },
      // A bare token means admin, as before roles existed.
      { role: "admin", token: `${GOOD}-bare`, from: "file" },
    ]);
    expect(path.isAbsolute(config.server.authTokensFile ?? "")).toBe(true);
  });

  it("adds to tokens written in the config itself", async () => {
    const config = await load(`client:${GOOD}\n`, { authTokens: [`reader:${GOOD}-inline`] });
    expect(config.server.authTokens.map((t) => `${t.role}/${t.from}`)).toEqual(["client/file", "reader/config"]);
  });

  it("names the config file, the key and the missing token file", async () => {
    const error = await refusal(load(undefined));
    expect(error.path).toBe("server.authTokensFile");
    expect(error.file).toMatch(/pool\.json$/);
    expect(error.message).toMatch(
      /pool\.json: server\.authTokensFile: expected a readable file of "role:token" lines, got \/.*\/tokens: no such file$/,
    );
  });

  it.each([
    {
      name: "an unknown role",
      text: `client:${GOOD}\nwriter:${SECRETISH}\n`,
      want: /got an unknown role on line 2 of /,
    },
    {
      name: "a token shorter than 16 characters",
      text: `# c\n\nclient:Zq9-short\n`,
      want: /expected a token of at least 16 characters, got a token of 9 characters on line 3 of /,
    },
    { name: "an empty token", text: `reader:\n`, want: /got an empty token on line 1 of / },
    {
      name: "a space inside the token",
      text: `client:${SECRETISH} ${SECRETISH}\n`,
      want: /got a token with a space or control character on line 1 of /,
    },
    {
      name: "a bare token with a colon",
      text: `${SECRETISH}:${SECRETISH}\n`,
      want: /got an unknown role on line 1 of /,
    },
    {
      name: "no token at all",
      text: "# nothing yet\n\n",
      want: /expected at least one "role:token" line, got none in /,
    },
  ])("refuses $name, showing the line, never the token", async ({ text, want }) => {
    const error = await refusal(load(text));
    expect(error.path).toBe("server.authTokensFile");
    expect(error.message).toMatch(want);
    expect(error.message).not.toContain(SECRETISH);
    expect(error.message).not.toContain("Zq9");
  });

  it("reports every bad line at once", async () => {
    const error = await refusal(load(`nope:${SECRETISH}\nclient:short\nclient:${GOOD}\n`));
    expect(error.issues.map((i) => i.expected.match(/line \d+/)?.[0])).toEqual(["line 1", "line 2"]);
  });

  it("expands ~/ against the home directory", async () => {
    const home = await mkdtemp(path.join(dir, "home-"));
    await writeFile(path.join(home, "tokens"), `admin:${GOOD}\n`);
    const config = parseConfig({ ...testConfigRaw(home), server: { authTokensFile: "~/tokens" } }, "<inline>", {
      homeDir: home,
    });
    expect(config.server.authTokensFile).toBe(path.join(home, "tokens"));
  });
});

describe("server.authTokens (in the config file)", () => {
  it.each([
    { name: "a short token", tokens: ["Zq9-short"] },
    { name: "an unknown role", tokens: [`root:${SECRETISH}`] },
    { name: "a token with a space", tokens: [`${SECRETISH} x`] },
  ])("refuses $name without echoing it", ({ tokens }) => {
    let error: unknown;
    try {
      parseConfig({ ...testConfigRaw(dir), server: { authTokens: tokens } }, "/etc/authpool/pool.yaml");
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as ConfigError).message;
    expect(message).toMatch(/^\/etc\/authpool\/pool\.yaml: server\.authTokens\[0\]: expected /);
    expect(message).toContain("got a hidden value");
    expect(message).not.toContain("Zq9");
  });
});

describe("AUTHPOOL_TOKENS and AUTHPOOL_TOKENS_FILE", () => {
  const base = () => parseConfig(testConfigRaw(dir), "<inline>");

  it("reads role:token entries; a bare token means admin", () => {
    const next = applyEnv(base(), { AUTHPOOL_TOKENS: `admin:${GOOD}-1, client:${GOOD}-2,${GOOD}-3` });
    expect(next.server.authTokens.map((t) => [t.role, t.from])).toEqual([
      ["admin", "env"],
      ["client", "env"],
      ["admin", "env"],
    ]);
  });

  it("names the entry of a bad one, never its text", () => {
    let error: unknown;
    try {
      applyEnv(base(), { AUTHPOOL_TOKENS: `admin:${GOOD},boss:${SECRETISH},client:Zq9-short` });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const e = error as ConfigError;
    expect(e.file).toBe("env");
    expect(e.path).toBe("AUTHPOOL_TOKENS");
    expect(e.issues.map((i) => i.expected)).toEqual([
      'expected a role of client, reader or admin before the ":", got an unknown role in entry 2 of 3',
      "expected a token of at least 16 characters, got a token of 9 characters in entry 3 of 3",
    ]);
    expect(e.message).not.toContain("Zq9");
  });

  it("reads a token file named by AUTHPOOL_TOKENS_FILE, with the same errors", async () => {
    const file = path.join(dir, "env-tokens");
    await writeFile(file, `reader:${GOOD}\nclient:Zq9-short\n`);
    let error: unknown;
    try {
      applyEnv(base(), { AUTHPOOL_TOKENS_FILE: file });
    } catch (e) {
      error = e;
    }
    expect((error as ConfigError).message).toBe(
      `env: AUTHPOOL_TOKENS_FILE: expected a token of at least 16 characters, got a token of 9 characters on line 2 of ${file}`,
    );
    await writeFile(file, `reader:${GOOD}\n`);
    const next = applyEnv(base(), { AUTHPOOL_TOKENS_FILE: file, AUTHPOOL_TOKENS: `client:${GOOD}-x` });
    expect(next.server.authTokens.map((t) => t.role)).toEqual(["reader", "client"]);
    const missing = path.join(dir, "absent");
    expect(() => applyEnv(base(), { AUTHPOOL_TOKENS_FILE: missing })).toThrow(
      `env: AUTHPOOL_TOKENS_FILE: expected a readable file of "role:token" lines, got ${missing}: no such file`,
    );
  });
});

describe("parseTokenEntry()", () => {
  it.each([
    { text: `${GOOD}`, want: { ok: true, role: "admin" } },
    { text: `client:${GOOD}`, want: { ok: true, role: "client" } },
    { text: `Reader:${GOOD}`, want: { ok: true, role: "reader" } },
    { text: `admin:${GOOD}:with:colons`, want: { ok: true, role: "admin", token: `${GOOD}:with:colons` } },
    { text: `client:bot-7:${GOOD}`, want: { ok: true, role: "client", client: "bot-7", token: GOOD } },
    { text: `Reader:ops:${GOOD}`, want: { ok: true, role: "reader", client: "ops", token: GOOD } },
    { text: `client:bot-7:short`, want: { ok: false } },
    { text: `client:-bad-name:${GOOD}`, want: { ok: true, role: "client", token: `-bad-name:${GOOD}` } },
    { text: `client:`, want: { ok: false } },
    { text: `:${GOOD}`, want: { ok: false } },
    { text: `client:${"x".repeat(15)}`, want: { ok: false } },
    { text: `client:${"x".repeat(16)}`, want: { ok: true } },
    { text: `client:tab\there-0123456789`, want: { ok: false } },
    { text: `client:ünïcode-0123456789`, want: { ok: false } },
  ])("$text", ({ text, want }) => {
    expect(parseTokenEntry(text)).toMatchObject(want);
  });
});
