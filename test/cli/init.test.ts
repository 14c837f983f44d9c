import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { PassThrough } from "node:stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { INIT_OUTPUT_EXISTS, type InitOptions, runInit } from "../../src/cli/init.js";
import { loadConfigFile } from "../../src/config/index.js";
import { fixture } from "../support/test-server.js";

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

interface InitResult {
  code: number;
  stdout: string;
  stderr: string;
}

describe("runInit()", () => {
  let home: string;
  let output: string;
  let credentials: string;
  let tokens: string[];

  beforeEach(async () => {
    home = await mkdtemp(path.join(os.tmpdir(), "authpool-init-"));
    output = path.join(home, "out", "authpool.yaml");
    credentials = await fixture("credentials/config-a/.credentials.json");
    const oauth = (JSON.parse(credentials) as { claudeAiOauth: { accessToken: string; refreshToken: string } })
      .claudeAiOauth;
    tokens = [oauth.accessToken, oauth.refreshToken];

    // ~/.claude: the fixture's credentials (max) and an account file.
    await put(".claude/.credentials.json", credentials);
    await put(".claude/.claude.json", JSON.stringify({ oauthAccount: { emailAddress: "me@example.com" } }));
    // ~/.claude-work: max, no account file: the e-mail stays empty.
    await put(".claude-work/.credentials.json", credentials);
    // ~/.claude-side: pro.
    await put(
      ".claude-side/.credentials.json",
      credentials.replace('"subscriptionType":"max"', '"subscriptionType":"pro"'),
    );
    // ~/.config/claude: only .claude.json (macOS-style: the token is in the keychain).
    await put(".config/claude/.claude.json", JSON.stringify({ oauthAccount: { emailAddress: "xdg@example.com" } }));
    // Unrelated dirs, one with a claude-like name but nothing in it.
    await mkdir(path.join(home, ".claude-empty"), { recursive: true });
    await put("projects/readme.txt", "not a config dir");
  });

  afterEach(async () => {
    await rm(home, { recursive: true, force: true });
  });

  async function put(relative: string, text: string): Promise<void> {
    const file = path.join(home, relative);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, text);
  }

  async function init(overrides: Partial<InitOptions> = {}): Promise<InitResult> {
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    let out = "";
    let err = "";
    stdout.setEncoding("utf8").on("data", (s: string) => (out += s));
    stderr.setEncoding("utf8").on("data", (s: string) => (err += s));
    const code = await runInit({ home, env: {}, paths: [], output, force: false, stdout, stderr, ...overrides });
    await new Promise((resolve) => setImmediate(resolve));
    return { code, stdout: out, stderr: err };
  }

  it("should write a config that loads, with one subscription per config dir", async () => {
    const result = await init();

    expect(result.code).toBe(0);
    const config = await loadConfigFile(output, { homeDir: home });
    expect(
      config.subscriptions.map(({ id, type, email, configDir, weeklyBudgetUsd }) => ({
        id,
        type,
        email,
        configDir,
        weeklyBudgetUsd,
      })),
    ).toEqual([
      {
        id: "default",
        type: "claude-max",
        email: "me@example.com",
        configDir: path.join(home, ".claude"),
        weeklyBudgetUsd: 2280,
      },
      { id: "side", type: "claude-pro", email: "", configDir: path.join(home, ".claude-side"), weeklyBudgetUsd: 456 },
      { id: "work", type: "claude-max", email: "", configDir: path.join(home, ".claude-work"), weeklyBudgetUsd: 2280 },
      {
        id: "config",
        type: "claude-pro",
        email: "xdg@example.com",
        configDir: path.join(home, ".config", "claude"),
        weeklyBudgetUsd: 456,
      },
    ]);
    const text = await readFile(output, "utf8");
    expect(text).toContain("config/example.yaml");
    expect(text).toContain("rateLimitTier: default_claude_max_20x");
    expect(text).toMatch(/weeklyBudgetUsd: 2280 # API-equivalent guess/);
    expect(result.stdout).toMatch(/^default\s+claude-max\s+me@example\.com\s+\S*\.claude$/m);
    expect(result.stdout).toContain(`wrote ${output}`);
    // The next step, ready to paste: the output is not ./authpool.yaml here, so serve must be told.
    expect(result.stdout).toMatch(
      new RegExp(`start the pool with: authpool serve --config ${escapeRegExp(output)}\n$`),
    );
    expect(result.stderr).toMatch(/config: no \.credentials\.json .*assumed claude-pro/);
  });

  it("should never print or write a token", async () => {
    const result = await init();

    expect(result.code).toBe(0);
    const text = await readFile(output, "utf8");
    for (const token of tokens) {
      expect(result.stdout).not.toContain(token);
      expect(result.stderr).not.toContain(token);
      expect(text).not.toContain(token);
    }
  });

  it("should add given paths (~ expanded), name bare claude dirs after their parent and skip duplicates", async () => {
    await put("accounts/alice/.claude/.credentials.json", credentials);
    const result = await init({ paths: ["~/accounts/alice/.claude", path.join(home, ".claude-work")] });

    expect(result.code).toBe(0);
    const config = await loadConfigFile(output, { homeDir: home });
    expect(config.subscriptions.map((s) => s.id)).toEqual(["default", "side", "work", "config", "alice"]);
  });

  it("should give de-duplicated ids that match the id pattern", async () => {
    await put("a/team A!/.claude.json", "{}");
    await put("b/team A!/.claude.json", "{}");
    const result = await init({ paths: [path.join(home, "a", "team A!"), path.join(home, "b", "team A!")] });

    expect(result.code).toBe(0);
    const config = await loadConfigFile(output, { homeDir: home });
    expect(config.subscriptions.map((s) => s.id).slice(-2)).toEqual(["team-A", "team-A-2"]);
  });

  it("should refuse an existing output without force and leave it unchanged", async () => {
    await put("out/authpool.yaml", "# mine\n");
    const result = await init();

    expect(result.code).toBe(INIT_OUTPUT_EXISTS);
    expect(result.code).toBe(73);
    expect(result.stderr).toContain("--force");
    expect(await readFile(output, "utf8")).toBe("# mine\n");
  });

  it("should overwrite an existing output with force", async () => {
    await put("out/authpool.yaml", "# mine\n");
    const result = await init({ force: true });

    expect(result.code).toBe(0);
    expect((await loadConfigFile(output, { homeDir: home })).subscriptions).toHaveLength(4);
  });

  it.each([
    { name: "does not exist", given: "~/nowhere" },
    { name: "is a file", given: "~/projects/readme.txt" },
  ])("should return 2 when a given path $name", async ({ given }) => {
    const result = await init({ paths: [given] });

    expect(result.code).toBe(2);
    expect(result.stderr).toContain(given);
    await expect(readFile(output, "utf8")).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("should return 1 when no config dir is found", async () => {
    const empty = await mkdtemp(path.join(os.tmpdir(), "authpool-init-empty-"));
    try {
      const result = await init({ home: empty, output: path.join(empty, "authpool.yaml") });

      expect(result.code).toBe(1);
      expect(result.stderr).toContain("no Claude config dirs found");
      await expect(readFile(path.join(empty, "authpool.yaml"), "utf8")).rejects.toMatchObject({ code: "ENOENT" });
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });
});
