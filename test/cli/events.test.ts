import { afterEach, describe, expect, it } from "vitest";
import { DAY_MS } from "../../src/domain/index.js";
import { type TestPool, startTestPool } from "../support/test-server.js";
import { type RunningCli, freePort, runCli, startCli, waitFor } from "./cli-process.js";

let pool: TestPool | undefined;
let follower: RunningCli | undefined;
afterEach(async () => {
  await follower?.stop();
  follower = undefined;
  await pool?.close();
  pool = undefined;
});

/** SessionLine is the part of a `events --json` line these tests look at. */
interface SessionLine {
  sequence: string;
  session?: { sessionId: string; subscriptionId: string; kind: string };
}

function parsed(cli: RunningCli): SessionLine[] {
  return cli.lines().map((line) => JSON.parse(line) as SessionLine);
}

function sessionKinds(lines: SessionLine[]): string[] {
  return lines
    .filter((l) => l.session !== undefined)
    .map((l) => `${l.session!.sessionId} ${l.session!.kind.replace("SESSION_EVENT_KIND_", "")}`);
}

describe("authpool events", () => {
  it("should print allocated and released events as JSON lines from --since 0", async () => {
    pool = await startTestPool();
    await pool.grpc.allocate({ sessionId: "s1" });
    await pool.grpc.release({ sessionId: "s1" });
    follower = startCli(["events", "--json", "--since", "0", "--server", pool.server.url]);
    const cli = follower;
    await waitFor("both session events", () => sessionKinds(parsed(cli)).length >= 2, {
      detail: () => cli.stdout() + cli.stderr(),
    });
    expect(sessionKinds(parsed(cli))).toEqual(["s1 ALLOCATED", "s1 RELEASED"]);
    const [allocated] = parsed(cli);
    expect(allocated?.session?.subscriptionId).toMatch(/^sub[123]$/);
    expect(cli.stderr()).toBe("");
  });

  it("should print one readable line per event, filtered by --type and --subscription", async () => {
    pool = await startTestPool();
    await pool.grpc.setPaused({ subscriptionId: "sub2", paused: true });
    await pool.grpc.setPaused({ subscriptionId: "sub3", paused: true });
    await pool.grpc.allocate({ sessionId: "s1" }); // on sub1, the only one left
    follower = startCli(["events", "--type", "status_changed", "--subscription", "sub2", "--server", pool.server.url]);
    const cli = follower;
    await waitFor("the status change", () => cli.lines().length >= 1, { detail: () => cli.stdout() + cli.stderr() });
    expect(cli.lines()[0]).toMatch(/^2026-11-23T10:00:00\.000Z {2}#\d+ {2}status_changed {2}sub2 available → paused/);
    // Give a wrong event a chance to arrive before checking there is none.
    await pool.grpc.setPaused({ subscriptionId: "sub2", paused: false });
    await waitFor("the resume", () => cli.lines().length >= 2, { detail: () => cli.stdout() });
    expect(cli.lines().every((line) => line.includes("sub2") && line.includes("status_changed"))).toBe(true);
  });

  it("should start at live events with --tail", async () => {
    pool = await startTestPool();
    await pool.grpc.allocate({ sessionId: "before" });
    follower = startCli(["events", "--tail", "--json", "--type", "session", "--server", pool.server.url]);
    const cli = follower;
    // The stream's start cannot be observed from outside: keep making live
    // events until the follower shows one.
    let n = 0;
    await waitFor("a live event", async () => {
      await pool!.grpc.allocate({ sessionId: `live-${n++}` });
      await new Promise((r) => setTimeout(r, 50));
      return cli.lines().length > 0;
    });
    expect(sessionKinds(parsed(cli)).some((k) => k.startsWith("before"))).toBe(false);
  });

  it("should resume after a pool restart without a gap or a duplicate", async () => {
    // A fixed port, so the restarted pool is where the follower reconnects to.
    const port = await freePort();
    pool = await startTestPool({ config: { server: { host: "127.0.0.1", port } } });
    const url = pool.server.url;
    follower = startCli(["events", "--json", "--type", "session", "--server", url]);
    const cli = follower;
    const c = () => pool!.grpc;
    await c().allocate({ sessionId: "a1" });
    await c().allocate({ sessionId: "a2" });
    await waitFor("the first events", () => parsed(cli).length >= 2, { detail: () => cli.stdout() + cli.stderr() });

    await pool.restart();
    expect(pool.server.url).toBe(url);
    // Made while the follower is still backing off: it must pick them up from its cursor.
    await c().release({ sessionId: "a1" });
    await c().allocate({ sessionId: "a3" });
    await waitFor("the follower to catch up", () => parsed(cli).length >= 4, {
      detail: () => cli.stdout() + cli.stderr(),
    });
    await pool.restart();
    await c().release({ sessionId: "a2" });
    await c().release({ sessionId: "a3" });

    const expected = ["a1 ALLOCATED", "a2 ALLOCATED", "a1 RELEASED", "a3 ALLOCATED", "a2 RELEASED", "a3 RELEASED"];
    await waitFor("every event", () => parsed(cli).length >= expected.length, {
      timeoutMs: 20_000,
      detail: () => cli.stdout() + cli.stderr(),
    });
    const lines = parsed(cli);
    expect(sessionKinds(lines)).toEqual(expected);
    const sequences = lines.map((l) => BigInt(l.sequence));
    for (let i = 1; i < sequences.length; i++) expect(sequences[i]! > sequences[i - 1]!).toBe(true);

    // The same sequences the pool itself serves, read back from the start.
    const ac = new AbortController();
    const served: bigint[] = [];
    try {
      for await (const { event } of c().streamEvents({ types: [7] }, { signal: ac.signal })) {
        if (event !== undefined) served.push(event.sequence);
        if (served.length === expected.length) ac.abort();
      }
    } catch {
      // aborted
    }
    expect(sequences).toEqual(served);
    // One note per outage (each restart is one, however many reconnects it took), on stderr only.
    expect(cli.stderr().match(/event stream lost/g)?.length).toBe(2);
    expect(cli.stderr().match(/event stream resumed/g)?.length).toBe(2);
    expect(cli.stderr()).toContain(url);
  });

  it("should exit with 1 and say why when --since is older than retention", async () => {
    pool = await startTestPool({
      config: { events: { retentionDays: 1 }, snapshot: { everyRecords: 1, everySeconds: 1 } },
    });
    for (const id of ["old1", "old2", "old3"]) await pool.grpc.allocate({ sessionId: id });
    pool.clock.advance(2 * DAY_MS);
    await pool.grpc.allocate({ sessionId: "new1" });
    await pool.grpc.allocate({ sessionId: "new2" });
    const res = await runCli(["events", "--since", "1", "--server", pool.server.url]);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/OUT_OF_RANGE: .*oldest available is \d+/);
    expect(res.stderr).toContain("--since 0");
    expect(res.stdout).toBe("");
  });

  it("should print what the pool keeps after --since and exit with --no-follow", async () => {
    pool = await startTestPool();
    for (const id of ["n1", "n2", "n3"]) await pool.grpc.allocate({ sessionId: id });
    const all = await runCli(["events", "--no-follow", "--json", "--server", pool.server.url]);
    expect(all.code, all.stderr).toBe(0);
    expect(
      sessionKinds(
        all.stdout
          .trim()
          .split("\n")
          .map((l) => JSON.parse(l) as SessionLine),
      ),
    ).toEqual(["n1 ALLOCATED", "n2 ALLOCATED", "n3 ALLOCATED"]);
    const first = (JSON.parse(all.stdout.split("\n")[0]!) as SessionLine).sequence;
    const after = await runCli([
      "events",
      "--no-follow",
      "--since",
      first,
      "--type",
      "session",
      "--server",
      pool.server.url,
    ]);
    expect(after.code, after.stderr).toBe(0);
    expect(
      after.stdout
        .trim()
        .split("\n")
        .map((l) => l.replace(/^.*session {2}/, "")),
    ).toEqual([expect.stringMatching(/^allocated n2 on sub\d$/), expect.stringMatching(/^allocated n3 on sub\d$/)]);
    const none = await runCli(["events", "--no-follow", "--type", "failover", "--server", pool.server.url]);
    expect(none).toMatchObject({ code: 0, stdout: "", stderr: "" });
  });

  it("should stop after --limit events, history or live", async () => {
    pool = await startTestPool();
    for (const id of ["l1", "l2", "l3"]) await pool.grpc.allocate({ sessionId: id });
    const two = await runCli(["events", "--limit", "2", "--server", pool.server.url]);
    expect(two.code, two.stderr).toBe(0);
    expect(two.stdout.trim().split("\n")).toHaveLength(2);

    follower = startCli(["events", "--tail", "--limit", "1", "--json", "--server", pool.server.url]);
    const cli = follower;
    let n = 0;
    await waitFor("the follower to exit after one live event", async () => {
      if (cli.proc.exitCode !== null) return true;
      await pool!.grpc.allocate({ sessionId: `live-${n++}` });
      await new Promise((r) => setTimeout(r, 50));
      return false;
    });
    expect(cli.proc.exitCode).toBe(0);
    expect(cli.lines()).toHaveLength(1);
  });

  it.each([
    { name: "an unknown --type", args: ["--type", "rotations"] },
    { name: "a --since that is not a sequence", args: ["--since", "-4"] },
    { name: "a --limit of nothing", args: ["--limit", "0"] },
    { name: "--tail with --no-follow", args: ["--tail", "--no-follow"] },
  ])("should refuse $name with exit code 2", async ({ args }) => {
    const res = await runCli(["events", ...args, "--server", "http://127.0.0.1:9"]);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/error: option|--tail .*--no-follow/);
  });
});
