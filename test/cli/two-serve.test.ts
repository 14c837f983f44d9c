import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { toJsonString } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterEach, describe, expect, it } from "vitest";
import { type AuthPoolClient, EventSchema, createAuthPoolClient } from "../../src/client/index.js";
import { fixture, loggedInConfigRaw } from "../support/test-server.js";
import { type RunningCli, freePort, runCli, startCli, waitFor } from "./cli-process.js";

/**
 * The case from the issue: `authpool serve` started twice on one machine,
 * the same config file but for the port, so both use one SQLite file. The
 * second stands by and says who leads; `authpool status` against it says
 * so too; calls through either instance are acknowledged and kept; after
 * both stop (SIGTERM) and one starts again, everything acknowledged is
 * there and no event sequence number is given out twice.
 */

const running: RunningCli[] = [];
let dir: string | undefined;
afterEach(async () => {
  for (const r of running.splice(0)) await r.stop();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

interface Serving {
  cli: RunningCli;
  url: string;
  /** The "serving" log line. */
  line: { instance: string; role: string; leader?: string; leaderAddress?: string };
}

async function serve(configFile: string): Promise<Serving> {
  const cli = startCli(["serve", "--config", configFile]);
  running.push(cli);
  let found: Serving | undefined;
  await waitFor(
    "the serving line",
    () => {
      for (const text of cli.stderr().split("\n")) {
        try {
          const entry = JSON.parse(text) as { message?: string; url?: string } & Serving["line"];
          if (entry.message === "serving" && entry.url !== undefined) found = { cli, url: entry.url, line: entry };
        } catch {
          // not a whole JSON line yet
        }
      }
      return found !== undefined;
    },
    { detail: () => cli.stderr() },
  );
  return found!;
}

/** stop sends SIGTERM and resolves with the exit code. */
async function stop(s: Serving): Promise<number | null> {
  const proc = s.cli.proc;
  const exited = new Promise<number | null>((resolve) => proc.once("exit", (code) => resolve(code)));
  proc.kill("SIGTERM");
  return exited;
}

/**
 * events reads the stream from the start: at least `atLeast` events (waiting
 * up to 10 s for them), then whatever else comes within 300 ms; each event
 * as its sequence and JSON.
 */
async function events(client: AuthPoolClient, atLeast: number): Promise<[bigint, string][]> {
  const out: [bigint, string][] = [];
  const ac = new AbortController();
  let timer = setTimeout(() => ac.abort(), 10_000);
  try {
    for await (const res of client.streamEvents({ afterSequence: 0n }, { signal: ac.signal })) {
      out.push([res.event!.sequence, toJsonString(EventSchema, res.event!)]);
      if (out.length >= atLeast) {
        clearTimeout(timer);
        timer = setTimeout(() => ac.abort(), 300);
      }
    }
  } catch (error) {
    if (ConnectError.from(error).code !== Code.Canceled) throw error;
  } finally {
    clearTimeout(timer);
  }
  return out;
}

/** As status-table.ts shortens instance ids. */
const short = (id: string) => (id.length > 12 ? `${id.slice(0, 8)}…` : id);

describe("two `authpool serve` on one SQLite file", () => {
  it("the second stands by naming the leader, both take calls, and a restart keeps every acknowledged one", async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "authpool-two-serve-"));
    const raw = await loggedInConfigRaw(dir);
    const [portA, portB] = [await freePort(), await freePort()];
    const fileA = path.join(dir, "pool-a.json");
    const fileB = path.join(dir, "pool-b.json");
    await writeFile(fileA, JSON.stringify({ ...raw, server: { host: "127.0.0.1", port: portA } }));
    await writeFile(fileB, JSON.stringify({ ...raw, server: { host: "127.0.0.1", port: portB } }));

    const a = await serve(fileA);
    const b = await serve(fileB);
    const addressA = `http://127.0.0.1:${portA}`;
    expect(a.line.role).toBe("leader");
    expect(b.line).toMatchObject({ role: "standby", leader: a.line.instance, leaderAddress: addressA });
    expect(b.cli.stderr()).toContain(`standby: instance ${a.line.instance} holds the store's lease at ${addressA}`);

    // `authpool status` against the standby says which it is and who leads.
    const statusB = await runCli(["status", "--server", b.url]);
    expect(statusB.code, statusB.stderr).toBe(0);
    const roleLine = statusB.stdout
      .split("\n")
      .find((line) => line.startsWith(`instance ${short(b.line.instance)} · `));
    expect(roleLine, statusB.stdout).toBeDefined();
    expect(roleLine).toContain(" · standby · ");
    expect(roleLine).toContain(`leader ${short(a.line.instance)} at ${addressA}`);
    const statusA = await runCli(["status", "--server", a.url]);
    expect(statusA.stdout).toMatch(
      new RegExp(`^instance ${short(a.line.instance).replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} · leader · epoch 1`, "m"),
    );

    // A mix of calls through both, by the CLI and by the client library.
    const viaA = createAuthPoolClient(a.url);
    const viaB = createAuthPoolClient(b.url, { protocol: "connect", httpVersion: "1.1" });
    const held = new Set<string>();
    let counted = 0;
    const allocatedByCli = await runCli(["allocate", "--session", "cli-1", "--json", "--server", b.url]);
    expect(allocatedByCli.code, allocatedByCli.stderr).toBe(0);
    held.add("cli-1");
    const reportedByCli = await runCli(
      ["report", "--session", "cli-1", "--request-id", "cli-r1", "--json", "-", "--server", b.url],
      {
        input: await fixture("claude-cli/success.json"),
      },
    );
    expect(reportedByCli.code, reportedByCli.stderr).toBe(0);
    counted += (JSON.parse(reportedByCli.stdout) as { countedCostUsd: number }).countedCostUsd;
    for (let i = 0; i < 6; i++) {
      const client = i % 2 === 0 ? viaA : viaB;
      const grant = await client.allocate({ sessionId: `s${i}` });
      expect(grant.outcome.case).toBe("subscription");
      held.add(`s${i}`);
      const report = await client.reportUsage({
        sessionId: `s${i}`,
        requestId: `r${i}`,
        source: { case: "usage", value: { costUsd: (i + 1) / 8, inputTokens: 100n, outputTokens: 10n } },
      });
      expect(report.duplicate).toBe(false);
      counted += report.countedCostUsd;
    }
    // The same report again through the other instance counts once.
    const again = await viaA.reportUsage({
      sessionId: "s1",
      requestId: "r1",
      source: { case: "usage", value: { costUsd: 2 / 8, inputTokens: 100n, outputTokens: 10n } },
    });
    expect(again.duplicate).toBe(true);
    expect((await viaB.release({ sessionId: "s2" })).released).toBe(true);
    held.delete("s2");
    const released = await runCli(["release", "--session", "s3", "--server", a.url]);
    expect(released.code).toBe(0);
    held.delete("s3");

    // Both instances stream the same events under the same numbers.
    await waitFor(
      "the standby caught up",
      async () =>
        (await viaB.getPoolStatus({})).cluster?.journalRecord === (await viaA.getPoolStatus({})).cluster?.journalRecord,
    );
    // At least an "allocated" for each of the 7 sessions and a "released" for 2 of them.
    const before = await events(viaA, 9);
    expect(before.length).toBeGreaterThanOrEqual(9);
    expect(await events(viaB, before.length)).toEqual(before);
    // biome-ignore lint/complexity/useMathMinMax: bigints, which Math.max does not take
    const lastSeq = before.reduce((max, [seq]) => (seq > max ? seq : max), 0n);

    // Both stop; one starts again.
    expect(await stop(b)).toBe(0);
    expect(await stop(a)).toBe(0);
    const c = await serve(fileB);
    expect(c.line.role).toBe("leader");
    const viaC = createAuthPoolClient(c.url);
    const status = await viaC.getPoolStatus({ includeSessions: true });
    expect(status.sessions.map((s) => s.sessionId).sort()).toEqual([...held].sort());
    expect(status.subscriptions.reduce((sum, s) => sum + s.weeklyUsedUsd, 0)).toBeCloseTo(counted, 9);
    expect(status.cluster?.epoch).toBeGreaterThan(1n);
    // The same history, and the next event gets a number never used before.
    expect(await events(viaC, before.length)).toEqual(before);
    expect((await viaC.allocate({ sessionId: "after-restart" })).outcome.case).toBe("subscription");
    const after = await events(viaC, before.length + 1);
    expect(after.slice(0, before.length)).toEqual(before);
    expect(after.length).toBeGreaterThan(before.length);
    for (const [seq] of after.slice(before.length)) expect(seq).toBeGreaterThan(lastSeq);
    expect(await stop(c)).toBe(0);
  }, 60_000);
});
