import { afterEach, describe, expect, it } from "vitest";
import { type TestPool, startTestPool } from "../support/test-server.js";
import { freePort, runCli } from "./cli-process.js";

let pool: TestPool | undefined;
afterEach(async () => {
  await pool?.close();
  pool = undefined;
});

const TOKEN = "a-long-test-token-123";

describe("authpool exit codes", () => {
  it("should exit with 3, naming the URL and how to start a pool, when nothing listens", async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    for (const args of [["status"], ["events"], ["release", "--session", "s1"]]) {
      const res = await runCli([...args, "--server", url]);
      expect(res.code, args.join(" ")).toBe(3);
      expect(res.stderr).toContain(url);
      expect(res.stderr).toContain("authpool serve");
    }
  });

  it("should read the URL from AUTHPOOL_URL, and keep --url as an alias", async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const fromEnv = await runCli(["status"], { env: { AUTHPOOL_URL: url } });
    expect(fromEnv.code).toBe(3);
    expect(fromEnv.stderr).toContain(url);
    const fromAlias = await runCli(["status", "--url", url]);
    expect(fromAlias.code).toBe(3);
    expect(fromAlias.stderr).toContain(url);
  });

  describe("against a pool that requires a token", () => {
    it.each([
      { name: "no token", args: [] as string[], env: {} as Record<string, string> },
      { name: "a wrong --token", args: ["--token", "not-the-right-token-000"], env: {} },
      { name: "a wrong AUTHPOOL_TOKEN", args: [], env: { AUTHPOOL_TOKEN: "not-the-right-token-000" } },
    ])("should exit with 4 for $name", async ({ args, env }) => {
      pool = await startTestPool({ config: { server: { host: "127.0.0.1", port: 0, authTokens: [TOKEN] } } });
      const res = await runCli(["status", "--server", pool.server.url, ...args], { env });
      expect(res.code).toBe(4);
      expect(res.stderr).toMatch(/UNAUTHENTICATED/);
      expect(res.stderr).toContain("--token");
      expect(res.stderr).not.toContain("not-the-right-token");
    });

    it("should succeed with the right token, from --token or AUTHPOOL_TOKEN", async () => {
      pool = await startTestPool({ config: { server: { host: "127.0.0.1", port: 0, authTokens: [TOKEN] } } });
      expect((await runCli(["status", "--server", pool.server.url, "--token", TOKEN])).code).toBe(0);
      expect((await runCli(["status", "--server", pool.server.url], { env: { AUTHPOOL_TOKEN: TOKEN } })).code).toBe(0);
    });
  });

  it.each(["pause", "resume", "drain", "undrain"])(
    "should exit with 5 for %s of an unknown subscription",
    async (command) => {
      pool = await startTestPool();
      const res = await runCli([command, "no-such-sub", "--server", pool.server.url]);
      if (/UNIMPLEMENTED/.test(res.stderr)) {
        // A server without SetDrained yet: "an error the server answered".
        expect(res.code).toBe(1);
        return;
      }
      expect(res.code, res.stderr).toBe(5);
      expect(res.stderr).toContain("no-such-sub");
    },
  );

  it("should exit with 0 when releasing a session that is not held", async () => {
    pool = await startTestPool();
    const res = await runCli(["release", "--session", "never-allocated", "--server", pool.server.url]);
    expect(res.code).toBe(0);
    expect(res.stdout).toContain("was not held");
  });

  it("should exit with 75 when no subscription can take a session and fallback is off", async () => {
    pool = await startTestPool({ config: { fallback: { enabled: false } } });
    for (const id of ["sub1", "sub2", "sub3"]) await pool.grpc.setPaused({ subscriptionId: id, paused: true });
    const res = await runCli(["allocate", "--server", pool.server.url]);
    expect(res.code).toBe(75);
    expect(res.stderr).toMatch(/RESOURCE_EXHAUSTED/);
  });

  it.each([
    { name: "an unknown command", args: ["frobnicate"] },
    { name: "an unknown option", args: ["status", "--frobnicate"] },
    { name: "a missing required option", args: ["release"] },
    { name: "a missing argument", args: ["pause"] },
    { name: "a bad --priority", args: ["allocate", "--priority", "urgent"] },
    { name: "a bad --watch", args: ["status", "--watch", "soon"] },
    { name: "report without output", args: ["report", "--session", "s1"] },
    { name: "report of a missing file", args: ["report", "--session", "s1", "--file", "/nonexistent/out.json"] },
    { name: "no command at all", args: [] },
  ])("should exit with 2 for $name", async ({ args }) => {
    // The port is closed: none of these may get as far as calling the pool.
    const res = await runCli(args.length === 0 ? [] : [...args, "--server", "http://127.0.0.1:9"]);
    expect(res.code).toBe(2);
    expect(res.stderr).not.toBe("");
  });

  it("should exit with 78 for a config serve cannot use", async () => {
    const res = await runCli(["serve", "--config", "/nonexistent/pool.yaml"]);
    expect(res.code).toBe(78);
    expect(res.stderr).toContain("/nonexistent/pool.yaml");
  });
});
