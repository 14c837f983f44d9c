import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { PassThrough } from "node:stream";
import { fileURLToPath } from "node:url";
import { Code, ConnectError, createClient, createRouterTransport } from "@connectrpc/connect";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { EXEC_NO_SUBSCRIPTION, type ExecOptions, runExec } from "../../src/cli/exec.js";
import { newestSequence } from "../../src/cli/newest-event.js";
import {
  AuthPoolService,
  ClientLimitKind,
  ClientLimitSchema,
  createAuthPoolClient,
  SubscriptionState,
} from "../../src/client/index.js";
import { fixture, startTestPool, type TestPool } from "../support/test-server.js";

// A stand-in for `claude`: logs each run, says on stderr whether an API key
// is set (never its value), prints a fixture chosen by its config dir and
// exits with FAKE_CLAUDE_EXIT. CommonJS: the temp dir has no package.json.
const FAKE_CLAUDE = `#!/usr/bin/env node
const fs = require("node:fs");
const path = require("node:path");
const env = process.env;
const configDir = env.CLAUDE_CONFIG_DIR;
const apiKey = (env.ANTHROPIC_API_KEY || "") !== "";
fs.appendFileSync(env.FAKE_CLAUDE_LOG, JSON.stringify({ configDir: configDir === undefined ? null : configDir, apiKey, args: process.argv.slice(2) }) + "\\n");
process.stderr.write("fake-claude: ANTHROPIC_API_KEY " + (apiKey ? "set" : "unset") + "\\n");
if (env.FAKE_CLAUDE_WAIT === "1") {
  process.stdout.write("waiting\\n");
  setInterval(() => {}, 1000);
} else {
  const limited = (env.FAKE_CLAUDE_LIMIT_ON || "").split(",").filter(Boolean);
  const file = configDir !== undefined && limited.includes(path.basename(configDir)) ? env.FAKE_CLAUDE_LIMIT : env.FAKE_CLAUDE_OK;
  const out = env.FAKE_CLAUDE_STDOUT !== undefined ? env.FAKE_CLAUDE_STDOUT : fs.readFileSync(file, "utf8");
  process.stdout.write(out, () => process.exit(Number(env.FAKE_CLAUDE_EXIT || "0")));
}
`;

const fixturePath = (name: string) => fileURLToPath(new URL(`../fixtures/claude-cli/${name}`, import.meta.url));
const SUCCESS_COST = 0.0612955;

interface FakeRun {
  configDir: string | null;
  apiKey: boolean;
  args: string[];
}

interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
  runs: FakeRun[];
}

describe("runExec()", () => {
  let pool: TestPool;
  let tmp: string;
  let fakeClaude: string;
  let log: string;

  beforeEach(async () => {
    pool = await startTestPool();
    tmp = await mkdtemp(path.join(os.tmpdir(), "authpool-exec-"));
    fakeClaude = path.join(tmp, "claude");
    log = path.join(tmp, "runs.ndjson");
    await writeFile(fakeClaude, FAKE_CLAUDE);
    await chmod(fakeClaude, 0o755);
  });

  afterEach(async () => {
    await pool.close();
    await rm(tmp, { recursive: true, force: true });
  });

  async function exec(
    overrides: Partial<ExecOptions> = {},
    env: Record<string, string> = {},
    during?: (stdoutSoFar: () => string) => Promise<void>,
  ): Promise<ExecResult> {
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    let out = "";
    let err = "";
    stdout.setEncoding("utf8").on("data", (s: string) => (out += s));
    stderr.setEncoding("utf8").on("data", (s: string) => (err += s));
    const running = runExec({
      client: createAuthPoolClient(pool.server.url),
      server: pool.server.url,
      command: [fakeClaude, "-p", "hi", "--output-format", "json"],
      keep: false,
      retryOnLimit: false,
      fallbackEnv: ["ANTHROPIC_API_KEY"],
      env: {
        PATH: process.env.PATH ?? "",
        FAKE_CLAUDE_LOG: log,
        FAKE_CLAUDE_OK: fixturePath("success.json"),
        FAKE_CLAUDE_LIMIT: fixturePath("stream-limit.ndjson"),
        ...env,
      },
      stdout,
      stderr,
      ...overrides,
    });
    if (during) await during(() => out);
    const code = await running;
    await new Promise((resolve) => setImmediate(resolve));
    return { code, stdout: out, stderr: err, runs: await readRuns() };
  }

  async function readRuns(): Promise<FakeRun[]> {
    const text = await readFile(log, "utf8").catch(() => "");
    return text
      .split("\n")
      .filter((line) => line !== "")
      .map((line) => JSON.parse(line) as FakeRun);
  }

  async function status() {
    return pool.grpc.getPoolStatus({ includeSessions: true });
  }

  /**
   * outlastBriefWait lets exec's brief wait for a slot run out: the pool's
   * clock stands still in tests, so it is moved once the call waits.
   */
  async function outlastBriefWait(): Promise<void> {
    while ((await status()).waiting < 1) await new Promise((r) => setTimeout(r, 10));
    pool.clock.advance(60_000);
  }

  /** failovers counts the failover events the pool keeps. */
  async function failovers(): Promise<number> {
    const newest = await newestSequence(pool.grpc, 2000);
    if (newest === undefined || newest === 0n) return 0;
    let count = 0;
    for await (const { event } of pool.grpc.streamEvents({})) {
      if (event?.payload.case === "failover") count++;
      if (event !== undefined && event.sequence >= newest) break;
    }
    return count;
  }

  async function pauseAll() {
    for (const id of ["sub1", "sub2", "sub3"]) await pool.grpc.setPaused({ subscriptionId: id, paused: true });
  }

  it("should run on the granted config dir, report the usage there and release the session", async () => {
    const result = await exec({ sessionId: "s-report" });

    expect(result.code).toBe(0);
    expect(result.stdout).toBe(await fixture("claude-cli/success.json"));
    expect(result.runs).toHaveLength(1);
    const configDir = result.runs[0]?.configDir;
    expect(configDir).toMatch(/sub[123]$/);
    const granted = path.basename(configDir ?? "");
    const s = await status();
    expect(s.subscriptions.find((sub) => sub.id === granted)?.weeklyUsedUsd).toBeCloseTo(SUCCESS_COST, 6);
    expect(s.sessions.map((session) => session.sessionId)).not.toContain("s-report");
  });

  it("should exit with the command's exit code and still report", async () => {
    const result = await exec({}, { FAKE_CLAUDE_EXIT: "3" });

    expect(result.code).toBe(3);
    const used = (await status()).subscriptions.reduce((sum, sub) => sum + sub.weeklyUsedUsd, 0);
    expect(used).toBeCloseTo(SUCCESS_COST, 6);
  });

  it("should keep the session with keep, and pass the --model hint", async () => {
    const result = await exec({
      sessionId: "s-keep",
      keep: true,
      command: [fakeClaude, "-p", "hi", "--model=opus", "--output-format", "json"],
    });

    expect(result.code).toBe(0);
    const session = (await status()).sessions.find((s) => s.sessionId === "s-keep");
    expect(session?.subscriptionId).toBe(path.basename(result.runs[0]?.configDir ?? ""));
    expect(session?.model).toBe("opus");
  });

  it("should book the run to --client, and wait for a slot with --wait rather than fall back", async () => {
    await exec({ sessionId: "s-alice", clientName: "alice" });
    const usage = await pool.grpc.getUsage({});
    expect(usage.rows.map((r) => r.key)).toEqual(["alice"]);

    // Nothing free: the run waits until a subscription is resumed, then runs there.
    await pauseAll();
    const result = await exec({ sessionId: "s-wait", wait: 10 }, {}, async () => {
      while ((await status()).waiting < 1) await new Promise((r) => setTimeout(r, 10));
      await pool.grpc.setPaused({ subscriptionId: "sub2", paused: false });
    });
    expect(result.code).toBe(0);
    expect(result.runs.at(-1)?.configDir).toMatch(/sub2$/);
  });

  it("should strip the fallback env vars from a subscription run and never print their values", async () => {
    const result = await exec({}, { ANTHROPIC_API_KEY: "sk-ant-api03-SECRET-VALUE" });

    expect(result.runs[0]).toMatchObject({ apiKey: false, configDir: expect.stringMatching(/sub[123]$/) });
    expect(result.stderr).toContain("fake-claude: ANTHROPIC_API_KEY unset");
    expect(result.stdout + result.stderr).not.toContain("SECRET-VALUE");
  });

  it("should move to another subscription and show only the second run's output with retryOnLimit", async () => {
    // Allocating first tells us where the session will resume, so the fake can hit a limit there.
    const first = await pool.grpc.allocate({ sessionId: "s-retry" });
    const limited = first.outcome.case === "subscription" ? first.outcome.value.subscriptionId : "";
    expect(limited).not.toBe("");

    const result = await exec(
      { sessionId: "s-retry", retryOnLimit: true, keep: true },
      { FAKE_CLAUDE_LIMIT_ON: limited },
    );

    expect(result.code).toBe(0);
    expect(result.stdout).toBe(await fixture("claude-cli/success.json"));
    expect(result.runs.map((run) => path.basename(run.configDir ?? ""))).toEqual([
      limited,
      expect.not.stringMatching(limited),
    ]);
    expect(result.stderr).toContain(
      `authpool: subscription ${limited} hit its 5-hour limit until 2026-11-23T18:00:00Z`,
    );
    const second = path.basename(result.runs[1]?.configDir ?? "");
    expect(result.stderr).toContain(`authpool: running on ${limited} (${path.join(pool.dir, limited)})\n`);
    expect(result.stderr).toContain(
      `authpool: running again on ${second} (${path.join(pool.dir, second)}; the pool moved the session from ${limited})`,
    );
    const s = await status();
    const session = s.sessions.find((x) => x.sessionId === "s-retry");
    expect(session?.subscriptionId).toBe(second);
    expect(s.subscriptions.find((sub) => sub.id === limited)?.status).toBe(SubscriptionState.COOLDOWN);
    expect(s.subscriptions.find((sub) => sub.id === session?.subscriptionId)?.weeklyUsedUsd).toBeCloseTo(
      SUCCESS_COST,
      6,
    );
  });

  it("should flush the held output when the first run hit no limit", async () => {
    const result = await exec({ retryOnLimit: true });

    expect(result.code).toBe(0);
    expect(result.stdout).toBe(await fixture("claude-cli/success.json"));
    expect(result.runs).toHaveLength(1);
  });

  it("should note a limit without retrying when retryOnLimit is off", async () => {
    const result = await exec({}, { FAKE_CLAUDE_LIMIT_ON: "sub1,sub2,sub3" });

    expect(result.stdout).toBe(await fixture("claude-cli/stream-limit.ndjson"));
    expect(result.runs).toHaveLength(1);
    expect(result.stderr).toMatch(
      /authpool: subscription sub[123] hit its 5-hour limit until .*; the next run goes to another subscription/,
    );
  });

  it("should run on the fallback without CLAUDE_CONFIG_DIR and report nothing when a fallback var is set", async () => {
    await pauseAll();
    const result = await exec(
      { sessionId: "s-fallback" },
      { ANTHROPIC_API_KEY: "sk-ant-api03-SECRET-VALUE", CLAUDE_CONFIG_DIR: "/elsewhere" },
    );

    expect(result.code).toBe(0);
    expect(result.runs).toEqual([expect.objectContaining({ configDir: null, apiKey: true })]);
    expect(result.stderr).toMatch(
      /^authpool: no subscription available \(.+\); running with ANTHROPIC_API_KEY \(fallback provider anthropic-api\)$/m,
    );
    expect(result.stdout).toBe(await fixture("claude-cli/success.json"));
    expect(result.stdout + result.stderr).not.toContain("SECRET-VALUE");
    const s = await status();
    expect(s.subscriptions.every((sub) => sub.weeklyUsedUsd === 0)).toBe(true);
    expect(s.sessions.map((x) => x.sessionId)).not.toContain("s-fallback");
  });

  it("should return EXEC_NO_SUBSCRIPTION without running anything, or booking a failover, with no fallback var set", async () => {
    await pauseAll();
    const result = await exec({}, {}, outlastBriefWait);

    expect(result.code).toBe(EXEC_NO_SUBSCRIPTION);
    expect(result.runs).toEqual([]);
    expect(result.stderr).toMatch(
      /^authpool: no subscription available: .+; set ANTHROPIC_API_KEY to run on the paid API instead$/m,
    );
    // Why, as the pool said it: every subscription paused.
    expect(result.stderr).toContain("sub1: paused by an operator");
    expect(await failovers()).toBe(0);
  });

  it("should book the failover it runs on when a fallback var is set", async () => {
    await pauseAll();
    await exec({}, { ANTHROPIC_API_KEY: "sk-ant-api03-SECRET-VALUE" });
    expect(await failovers()).toBe(1);
  });

  it("should name the client and its limit, not a failover, and run on the paid API where the pool sends it", async () => {
    await pool.close();
    pool = await startTestPool({ config: { clients: { bot: { weeklyUsd: 0.05 } } } });
    // The first run spends $0.06 of the client's $0.05 a week.
    expect((await exec({ clientName: "bot" })).code).toBe(0);

    const result = await exec({ clientName: "bot" }, { ANTHROPIC_API_KEY: "sk-ant-api03-SECRET-VALUE" });

    expect(result.code).toBe(0);
    expect(result.runs).toHaveLength(2);
    expect(result.runs[1]).toMatchObject({ configDir: null, apiKey: true });
    expect(result.stderr).toMatch(
      /^authpool: client bot: spent \$0\.06 in 7 days, its limit is \$0\.05 \(weekly_usd limit\): the pool sends its new sessions to the paid API; running with ANTHROPIC_API_KEY \(fallback provider anthropic-api\)$/m,
    );
    expect(result.stderr).not.toContain("no subscription available");
    expect(result.stdout + result.stderr).not.toContain("SECRET-VALUE");
  });

  it("should exit EXEC_NO_SUBSCRIPTION without running, or booking a failover, naming the client and its limit, when no key is set", async () => {
    await pool.close();
    pool = await startTestPool({ config: { clients: { bot: { denyModels: ["opus"] } } } });

    const result = await exec({ clientName: "bot", command: [fakeClaude, "-p", "hi", "--model", "opus"] });

    expect(result.code).toBe(EXEC_NO_SUBSCRIPTION);
    expect(result.runs).toEqual([]);
    expect(result.stderr).toBe(
      "authpool: client bot: model opus is denied to it (opus) (model limit): the pool gives its new sessions no subscription and sent this one nowhere else; with ANTHROPIC_API_KEY set, it may send it to the paid API\n",
    );
    // Not a pool failover: no failover event (nor its alert or metric), the client_limited event instead.
    expect(await failovers()).toBe(0);
  });

  it("should use no key when a limit of the client refuses it and its fallback is off", async () => {
    await pool.close();
    pool = await startTestPool({ config: { clients: { bot: { maxSessions: 1, fallback: false } } } });
    await pool.grpc.allocate({ sessionId: "held", client: "bot" });

    const result = await exec({ clientName: "bot" }, { ANTHROPIC_API_KEY: "sk-ant-api03-SECRET-VALUE" });

    expect(result.code).toBe(EXEC_NO_SUBSCRIPTION);
    expect(result.runs).toEqual([]);
    expect(result.stderr).toBe(
      "authpool: client bot: holds 1 sessions, its most (maxSessions 1) (max_sessions limit): the pool gives its new sessions no subscription and sent this one nowhere else, so ANTHROPIC_API_KEY is not used\n",
    );
    expect(await failovers()).toBe(0);
  });

  it("should read the client limit a refusal carries, and then use no key", async () => {
    const limit = {
      client: "bot",
      kind: ClientLimitKind.WEEKLY_USD,
      detail: "client bot: spent $41.20 in 7 days, its limit is $40.00",
    };
    const refusing = createRouterTransport(({ service }) =>
      service(AuthPoolService, {
        allocate() {
          throw new ConnectError(`${limit.detail} (weekly_usd limit)`, Code.ResourceExhausted, undefined, [
            { desc: ClientLimitSchema, value: limit },
          ]);
        },
        release: () => ({}),
      }),
    );
    const client = createClient(AuthPoolService, refusing);

    const withKey = await exec({ client, clientName: "bot" }, { ANTHROPIC_API_KEY: "sk-ant-api03-SECRET-VALUE" });
    expect(withKey.code).toBe(EXEC_NO_SUBSCRIPTION);
    expect(withKey.runs).toEqual([]);
    expect(withKey.stderr).toBe(
      "authpool: client bot: spent $41.20 in 7 days, its limit is $40.00 (weekly_usd limit): the pool gives its new sessions no subscription and sent this one nowhere else, so ANTHROPIC_API_KEY is not used\n",
    );

    const withoutKey = await exec({ client, clientName: "bot" });
    expect(withoutKey.code).toBe(EXEC_NO_SUBSCRIPTION);
    expect(withoutKey.stderr).toBe(
      "authpool: client bot: spent $41.20 in 7 days, its limit is $40.00 (weekly_usd limit): the pool gives its new sessions no subscription and sent this one nowhere else; with ANTHROPIC_API_KEY set, it may send it to the paid API\n",
    );
  });

  it("should not blame the pool's fallback setting when a run that waits finds no slot", async () => {
    await pauseAll();
    const result = await exec({ wait: 1 }, { ANTHROPIC_API_KEY: "sk-ant-api03-SECRET-VALUE" }, outlastBriefWait);

    expect(result.code).toBe(EXEC_NO_SUBSCRIPTION);
    expect(result.runs).toEqual([]);
    expect(result.stderr).toMatch(
      /^authpool: no subscription available: .+; a run that waits does not fall back, so ANTHROPIC_API_KEY is not used$/m,
    );
  });

  it("should say which subscription runs the command, and where its config dir is, before it runs", async () => {
    const result = await exec({ sessionId: "s-where" });
    const configDir = result.runs[0]?.configDir ?? "";
    expect(result.stderr.split("\n")[0]).toBe(`authpool: running on ${path.basename(configDir)} (${configDir})`);
  });

  it("should return EXEC_NO_SUBSCRIPTION on RESOURCE_EXHAUSTED (fallback disabled on the server)", async () => {
    await pool.close();
    pool = await startTestPool({ config: { fallback: { enabled: false } } });
    await pauseAll();
    const result = await exec({}, {}, outlastBriefWait);

    expect(result.code).toBe(EXEC_NO_SUBSCRIPTION);
    expect(result.runs).toEqual([]);
    expect(result.stderr).toMatch(/^authpool: no subscription available: .+; set ANTHROPIC_API_KEY to run/m);
  });

  it("should return 127 with a clear message when the command cannot be started", async () => {
    const result = await exec({ sessionId: "s-enoent", command: [path.join(tmp, "no-such-claude"), "-p", "hi"] });

    expect(result.code).toBe(127);
    expect(result.stderr).toContain(`authpool: cannot run ${path.join(tmp, "no-such-claude")}: command not found`);
    expect((await status()).sessions.map((x) => x.sessionId)).not.toContain("s-enoent");
  });

  it("should note output that is not Claude JSON and keep the command's exit code", async () => {
    const result = await exec({}, { FAKE_CLAUDE_STDOUT: "hello, not json\n", FAKE_CLAUDE_EXIT: "4" });

    expect(result.code).toBe(4);
    expect(result.stdout).toBe("hello, not json\n");
    expect(result.stderr).toMatch(/^authpool: usage not counted: text output: no cost or tokens in it; .+$/m);
  });

  it("should forward SIGTERM to the command and exit with 128 + 15", async () => {
    const result = await exec({}, { FAKE_CLAUDE_WAIT: "1" }, async (stdoutSoFar) => {
      while (stdoutSoFar() === "") await new Promise((resolve) => setTimeout(resolve, 20));
      // No other SIGTERM listener runs in the test worker; emit reaches only runExec's.
      process.emit("SIGTERM", "SIGTERM");
    });

    expect(result.code).toBe(143);
    expect(result.stdout).toBe("waiting\n");
    expect(result.stderr).toMatch(/authpool: usage not counted: text output/);
    expect(process.listenerCount("SIGTERM")).toBe(0);
  });
});
