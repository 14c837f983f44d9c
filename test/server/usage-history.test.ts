import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { timestampFromMs, timestampMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterEach, describe, expect, it } from "vitest";
import { HistoryGroupBy, HistoryResolution, createAuthPoolClient } from "../../src/client/index.js";
import { parseConfig } from "../../src/config/index.js";
import { ARCHIVE_AFTER_MS } from "../../src/domain/index.js";
import { startAuthPoolServer } from "../../src/server/start-server.js";
import { type PoolStore, openStore } from "../../src/store/index.js";
import { writeFakeLogins } from "../support/fake-login.js";
import { ManualClock } from "../support/manual-clock.js";
import { type TestPool, startTestPool, testConfigRaw } from "../support/test-server.js";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const T0 = Date.parse("2026-11-23T10:00:00Z");

let pool: TestPool | undefined;
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  await pool?.close();
  pool = undefined;
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** countingStore is a store that notes each archived day it is asked for (`history/day/<day>`). */
function countingStore(store: PoolStore): PoolStore & { dayReads: string[] } {
  const dayReads: string[] = [];
  return {
    dayReads,
    description: store.description,
    log: store.log,
    get: (key) => {
      if (key.startsWith("history/day/")) dayReads.push(key.slice("history/day/".length));
      return store.get(key);
    },
    set: (key, value) => store.set(key, value),
    delete: (key) => store.delete(key),
    close: () => store.close(),
  };
}

/** startCountedPool is a real server on port 0 over a SQLite file whose archived-day reads are counted. */
async function startCountedPool() {
  const dir = await mkdtemp(path.join(os.tmpdir(), "authpool-history-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const store = countingStore(await openStore(`sqlite://${path.join(dir, "authpool.sqlite")}`));
  cleanups.push(() => store.close());
  const config = parseConfig(testConfigRaw(dir), path.join(dir, "config.json"));
  await writeFakeLogins(config.subscriptions, dir);
  const clock = new ManualClock(T0);
  const server = await startAuthPoolServer({ config, clock, schedulerPollMs: 0, store });
  cleanups.push(() => server.close());
  return { server, clock, store, grpc: createAuthPoolClient(server.url) };
}

const fixture = (name: string) => readFile(path.join(import.meta.dirname, "../fixtures", name), "utf8");

/** spend books $cost for client on a session of its own (allocated on the first call). */
async function spend(
  p: Pick<TestPool, "grpc" | "clock">,
  session: string,
  client: string,
  cost: number,
): Promise<string> {
  const grant = await p.grpc.allocate({ sessionId: session, client });
  await p.grpc.reportUsage({
    sessionId: session,
    requestId: `${session}-${p.clock.now()}`,
    source: { case: "usage", value: { costUsd: cost, inputTokens: 100n, outputTokens: 10n } },
  });
  return grant.outcome.case === "subscription" ? grant.outcome.value.subscriptionId : "";
}

async function history(p: TestPool, req: Parameters<TestPool["grpc"]["getUsageHistory"]>[0]) {
  const res = await p.grpc.getUsageHistory(req);
  return {
    res,
    byKey: Object.fromEntries(res.series.map((s) => [s.key, s.points.map((pt) => pt.costUsd)])),
  };
}

describe("GetUsageHistory", () => {
  it("answers cost per client per hour, zeros included, largest first", async () => {
    pool = await startTestPool();
    await spend(pool, "a1", "alice", 2);
    pool.clock.advance(HOUR);
    await spend(pool, "b1", "bob", 5);
    await spend(pool, "a1", "alice", 1);
    pool.clock.advance(HOUR);
    const { res, byKey } = await history(pool, {
      from: timestampFromMs(T0),
      until: timestampFromMs(T0 + 3 * HOUR),
      groupBy: HistoryGroupBy.CLIENT,
    });
    expect(res.series.map((s) => s.key)).toEqual(["bob", "alice"]);
    expect(byKey).toEqual({ alice: [2, 1, 0], bob: [0, 5, 0] });
    expect(res.series[0]!.points.map((pt) => timestampMs(pt.start!))).toEqual([T0, T0 + HOUR, T0 + 2 * HOUR]);
    expect(res.series.find((s) => s.key === "alice")!.points[0]).toMatchObject({ runs: 1, inputTokens: 100n });
  });

  it("sums the whole pool by UTC day, and counts limits and runs sent to the paid API", async () => {
    pool = await startTestPool();
    const sub = await spend(pool, "s1", "alice", 3);
    // A real 5-hour limit from the CLI's stream-json.
    await pool.grpc.reportUsage({
      sessionId: "s1",
      source: { case: "claudeOutput", value: await fixture("claude-cli/stream-limit.ndjson") },
    });
    for (const id of ["sub1", "sub2", "sub3"]) await pool.grpc.setPaused({ subscriptionId: id, paused: true });
    const paid = await pool.grpc.allocate({ sessionId: "p1", client: "bob" });
    expect(paid.outcome.case).toBe("fallback");

    const pooled = await pool.grpc.getUsageHistory({
      from: timestampFromMs(T0 - DAY),
      until: timestampFromMs(T0 + DAY),
      resolution: HistoryResolution.DAY,
    });
    expect(pooled.series.map((s) => s.key)).toEqual(["pool"]);
    expect(pooled.series[0]!.points.map((pt) => timestampMs(pt.start!))).toEqual([
      Date.parse("2026-11-22T00:00:00Z"),
      Date.parse("2026-11-23T00:00:00Z"),
      Date.parse("2026-11-24T00:00:00Z"),
    ]);
    expect(pooled.series[0]!.points[1]).toMatchObject({ limitsHit: 1, fallbacks: 1 });

    const bySub = await history(pool, { resolution: HistoryResolution.DAY, groupBy: HistoryGroupBy.SUBSCRIPTION });
    const paidSeries = bySub.res.series.find((s) => s.key === "(paid API)")!;
    expect(paidSeries.points.reduce((n, pt) => n + pt.fallbacks, 0)).toBe(1);
    const limited = bySub.res.series.find((s) => s.key === sub)!;
    expect(limited.points.reduce((n, pt) => n + pt.limitsHit, 0)).toBe(1);
    // GetUsage (spend) is not cluttered by the counts.
    const usage = await pool.grpc.getUsage({});
    expect(usage.rows.map((r) => r.key)).not.toContain("(pool)");
  });

  it("keeps hours past the ledger's week in the archive, across a restart, for 40 days", async () => {
    pool = await startTestPool();
    await spend(pool, "old", "alice", 4);
    // Nine days on the hour has left the ledger; the archive job ran on the way.
    for (let day = 1; day <= 9; day++) {
      pool.clock.advance(DAY);
      await pool.server.runJobs();
      await spend(pool, `d${day}`, "bob", 1);
    }
    expect([...pool.server.writer.currentPool.state.ledger.values()].some((e) => e.hour === T0)).toBe(false);
    await pool.restart();
    const { byKey } = await history(pool, {
      from: timestampFromMs(T0 - DAY),
      until: timestampFromMs(pool.clock.now() + HOUR),
      resolution: HistoryResolution.DAY,
      groupBy: HistoryGroupBy.CLIENT,
    });
    expect(byKey.alice![1]).toBe(4);
    expect(byKey.bob!.reduce((a, b) => a + b, 0)).toBe(9);
  });

  it("reads each archived day from the store once: asked again, it reads only the day still being archived", async () => {
    const p = await startCountedPool();
    for (let day = 0; day <= 12; day++) {
      await spend(p, `d${day}`, day % 2 === 0 ? "alice" : "bob", day + 1);
      p.clock.advance(DAY);
      await p.server.runJobs();
    }
    // Half a day on: the archive's last day, 11-29, holds its 10:00 and is not complete.
    p.clock.advance(12 * HOUR);
    await p.server.runJobs();
    const req = {
      from: timestampFromMs(T0 - DAY),
      until: timestampFromMs(p.clock.now()),
      resolution: HistoryResolution.DAY,
      groupBy: HistoryGroupBy.CLIENT,
    };
    p.store.dayReads.length = 0;
    const first = await p.grpc.getUsageHistory(req);
    // 2026-11-23 to 11-28 are archived whole; 11-29 up to 22:00 (the cursor, a week ago).
    expect(new Date(p.clock.now() - ARCHIVE_AFTER_MS).toISOString()).toBe("2026-11-29T22:00:00.000Z");
    expect(p.store.dayReads).toEqual([
      "2026-11-23",
      "2026-11-24",
      "2026-11-25",
      "2026-11-26",
      "2026-11-27",
      "2026-11-28",
      "2026-11-29",
    ]);
    p.store.dayReads.length = 0;
    const second = await p.grpc.getUsageHistory(req);
    expect(p.store.dayReads).toEqual(["2026-11-29"]);
    expect(second).toEqual(first);
    const totals = Object.fromEntries(second.series.map((s) => [s.key, s.totalCostUsd]));
    expect(totals).toEqual({ alice: 1 + 3 + 5 + 7 + 9 + 11 + 13, bob: 2 + 4 + 6 + 8 + 10 + 12 });
  });

  it.each([
    ["from after until", { from: timestampFromMs(T0), until: timestampFromMs(T0 - HOUR) }, "from"],
    ["a range over 40 days", { from: timestampFromMs(T0 - 41 * DAY), until: timestampFromMs(T0) }, "from"],
    ["a negative time", { until: { seconds: -5n, nanos: 0 } }, "until"],
    ["a time past year 275760", { until: { seconds: 10n ** 13n, nanos: 0 } }, "until"],
    ["negative nanos", { from: { seconds: BigInt(T0 / 1000), nanos: -1 } }, "from"],
  ])("refuses %s with INVALID_ARGUMENT", async (_name, req, field) => {
    pool = await startTestPool();
    const error = await pool.grpc.getUsageHistory(req).catch((e: unknown) => ConnectError.from(e));
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).code).toBe(Code.InvalidArgument);
    expect((error as ConnectError).rawMessage).toMatch(new RegExp(`^${field}`));
  });
});
