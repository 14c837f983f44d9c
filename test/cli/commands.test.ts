import { fileURLToPath } from "node:url";
import { fromJsonString, toJsonString } from "@bufbuild/protobuf";
import { afterEach, describe, expect, it } from "vitest";
import { EventType, GetUsageResponseSchema, UsageGroupBy } from "../../src/client/index.js";
import { formatEvent } from "../../src/cli/event-line.js";
import { ManualClock } from "../support/manual-clock.js";
import { type TestPool, fixture, startTestPool } from "../support/test-server.js";
import { runCli, waitFor } from "./cli-process.js";

const DAY = 86_400_000;

let pool: TestPool | undefined;
afterEach(async () => {
  await pool?.close();
  pool = undefined;
});

const COMMANDS = [
  "serve",
  "status",
  "events",
  "allocate",
  "usage",
  "history",
  "report",
  "release",
  "rebalance",
  "pause",
  "resume",
  "drain",
  "undrain",
  "reload",
  "exec",
  "init",
];

describe("authpool --help", () => {
  it("should list every command and the exit codes", async () => {
    const res = await runCli(["--help"]);
    expect(res.code).toBe(0);
    for (const command of [...COMMANDS, "cooldown"]) expect(res.stdout).toMatch(new RegExp(`^  ${command} `, "m"));
    for (const code of ["0", "1", "2", "3", "4", "5", "75", "78"])
      expect(res.stdout).toMatch(new RegExp(`^  ${code} +\\S`, "m"));
  });

  it.each(COMMANDS)("should explain %s", async (command) => {
    const res = await runCli([command, "--help"]);
    expect(res.code).toBe(0);
    expect(res.stdout).toContain(`Usage: authpool ${command}`);
    // Commands that call a pool take the common options; --url is a hidden alias.
    if (!["serve", "init"].includes(command)) expect(res.stdout).toContain("--server <url>");
    expect(res.stdout).not.toContain("--url");
  });
});

describe("authpool cooldown clear --help", () => {
  it("should explain the command and take the common options", async () => {
    const res = await runCli(["cooldown", "clear", "--help"]);
    expect(res.code).toBe(0);
    expect(res.stdout).toContain("Usage: authpool cooldown clear [options] <id>");
    for (const option of ["--server <url>", "--model <family>", "--reason <text>", "--json"])
      expect(res.stdout).toContain(option);
  });
});

describe("authpool commands against a pool", () => {
  it("should allocate and release a session, in words and in JSON", async () => {
    pool = await startTestPool();
    const server = ["--server", pool.server.url];
    const allocated = await runCli(["allocate", "--session", "s1", "--model", "opus", "--priority", "high", ...server]);
    expect(allocated.code).toBe(0);
    expect(allocated.stdout).toMatch(
      /^s1 \(client default\) → sub[123] \(health [\d.]+, 5-hour 0%, weekly 0%\)\nCLAUDE_CONFIG_DIR=\S+sub[123]\n$/,
    );

    const again = await runCli(["allocate", "--session", "s1", "--json", ...server]);
    const grant = JSON.parse(again.stdout) as {
      sessionId: string;
      subscription: { subscriptionId: string; resumed: boolean };
    };
    expect(grant.sessionId).toBe("s1");
    expect(grant.subscription.resumed).toBe(true);
    const status = await pool.grpc.getPoolStatus({ includeSessions: true });
    expect(status.sessions.map((s) => [s.sessionId, s.subscriptionId, s.model])).toEqual([
      ["s1", grant.subscription.subscriptionId, "opus"],
    ]);

    const released = await runCli(["release", "--session", "s1", "--json", ...server]);
    expect(released.code).toBe(0);
    expect(JSON.parse(released.stdout)).toEqual({ released: true, subscriptionId: grant.subscription.subscriptionId });
    expect((await pool.grpc.getPoolStatus({ includeSessions: true })).sessions).toEqual([]);
  });

  it("should book a session to --client and say how long a --wait waited", async () => {
    pool = await startTestPool();
    const server = ["--server", pool.server.url];
    const named = await runCli(["allocate", "--session", "a1", "--client", "alice", ...server]);
    expect(named.code, named.stderr).toBe(0);
    expect(named.stdout).toMatch(/^a1 \(client alice\) → sub[123] /);
    for (const id of ["sub1", "sub2", "sub3"]) await pool.grpc.setPaused({ subscriptionId: id, paused: true });

    const waiting = runCli(["allocate", "--session", "w1", "--client", "bob", "--wait", "60", ...server]);
    await waitFor("the call to wait", async () => (await pool!.grpc.getPoolStatus({})).waiting === 1);
    pool.clock.advance(12_000);
    await pool.grpc.setPaused({ subscriptionId: "sub2", paused: false });
    const granted = await waiting;
    expect(granted.code, granted.stderr).toBe(0);
    expect(granted.stdout).toMatch(/^w1 \(client bob, waited 12s\) → sub2 /);

    // The pool ends a wait at --wait SECONDS: exit 75, with its reason.
    await pool.grpc.setPaused({ subscriptionId: "sub2", paused: true });
    const expiring = runCli(["allocate", "--session", "w2", "--wait", "5", "--json", ...server]);
    await waitFor("the call to wait", async () => (await pool!.grpc.getPoolStatus({})).waiting === 1);
    pool.clock.advance(5_000);
    const expired = await expiring;
    expect(expired.code).toBe(75);
    // Where it stood in the queue first (stderr), then why it ended.
    expect(expired.stderr).toMatch(/^authpool: waiting: 1st in line of 1 \(no eligible subscription: /);
    expect(expired.stderr).toMatch(/^authpool: no session granted \(RESOURCE_EXHAUSTED: client default waited 5 s/m);
  });

  it("should sum usage by client, subscription and model, in a table and as GetUsage's JSON", async () => {
    pool = await startTestPool();
    const server = ["--server", pool.server.url];
    await pool.grpc.allocate({ sessionId: "a", client: "alice", model: "opus" });
    await pool.grpc.allocate({ sessionId: "b", client: "bob" });
    await pool.grpc.reportUsage({
      sessionId: "a",
      requestId: "1",
      source: { case: "usage", value: { costUsd: 3, inputTokens: 1500n } },
    });
    await pool.grpc.reportUsage({ sessionId: "b", requestId: "1", source: { case: "usage", value: { costUsd: 1 } } });

    const table = await runCli(["usage", ...server]);
    expect(table.code, table.stderr).toBe(0);
    const lines = table.stdout.split("\n");
    expect(lines[0]).toBe("Usage by client · 2026-11-16 10:00Z to 2026-11-23 10:00Z · $4.00 in 2 requests");
    expect(lines.find((l) => l.startsWith("│ alice "))).toMatch(
      /^│ alice +│ +\$3\.00 │ +1\.5k │ +0 │ +0 │ +0 │ +1 │ +75\.0% │$/,
    );
    expect(lines.filter((l) => /^│ [a-z]/.test(l)).map((l) => l.split(" ")[1])).toEqual([
      "client",
      "alice",
      "bob",
      "total",
    ]);

    const byModel = await runCli(["usage", "--by", "model", "--since", "30m", ...server]);
    expect(byModel.stdout).toMatch(/^Usage by model · 2026-11-23 09:00Z to 2026-11-23 10:00Z · /);
    expect(byModel.stdout).toMatch(/^│ opus /m);

    const json = await runCli(["usage", "--by", "subscription", "--since", "8d", "--json", ...server]);
    expect(json.code, json.stderr).toBe(0);
    const expected = await pool.grpc.getUsage({ groupBy: UsageGroupBy.SUBSCRIPTION, since: { seconds: 8n * 86_400n } });
    expect(json.stdout).toBe(`${toJsonString(GetUsageResponseSchema, expected, { prettySpaces: 2 })}\n`);
  });

  it("should sum usage past the ledger's 8 days from GetUsageHistory, to the figures GetUsage gives", async () => {
    // The CLI reads the real clock for --since: the pool's clock ends near it, 20 days after the first use.
    pool = await startTestPool({ clock: new ManualClock(Date.now() - 20 * DAY) });
    const server = ["--server", pool.server.url];
    await pool.grpc.allocate({ sessionId: "a", client: "alice", model: "opus" });
    await pool.grpc.reportUsage({
      sessionId: "a",
      requestId: "1",
      source: { case: "usage", value: { costUsd: 3, inputTokens: 1500n, outputTokens: 20n } },
    });
    // A run sent to the paid API: counted by history, not spend, so no row for carol or "(paid API)".
    for (const id of ["sub1", "sub2", "sub3"]) await pool.grpc.setPaused({ subscriptionId: id, paused: true });
    expect((await pool.grpc.allocate({ sessionId: "paid", client: "carol" })).outcome.case).toBe("fallback");
    for (const id of ["sub1", "sub2", "sub3"]) await pool.grpc.setPaused({ subscriptionId: id, paused: false });
    // Day by day, the archive job on the way, to a day before now: alice's day has left the ledger.
    for (let day = 1; day <= 19; day++) {
      pool.clock.advance(DAY);
      await pool.server.runJobs();
    }
    await pool.grpc.allocate({ sessionId: "b", client: "bob" });
    await pool.grpc.reportUsage({
      sessionId: "b",
      requestId: "1",
      source: {
        case: "usage",
        value: {
          costUsd: 1,
          inputTokens: 300n,
          modelUsage: {
            "claude-sonnet-4": { costUsd: 0.75, inputTokens: 200n },
            "claude-opus-4": { costUsd: 0.25, inputTokens: 100n },
          },
        },
      },
    });
    pool.clock.advance(DAY - 60_000);
    await pool.server.runJobs();

    const table = await runCli(["usage", "--since", "30d", ...server]);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toMatch(/^Usage by client · \S+ \S+ to \S+ \S+ · \$4\.00 in 2 requests$/m);
    expect(table.stdout).toMatch(/^│ alice +│ +\$3\.00 │ +1\.5k │ +20 │ +0 │ +0 │ +1 │ +75\.0% │$/m);
    expect(table.stdout).toMatch(/^│ bob +│ +\$1\.00 │ +300 │ +0 │ +0 │ +0 │ +1 │ +25\.0% │$/m);
    expect(table.stdout).not.toMatch(/carol/);

    const bySub = await runCli(["usage", "--by", "subscription", "--since", "40d", "--json", ...server]);
    expect(bySub.code, bySub.stderr).toBe(0);
    const reply = fromJsonString(GetUsageResponseSchema, bySub.stdout);
    expect(reply.rows.reduce((sum, r) => sum + r.costUsd, 0)).toBe(4);
    expect(reply.rows.map((r) => r.key)).not.toContain("(paid API)");

    // Inside the ledger both sources answer: the same rows.
    const ledger = await runCli(["usage", "--since", "8d", "--by", "model", "--json", ...server]);
    const history = await runCli(["usage", "--since", "9d", "--by", "model", "--json", ...server]);
    const rows = fromJsonString(GetUsageResponseSchema, ledger.stdout).rows;
    expect(rows.map((r) => [r.key, r.costUsd, r.inputTokens])).toEqual([
      ["claude-sonnet-4", 0.75, 200n],
      ["claude-opus-4", 0.25, 100n],
    ]);
    expect(fromJsonString(GetUsageResponseSchema, history.stdout).rows).toEqual(rows);

    // `history` takes the whole 40 days it advertises.
    const longest = await runCli(["history", "--since", "40d", "--by", "client", ...server]);
    expect(longest.code, longest.stderr).toBe(0);
    expect(longest.stdout).toMatch(/^alice \$3\.00 · bob \$1\.00/m);
  });

  it("should show usage history per hour and per day, with limits and paid runs, and refuse more than 40 days", async () => {
    pool = await startTestPool();
    const server = ["--server", pool.server.url];
    await pool.grpc.allocate({ sessionId: "a", client: "alice" });
    await pool.grpc.reportUsage({ sessionId: "a", requestId: "1", source: { case: "usage", value: { costUsd: 3 } } });
    pool.clock.advance(3_600_000);
    await pool.grpc.allocate({ sessionId: "b", client: "bob" });
    await pool.grpc.reportUsage({ sessionId: "b", requestId: "1", source: { case: "usage", value: { costUsd: 1 } } });
    for (const id of ["sub1", "sub2", "sub3"]) await pool.grpc.setPaused({ subscriptionId: id, paused: true });
    await pool.grpc.allocate({ sessionId: "paid", client: "bob" });

    const hourly = await runCli(["history", "--by", "client", "--per", "hour", ...server]);
    expect(hourly.code, hourly.stderr).toBe(0);
    const rows = hourly.stdout.split("\n").filter((l) => /^│ 2026/.test(l));
    expect(rows).toHaveLength(2);
    expect(rows[0]).toMatch(/^│ 2026-11-23 10:00Z +│ +\$3\.00 │ +1 │ +0 │ +0 │ alice \$3\.00 +│$/);
    expect(rows[1]).toMatch(/^│ 2026-11-23 11:00Z +│ +\$1\.00 │ +1 │ +0 │ +1 │ bob \$1\.00 +│$/);
    expect(hourly.stdout).toMatch(/^alice \$3\.00 · bob \$1\.00$/m);

    const daily = await runCli(["history", ...server]);
    expect(daily.stdout).toMatch(/^Usage history per day · .* · \$4\.00$/m);
    expect(daily.stdout).toMatch(/^│ 2026-11-23 +│ +\$4\.00 │ +2 │ +0 │ +1 │$/m);

    const tooFar = await runCli(["history", "--since", "41d", ...server]);
    expect(tooFar.code).toBe(2);
    expect(tooFar.stderr).toMatch(/at most 40d/);
  });

  it("should let the pool name the session when --session is left out", async () => {
    pool = await startTestPool();
    const res = await runCli(["allocate", "--json", "--server", pool.server.url]);
    expect(res.code).toBe(0);
    const { sessionId } = JSON.parse(res.stdout) as { sessionId: string };
    expect(sessionId).not.toBe("");
    expect((await pool.grpc.getPoolStatus({ includeSessions: true })).sessions.map((s) => s.sessionId)).toEqual([
      sessionId,
    ]);
  });

  it("should report claude output from stdin and from --file, counting a repeated request id once", async () => {
    pool = await startTestPool();
    const server = ["--server", pool.server.url];
    await pool.grpc.allocate({ sessionId: "s1" });
    const output = await fixture("claude-cli/success.json");
    const fromStdin = await runCli(["report", "--session", "s1", "--request-id", "r1", "-", ...server], {
      input: output,
    });
    expect(fromStdin.code, fromStdin.stderr).toBe(0);
    expect(fromStdin.stdout).toMatch(/^counted \$0\.0613 on sub[123] \(available, 1\/15 sessions, weekly 0%\)\n$/);

    const file = fileURLToPath(new URL("../fixtures/claude-cli/success.json", import.meta.url));
    const fromFile = await runCli([
      "report",
      "--session",
      "s1",
      "--request-id",
      "r1",
      "--file",
      file,
      "--json",
      ...server,
    ]);
    expect(fromFile.code).toBe(0);
    expect(JSON.parse(fromFile.stdout)).toMatchObject({ duplicate: true });
  });

  it("should say which limit a reported run hit", async () => {
    pool = await startTestPool();
    await pool.grpc.allocate({ sessionId: "s1" });
    const res = await runCli(["report", "--session", "s1", "-", "--server", pool.server.url], {
      input: await fixture("claude-cli/limit-weekly.json"),
    });
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/\nlimit reached( \(\w+\))? until \d{4}-\d\d-\d\d \d\d:\d\dZ/);
  });

  it("should say what text output and a throttle were understood as", async () => {
    pool = await startTestPool();
    await pool.grpc.allocate({ sessionId: "s1" });
    const server = ["--server", pool.server.url];
    const text = await runCli(["report", "--session", "s1", "-", ...server], { input: "4\n" });
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^nothing counted \(text output without a cost\) on sub[123] /);
    const throttle = await runCli(["report", "--session", "s1", "-", ...server], {
      input: await fixture("claude-cli-real/throttle-retries2-oauth-text.stdout"),
    });
    expect(throttle.code, throttle.stderr).toBe(0);
    expect(throttle.stdout).toMatch(
      /\nthrottled, not a usage limit: no new sessions there until 2026-11-23 10:01Z \(API Error: Server is temporarily limiting/,
    );
  });

  it("should clear a cooldown, say what it cleared, and record it as an event", async () => {
    pool = await startTestPool();
    const server = ["--server", pool.server.url];
    const grant = await pool.grpc.allocate({ sessionId: "s1" });
    const id = grant.outcome.case === "subscription" ? grant.outcome.value.subscriptionId : "";
    await pool.grpc.reportUsage({
      sessionId: "s1",
      source: { case: "claudeOutput", value: await fixture("claude-cli/limit-weekly.json") },
    });

    const cleared = await runCli(["cooldown", "clear", id, "--reason", "support lifted it", ...server]);
    expect(cleared.code, cleared.stderr).toBe(0);
    expect(cleared.stdout).toBe(
      `${id}: cleared seven_day (until 2026-11-28 09:00Z)\n${id}: available, 1/15 sessions, weekly 0%\n`,
    );
    const again = await runCli(["cooldown", "clear", id, "--json", ...server]);
    expect(JSON.parse(again.stdout)).toMatchObject({ subscription: { id, status: "SUBSCRIPTION_STATE_AVAILABLE" } });
    expect(JSON.parse(again.stdout).cleared).toBeUndefined();

    // On the public stream, as `authpool events` prints it.
    const stop = new AbortController();
    let line = "";
    for await (const { event } of pool.grpc.streamEvents(
      { types: [EventType.COOLDOWN_CLEARED] },
      { signal: AbortSignal.any([stop.signal, AbortSignal.timeout(5000)]) },
    )) {
      line = event === undefined ? "" : formatEvent(event);
      stop.abort();
      break;
    }
    expect(line).toMatch(
      new RegExp(
        `  cooldown_cleared  ${id} seven_day cooldown \\(operator\\): cleared by an operator: support lifted it$`,
      ),
    );

    const bad = await runCli(["cooldown", "clear", id, "--model", "haiku", ...server]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/model_scope/);
  });

  it("should pause and resume a subscription", async () => {
    pool = await startTestPool();
    const server = ["--server", pool.server.url];
    const paused = await runCli(["pause", "sub2", ...server]);
    expect(paused.code).toBe(0);
    expect(paused.stdout).toBe("sub2: paused, 0/15 sessions, weekly 0%\n");
    const resumed = await runCli(["resume", "sub2", "--json", ...server]);
    expect(resumed.code).toBe(0);
    expect(JSON.parse(resumed.stdout)).toMatchObject({
      subscription: { id: "sub2", status: "SUBSCRIPTION_STATE_AVAILABLE" },
    });
  });

  it("should drain and undrain a subscription", async () => {
    pool = await startTestPool();
    const server = ["--server", pool.server.url];
    const drained = await runCli(["drain", "sub1", ...server]);
    if (/UNIMPLEMENTED/.test(drained.stderr)) return; // the server side is not there yet
    expect(drained.code, drained.stderr).toBe(0);
    expect(drained.stdout).toMatch(/^sub1: draining/);
    const undrained = await runCli(["undrain", "sub1", ...server]);
    expect(undrained.code).toBe(0);
    expect(undrained.stdout).toMatch(/^sub1: available/);
  });

  it("should plan a rebalance with --dry-run", async () => {
    pool = await startTestPool();
    const res = await runCli(["rebalance", "--dry-run", "--json", "--server", pool.server.url]);
    expect(res.code).toBe(0);
    expect(JSON.parse(res.stdout)).toMatchObject({ dryRun: true });
    const words = await runCli(["rebalance", "--dry-run", "--server", pool.server.url]);
    expect(words.stdout).toBe(
      "rebalance (dry run, nothing moved): 0 moves\n  why: no sessions: there is nothing to move\n" +
        "  periodic: off (rebalancing.enabled is false): idle sessions move only when a rebalance is asked for, like this one\n",
    );
  });

  it("should say whether the periodic rebalance is on: off after moves too, on only when nothing moved", async () => {
    pool = await startTestPool({ config: { rebalancing: { enabled: true } } });
    const on = await runCli(["rebalance", "--server", pool.server.url]);
    expect(on.stdout).toBe(
      "rebalance: 0 moves\n  why: no sessions: there is nothing to move\n" +
        "  periodic: on: the pool tries again every rebalancing.intervalSeconds\n",
    );
    expect(JSON.parse((await runCli(["rebalance", "--json", "--server", pool.server.url])).stdout)).toMatchObject({
      periodicEnabled: true,
    });
    await pool.close();

    // Off, and a move made: the line still says that nothing will move on its own.
    pool = await startTestPool();
    await pool.grpc.allocate({ sessionId: "s1" });
    pool.clock.advance(10 * 60_000); // idle
    const held = (await pool.grpc.getPoolStatus({ includeSessions: true })).sessions[0]?.subscriptionId ?? "";
    await pool.grpc.setDrained({ subscriptionId: held, drained: true });
    const moved = await runCli(["rebalance", "--server", pool.server.url]);
    expect(moved.stdout).toMatch(
      /^rebalance: 1 move\n {2}s1 sub\d → sub\d \(drain: .+\)\n {2}periodic: off \(rebalancing\.enabled is false\): idle sessions move only when a rebalance is asked for, like this one\n$/,
    );
  });

  it("should say why a rebalance moves nothing: sessions in use, then an even load", async () => {
    pool = await startTestPool();
    for (const id of ["r1", "r2", "r3"]) await pool.grpc.allocate({ sessionId: id });
    const active = await runCli(["rebalance", "--dry-run", "--server", pool.server.url]);
    expect(active.stdout).toContain("0 moves\n  why: no idle sessions: all 3 sessions are active");

    // Past sessions.activeMinutes (5) without a report: idle, but every subscription is as loaded as the next.
    pool.clock.advance(10 * 60_000);
    const even = await runCli(["rebalance", "--server", pool.server.url]);
    expect(even.stdout).toMatch(/^rebalance: 0 moves\n {2}why: the 5-hour load is even enough: .*costGapThreshold/);

    // The idle sessions of a paused subscription with nowhere to go.
    for (const id of ["sub1", "sub2", "sub3"]) await pool.grpc.setPaused({ subscriptionId: id, paused: true });
    const stranded = await runCli(["rebalance", "--dry-run", "--server", pool.server.url]);
    expect(stranded.stdout).toContain("have nowhere to go: no other subscription is available with a free slot");
  });

  it("should pass a reload's refusal on as an error (exit 1) with the server's reason", async () => {
    // The test pool has no config file to re-read.
    pool = await startTestPool();
    const res = await runCli(["reload", "--server", pool.server.url]);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/^authpool: [A-Z_]+: /);
  });

  it("should run exec's command with its own flags and exit with its code", async () => {
    pool = await startTestPool();
    const script =
      "process.stdout.write(JSON.stringify([process.env.CLAUDE_CONFIG_DIR, ...process.argv.slice(1)])); process.exit(3)";
    const res = await runCli([
      "exec",
      "--session",
      "e1",
      "--server",
      pool.server.url,
      "--",
      "node",
      "-e",
      script,
      "--",
      "--keep",
      "-x",
    ]);
    expect(res.code, res.stderr).toBe(3);
    const [configDir, ...args] = JSON.parse(res.stdout) as string[];
    expect(configDir).toMatch(/sub[123]$/);
    expect(args).toEqual(["--keep", "-x"]);
    // exec's own --keep was not given: the session is released.
    expect((await pool.grpc.getPoolStatus({ includeSessions: true })).sessions).toEqual([]);
  });
});
