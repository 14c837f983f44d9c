import { afterEach, describe, expect, it } from "vitest";
import type { Command, PoolEvent } from "../../src/domain/index.js";
import { silentLogger } from "../../src/runtime/logger.js";
import { NotLeaderError, PoolHost } from "../../src/runtime/pool-host.js";
import { WriterUnavailableError } from "../../src/runtime/pool-writer.js";
import { type PoolStore, openStore } from "../../src/store/index.js";
import { ManualClock } from "../support/manual-clock.js";
import { poolSettings } from "../support/settings.js";

/**
 * Two instances on one store, in one process, with the lease's time and the
 * journal's following driven by hand: one leads, the other follows and
 * refuses to write; a takeover after the lease lapses carries the state on;
 * a deposed leader that still believes it leads is fenced by the store and
 * steps down; a graceful close hands the lease over at once.
 */

const TTL = 5_000;
const settings = poolSettings(["a", "b"]);
const clock = new ManualClock("2026-11-23T10:00:00Z");
const hosts: PoolHost[] = [];
let store: PoolStore;

afterEach(async () => {
  for (const h of hosts.splice(0)) await h.close().catch(() => undefined);
  await store?.close();
});

class LeaseTime {
  t = 1_000_000;
  now = () => this.t;
}

async function host(holder: string, time: LeaseTime, log = store.log): Promise<PoolHost> {
  const h = await PoolHost.start({
    log,
    kv: store,
    clock,
    settings: () => settings,
    holder,
    address: `http://${holder}.test:1`,
    leaseTtlMs: TTL,
    leaseNow: time.now,
    followPollMs: 0,
    leaseTimers: false,
    writer: { snapshot: { everyRecords: 1_000, everySeconds: 3_600 }, retentionMs: 7 * 86_400_000 },
    logger: silentLogger,
  });
  hosts.push(h);
  return h;
}

const allocate = (sessionId: string): Command => ({
  kind: "allocate",
  sessionId,
  priority: "normal",
  model: "",
  estimatedTokens: 0,
});

async function allEvents(): Promise<PoolEvent[]> {
  const out: PoolEvent[] = [];
  for (const r of (await store.log.readPage(0, 10_000)).records)
    out.push(...(JSON.parse(r.data) as { events: PoolEvent[] }).events);
  return out;
}

describe("PoolHost", () => {
  it("one leads, the other follows, serves reads and refuses writes", async () => {
    store = await openStore("memory://");
    const time = new LeaseTime();
    const a = await host("a", time);
    const b = await host("b", time);
    expect(a.role).toBe("leader");
    expect(b.role).toBe("standby");
    expect(b.lease).toMatchObject({ holder: "a", epoch: 1, address: "http://a.test:1" });

    const seen: number[] = [];
    b.subscribe((r) => seen.push(r.n));
    expect((await a.submit(allocate("s1"))).kind).toBe("granted");
    await b.currentReplica!.follow();
    expect(b.currentPool.state.sessions.has("s1")).toBe(true);
    expect(b.durableSeq).toBe(a.durableSeq);
    expect(seen).toEqual([1]);
    const status = await b.submit({ kind: "status", includeSessions: true });
    expect(status.sessions.map((s) => s.id)).toEqual(["s1"]);
    await expect(b.submit(allocate("s2"))).rejects.toBeInstanceOf(NotLeaderError);
  });

  it("takes over when the lease lapses, and the deposed leader is fenced and steps down", async () => {
    store = await openStore("memory://");
    // a's clock stands still: it believes it still leads (a process paused
    // between its lease check and its write); b's runs on.
    const timeA = new LeaseTime();
    const timeB = new LeaseTime();
    const a = await host("a", timeA);
    const b = await host("b", timeB);
    await a.submit(allocate("s1"));

    timeB.t += TTL + 1;
    await b.keeper.tick();
    await b.keeper.settled();
    expect(b.role).toBe("leader");
    expect(b.lease?.epoch).toBe(2);
    expect(b.currentPool.state.sessions.has("s1")).toBe(true);
    expect((await b.submit(allocate("s2"))).kind).toBe("granted");

    // a still thinks it leads: the store refuses its write, the caller is told UNAVAILABLE.
    expect(a.role).toBe("leader");
    const stale = a.submit(allocate("s3"));
    await expect(stale).rejects.toBeInstanceOf(WriterUnavailableError);
    await expect(stale).rejects.toThrow(/no longer writes the pool store/);
    await a.keeper.settled();
    expect(a.role).toBe("standby");
    await a.currentReplica!.follow();
    expect([...a.currentPool.state.sessions.keys()].sort()).toEqual(["s1", "s2"]);

    // The store holds each sequence number once, and no trace of s3.
    const events = await allEvents();
    const seqs = events.map((e) => e.seq);
    expect(new Set(seqs).size).toBe(seqs.length);
    expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
    expect(events.some((e) => "sessionId" in e && e.sessionId === "s3")).toBe(false);
  });

  it("fences a deposed leader by epoch even before its successor wrote anything", async () => {
    store = await openStore("memory://");
    const timeA = new LeaseTime();
    const timeB = new LeaseTime();
    const a = await host("a", timeA);
    const b = await host("b", timeB);
    await a.submit(allocate("s1"));
    timeB.t += TTL + 1;
    await b.keeper.tick();
    await b.keeper.settled();
    expect(b.role).toBe("leader");
    // Record 2 does not exist yet: only the epoch tells the store that a no longer writes.
    await expect(a.submit(allocate("s2"))).rejects.toBeInstanceOf(WriterUnavailableError);
    expect((await store.log.readPage(0, 0)).last).toBe(1);
    expect((await b.submit(allocate("s3"))).kind).toBe("granted");
    expect([...b.currentPool.state.sessions.keys()].sort()).toEqual(["s1", "s3"]);
  });

  it("a standby that cannot read the store is unhealthy until it can again", async () => {
    store = await openStore("memory://");
    const time = new LeaseTime();
    await host("a", time);
    let down = false;
    const log = store.log;
    const flaky = Object.create(log) as typeof log;
    flaky.readPage = (after, limit) =>
      down ? Promise.reject(new Error("connection refused")) : log.readPage(after, limit);
    flaky.acquireLease = (...args) =>
      down ? Promise.reject(new Error("connection refused")) : log.acquireLease(...args);
    const b = await host("b", time, flaky);
    expect(b.healthy).toBe(true);
    down = true;
    await b.currentReplica!.follow();
    expect(b.healthy).toBe(false);
    await b.keeper.tick();
    expect(b.keeper.storeError).toMatch(/connection refused/);
    down = false;
    await b.currentReplica!.follow();
    await b.keeper.tick();
    expect(b.healthy).toBe(true);
  });

  it("hands the lease over at once on close", async () => {
    store = await openStore("memory://");
    const time = new LeaseTime();
    const a = await host("a", time);
    const b = await host("b", time);
    await a.submit(allocate("s1"));
    hosts.splice(hosts.indexOf(a), 1);
    await a.close();
    // No time passed: the lease was released, not left to expire.
    await b.keeper.tick();
    await b.keeper.settled();
    expect(b.role).toBe("leader");
    expect(b.currentPool.state.sessions.has("s1")).toBe(true);
    expect((await b.submit(allocate("s2"))).kind).toBe("granted");
  });

  it("a leader whose renewal is overdue stops writing before anyone may take over", async () => {
    store = await openStore("memory://");
    const time = new LeaseTime();
    const a = await host("a", time);
    time.t += TTL; // the deadline, with no renewal in between
    await expect(a.submit(allocate("s1"))).rejects.toBeInstanceOf(WriterUnavailableError);
    expect(await allEvents()).toEqual([]);
  });
});
