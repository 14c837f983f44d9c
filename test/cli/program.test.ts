import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { Priority } from "../../gen/authpool/v1/auth_pool_pb.js";
import type { ExecOptions } from "../../src/cli/exec.js";
import type { InitOptions } from "../../src/cli/init.js";
import { type CliOptions, runCli } from "../../src/cli/program.js";
import { textSink as sink } from "./text-sink.js";

/**
 * The command tree in-process, with exec and init replaced by recorders:
 * what each command hands to the module behind it, and nothing else.
 */

function harness(env: NodeJS.ProcessEnv = {}) {
  const calls: { exec: ExecOptions[]; init: InitOptions[] } = { exec: [], init: [] };
  const stdout = sink();
  const stderr = sink();
  const options: CliOptions = {
    stdout,
    stderr,
    env,
    home: "/home/tester",
    runExec: async (o) => {
      calls.exec.push(o);
      return 42;
    },
    runInit: async (o) => {
      calls.init.push(o);
      return 0;
    },
    serve: async () => {
      throw new Error("serve must not run in these tests");
    },
  };
  return { calls, stdout, stderr, run: (argv: string[]) => runCli(argv, options) };
}

describe("runCli() exec", () => {
  it.each([
    {
      name: "everything after -- untouched, flags included",
      argv: ["exec", "--", "node", "-e", "process.exit(3)", "--keep", "--server", "x"],
      command: ["node", "-e", "process.exit(3)", "--keep", "--server", "x"],
    },
    {
      name: "the command's own flags without --",
      argv: ["exec", "--keep", "claude", "-p", "hi", "--model", "opus"],
      command: ["claude", "-p", "hi", "--model", "opus"],
    },
    {
      name: "a second -- that belongs to the command",
      argv: ["exec", "--", "sh", "-c", "echo $0", "--", "--help"],
      command: ["sh", "-c", "echo $0", "--", "--help"],
    },
  ])("should pass $name", async ({ argv, command }) => {
    const h = harness();
    expect(await h.run(argv)).toBe(42);
    expect(h.calls.exec).toHaveLength(1);
    expect(h.calls.exec[0]?.command).toEqual(command);
  });

  it("should hand over its options, the pool's URL and the process's streams", async () => {
    const h = harness({ AUTHPOOL_URL: "http://pool.internal:50051" });
    await h.run([
      "exec",
      "--session",
      "s1",
      "--keep",
      "--retry-on-limit",
      "--model",
      "sonnet",
      "--priority",
      "low",
      "--fallback-env",
      "MY_KEY",
      "--fallback-env",
      "OTHER_KEY",
      "--",
      "claude",
      "-p",
      "hi",
    ]);
    const o = h.calls.exec[0]!;
    expect(o).toMatchObject({
      server: "http://pool.internal:50051",
      sessionId: "s1",
      keep: true,
      retryOnLimit: true,
      model: "sonnet",
      priority: Priority.LOW,
      fallbackEnv: ["MY_KEY", "OTHER_KEY"],
    });
    expect(o.env).toEqual({ AUTHPOOL_URL: "http://pool.internal:50051" });
    expect(o.stdout).toBe(h.stdout);
    expect(o.stderr).toBe(h.stderr);
    expect(typeof o.client.allocate).toBe("function");
  });

  it.each([
    { name: "ANTHROPIC_API_KEY by default", env: {}, expected: ["ANTHROPIC_API_KEY"] },
    {
      name: "AUTHPOOL_FALLBACK_ENV, comma-separated",
      env: { AUTHPOOL_FALLBACK_ENV: "A_KEY, B_KEY," },
      expected: ["A_KEY", "B_KEY"],
    },
  ])("should default --fallback-env to $name", async ({ env, expected }) => {
    const h = harness(env);
    await h.run(["exec", "--", "true"]);
    expect(h.calls.exec[0]).toMatchObject({ keep: false, retryOnLimit: false, fallbackEnv: expected });
    expect(h.calls.exec[0]?.sessionId).toBeUndefined();
    expect(h.calls.exec[0]?.priority).toBeUndefined();
  });

  it("should refuse exec without a command (exit 2) and never call runExec", async () => {
    const h = harness();
    expect(await h.run(["exec", "--keep"])).toBe(2);
    expect(h.calls.exec).toEqual([]);
    expect(h.stderr.text()).toContain("missing required argument");
  });
});

describe("runCli() init", () => {
  it("should hand over paths, output, force and the home directory", async () => {
    const h = harness();
    expect(await h.run(["init", "--force", "--output", "pool.yaml", "/a/.claude", "/b/.claude"])).toBe(0);
    expect(h.calls.init).toEqual([
      {
        home: "/home/tester",
        env: {},
        paths: ["/a/.claude", "/b/.claude"],
        output: "pool.yaml",
        force: true,
        stdout: h.stdout,
        stderr: h.stderr,
      },
    ]);
  });

  it("should default to authpool.yaml, no force, and no paths", async () => {
    const h = harness();
    await h.run(["init"]);
    expect(h.calls.init[0]).toMatchObject({ paths: [], output: "authpool.yaml", force: false });
  });
});

describe("runCli() --server", () => {
  it.each([
    {
      name: "--server over AUTHPOOL_URL",
      argv: ["--server", "http://a:1"],
      env: { AUTHPOOL_URL: "http://b:2" },
      url: "http://a:1",
    },
    { name: "the hidden --url alias", argv: ["--url", "http://c:3"], env: {}, url: "http://c:3" },
    { name: "a bare host:port as http", argv: ["--server", "10.0.0.5:50051"], env: {}, url: "http://10.0.0.5:50051" },
    { name: "the default", argv: [], env: {}, url: "http://127.0.0.1:50051" },
  ])("should take $name", async ({ argv, env, url }) => {
    const h = harness(env);
    await h.run(["exec", ...argv, "--", "true"]);
    expect(h.calls.exec[0]?.server).toBe(url);
  });
});

describe("runCli() usage and allocate flags", () => {
  it.each([
    { name: "a --since without a unit", argv: ["usage", "--since", "7"], flag: "--since" },
    { name: "a --since in weeks", argv: ["usage", "--since", "1w"], flag: "--since" },
    { name: "a --since of nothing", argv: ["usage", "--since", "0h"], flag: "--since" },
    { name: "a --since past the 40 days history keeps", argv: ["usage", "--since", "41d"], flag: "--since" },
    { name: "a --since of 961 hours", argv: ["usage", "--since", "961h"], flag: "--since" },
    { name: "an unknown --by", argv: ["usage", "--by", "team"], flag: "--by" },
    { name: "a --client that is no client name", argv: ["allocate", "--client", "two words"], flag: "--client" },
    { name: "a --wait that is no number of seconds", argv: ["allocate", "--wait", "soon"], flag: "--wait" },
  ])("should refuse $name with exit 2, naming the flag", async ({ argv, flag }) => {
    const h = harness();
    // Refused before any call: nothing listens at the default URL.
    expect(await h.run(argv)).toBe(2);
    expect(h.stderr.text()).toContain(`option '${flag} `);
  });
});

describe("runCli() --version", () => {
  it.each([["--version"], ["-V"]])("should print package.json's version with %s", async (flag) => {
    const h = harness();
    const { version } = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
      version: string;
    };
    expect(await h.run([flag])).toBe(0);
    expect(h.stdout.text()).toBe(`${version}\n`);
  });
});
