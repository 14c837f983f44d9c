import { chmod, mkdtemp, readdir, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Code, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterEach, describe, expect, it } from "vitest";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../../gen/grpc/health/v1/health_pb.js";
import { type AuthPoolClient, SubscriptionState, createAuthPoolClient } from "../../src/client/index.js";
import { type PoolConfig, parseConfig } from "../../src/config/index.js";
import { type AuthPoolServer, startAuthPoolServer } from "../../src/server/start-server.js";
import { type KvStore, openStore } from "../../src/store/index.js";
import { ManualClock } from "../support/manual-clock.js";
import { testConfigRaw } from "../support/test-server.js";
import { FlakyStore } from "../store/store-helpers.js";

/**
 * The store fails under a running pool: every call that needs a write is
 * refused with UNAVAILABLE, nothing of a refused call shows afterwards
 * (memory never runs ahead of the store), health says NOT_SERVING for as
 * long as the store refuses writes, and the pool comes back by itself once
 * the store does, with every acknowledged change still there after a
 * restart. Two faults: a store wrapper that starts throwing, and a SQLite
 * file that is read-only.
 */

const RETRY_MS = 40;
const clock = new ManualClock("2026-11-23T10:00:00Z");
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "authpool-faults-"));
  cleanups.push(async () => {
    await chmod(dir, 0o755).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });
  return dir;
}

async function start(
  config: PoolConfig,
  store?: KvStore,
): Promise<{ server: AuthPoolServer; client: AuthPoolClient; health: () => Promise<Status> }> {
  const server = await startAuthPoolServer({
    config,
    clock,
    schedulerPollMs: 0,
    storeRetryMs: RETRY_MS,
    ...(store !== undefined ? { store } : {}),
  });
  let closed = false;
  cleanups.push(async () => {
    if (!closed) await server.close();
  });
  const close = server.close.bind(server);
  server.close = async () => {
    closed = true;
    await close();
  };
  const health = createClient(Health, createGrpcTransport({ baseUrl: server.url }));
  return { server, client: createAuthPoolClient(server.url), health: async () => (await health.check({})).status };
}

/** until polls (only health, never the pool) until cond holds, for up to 10 s. */
async function until(cond: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`not within 10 s: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const USAGE = { costUsd: 1.25, inputTokens: 1000n, outputTokens: 500n };

/** SnapshotFailingStore refuses only snapshot writes while failSnapshots is set. */
class SnapshotFailingStore extends FlakyStore {
  failSnapshots = false;
  snapshotFailures = 0;
  override async set(key: string, value: string): Promise<void> {
    if (this.failSnapshots && key === "snapshot") {
      this.snapshotFailures++;
      throw new Error("injected snapshot failure");
    }
    return super.set(key, value);
  }
}

/** books is what status shows of the pool's books: sessions held, cost counted, subscriptions paused. */
async function books(client: AuthPoolClient): Promise<{ sessions: string[]; weeklyUsd: number; paused: string[] }> {
  const status = await client.getPoolStatus({ includeSessions: true });
  return {
    sessions: status.sessions.map((x) => x.sessionId).sort(),
    weeklyUsd: Math.round(status.subscriptions.reduce((sum, s) => sum + s.weeklyUsedUsd, 0) * 100) / 100,
    paused: status.subscriptions.filter((s) => s.status === SubscriptionState.PAUSED).map((s) => s.id),
  };
}

/**
 * refusedWrites sends one call of each kind that needs a write (after
 * `before`, which sets the fault up); each must be UNAVAILABLE.
 */
async function refusedWrites(client: AuthPoolClient, before: () => Promise<void> = async () => {}): Promise<void> {
  const calls: [string, () => Promise<unknown>][] = [
    ["allocate", () => client.allocate({ sessionId: "lost-1" })],
    [
      "report",
      () =>
        client.reportUsage({ sessionId: "held-1", requestId: "lost-report", source: { case: "usage", value: USAGE } }),
    ],
    ["release", () => client.release({ sessionId: "held-2" })],
    ["pause", () => client.setPaused({ subscriptionId: "sub3", paused: true })],
    ["drain", () => client.setDrained({ subscriptionId: "sub2", drained: true })],
  ];
  for (const [name, call] of calls) {
    await before();
    await expect(call(), name).rejects.toMatchObject({ code: Code.Unavailable });
  }
}

describe("store faults", () => {
  it("a store that starts throwing: UNAVAILABLE, NOT_SERVING, nothing half-applied, back by itself", async () => {
    const dir = await tempDir();
    const config = parseConfig(testConfigRaw(dir), path.join(dir, "config.json"));
    const store = new FlakyStore(await openStore(config.store.uri));
    cleanups.push(() => store.close());
    const pool = await start(config, store);
    await pool.client.allocate({ sessionId: "held-1" });
    await pool.client.allocate({ sessionId: "held-2" });
    await pool.client.reportUsage({ sessionId: "held-1", requestId: "kept", source: { case: "usage", value: USAGE } });
    const before = await books(pool.client);
    const seq = pool.server.writer.durableSeq;
    expect(await pool.health()).toBe(Status.SERVING);

    // One failed write at a time, each on a healthy pool: the write is
    // refused and its effect is thrown away with the state that held it.
    await refusedWrites(pool.client, async () => {
      await until(async () => (await pool.health()) === Status.SERVING, "SERVING before the next fault");
      store.failNextSets(1);
    });
    await until(async () => (await pool.health()) === Status.SERVING, "SERVING after single faults");
    expect(await books(pool.client)).toEqual(before);

    // Then a store that keeps refusing.
    store.failAllSets = true;
    await refusedWrites(pool.client);
    expect(await pool.health()).toBe(Status.NOT_SERVING);
    // The writer keeps trying on its own, and stays NOT_SERVING while the store refuses.
    const failures = store.failures;
    await until(async () => store.failures >= failures + 3, "three retries");
    expect(await pool.health()).toBe(Status.NOT_SERVING);
    // Reads through the writer wait for a trustworthy state too.
    await expect(pool.client.getPoolStatus({})).rejects.toMatchObject({ code: Code.Unavailable });
    // Reads failing as well (a store that is gone): still refused, still not serving.
    store.failGets = true;
    await expect(pool.client.allocate({ sessionId: "lost-2" })).rejects.toMatchObject({ code: Code.Unavailable });
    expect(await pool.health()).toBe(Status.NOT_SERVING);
    expect(pool.server.writer.durableSeq).toBe(seq);

    // The store recovers; no pool call is made until health says so.
    store.failGets = false;
    store.failAllSets = false;
    await until(async () => (await pool.health()) === Status.SERVING, "SERVING again");
    expect(await books(pool.client)).toEqual(before);
    expect(pool.server.writer.durableSeq).toBe(seq);
    expect((await pool.client.allocate({ sessionId: "after" })).outcome.case).toBe("subscription");

    // Nothing acknowledged is lost across a restart.
    await pool.server.close();
    const again = await start(config, store);
    expect(await books(again.client)).toEqual({ ...before, sessions: ["after", "held-1", "held-2"] });
  });

  it("a snapshot that cannot be written loses nothing, and does not stop shutdown", async () => {
    const dir = await tempDir();
    const config = parseConfig({ ...testConfigRaw(dir), snapshot: { everyRecords: 2 } }, path.join(dir, "config.json"));
    const store = new SnapshotFailingStore(await openStore(config.store.uri));
    cleanups.push(() => store.close());
    const pool = await start(config, store);
    await pool.client.allocate({ sessionId: "s0" });
    await pool.client.allocate({ sessionId: "s1" });
    store.failSnapshots = true;
    for (let i = 2; i < 7; i++) await pool.client.allocate({ sessionId: `s${i}` });
    // Snapshots are an optimisation: the pool keeps serving without them.
    expect(await pool.health()).toBe(Status.SERVING);
    expect(store.snapshotFailures).toBeGreaterThan(1);
    await pool.server.close();
    store.failSnapshots = false;
    const again = await start(config, store);
    expect((await books(again.client)).sessions).toEqual(["s0", "s1", "s2", "s3", "s4", "s5", "s6"]);
  });

  // Root ignores file modes: a file chmod'ed read-only stays writable for it,
  // so this fault cannot be made by chmod when the tests run as root.
  it.skipIf(process.getuid?.() === 0)(
    "a read-only SQLite file: writes go on through open descriptors; reopened read-only, the pool is NOT_SERVING until the file is writable",
    async () => {
      const dir = await tempDir();
      const dataDir = path.join(dir, "data");
      const db = path.join(dataDir, "pool.sqlite");
      const raw = { ...testConfigRaw(dir), store: { uri: `sqlite://${db}` } };
      const config = parseConfig(raw, path.join(dir, "config.json"));
      const first = await start(config);
      await first.client.allocate({ sessionId: "held-1" });
      await first.client.reportUsage({
        sessionId: "held-1",
        requestId: "kept",
        source: { case: "usage", value: USAGE },
      });

      const files = async () => (await readdir(dataDir)).map((name) => path.join(dataDir, name));
      cleanups.push(() => chmod(dataDir, 0o755));
      // The database and its directory made read-only under the running
      // pool: SQLite keeps writing through the descriptors it opened, so
      // nothing changes for the running pool (and nothing is lost).
      for (const f of await files()) await chmod(f, 0o444);
      await chmod(dataDir, 0o555);
      await first.client.allocate({ sessionId: "held-2" });
      expect(await first.health()).toBe(Status.SERVING);
      const before = await books(first.client);
      expect(before.sessions).toEqual(["held-1", "held-2"]);
      await first.server.close();

      // Reopened with everything read-only: depending on whether SQLite
      // finds its -shm file it cannot open the database at all (start-up
      // fails, naming it) or opens it read-only; never does it serve writes.
      const attempt = await start(config).catch((e: unknown) => e);
      if (attempt instanceof Error) expect(attempt.message).toContain(`cannot open ${db}`);
      else {
        const opened = attempt as Awaited<ReturnType<typeof start>>;
        expect(await opened.health()).toBe(Status.NOT_SERVING);
        await refusedWrites(opened.client);
        await opened.server.close();
      }

      // The directory writable again, the database file still read-only:
      // the pool starts with its books, refuses writes, and says NOT_SERVING.
      await chmod(dataDir, 0o755);
      for (const f of await files()) if (f !== db) await chmod(f, 0o644);
      const pool = await start(config);
      expect(await pool.health()).toBe(Status.NOT_SERVING);
      await refusedWrites(pool.client);
      expect(await pool.health()).toBe(Status.NOT_SERVING);

      // Writable again: back by itself (the store reopens its connection).
      await chmod(db, 0o644);
      await until(async () => (await pool.health()) === Status.SERVING, "SERVING once writable");
      expect(await books(pool.client)).toEqual(before);
      expect((await pool.client.allocate({ sessionId: "after" })).outcome.case).toBe("subscription");
      await pool.server.close();
      const again = await start(config);
      expect(await books(again.client)).toEqual({ ...before, sessions: ["after", "held-1", "held-2"] });
    },
  );
});
