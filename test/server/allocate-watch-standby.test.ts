import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Code } from "@connectrpc/connect";
import { afterEach, describe, expect, it } from "vitest";
import { type AuthPoolClient, createAuthPoolClient } from "../../src/client/index.js";
import { parseConfig } from "../../src/config/index.js";
import { type AuthPoolServer, startAuthPoolServer } from "../../src/server/start-server.js";
import { writeFakeLogins } from "../support/fake-login.js";
import { ManualClock } from "../support/manual-clock.js";

/**
 * AllocateWatch through a standby: the standby relays the leader's stream,
 * so the call waits in the leader's one queue, its caller hears its place
 * there and then the answer, and a caller who leaves (or whose deadline
 * passes) takes the call out of the leader's queue.
 */

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

interface Pair {
  leader: AuthPoolServer;
  viaLeader: AuthPoolClient;
  viaStandby: AuthPoolClient;
}

/** startPair starts a leader and a standby on one SQLite store whose pool has one slot, taken by "holder". */
async function startPair(): Promise<Pair> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "authpool-watch-standby-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const raw = {
    subscriptions: [
      { id: "solo", type: "claude-max", configDir: path.join(dir, "solo"), weeklyBudgetUsd: 1000, maxSessions: 1 },
    ],
    server: { host: "127.0.0.1", port: 0 },
    store: { uri: `sqlite://${path.join(dir, "authpool.sqlite")}` },
    cluster: { leaseTtlSeconds: 1, followPollMs: 20 },
  };
  const config = parseConfig(raw, path.join(dir, "config.json"));
  await writeFakeLogins(config.subscriptions, dir);
  const clock = new ManualClock("2026-11-23T10:00:00Z");
  const start = async () => {
    const server = await startAuthPoolServer({ config, clock, schedulerPollMs: 0 });
    cleanups.push(() => server.close());
    return server;
  };
  const leader = await start();
  const standby = await start();
  expect(standby.writer.role).toBe("standby");
  const viaLeader = createAuthPoolClient(leader.url);
  await viaLeader.allocate({ sessionId: "holder" });
  return { leader, viaLeader, viaStandby: createAuthPoolClient(standby.url) };
}

/** leaderQueue is the leader's wait queue as its status and its metrics tell it. */
async function leaderQueue({ leader, viaLeader }: Pair): Promise<{ status: number; metric: number }> {
  const status = (await viaLeader.getPoolStatus({})).waiting;
  const text = await (await fetch(`${leader.url}/metrics`)).text();
  const metric = /^authpool_queue_waiting (\S+)$/m.exec(text)?.[1];
  return { status, metric: Number(metric) };
}

/** next reads a stream's next message, failing the test (not timing it out) when none comes. */
async function next<T>(stream: AsyncIterator<T>): Promise<IteratorResult<T>> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error("no message came through the standby within 10 s")), 10_000);
  });
  try {
    return await Promise.race([stream.next(), late]);
  } finally {
    clearTimeout(timer);
  }
}

/** settles polls the leader's queue until it holds `waiting` calls. */
async function settles(pair: Pair, waiting: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const queue = await leaderQueue(pair);
    if (queue.status === waiting && queue.metric === waiting) return;
    if (Date.now() > deadline) throw new Error(`the leader's queue holds ${JSON.stringify(queue)}, not ${waiting}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("AllocateWatch on a standby", () => {
  it("should stream the place in the leader's queue, then the slot once it is released", async () => {
    const pair = await startPair();
    const watch = pair.viaStandby
      .allocateWatch({ request: { sessionId: "w1", client: "c", wait: true } })
      [Symbol.asyncIterator]();

    const first = await next(watch);
    expect(first.value?.update).toMatchObject({ case: "queued", value: { position: 1, waiting: 1 } });
    await settles(pair, 1);

    await pair.viaLeader.release({ sessionId: "holder" });
    const last = await next(watch);
    expect(last.value?.update).toMatchObject({
      case: "allocated",
      value: { sessionId: "w1", client: "c", outcome: { case: "subscription", value: { subscriptionId: "solo" } } },
    });
    expect((await next(watch)).done).toBe(true);
  });

  it("should take a call whose caller left out of the leader's queue", async () => {
    const pair = await startPair();
    const ac = new AbortController();
    const watch = pair.viaStandby
      .allocateWatch({ request: { sessionId: "gone", client: "c", wait: true } }, { signal: ac.signal })
      [Symbol.asyncIterator]();
    expect((await next(watch)).value?.update.case).toBe("queued");
    await settles(pair, 1);

    ac.abort();
    await expect(watch.next()).rejects.toMatchObject({ code: Code.Canceled });
    await settles(pair, 0);
    // The slot, once free, is not booked to the call that left.
    await pair.viaLeader.release({ sessionId: "holder" });
    const after = await pair.viaLeader.allocate({ sessionId: "after" });
    expect(after.outcome).toMatchObject({ case: "subscription", value: { subscriptionId: "solo" } });
  });

  it("should end a call at its caller's deadline and take it out of the leader's queue", async () => {
    const pair = await startPair();
    const watch = pair.viaStandby
      .allocateWatch({ request: { sessionId: "late", client: "c", wait: true } }, { timeoutMs: 1500 })
      [Symbol.asyncIterator]();
    expect((await next(watch)).value?.update.case).toBe("queued");
    await expect(watch.next()).rejects.toMatchObject({ code: Code.DeadlineExceeded });
    await settles(pair, 0);
  });

  it("should end with the leader's error", async () => {
    const pair = await startPair();
    // The leader validates the forwarded request; its refusal is the stream's status.
    const watched = async () => {
      for await (const res of pair.viaStandby.allocateWatch({ request: { sessionId: "bad id", wait: true } })) void res;
    };
    await expect(watched()).rejects.toMatchObject({ code: Code.InvalidArgument });
  });
});
