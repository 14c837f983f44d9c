/**
 * The real Claude Code CLI, ten at a time on one config dir, against a fake
 * token endpoint that enforces single-use refresh tokens (reached through a
 * CONNECT proxy with a throwaway CA, since the CLI's endpoint is fixed:
 * https://platform.claude.com/v1/oauth/token) and a fake Messages API
 * (ANTHROPIC_BASE_URL). Opt-in: skipped unless the binary is found
 * (CLAUDE_BIN, or the cache dir .ci/run installs it into) and openssl is on
 * PATH. Written against 2.1.328; see docs/operations.md, "Managed
 * credentials", for what these runs showed.
 */
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { CLAUDE_CODE_CLIENT_ID, CredentialManager } from "../../src/credentials/index.js";
import { systemClock } from "../../src/domain/index.js";
import { silentLogger } from "../../src/runtime/logger.js";
import { CLAUDE_CLI_VERSION, claudeVersion, findClaudeBin } from "../support/claude-bin.js";
import { type FakeMessagesApi, startFakeMessagesApi } from "../support/fake-messages-api.js";
import {
  FakeTokenEndpoint,
  type TokenServer,
  type TokenSet,
  serveTokenEndpoint,
} from "../support/fake-token-endpoint.js";
import { type MitmProxy, hasOpenssl, startMitmProxy } from "../support/mitm-proxy.js";

const RUNS = 10;
const MIN = 60_000;
const SCOPES = ["user:inference", "user:profile", "user:sessions:claude_code"];

const bin = findClaudeBin();
const openssl = await hasOpenssl();
const skipReason =
  bin === undefined
    ? "skipped: no claude binary (set CLAUDE_BIN, or let .ci/run install it into ~/.cache/authpool-claude-cli)"
    : !openssl
      ? "skipped: openssl is needed for the throwaway CA"
      : undefined;
if (skipReason !== undefined) console.warn(`test/real-cli/concurrent-refresh: ${skipReason}`);

interface Run {
  code: number | null;
  stdout: string;
  result?: { result?: string; is_error?: boolean };
}

let root: string;
let cfg: string;
let tokens: FakeTokenEndpoint;
let proxy: MitmProxy | undefined;
let api: FakeMessagesApi | undefined;
let door: TokenServer | undefined;

/**
 * fakes starts the token endpoint (one state behind two doors: the CLI's,
 * through the proxy as platform.claude.com, and the pool's, plain HTTP on
 * loopback) and the Messages API, which accepts only the endpoint's live
 * access tokens.
 */
async function fakes(options: { latencyMs?: number } = {}): Promise<{ poolEndpoint: string }> {
  tokens = new FakeTokenEndpoint({ latencyMs: options.latencyMs ?? 0 });
  proxy = await startMitmProxy({ dir: root, handler: tokens.handle });
  api = await startFakeMessagesApi({ authorize: (token) => tokens.accessTokenValid(token) });
  door = await serveTokenEndpoint(tokens);
  return { poolEndpoint: door.url };
}

describe.skipIf(skipReason !== undefined)(
  `real claude -p, ${RUNS} at once on one config dir${skipReason !== undefined ? ` (${skipReason})` : ""}`,
  () => {
    beforeAll(async () => {
      const version = await claudeVersion(bin!);
      // Another version still runs: the assertions say what 2.1.328 did; a failure here is news about the CLI.
      if (version !== undefined && !version.startsWith(CLAUDE_CLI_VERSION))
        console.warn(`real-cli tests written for ${CLAUDE_CLI_VERSION}, running ${version}`);
    });

    beforeEach(async () => {
      root = await mkdtemp(path.join(os.tmpdir(), "authpool-real-cli-"));
      cfg = path.join(root, "config");
      await mkdir(cfg);
    });

    afterEach(async () => {
      await proxy?.close();
      await api?.close();
      await door?.close();
      proxy = api = door = undefined;
      await rm(root, { recursive: true, force: true });
    });

    it("without management, Claude Code 2.1.328 serializes its own refreshes: one grant, every run succeeds", async () => {
      await fakes();
      // Inside the CLI's 5-minute margin: every process decides to refresh at start.
      await writeLogin(tokens.login(Date.now() + 2 * MIN));
      const runs = await runClaude(RUNS);
      expect(runs.map((r) => [r.code, r.result?.result])).toEqual(Array.from({ length: RUNS }, () => [0, "4"]));
      // The CLI's own lock (.oauth_refresh.lock) let one process refresh; the others re-read and adopted its token.
      expect(tokens.requests.map((r) => r.outcome)).toEqual(["granted"]);
      const after = await readLogin();
      expect(tokens.isLive(after.refreshToken)).toBe(true);
      expect(tokens.accessTokenValid(after.accessToken)).toBe(true);
    }, 60_000);

    it("without management, one refresh token spent elsewhere logs every run out, and Claude Code blanks the file", async () => {
      await fakes();
      const login = tokens.login(Date.now() + 2 * MIN);
      await writeLogin(login);
      // Another holder of this login (a copy of the file, an old CLI without the lock, a naive refresher) used it first.
      tokens.redeem(login.refreshToken);
      const runs = await runClaude(RUNS);
      for (const run of runs) {
        expect(run.code).toBe(1);
        expect(run.result).toMatchObject({
          is_error: true,
          result: "Failed to authenticate: OAuth session expired and could not be refreshed",
        });
      }
      // One process got invalid_grant and blanked the login; the others adopted the blank file (the access token
      // had two minutes left, and no run used it).
      expect(tokens.requests.map((r) => r.outcome)).toEqual(["invalid_grant"]);
      expect(await readLogin()).toMatchObject({ accessToken: "", refreshToken: "", expiresAt: 0 });
      expect(api!.requests).toEqual([]);
    }, 60_000);

    it("with management, the pool refreshes first under the CLI's lock: every run succeeds, no run refreshes, the file stays valid", async () => {
      const { poolEndpoint } = await fakes({ latencyMs: 3_000 });
      await writeLogin(tokens.login(Date.now() + 2 * MIN));
      const manager = new CredentialManager({
        subscriptions: [{ id: "max-1", configDir: cfg }],
        tokenEndpoint: poolEndpoint,
        clientId: CLAUDE_CODE_CLIENT_ID,
        refreshBeforeMs: 60 * MIN,
        checkIntervalMs: MIN,
        timeoutMs: 15_000,
        backoff: { minMs: 30_000, maxMs: 600_000 },
        clock: systemClock,
        logger: silentLogger,
      });
      // The pool takes the lock at once; its (slow) refresh is still in flight while the CLIs start and reach
      // their own refresh check: they wait for the lock, then adopt the pool's token.
      const [runs] = await Promise.all([runClaude(RUNS), manager.checkDue()]);
      expect(runs.map((r) => [r.code, r.result?.result])).toEqual(Array.from({ length: RUNS }, () => [0, "4"]));
      expect(tokens.requests.map((r) => r.outcome)).toEqual(["granted"]);
      expect(proxy!.requests.filter((r) => r.path === "/v1/oauth/token")).toEqual([]);
      expect(manager.status("max-1")).toMatchObject({ kind: "refreshed", failures: 0 });
      const file = JSON.parse(await readFile(path.join(cfg, ".credentials.json"), "utf8")) as {
        claudeAiOauth: TokenSet & Record<string, unknown>;
      };
      const after = file.claudeAiOauth;
      expect(tokens.isLive(after.refreshToken)).toBe(true);
      expect(tokens.accessTokenValid(after.accessToken)).toBe(true);
      expect(after).toMatchObject({ scopes: SCOPES, subscriptionType: "max", rateLimitTier: "default_claude_max_20x" });
      expect((await stat(path.join(cfg, ".credentials.json"))).mode & 0o777).toBe(0o600);
      expect(api!.requests.every((r) => r.status === 200)).toBe(true);
    }, 60_000);
  },
);

async function writeLogin(login: TokenSet): Promise<void> {
  const data = {
    claudeAiOauth: { ...login, scopes: SCOPES, subscriptionType: "max", rateLimitTier: "default_claude_max_20x" },
  };
  await writeFile(path.join(cfg, ".credentials.json"), JSON.stringify(data), { mode: 0o600 });
}

async function readLogin(): Promise<TokenSet> {
  return (JSON.parse(await readFile(path.join(cfg, ".credentials.json"), "utf8")) as { claudeAiOauth: TokenSet })
    .claudeAiOauth;
}

/** runClaude starts `count` processes at once (own HOME and cwd each, one shared config dir) and waits for all. */
async function runClaude(count: number): Promise<Run[]> {
  return Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const home = path.join(root, `home-${i}`);
      const work = path.join(root, `work-${i}`);
      await mkdir(home);
      await mkdir(work);
      return runOne(home, work);
    }),
  );
}

function runOne(home: string, work: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin!, ["-p", "What is 2+2?", "--output-format", "json", "--model", "sonnet"], {
      cwd: work,
      // stdin closed: print mode otherwise waits 3 s for piped input.
      stdio: ["ignore", "pipe", "pipe"],
      env: {
        PATH: process.env["PATH"] ?? "/usr/bin:/bin",
        HOME: home,
        CLAUDE_CONFIG_DIR: cfg,
        ANTHROPIC_BASE_URL: api!.url,
        HTTPS_PROXY: proxy!.url,
        NO_PROXY: "127.0.0.1,localhost",
        NODE_EXTRA_CA_CERTS: proxy!.caFile,
        TZ: "UTC",
        DISABLE_TELEMETRY: "1",
        DISABLE_ERROR_REPORTING: "1",
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1",
        DISABLE_AUTOUPDATER: "1",
      },
    });
    let stdout = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString("utf8")));
    child.stderr.resume();
    const timer = setTimeout(() => child.kill("SIGKILL"), 50_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      let result: Run["result"];
      try {
        result = JSON.parse(stdout) as Run["result"];
      } catch {
        result = undefined;
      }
      resolve({ code, stdout, ...(result !== undefined ? { result } : {}) });
    });
  });
}
