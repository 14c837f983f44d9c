import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { type AuthPoolClient, createAuthPoolClient } from "../../src/client/index.js";
import { type PoolConfig, loadConfigFile, parseConfig } from "../../src/config/index.js";
import type { Logger } from "../../src/runtime/logger.js";
import { type AuthPoolServer, startAuthPoolServer } from "../../src/server/start-server.js";
import { writeFakeLogins } from "./fake-login.js";
import { ManualClock } from "./manual-clock.js";

/** TestPool is a real server on port 0 over a real SQLite file in a temp dir. */
export interface TestPool {
  server: AuthPoolServer;
  config: PoolConfig;
  clock: ManualClock;
  dir: string;
  /** Generated client over gRPC (HTTP/2). */
  grpc: AuthPoolClient;
  /** Generated client over the Connect protocol (HTTP/1.1). */
  connect: AuthPoolClient;
  /** restart closes the server gracefully and starts a new one on the same store. */
  restart(): Promise<void>;
  close(): Promise<void>;
}

export interface TestPoolOptions {
  /** Raw config (as in a file) merged over the defaults below. */
  config?: Record<string, unknown>;
  clock?: ManualClock;
  dir?: string;
  /** Passed to the server: live events a stream subscriber may fall behind by. */
  streamBufferEvents?: number;
  webhookBackoff?: { baseMs: number; maxMs: number };
  /** Write the config to <dir>/config.json and let the server reload it from there. */
  configFile?: boolean;
  /** With configFile: reload when the file changes. */
  watchConfig?: boolean;
  /**
   * Give each OAuth subscription whose config dir is under `dir` a fake
   * logged-in .credentials.json (default true), as a real pool's dirs have;
   * false: the dirs stay as the test makes them (the login check excludes
   * those without a usable login).
   */
  loggedIn?: boolean;
  /** Collect the server's log lines (JSON: message and fields) here; default: no log. */
  logLines?: string[];
}

/** testConfig: three subscriptions × 15 sessions, the reference pool. */
export function testConfigRaw(dir: string): Record<string, unknown> {
  return {
    subscriptions: ["sub1", "sub2", "sub3"].map((id) => ({
      id,
      email: `${id}@example.com`,
      type: "claude-pro",
      configDir: path.join(dir, id),
      weeklyBudget: 100,
      fiveHourBudgetUsd: 20,
      maxClientsPerSub: 15,
    })),
    server: { host: "127.0.0.1", port: 0 },
    store: { uri: `sqlite://${path.join(dir, "authpool.sqlite")}` },
    // The logins are fake: polling them would ask api.anthropic.com. Tests of polling point it at a local endpoint.
    upstream: { enabled: false },
  };
}

/**
 * loggedInConfigRaw is testConfigRaw(dir) with every config dir logged in
 * (fake tokens), for a server started from a file rather than startTestPool.
 */
export async function loggedInConfigRaw(dir: string): Promise<Record<string, unknown>> {
  const raw = testConfigRaw(dir);
  await writeFakeLogins(raw.subscriptions as { type: string; configDir: string }[], dir);
  return raw;
}

/** startTestPool starts a pool; call close() in afterEach. */
export async function startTestPool(options: TestPoolOptions = {}): Promise<TestPool> {
  const dir = options.dir ?? (await mkdtemp(path.join(os.tmpdir(), "authpool-test-")));
  const clock = options.clock ?? new ManualClock("2026-11-23T10:00:00Z");
  const raw: Record<string, unknown> = { ...testConfigRaw(dir), ...options.config };
  // subscriptions: undefined in overrides means "keep the defaults".
  if (raw.subscriptions === undefined) raw.subscriptions = testConfigRaw(dir).subscriptions;
  const configPath = path.join(dir, "config.json");
  const config = parseConfig(raw, configPath);
  if (options.loggedIn !== false) await writeFakeLogins(config.subscriptions, dir);
  if (options.configFile === true) await writeFile(configPath, JSON.stringify(raw, null, 2));
  const serverOptions = {
    config,
    clock,
    schedulerPollMs: 0,
    ...(options.logLines !== undefined ? { logger: collectingLogger(options.logLines) } : {}),
    ...(options.configFile === true
      ? { loadConfig: () => loadConfigFile(configPath), watchConfig: options.watchConfig ?? false }
      : {}),
    ...(options.streamBufferEvents !== undefined ? { streamBufferEvents: options.streamBufferEvents } : {}),
    ...(options.webhookBackoff !== undefined ? { webhookBackoff: options.webhookBackoff } : {}),
  };
  let server = await startAuthPoolServer(serverOptions);
  const pool: TestPool = {
    server,
    config,
    clock,
    dir,
    grpc: createAuthPoolClient(server.url),
    connect: createAuthPoolClient(server.url, { protocol: "connect", httpVersion: "1.1" }),
    async restart() {
      await server.close();
      server = await startAuthPoolServer(serverOptions);
      pool.server = server;
      pool.grpc = createAuthPoolClient(server.url);
      pool.connect = createAuthPoolClient(server.url, { protocol: "connect", httpVersion: "1.1" });
    },
    async close() {
      await server.close();
      if (options.dir === undefined) await rm(dir, { recursive: true, force: true });
    },
  };
  return pool;
}

/** collectingLogger writes each line as JSON ({level, message, ...fields}) into lines. */
export function collectingLogger(lines: string[]): Logger {
  const log = (level: string) => (message: string, fields?: Record<string, unknown>) =>
    lines.push(JSON.stringify({ level, message, ...fields }));
  return { debug: log("debug"), info: log("info"), warn: log("warn"), error: log("error") };
}

/** fixture reads a file from test/fixtures. */
export async function fixture(name: string): Promise<string> {
  const { readFile } = await import("node:fs/promises");
  return readFile(new URL(`../fixtures/${name}`, import.meta.url), "utf8");
}
