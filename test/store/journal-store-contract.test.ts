import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { FencedError, kvJournalStore, openStore } from "../../src/store/index.js";
import type { JournalStore, PoolStore } from "../../src/store/index.js";
import { freshPostgresUri, withClient } from "../support/postgres.js";

// The JournalStore contract, run on every backend openStore offers. Time is
// passed in (`now`), never waited for.

const T0 = Date.parse("2025-06-02T10:00:00Z");
const TTL = 10_000;

const stores: PoolStore[] = [];
const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const s of stores.splice(0)) await s.close().catch(() => undefined);
  for (const c of cleanups.splice(0)) await c();
});

async function track(store: Promise<PoolStore>): Promise<PoolStore> {
  const s = await store;
  stores.push(s);
  return s;
}

type RecordPage = Awaited<ReturnType<JournalStore["readPage"]>>;

/** Handles opens handles on one store: each a separate connection where the backend has connections. */
type Handles = () => Promise<JournalStore>;

interface Backend {
  name: string;
  /** durable: a store closed and opened again still has its records. */
  durable: boolean;
  /** fresh makes a new, empty store. */
  fresh(): Promise<Handles>;
}

const backends: Backend[] = [
  {
    name: "memory",
    durable: false,
    async fresh() {
      // kvJournalStore is atomic per KvStore object: every handle must share the one KvStore.
      const kv = await track(openStore("memory://"));
      return async () => kvJournalStore(kv);
    },
  },
  {
    name: "sqlite",
    durable: true,
    async fresh() {
      const dir = await mkdtemp(path.join(os.tmpdir(), "authpool-journal-"));
      cleanups.push(() => rm(dir, { recursive: true, force: true }));
      const uri = `sqlite://${path.join(dir, "pool.sqlite")}`;
      return async () => (await track(openStore(uri))).log;
    },
  },
  {
    name: "postgres",
    durable: true,
    async fresh() {
      const { uri, drop } = await freshPostgresUri();
      cleanups.push(drop);
      return async () => (await track(openStore(uri))).log;
    },
  },
];

/** record is a journal record's text whose last event is at `at` (kvJournalStore reads that time from it). */
function record(n: number, at: number): string {
  return JSON.stringify({ n, events: [{ seq: n, at }] });
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error("expected a rejection");
    },
    (e: unknown) => e,
  );
}

async function expectFenced(p: Promise<unknown>, reason: "epoch" | "exists"): Promise<void> {
  const e = await rejection(p);
  expect(e).toBeInstanceOf(FencedError);
  expect((e as FencedError).reason).toBe(reason);
}

function sha256(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

describe.each(backends)("JournalStore contract ($name)", ({ name, durable, fresh }) => {
  describe("lease", () => {
    it("starts with no lease, where epoch 0 may write and no other epoch may", async () => {
      const log = await (await fresh())();
      expect(await log.readLease()).toBeUndefined();
      await log.append(0, 1, T0, record(1, T0));
      expect(await log.readRecord(1)).toBe(record(1, T0));
      await expectFenced(log.append(1, 2, T0, record(2, T0)), "epoch");
      expect(await log.readRecord(2)).toBeUndefined();
    });

    it("gives the lease to one holder until it expires", async () => {
      const handles = await fresh();
      const [a, b] = [await handles(), await handles()];
      const lease = await a.acquireLease("a", "10.0.0.1:7000", T0, TTL);
      expect(lease).toEqual({ holder: "a", epoch: 1, expiresAt: T0 + TTL, address: "10.0.0.1:7000" });
      // Another handle, another holder: refused, and told who holds it.
      expect(await b.acquireLease("b", "10.0.0.2:7000", T0 + TTL - 1, TTL)).toEqual(lease);
      // The holder asking again gets its unexpired lease unchanged.
      expect(await a.acquireLease("a", "elsewhere", T0 + 5, TTL)).toEqual(lease);
      expect(await b.readLease()).toEqual(lease);
    });

    it("renews only for the holder at its epoch", async () => {
      const handles = await fresh();
      const [a, b] = [await handles(), await handles()];
      await a.acquireLease("a", "", T0, TTL);
      expect(await b.renewLease("b", 1, T0 + 1, TTL)).toBeUndefined();
      expect(await a.renewLease("a", 2, T0 + 1, TTL)).toBeUndefined();
      expect(await b.readLease()).toEqual({ holder: "a", epoch: 1, expiresAt: T0 + TTL, address: "" });
      const renewed = await a.renewLease("a", 1, T0 + TTL - 1, TTL);
      expect(renewed).toEqual({ holder: "a", epoch: 1, expiresAt: T0 + 2 * TTL - 1, address: "" });
      // The old expiry has passed but the renewed one has not.
      expect((await b.acquireLease("b", "", T0 + TTL, TTL)).holder).toBe("a");
      expect(await b.readLease()).toEqual(renewed);
    });

    it("is free from its expiry on, and a takeover bumps the epoch", async () => {
      const handles = await fresh();
      const [a, b] = [await handles(), await handles()];
      await a.acquireLease("a", "a:1", T0, TTL);
      expect((await b.acquireLease("b", "b:1", T0 + TTL - 1, TTL)).holder).toBe("a");
      const taken = await b.acquireLease("b", "b:1", T0 + TTL, TTL);
      expect(taken).toEqual({ holder: "b", epoch: 2, expiresAt: T0 + 2 * TTL, address: "b:1" });
      // The old holder can neither renew nor release it any more.
      expect(await a.renewLease("a", 1, T0 + TTL + 1, TTL)).toBeUndefined();
      await a.releaseLease("a", 1);
      expect(await a.readLease()).toEqual(taken);
      // Taking back an expired lease of one's own is a new epoch too.
      const back = await b.acquireLease("b", "b:1", T0 + 3 * TTL, TTL);
      expect(back).toEqual({ holder: "b", epoch: 3, expiresAt: T0 + 4 * TTL, address: "b:1" });
    });

    it("can be taken at once after a release", async () => {
      const handles = await fresh();
      const [a, b] = [await handles(), await handles()];
      await a.acquireLease("a", "", T0, TTL);
      await b.releaseLease("b", 1); // not the holder: nothing happens
      await a.releaseLease("a", 2); // not its epoch: nothing happens
      expect(await b.readLease()).toEqual({ holder: "a", epoch: 1, expiresAt: T0 + TTL, address: "" });
      await a.releaseLease("a", 1);
      expect(await b.readLease()).toEqual({ holder: "a", epoch: 1, expiresAt: 0, address: "" });
      expect(await b.acquireLease("b", "", T0 + 1, TTL)).toEqual({
        holder: "b",
        epoch: 2,
        expiresAt: T0 + 1 + TTL,
        address: "",
      });
    });

    it("goes to exactly one of ten handles acquiring at once", async () => {
      const handles = await fresh();
      const all = await Promise.all(Array.from({ length: 10 }, () => handles()));
      const leases = await Promise.all(all.map((h, i) => h.acquireLease(`h${i}`, `addr${i}`, T0, TTL)));
      const winner = leases[0]!;
      expect(winner.epoch).toBe(1);
      expect(
        leases.every(
          (l) => l.holder === winner.holder && l.epoch === 1 && l.address === `addr${winner.holder.slice(1)}`,
        ),
      ).toBe(true);
      expect(await all[3]!.readLease()).toEqual(winner);
    });
  });

  describe("fencing", () => {
    it("refuses append, snapshot and prune under an epoch taken over, and writes nothing", async () => {
      const handles = await fresh();
      const [a, b] = [await handles(), await handles()];
      await a.acquireLease("a", "", T0, TTL);
      // Record n is at T0 + n - 1.
      const kept = (...ns: number[]) => ns.map((n) => ({ n, data: record(n, T0 + n - 1) }));
      await a.append(1, 1, T0, record(1, T0));
      await a.append(1, 2, T0 + 1, record(2, T0 + 1));
      await a.writeSnapshot(1, 1, new Uint8Array([1]));
      await b.acquireLease("b", "", T0 + TTL, TTL);

      await expectFenced(a.append(1, 3, T0 + 2, record(3, T0 + 2)), "epoch");
      await expectFenced(a.writeSnapshot(1, 2, new Uint8Array([2])), "epoch");
      await expectFenced(a.prune(1, 2, T0 + 100, 10), "epoch");
      expect(await b.readRecord(3)).toBeUndefined();
      expect(await b.readPage(0, 10)).toEqual({ records: kept(1, 2), first: 1, last: 2 });
      expect(await b.readSnapshot()).toEqual({ record: 1, data: new Uint8Array([1]) });

      // The new holder writes under its epoch.
      await b.append(2, 3, T0 + 2, record(3, T0 + 2));
      await b.writeSnapshot(2, 3, new Uint8Array([3]));
      expect(await b.prune(2, 1, T0 + 100, 10)).toBe(1);
      expect(await a.readPage(0, 10)).toEqual({ records: kept(2, 3), first: 2, last: 3 });
      expect(await a.readSnapshot()).toEqual({ record: 3, data: new Uint8Array([3]) });
    });

    it("refuses a later epoch than the lease's as well as an earlier one", async () => {
      const log = await (await fresh())();
      await log.acquireLease("a", "", T0, TTL);
      await expectFenced(log.append(2, 1, T0, record(1, T0)), "epoch");
      await expectFenced(log.append(0, 1, T0, record(1, T0)), "epoch");
      await expectFenced(log.writeSnapshot(2, 1, new Uint8Array([1])), "epoch");
      await expectFenced(log.prune(2, 1, T0, 1), "epoch");
      expect(await log.readPage(0, 10)).toEqual({ records: [], first: 0, last: 0 });
      expect(await log.readSnapshot()).toBeUndefined();
    });

    it("refuses to append a record that exists, keeping the first", async () => {
      const log = await (await fresh())();
      await log.acquireLease("a", "", T0, TTL);
      await log.append(1, 1, T0, record(1, T0));
      await expectFenced(log.append(1, 1, T0 + 5, "other"), "exists");
      expect(await log.readRecord(1)).toBe(record(1, T0));
      expect(await log.readPage(0, 10)).toEqual({ records: [{ n: 1, data: record(1, T0) }], first: 1, last: 1 });
    });

    it("lets exactly one of 20 concurrent appends of one record win, from two handles", async () => {
      const handles = await fresh();
      const [a, b] = [await handles(), await handles()];
      await a.acquireLease("a", "", T0, TTL);
      await a.append(1, 1, T0, record(1, T0));
      const attempts = Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).append(1, 2, T0 + 1, `attempt ${i}`));
      const results = await Promise.allSettled(attempts);
      const won = results.flatMap((r, i) => (r.status === "fulfilled" ? [i] : []));
      expect(won).toHaveLength(1);
      for (const r of results) {
        if (r.status === "rejected") {
          expect(r.reason).toBeInstanceOf(FencedError);
          expect((r.reason as FencedError).reason).toBe("exists");
        }
      }
      expect(await b.readRecord(2)).toBe(`attempt ${won[0]}`);
      expect(await a.readPage(1, 10)).toEqual({ records: [{ n: 2, data: `attempt ${won[0]}` }], first: 1, last: 2 });
    });
  });

  describe("records", () => {
    it("reads records in order, by page with the bounds, and one by one", async () => {
      const handles = await fresh();
      const [a, b] = [await handles(), await handles()];
      const none = { records: [], first: 0, last: 0 };
      expect(await b.readPage(0, 10)).toEqual(none);
      expect(await b.readPage(0, 0)).toEqual(none);
      expect(await b.readPage(3, 10)).toEqual(none);
      await a.acquireLease("a", "", T0, TTL);
      // Texts a store must keep as they are: non-ASCII, quotes, escapes, a newline, and the empty string.
      const texts = [record(1, T0), 'héllo 日本語 🎉 "quoted" \\ \n', record(3, T0 + 2), "", record(5, T0 + 4)];
      for (const [i, text] of texts.entries()) await a.append(1, i + 1, T0 + i, text);
      const all = texts.map((data, i) => ({ n: i + 1, data }));
      // Another handle (connection) sees them all.
      const page = (records: typeof all) => ({ records, first: 1, last: 5 });
      expect(await b.readPage(0, 10)).toEqual(page(all));
      expect(await b.readPage(0, 2)).toEqual(page(all.slice(0, 2)));
      expect(await b.readPage(2, 10)).toEqual(page(all.slice(2)));
      expect(await b.readPage(2, 1)).toEqual(page(all.slice(2, 3)));
      // A full page that reaches the newest record says so: no empty page needed to learn it.
      expect(await b.readPage(3, 2)).toEqual(page(all.slice(3)));
      expect(await b.readPage(5, 10)).toEqual(page([]));
      expect(await b.readPage(99, 10)).toEqual(page([]));
      // A limit of 0 (or less) reads the bounds alone.
      expect(await b.readPage(0, 0)).toEqual(page([]));
      expect(await b.readPage(0, -1)).toEqual(page([]));
      expect(await b.readRecord(2)).toBe(texts[1]);
      expect(await b.readRecord(4)).toBe("");
      expect(await b.readRecord(6)).toBeUndefined();
      expect(await b.readRecord(0)).toBeUndefined();
    });

    it("reads a page in record order, whatever the order of the appends", async () => {
      const handles = await fresh();
      const [a, b] = [await handles(), await handles()];
      await a.acquireLease("a", "", T0, TTL);
      const all = Array.from({ length: 30 }, (_, i) => ({ n: i + 1, data: record(i + 1, T0 + i) }));
      for (const { n, data } of [...all].reverse()) await a.append(1, n, T0 + n, data);
      expect(await b.readPage(0, 100)).toEqual({ records: all, first: 1, last: 30 });
      expect(await b.readPage(10, 5)).toEqual({ records: all.slice(10, 15), first: 1, last: 30 });
    });

    it("reads a page with the bounds at the time", async () => {
      const handles = await fresh();
      const [a, b] = [await handles(), await handles()];
      await a.acquireLease("a", "", T0, TTL);
      const stored = [1, 2, 3, 4].map((n) => ({ n, data: record(n, T0 + n) }));
      for (const { n, data } of stored) await a.append(1, n, T0 + n, data);
      expect(await b.readPage(0, 2)).toEqual({ records: stored.slice(0, 2), first: 1, last: 4 });
      await a.append(1, 5, T0 + 5, record(5, T0 + 5));
      // The bounds move with the journal: the same page, and the newest record since.
      expect(await b.readPage(0, 2)).toEqual({ records: stored.slice(0, 2), first: 1, last: 5 });
      expect(await a.prune(1, 2, T0 + 100, 10)).toBe(2);
      // Behind the oldest record kept: the page starts past the hole, and `first` shows it.
      expect(await b.readPage(0, 10)).toEqual({
        records: [...stored.slice(2), { n: 5, data: record(5, T0 + 5) }],
        first: 3,
        last: 5,
      });
      expect(await b.readPage(1, 1)).toEqual({ records: stored.slice(2, 3), first: 3, last: 5 });
      expect(await a.prune(1, 5, T0 + 100, 10)).toBe(3);
      expect(await b.readPage(1, 10)).toEqual({ records: [], first: 0, last: 0 });
    });

    it("never reads a page its bounds do not cover, while appends go on", async () => {
      const handles = await fresh();
      const [a, b] = [await handles(), await handles()];
      await a.acquireLease("a", "", T0, TTL);
      const pages: { after: number; page: RecordPage }[] = [];
      const appends = (async () => {
        for (let n = 1; n <= 20; n++) await a.append(1, n, T0 + n, record(n, T0 + n));
      })();
      const reads = (async () => {
        for (let i = 0; i < 20; i++) {
          const after = i % 4;
          pages.push({ after, page: await b.readPage(after, 3) });
        }
      })();
      await Promise.all([appends, reads]);
      for (const { after, page } of pages) {
        const ns = page.records.map((r) => r.n);
        // In order and without a hole, from the first record after `after`.
        expect(ns).toEqual(ns.map((_, i) => after + 1 + i));
        if (ns.length > 0) {
          expect(page.first).toBe(1);
          expect(page.last).toBeGreaterThanOrEqual(ns[ns.length - 1]!);
        }
        // A short page held every record past `after` at the time: one statement (the
        // in-process store reads its bounds after its page, so it may see a newer record).
        if (ns.length < 3 && name !== "memory") {
          if (ns.length > 0) expect(page.last).toBe(ns[ns.length - 1]);
          else expect(page.last).toBeLessThanOrEqual(after);
        }
      }
      expect(await b.readPage(0, 100)).toEqual({
        records: Array.from({ length: 20 }, (_, i) => ({ n: i + 1, data: record(i + 1, T0 + i + 1) })),
        first: 1,
        last: 20,
      });
    });

    it.skipIf(!durable)("keeps records, lease and snapshot across close and reopen", async () => {
      const handles = await fresh();
      const a = await handles();
      await a.acquireLease("a", "addr", T0, TTL);
      await a.append(1, 1, T0, record(1, T0));
      await a.writeSnapshot(1, 1, new Uint8Array([7, 8]));
      await a.close();
      const again = await handles();
      expect(await again.readLease()).toEqual({ holder: "a", epoch: 1, expiresAt: T0 + TTL, address: "addr" });
      expect(await again.readPage(0, 10)).toEqual({ records: [{ n: 1, data: record(1, T0) }], first: 1, last: 1 });
      expect(await again.readSnapshot()).toEqual({ record: 1, data: new Uint8Array([7, 8]) });
    });

    it("opens five handles on a new store at once", async () => {
      const handles = await fresh();
      const all = await Promise.all(Array.from({ length: 5 }, () => handles()));
      await all[0]!.acquireLease("a", "", T0, TTL);
      await all[0]!.append(1, 1, T0, record(1, T0));
      for (const h of all) {
        expect(await h.readPage(0, 10)).toEqual({ records: [{ n: 1, data: record(1, T0) }], first: 1, last: 1 });
      }
    });
  });

  describe("snapshot", () => {
    it("stores the state as of a record and never goes back to an earlier one", async () => {
      const handles = await fresh();
      const [a, b] = [await handles(), await handles()];
      expect(await b.readSnapshot()).toBeUndefined();
      await a.acquireLease("a", "", T0, TTL);
      await a.writeSnapshot(1, 3, new Uint8Array([3, 3, 3]));
      expect(await b.readSnapshot()).toEqual({ record: 3, data: new Uint8Array([3, 3, 3]) });
      await a.writeSnapshot(1, 2, new Uint8Array([2])); // earlier: a no-op
      expect(await b.readSnapshot()).toEqual({ record: 3, data: new Uint8Array([3, 3, 3]) });
      await a.writeSnapshot(1, 3, new Uint8Array([4])); // the same record: replaced
      expect(await b.readSnapshot()).toEqual({ record: 3, data: new Uint8Array([4]) });
      await a.writeSnapshot(1, 9, new Uint8Array(0));
      expect(await b.readSnapshot()).toEqual({ record: 9, data: new Uint8Array(0) });
    });

    it("stores a snapshot from a view into a larger buffer as just the view's bytes", async () => {
      const log = await (await fresh())();
      await log.acquireLease("a", "", T0, TTL);
      const backing = new Uint8Array([9, 9, 1, 2, 3, 9, 9]);
      await log.writeSnapshot(1, 1, backing.subarray(2, 5));
      const back = await log.readSnapshot();
      expect(back?.data).toEqual(new Uint8Array([1, 2, 3]));
      expect(back?.data).toBeInstanceOf(Uint8Array);
    });

    it("round-trips a 20 MB snapshot", async () => {
      const handles = await fresh();
      const [a, b] = [await handles(), await handles()];
      await a.acquireLease("a", "", T0, TTL);
      const big = new Uint8Array(randomBytes(20 * 1024 * 1024));
      await a.writeSnapshot(1, 100, big);
      const back = await b.readSnapshot();
      expect(back?.record).toBe(100);
      expect(back?.data.byteLength).toBe(big.byteLength);
      expect(sha256(back!.data)).toBe(sha256(big));
    });
  });

  describe("prune", () => {
    async function sixRecords(): Promise<{ a: JournalStore; b: JournalStore }> {
      const handles = await fresh();
      const [a, b] = [await handles(), await handles()];
      await a.acquireLease("a", "", T0, TTL);
      for (let n = 1; n <= 6; n++) await a.append(1, n, T0 + n, record(n, T0 + n));
      return { a, b };
    }
    /** kept: the records sixRecords wrote, by number. */
    const kept = (...ns: number[]) => ns.map((n) => ({ n, data: record(n, T0 + n) }));

    it("deletes at most max of the oldest records, up to upTo", async () => {
      const { a, b } = await sixRecords();
      expect(await a.prune(1, 4, T0 + 100, 2)).toBe(2);
      expect(await b.readRecord(2)).toBeUndefined();
      expect(await b.readPage(0, 10)).toEqual({ records: kept(3, 4, 5, 6), first: 3, last: 6 });
      expect(await a.prune(1, 4, T0 + 100, 10)).toBe(2);
      expect(await b.readPage(0, 10)).toEqual({ records: kept(5, 6), first: 5, last: 6 });
      expect(await a.prune(1, 4, T0 + 100, 10)).toBe(0);
      expect(await a.prune(1, 6, T0 + 100, 0)).toBe(0);
      expect(await b.readPage(0, 10)).toEqual({ records: kept(5, 6), first: 5, last: 6 });
    });

    it("keeps records whose time is not before `before`", async () => {
      const { a, b } = await sixRecords();
      // Record 3 is at T0 + 3: not before T0 + 3.
      expect(await a.prune(1, 6, T0 + 3, 10)).toBe(2);
      expect(await b.readPage(0, 10)).toEqual({ records: kept(3, 4, 5, 6), first: 3, last: 6 });
      expect(await a.prune(1, 6, T0 + 3, 10)).toBe(0);
    });

    it("stops at the first record that is too new", async () => {
      const log = await (await fresh())();
      await log.acquireLease("a", "", T0, TTL);
      const times = [T0 + 10, T0 + 50, T0 + 20, T0 + 30];
      for (const [i, at] of times.entries()) await log.append(1, i + 1, at, record(i + 1, at));
      // Record 3 is old enough, but record 2 before it is not: only record 1 goes.
      expect(await log.prune(1, 4, T0 + 40, 10)).toBe(1);
      expect(await log.readPage(0, 0)).toEqual({ records: [], first: 2, last: 4 });
    });

    it("leaves appends going on after it", async () => {
      const { a, b } = await sixRecords();
      expect(await a.prune(1, 6, T0 + 100, 10)).toBe(6);
      expect(await b.readPage(0, 10)).toEqual({ records: [], first: 0, last: 0 });
      await a.append(1, 7, T0 + 7, record(7, T0 + 7));
      expect(await b.readPage(0, 10)).toEqual({ records: kept(7), first: 7, last: 7 });
    });
  });

  it.runIf(name === "postgres")("calls a watcher soon after another handle appends", async () => {
    const handles = await fresh();
    const [a, b] = [await handles(), await handles()];
    expect(a.watch).toBeTypeOf("function");
    let heard = 0;
    let stoppedHeard = 0;
    const stopThrowing = a.watch!(() => {
      throw new Error("a broken listener");
    });
    const stop = a.watch!(() => heard++);
    const stopEarly = a.watch!(() => stoppedHeard++);
    // Each is called once the LISTEN is in place.
    await vi.waitFor(() => expect(heard).toBe(1), { timeout: 5000, interval: 10 });
    expect(stoppedHeard).toBe(1);
    stopEarly();
    await b.acquireLease("b", "", T0, TTL);
    await b.append(1, 1, T0, record(1, T0));
    await vi.waitFor(() => expect(heard).toBe(2), { timeout: 5000, interval: 10 });
    // All listeners hear one notification together: the stopped one did not.
    expect(stoppedHeard).toBe(1);
    stop();
    stopThrowing();
  });
});

describe("PostgresJournalStore", () => {
  async function freshStore(): Promise<{ uri: string; schema: string }> {
    const fresh = await freshPostgresUri();
    cleanups.push(fresh.drop);
    // application_name passes through to pg: it lets the test find the store's own connections.
    return { uri: `${fresh.uri}&application_name=${fresh.schema}`, schema: fresh.schema };
  }

  it("makes an append under the old epoch wait for a takeover in flight, then refuses it", async () => {
    const { uri, schema } = await freshStore();
    const a = (await track(openStore(uri))).log;
    await a.acquireLease("a", "", T0, TTL);
    await withClient(async (taker) => {
      await taker.query("BEGIN");
      await taker.query(`UPDATE ${schema}.lease SET holder = 'b', epoch = 2, expires_at = $1 WHERE id = 1`, [
        T0 + 2 * TTL,
      ]);
      const append = a.append(1, 1, T0, record(1, T0)).then(
        () => "appended",
        (e: unknown) => e,
      );
      // The append must be waiting for the lease row, not racing past it.
      await vi.waitFor(
        async () => {
          const waiting = await taker.query(
            "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'",
            [schema],
          );
          expect(waiting.rows[0].n).toBe(1);
        },
        { timeout: 5000, interval: 20 },
      );
      await taker.query("COMMIT");
      const outcome = await append;
      expect(outcome).toBeInstanceOf(FencedError);
      expect((outcome as FencedError).reason).toBe("epoch");
    });
    expect(await a.readRecord(1)).toBeUndefined();
  });

  it("keeps watching after its LISTEN connection is killed", async () => {
    const { uri, schema } = await freshStore();
    const [a, b] = [(await track(openStore(uri))).log, (await track(openStore(uri))).log];
    let heard = 0;
    const stop = a.watch!(() => heard++);
    await vi.waitFor(() => expect(heard).toBe(1), { timeout: 5000, interval: 10 });
    const killed = await withClient((c) =>
      c.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND query LIKE 'LISTEN%'",
        [schema],
      ),
    );
    expect(killed.rowCount).toBe(1);
    // Called again once it listens again (appends in between were not seen) ...
    await vi.waitFor(() => expect(heard).toBe(2), { timeout: 5000, interval: 10 });
    // ... and it hears appends again.
    await b.append(0, 1, T0, record(1, T0));
    await vi.waitFor(() => expect(heard).toBe(3), { timeout: 5000, interval: 10 });
    stop();
  });

  it("stores a snapshot deflated and reads it back as written", async () => {
    const { uri, schema } = await freshStore();
    const log = (await track(openStore(uri))).log;
    await log.acquireLease("a", "", T0, TTL);
    const data = new Uint8Array(1 << 20).map((_, i) => i % 251);
    await log.writeSnapshot(1, 7, data);
    const stored = await withClient((c) =>
      c.query(`SELECT octet_length(data)::int AS n, substring(data from 1 for 4) AS head FROM ${schema}.snapshot`),
    );
    expect(stored.rows[0].n).toBeLessThan(data.length / 4);
    expect(Buffer.from(stored.rows[0].head).toString("latin1")).toBe("APz1");
    expect(await log.readSnapshot()).toEqual({ record: 7, data });
  });

  it("reads a snapshot stored before snapshots were deflated as it is", async () => {
    const { uri, schema } = await freshStore();
    const log = (await track(openStore(uri))).log;
    const data = Buffer.from("APst plain bytes");
    await withClient((c) =>
      c.query(`INSERT INTO ${schema}.snapshot (id, record, epoch, data) VALUES (1, 3, 0, $1)`, [data]),
    );
    expect(await log.readSnapshot()).toEqual({ record: 3, data: new Uint8Array(data) });
  });

  it("survives its idle connections being killed", async () => {
    const { uri, schema } = await freshStore();
    const store = await track(openStore(uri));
    await Promise.all([store.log.readPage(0, 0), store.get("k"), store.log.readLease()]);
    const killed = await withClient((c) =>
      c.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1", [schema]),
    );
    expect(killed.rowCount).toBeGreaterThan(0);
    // The pool reports a dead idle connection as an 'error' event; unhandled, it would end the process.
    await vi.waitFor(async () => expect(await store.log.readPage(0, 0)).toEqual({ records: [], first: 0, last: 0 }), {
      timeout: 5000,
      interval: 20,
    });
    await store.set("k", "v");
    expect(await store.get("k")).toBe("v");
  });
});
