import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type pg from "pg";
import { afterEach, describe, expect, it } from "vitest";
import type { Command } from "../../src/domain/index.js";
import { silentLogger } from "../../src/runtime/logger.js";
import { PoolHost } from "../../src/runtime/pool-host.js";
import { type JournalStore, type PoolStore, openStore } from "../../src/store/index.js";
import { PostgresJournalStore } from "../../src/store/postgres-journal-store.js";
import { ManualClock } from "../support/manual-clock.js";
import { freshPostgresUri } from "../support/postgres.js";
import { poolSettings } from "../support/settings.js";

/**
 * A standby's replica following the leader's journal, on each backend: a
 * catch-up costs the store one statement (PostgreSQL: the page and the
 * journal's bounds together), and a replica that fell behind a prune loads
 * again from the snapshot without skipping or repeating a record. Following
 * is driven by hand (no poll, no LISTEN), so every statement counted is one
 * the catch-up itself issued.
 */

const TTL = 5_000;
const settings = poolSettings(["a", "b"]);
const clock = new ManualClock("2026-11-23T10:00:00Z");
const leaseNow = () => 1_000_000;
const hosts: PoolHost[] = [];
const stores: PoolStore[] = [];
const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const h of hosts.splice(0)) await h.close().catch(() => undefined);
  for (const s of stores.splice(0)) await s.close().catch(() => undefined);
  for (const c of cleanups.splice(0)) await c();
});

interface Backend {
  name: string;
  /** two opens the store twice (one PoolStore when the backend lives in one object). */
  two(): Promise<[PoolStore, PoolStore]>;
}

const backends: Backend[] = [
  {
    name: "memory",
    async two() {
      const store = await openStore("memory://");
      stores.push(store);
      return [store, store];
    },
  },
  {
    name: "sqlite",
    async two() {
      const dir = await mkdtemp(path.join(os.tmpdir(), "authpool-replica-"));
      cleanups.push(() => rm(dir, { recursive: true, force: true }));
      const uri = `sqlite://${path.join(dir, "pool.sqlite")}`;
      const pair: [PoolStore, PoolStore] = [await openStore(uri), await openStore(uri)];
      stores.push(...pair);
      return pair;
    },
  },
  {
    name: "postgres",
    async two() {
      const { uri, drop } = await freshPostgresUri();
      cleanups.push(drop);
      const pair: [PoolStore, PoolStore] = [await openStore(uri), await openStore(uri)];
      stores.push(...pair);
      return pair;
    },
  },
];

/** unwatched is `log` without watch(): no LISTEN connection starts follows behind the test's back. */
function unwatched(log: JournalStore): JournalStore {
  const copy = Object.create(log) as JournalStore;
  Object.defineProperty(copy, "watch", { value: undefined });
  return copy;
}

async function host(holder: string, store: PoolStore): Promise<PoolHost> {
  const h = await PoolHost.start({
    log: unwatched(store.log),
    kv: store,
    clock,
    settings: () => settings,
    holder,
    address: `http://${holder}.test:1`,
    leaseTtlMs: TTL,
    leaseNow,
    followPollMs: 0,
    leaseTimers: false,
    writer: { snapshot: { everyRecords: 1_000, everySeconds: 3_600 }, retentionMs: 7 * 86_400_000 },
    logger: silentLogger,
  });
  hosts.push(h);
  return h;
}

/** leaderAndStandby starts `a` (it takes the lease) and `b` (it follows) on two opens of one store. */
async function leaderAndStandby(backend: Backend) {
  const [storeA, storeB] = await backend.two();
  const a = await host("a", storeA);
  const b = await host("b", storeB);
  expect([a.role, b.role]).toEqual(["leader", "standby"]);
  const published: number[] = [];
  b.subscribe((r) => published.push(r.n));
  return { a, b, storeB, published };
}

const allocate = (sessionId: string): Command => ({
  kind: "allocate",
  sessionId,
  priority: "normal",
  model: "",
  estimatedTokens: 0,
});

/** statements records the SQL text of every query made on `pool` from now on. */
function statements(pool: pg.Pool): string[] {
  const seen: string[] = [];
  const query = pool.query.bind(pool) as (...args: unknown[]) => unknown;
  pool.query = ((...args: unknown[]) => {
    const first = args[0];
    seen.push(typeof first === "string" ? first : String((first as { text?: unknown })?.text));
    return query(...args);
  }) as typeof pool.query;
  return seen;
}

function sessions(h: PoolHost): string[] {
  return [...h.currentPool.state.sessions.keys()].sort();
}

describe("Replica on PostgreSQL: statements per catch-up", () => {
  const postgres = backends.find((b) => b.name === "postgres")!;

  async function counted() {
    const setup = await leaderAndStandby(postgres);
    const log = setup.storeB.log;
    if (!(log instanceof PostgresJournalStore)) throw new Error("expected the PostgreSQL journal store");
    return { ...setup, sql: statements(log.pool) };
  }

  it("follows an append, and finds nothing new, in one statement each", async () => {
    const { a, b, sql, published } = await counted();
    await a.submit(allocate("s1"));
    await b.currentReplica!.follow();
    // Was three: the page, an empty page to learn it was the last, and the bounds.
    expect(sql).toHaveLength(1);
    expect(sessions(b)).toEqual(["s1"]);
    expect(b.durableSeq).toBe(a.durableSeq);
    expect(published).toEqual([1]);

    sql.length = 0;
    await b.currentReplica!.follow();
    expect(sql).toHaveLength(1);

    sql.length = 0;
    for (const id of ["s2", "s3", "s4"]) await a.submit(allocate(id));
    await b.currentReplica!.follow();
    expect(sql).toHaveLength(1);
    expect(sessions(b)).toEqual(["s1", "s2", "s3", "s4"]);
    expect(published).toEqual([1, 2, 3, 4]);
  });

  it("catches up before a takeover in one statement", async () => {
    const { a, b, sql } = await counted();
    for (const id of ["s1", "s2"]) await a.submit(allocate(id));
    await b.currentReplica!.catchUp();
    // Was five: the three of a follow, then a page and the bounds again to see that nothing came meanwhile.
    expect(sql).toHaveLength(1);
    expect(sessions(b)).toEqual(["s1", "s2"]);
  });
});

describe.each(backends)("Replica ($name)", (backend) => {
  it("sees the oldest record kept move as the leader prunes", async () => {
    const { a, b } = await leaderAndStandby(backend);
    for (const id of ["s1", "s2", "s3", "s4"]) await a.submit(allocate(id));
    await b.currentReplica!.follow();
    expect(b.currentJournal.oldestRecord).toBe(1);
    await a.currentJournal.snapshot(a.currentPool.state);
    expect(await a.currentJournal.prune(Number.MAX_SAFE_INTEGER, 2)).toBe(2);
    // Nothing new to read; the same read still brings the journal's bounds.
    await b.currentReplica!.follow();
    expect(b.currentJournal.oldestRecord).toBe(3);
    expect(await b.currentJournal.read(2)).toBeUndefined();
    expect((await b.currentJournal.read(3))?.n).toBe(3);
  });

  it("loads again from the snapshot when the records it needs were pruned, skipping and repeating none", async () => {
    const { a, b, published } = await leaderAndStandby(backend);
    await a.submit(allocate("s1"));
    await b.currentReplica!.follow();
    for (const id of ["s2", "s3", "s4"]) await a.submit(allocate(id));
    // The standby has not read records 2 to 4 when the leader snapshots and prunes them.
    await a.currentJournal.snapshot(a.currentPool.state);
    expect(await a.currentJournal.prune(Number.MAX_SAFE_INTEGER, 100)).toBe(4);
    await a.submit(allocate("s5"));
    await b.currentReplica!.follow();
    expect(sessions(b)).toEqual(["s1", "s2", "s3", "s4", "s5"]);
    expect(b.currentPool.state.eventSeq).toBe(a.currentPool.state.eventSeq);
    expect(b.currentJournal.headRecord).toBe(5);
    // Pruned records cannot be announced; the rest are, once each and in order.
    expect(published).toEqual([1, 5]);

    // It goes on following from the reloaded journal.
    await a.submit(allocate("s6"));
    await b.currentReplica!.follow();
    expect(sessions(b)).toEqual(["s1", "s2", "s3", "s4", "s5", "s6"]);
    expect(published).toEqual([1, 5, 6]);
  });

  it("reads a backlog page by page, in order, and no empty page after a full last one", async () => {
    const { a, b } = await leaderAndStandby(backend);
    const ids = Array.from({ length: 10 }, (_, i) => `s${i + 1}`);
    for (const id of ids) await a.submit(allocate(id));
    const journal = b.currentJournal;
    const pages: { records: number[]; more: boolean }[] = [];
    for (;;) {
      const page = await journal.follow(5);
      if (page === "gap") throw new Error("unexpected gap");
      pages.push({ records: page.records.map((r) => r.n), more: page.more });
      if (!page.more) break;
    }
    expect(pages).toEqual([
      { records: [1, 2, 3, 4, 5], more: true },
      { records: [6, 7, 8, 9, 10], more: false },
    ]);
    await a.submit(allocate("s11"));
    expect(await journal.follow(5)).toMatchObject({ records: [{ n: 11 }], more: false });
    expect(await journal.follow(5)).toEqual({ records: [], more: false });
  });
});
