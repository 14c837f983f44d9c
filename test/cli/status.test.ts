import { toJsonString } from "@bufbuild/protobuf";
import { afterEach, describe, expect, it } from "vitest";
import { GetPoolStatusResponseSchema } from "../../gen/authpool/v1/auth_pool_pb.js";
import { type TestPool, startTestPool } from "../support/test-server.js";
import { runCli, startCli, waitFor } from "./cli-process.js";

let pool: TestPool | undefined;
afterEach(async () => {
  await pool?.close();
  pool = undefined;
});

describe("authpool status", () => {
  it("should print GetPoolStatus's reply exactly with --json", async () => {
    pool = await startTestPool();
    await pool.grpc.allocate({ sessionId: "s1" });
    await pool.grpc.setPaused({ subscriptionId: "sub3", paused: true });
    // The ManualClock stands still, so both calls see the same instant.
    const res = await runCli(["status", "--json", "--server", pool.server.url]);
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    const expected = toJsonString(GetPoolStatusResponseSchema, await pool.grpc.getPoolStatus({}), { prettySpaces: 2 });
    expect(res.stdout).toBe(`${expected}\n`);
  });

  it("should show each subscription with its status in the table", async () => {
    pool = await startTestPool();
    await pool.grpc.setPaused({ subscriptionId: "sub2", paused: true });
    const res = await runCli(["status", "--server", pool.server.url]);
    expect(res.code).toBe(0);
    const rowOf = (id: string) => res.stdout.split("\n").find((line) => line.includes(` ${id} `)) ?? "";
    expect(rowOf("sub1")).toContain("available");
    expect(rowOf("sub2")).toContain("paused");
    expect(rowOf("sub3")).toContain("available");
    // Every figure says what it rests on; with nothing observed, the budget.
    expect(rowOf("sub1")).toMatch(/░{10}\s+0%/);
    expect(res.stdout).toContain("budget");
    expect(res.stdout).toMatch(/3 subscriptions \(2 eligible\)/);
    // A pipe gets no colour codes.
    expect(res.stdout).not.toContain("\x1b[");
  });

  it("should sum the pool up, print one line each with --compact, and only the problems with --problems", async () => {
    pool = await startTestPool();
    await pool.grpc.allocate({ sessionId: "s1" });
    await pool.grpc.setPaused({ subscriptionId: "sub2", paused: true });
    const full = await runCli(["status", "--server", pool.server.url]);
    expect(full.stdout).toMatch(/^total: 2\/3 subscriptions available · sessions 1\/45 · weekly left 100% /m);

    const compact = await runCli(["status", "--compact", "--server", pool.server.url]);
    expect(compact.code).toBe(0);
    const rows = compact.stdout.split("\n").filter((line) => /^sub\d /.test(line));
    expect(rows.map((row) => row.split(/ +/).slice(0, 2))).toEqual([
      ["sub1", "available"],
      ["sub2", "paused"],
      ["sub3", "available"],
    ]);
    expect(compact.stdout).not.toContain("│");

    const problems = await runCli(["status", "--compact", "--problems", "--server", pool.server.url]);
    expect(problems.stdout.split("\n").filter((line) => /^sub\d /.test(line))).toEqual([
      expect.stringMatching(/^sub2 +paused /),
    ]);
    expect(problems.stdout).toContain("total: 2/3 subscriptions available");
  });

  it("should list the clients with their sessions and spend against their limits", async () => {
    pool = await startTestPool({ config: { clients: { alice: { maxSessions: 2, weeklyUsd: 10 } } } });
    await pool.grpc.allocate({ sessionId: "a1", client: "alice" });
    await pool.grpc.reportUsage({
      sessionId: "a1",
      requestId: "r1",
      source: { case: "usage", value: { costUsd: 2.5 } },
    });
    const res = await runCli(["status", "--server", pool.server.url]);
    expect(res.code, res.stderr).toBe(0);
    const row = res.stdout.split("\n").find((line) => line.startsWith("│ alice ")) ?? "";
    expect(row.split("│").map((c) => c.trim())).toEqual(["", "alice", "1/2", "$2.50 of $10.00", "$2.50", "", "", ""]);
  });

  it("should list sessions with --sessions", async () => {
    pool = await startTestPool();
    const grant = await pool.grpc.allocate({ sessionId: "held-1", model: "opus" });
    const res = await runCli(["status", "--sessions", "--server", pool.server.url]);
    expect(res.code).toBe(0);
    const row = res.stdout.split("\n").find((line) => line.includes("held-1")) ?? "";
    expect(row).toContain(grant.outcome.case === "subscription" ? grant.outcome.value.subscriptionId : "?");
    expect(row).toContain("opus");
    expect(res.stdout).toMatch(/1\/15/);
  });

  it("should re-render with --watch, without clearing a screen that is not a terminal", async () => {
    pool = await startTestPool();
    const watch = startCli(["status", "--watch", "0.1", "--server", pool.server.url]);
    try {
      const renderings = () => watch.stdout().split("Auth Pool at").length - 1;
      await waitFor("two renderings", () => renderings() >= 2, { detail: () => watch.stdout() + watch.stderr() });
      await pool.grpc.setPaused({ subscriptionId: "sub1", paused: true });
      await waitFor("the pause to show", () => watch.stdout().includes("paused"), { detail: () => watch.stdout() });
      expect(watch.stdout()).not.toContain("\x1b[2J");
    } finally {
      await watch.stop();
    }
  });
});
