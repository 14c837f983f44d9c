import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { chooseConfigFile, serveCommandFor } from "../../src/cli/config-file.js";
import { loggedInConfigRaw } from "../support/test-server.js";
import { type CliRunOptions, type RunningCli, runCli, startCli, waitForServing } from "./cli-process.js";

/**
 * Which config `authpool serve` loads without --config: AUTHPOOL_CONFIG,
 * else the ./authpool.yaml `authpool init` writes, else the demo pool's
 * config/example.yaml that `npm start` serves in a checkout.
 */

const REPO = fileURLToPath(new URL("../..", import.meta.url));

describe("chooseConfigFile()", () => {
  const cwd = "/work/pool";
  const own = path.join(cwd, "authpool.yaml");
  it.each([
    {
      name: "--config first",
      flag: "a.yaml",
      env: { AUTHPOOL_CONFIG: "b.yaml" },
      has: [own],
      file: "a.yaml",
      kind: "flag",
    },
    {
      name: "AUTHPOOL_CONFIG over ./authpool.yaml",
      env: { AUTHPOOL_CONFIG: "b.yaml" },
      has: [own],
      file: "b.yaml",
      kind: "env",
    },
    { name: "./authpool.yaml when it exists", env: {}, has: [own], file: own, kind: "own" },
    { name: "an empty AUTHPOOL_CONFIG as unset", env: { AUTHPOOL_CONFIG: "" }, has: [own], file: own, kind: "own" },
    { name: "the example otherwise", env: {}, has: [], file: "config/example.yaml", kind: "example" },
  ])("should take $name", ({ flag, env, has, file, kind }) => {
    expect(chooseConfigFile({ flag, env, cwd, exists: (f) => has.includes(f) })).toEqual({ file, kind });
  });
});

describe("serveCommandFor()", () => {
  const cwd = "/work/pool";
  it.each([
    { name: "./authpool.yaml", output: "/work/pool/authpool.yaml", env: {}, command: "authpool serve" },
    {
      name: "./authpool.yaml under another AUTHPOOL_CONFIG",
      output: "/work/pool/authpool.yaml",
      env: { AUTHPOOL_CONFIG: "/etc/authpool.yaml" },
      command: "authpool serve --config authpool.yaml",
    },
    {
      name: "another name here",
      output: "/work/pool/team.yaml",
      env: {},
      command: "authpool serve --config team.yaml",
    },
    {
      name: "a file elsewhere, quoted for the shell",
      output: "/home/me/my pool/authpool.yaml",
      env: {},
      command: "authpool serve --config '/home/me/my pool/authpool.yaml'",
    },
  ])("should give the exact command for $name", ({ output, env, command }) => {
    expect(serveCommandFor(output, env, cwd)).toBe(command);
  });
});

describe("authpool serve without --config", () => {
  // What each test started, stopped after it in reverse order.
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  const tempDir = async (name: string) => {
    const made = await mkdtemp(path.join(os.tmpdir(), `authpool-serve-${name}-`));
    cleanups.push(() => rm(made, { recursive: true, force: true }));
    return made;
  };
  const serve = (options: CliRunOptions): RunningCli => {
    const cli = startCli(["serve"], options);
    cleanups.push(() => cli.stop());
    return cli;
  };

  it("should serve ./authpool.yaml and say so", async () => {
    const dir = await tempDir("own");
    const raw = { ...(await loggedInConfigRaw(dir)), server: { host: "127.0.0.1", port: 0 } };
    // JSON is YAML: the file init writes, as far as serve is concerned.
    await writeFile(path.join(dir, "authpool.yaml"), JSON.stringify(raw));
    const server = serve({ cwd: dir });
    const url = await waitForServing(server);
    expect(server.stderr()).toContain(`authpool: config ${path.join(dir, "authpool.yaml")} (./authpool.yaml;`);
    const status = await runCli(["status", "--json", "--server", url]);
    expect(JSON.parse(status.stdout).subscriptions.map((s: { id: string }) => s.id)).toEqual(["sub1", "sub2", "sub3"]);
  });

  it("should keep serving config/example.yaml from a checkout, as npm start does", async () => {
    const dir = await tempDir("example");
    const server = serve({
      cwd: REPO,
      env: { AUTHPOOL_PORT: "0", AUTHPOOL_STORE: `sqlite://${path.join(dir, "pool.sqlite")}` },
    });
    await waitForServing(server);
    expect(server.stderr()).toContain(`authpool: config ${path.join(REPO, "config", "example.yaml")}: the demo pool`);
  });

  it("should say how to get a config when there is none (exit 78)", async () => {
    const dir = await tempDir("none");
    const res = await runCli(["serve"], { cwd: dir });
    expect(res.code).toBe(78);
    expect(res.stderr).toContain("run `authpool init` to write ./authpool.yaml");
  });
});
