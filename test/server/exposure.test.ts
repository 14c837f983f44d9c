import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { serve } from "../../src/cli/serve.js";
import { parseConfig } from "../../src/config/index.js";
import { createJsonLogger } from "../../src/runtime/logger.js";
import { isLoopbackHost } from "../../src/server/exposure.js";
import { startAuthPoolServer } from "../../src/server/start-server.js";
import { ManualClock } from "../support/manual-clock.js";
import { testConfigRaw } from "../support/test-server.js";
import { makeTestCertificate } from "../support/tls-cert.js";

/**
 * A pool reachable from the network without tokens is open to anyone: the
 * server says so loudly in its log, and `authpool serve` also in one plain
 * stderr line. Quieter warnings: tokens in cleartext, tokens in the config
 * file, a token file others can read.
 */

const TOKEN = "admin-exposure-0123456789";
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "authpool-exposure-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** warningsAt starts a server with `server` settings and returns the warn lines it logged at start. */
async function warningsAt(server: Record<string, unknown>): Promise<Record<string, unknown>[]> {
  const lines: string[] = [];
  const logger = createJsonLogger({ destination: { write: (l: string) => lines.push(l) }, level: "debug" });
  const sub = await mkdtemp(path.join(dir, "s-"));
  const config = parseConfig({ ...testConfigRaw(sub), server: { port: 0, ...server } }, "<inline>");
  const running = await startAuthPoolServer({
    config,
    logger,
    clock: new ManualClock("2026-11-23T10:00:00Z"),
    schedulerPollMs: 0,
  });
  await running.close();
  // Config dir warnings (the test's dirs do not exist) are another matter.
  return lines
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => l.level === "warn" && l.message !== "subscription");
}

describe("exposure warnings", () => {
  it("warns loudly when serving beyond loopback without authentication", async () => {
    const warnings = await warningsAt({ host: "0.0.0.0" });
    const open = warnings.find((w) => w.warning === "open");
    expect(open?.message).toMatch(/^SERVING ON 0\.0\.0\.0:\d+, A NON-LOOPBACK ADDRESS, WITHOUT AUTHENTICATION: /);
    expect(open?.message).toContain("AUTHPOOL_TOKENS");
    expect(open?.address).toMatch(/^0\.0\.0\.0:[1-9]\d*$/);
  });

  it("is quiet on loopback, and says only 'cleartext' with tokens but without TLS", async () => {
    expect(await warningsAt({ host: "127.0.0.1" })).toEqual([]);
    const withTokens = await warningsAt({ host: "0.0.0.0", authTokens: [TOKEN] });
    expect(withTokens.map((w) => w.warning).sort()).toEqual(["cleartext", "inline-tokens"]);
    const cert = await makeTestCertificate(await mkdtemp(path.join(dir, "cert-")));
    const tokenFile = path.join(dir, "tokens");
    await writeFile(tokenFile, `admin:${TOKEN}\n`, { mode: 0o600 });
    await chmod(tokenFile, 0o600);
    expect(
      await warningsAt({
        host: "0.0.0.0",
        authTokensFile: tokenFile,
        tls: { certFile: cert.certFile, keyFile: cert.keyFile },
      }),
    ).toEqual([]);
  });

  it("warns about a token file other users can read", async () => {
    const tokenFile = path.join(dir, "open-tokens");
    await writeFile(tokenFile, `admin:${TOKEN}\n`);
    await chmod(tokenFile, 0o644);
    const warnings = await warningsAt({ host: "127.0.0.1", authTokensFile: tokenFile });
    expect(warnings).toMatchObject([
      { warning: "token-file-mode", file: tokenFile, message: expect.stringContaining("mode 644") },
    ]);
  });

  it("makes `authpool serve` print one plain line on stderr too", async () => {
    const sub = await mkdtemp(path.join(dir, "serve-"));
    const file = path.join(sub, "pool.json");
    await writeFile(file, JSON.stringify({ ...testConfigRaw(sub), server: { host: "127.0.0.1", port: 0 } }));
    let stderr = "";
    const stop = new AbortController();
    const run = serve(file, {
      env: { AUTHPOOL_HOST: "0.0.0.0", AUTHPOOL_PORT: "0", AUTHPOOL_LOG_LEVEL: "info" },
      stderr: { write: (t: string) => (stderr += t) },
      stop: stop.signal,
    });
    const deadline = Date.now() + 10_000;
    while (!stderr.includes("authpool: WARNING") && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    stop.abort();
    expect(await run).toBe(0);
    // Besides the line naming the config file it loaded.
    const plain = stderr.split("\n").filter((l) => l !== "" && !l.startsWith("{"));
    expect(plain).toHaveLength(2);
    expect(plain[0]).toBe(`authpool: config ${file} (--config)`);
    expect(plain[1]).toMatch(/^authpool: WARNING: serving on 0\.0\.0\.0:\d+ without authentication; /);
    // And the JSON log carries the loud warning.
    expect(stderr).toContain('"warning":"open"');
    // With a token the plain line is gone.
    let quiet = "";
    const stop2 = new AbortController();
    const run2 = serve(file, {
      env: { AUTHPOOL_HOST: "0.0.0.0", AUTHPOOL_PORT: "0", AUTHPOOL_TOKENS: TOKEN },
      stderr: { write: (t: string) => (quiet += t) },
      stop: stop2.signal,
    });
    while (!quiet.includes('"serving"') && Date.now() < deadline + 10_000) await new Promise((r) => setTimeout(r, 20));
    stop2.abort();
    expect(await run2).toBe(0);
    expect(quiet.split("\n").filter((l) => l !== "" && !l.startsWith("{"))).toEqual([
      `authpool: config ${file} (--config)`,
    ]);
    expect(quiet).not.toContain(TOKEN);
  });
});

describe("isLoopbackHost()", () => {
  it.each([
    ["127.0.0.1", true],
    ["127.1.2.3", true],
    ["localhost", true],
    ["LOCALHOST", true],
    ["::1", true],
    ["[::1]", true],
    ["0:0:0:0:0:0:0:1", true],
    ["::ffff:127.0.0.1", true],
    ["0.0.0.0", false],
    ["::", false],
    ["", false],
    ["10.0.0.5", false],
    ["192.168.1.2", false],
    ["::ffff:10.0.0.1", false],
    ["pool.internal", false],
  ] as const)("%s → %s", (host, loopback) => {
    expect(isLoopbackHost(host)).toBe(loopback);
  });
});
