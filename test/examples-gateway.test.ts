import { chmod, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { runPrompt } from "../examples/gateway.js";
import { type TestPool, fixture, startTestPool } from "./support/test-server.js";

let pool: TestPool | undefined;
afterEach(async () => {
  await pool?.close();
  pool = undefined;
});

/** A stand-in for `claude`: prints a fixture and records the config dir it ran with. */
async function fakeClaude(dir: string, output: string, exitCode = 0): Promise<string> {
  const bin = path.join(dir, "claude");
  const out = path.join(dir, "claude-output.json");
  await writeFile(out, output);
  await writeFile(bin, `#!/bin/sh\necho "$CLAUDE_CONFIG_DIR" > "${dir}/ran-with"\ncat "${out}"\nexit ${exitCode}\n`);
  await chmod(bin, 0o755);
  return bin;
}

describe("the README's gateway example", () => {
  it("allocates, runs claude with the granted config dir, reports and releases", async () => {
    pool = await startTestPool();
    const claudeBin = await fakeClaude(pool.dir, await fixture("claude-cli/success.json"));
    const result = await runPrompt(pool.grpc, "What is 2+2?", { claudeBin });
    expect(result.text).toBe("4");
    const { readFile } = await import("node:fs/promises");
    expect((await readFile(path.join(pool.dir, "ran-with"), "utf8")).trim()).toBe(
      path.join(pool.dir, result.subscriptionId),
    );
    const status = await pool.grpc.getPoolStatus({});
    expect(status.totalSessions).toBe(0);
    expect(status.subscriptions.find((s) => s.id === result.subscriptionId)?.weeklyUsedUsd).toBeCloseTo(0.0612955, 9);
  });

  it("reports a limit hit (non-zero exit) and cools the subscription down", async () => {
    pool = await startTestPool();
    const claudeBin = await fakeClaude(pool.dir, await fixture("claude-cli/limit-weekly.json"), 1);
    await expect(runPrompt(pool.grpc, "hi", { claudeBin })).rejects.toThrow(/hit its limit/);
    const status = await pool.grpc.getPoolStatus({});
    expect(status.subscriptions.filter((s) => s.cooldown !== undefined)).toHaveLength(1);
    expect(status.totalSessions).toBe(0);
  });
});
