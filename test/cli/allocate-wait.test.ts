import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { type TestPool, startTestPool } from "../support/test-server.js";
import { startCli, waitFor } from "./cli-process.js";

/**
 * `authpool allocate --wait` watches its place in the pool's queue: a line
 * on stderr each time it moves, the answer on stdout as without the wait.
 * (The built CLI: `npm run build` first.)
 */

let pool: TestPool | undefined;
afterEach(async () => {
  await pool?.close();
  pool = undefined;
});

describe("authpool allocate --wait", () => {
  it("should say on stderr where the call stands in the queue while it waits", async () => {
    pool = await startTestPool({
      config: {
        subscriptions: [
          {
            id: "solo",
            type: "claude-max",
            configDir: path.join("/tmp", "solo"),
            weeklyBudgetUsd: 1000,
            maxSessions: 1,
          },
        ],
      },
    });
    const c = pool.grpc;
    await c.allocate({ sessionId: "holder" });
    const ahead = c.allocate({ sessionId: "ahead", client: "a", wait: true }, { timeoutMs: 30_000 });
    ahead.catch(() => {});
    await waitFor("the first call to wait", async () => (await c.getPoolStatus({})).waiting === 1);
    const cli = startCli(["allocate", "--session", "w1", "--client", "b", "--wait", "60", "--server", pool.server.url]);
    try {
      const detail = () => `stdout: ${cli.stdout()}\nstderr: ${cli.stderr()}`;
      await waitFor("its first place", () => cli.stderr().includes("waiting: 2nd"), { detail });
      expect(cli.stderr()).toBe(
        "authpool: waiting: 2nd in line of 2 (no eligible subscription: solo: 1 of 1 sessions)\n",
      );
      await c.release({ sessionId: "holder" });
      expect((await ahead).sessionId).toBe("ahead");
      await waitFor("the next place", () => cli.stderr().includes("waiting: 1st"), { detail });
      pool.clock.advance(3_000);
      await c.release({ sessionId: "ahead" });
      await waitFor("the answer", () => cli.proc.exitCode !== null, { detail });
      expect(cli.proc.exitCode).toBe(0);
      // The reason is said once, while it stays the same.
      expect(cli.stderr()).toBe(
        "authpool: waiting: 2nd in line of 2 (no eligible subscription: solo: 1 of 1 sessions)\n" +
          "authpool: waiting: 1st in line of 1\n",
      );
      expect(cli.stdout()).toMatch(/^w1 \(client b, waited \d+(\.\d)?s\) → solo /);
    } finally {
      await cli.stop();
    }
  });
});
