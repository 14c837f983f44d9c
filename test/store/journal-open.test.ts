import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { HOUR_MS, Pool } from "../../src/domain/index.js";
import type { Command, PoolState } from "../../src/domain/index.js";
import { Journal, openStore } from "../../src/store/index.js";
import type { JournalStore, PoolStore, StoredSnapshot } from "../../src/store/index.js";
import { freshPostgresUri } from "../support/postgres.js";
import { poolSettings } from "../support/settings.js";
import { TempDirs } from "./store-helpers.js";

// Journal.open where the records after the snapshot it read do not start at
// the snapshot's record + 1, on the two shared backends. Journal.open reads
// pages of 1,000 records: the journals here have exactly that many past the
// gap, since a full page was where it read the same page forever.

const PAGE = 1_000;
const ids = ["a", "b", "c"];
const settings = poolSettings(ids);
const T0 = Date.parse("2025-06-02T10:00:00Z");
/** Far enough ahead that prune finds every record old enough. */
const LATER = T0 + 100_000 * HOUR_MS;

const temp = new TempDirs();
const stores: PoolStore[] = [];
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close().catch(() => undefined);
  for (const c of cleanups.splice(0)) await c();
  await temp.cleanup();
});

const backends = [
  {
    name: "sqlite",
    // NORMAL: a thousand appends without a thousand fsyncs; the reads are what is tested.
    uri: async () =>
      `sqlite://${path.join(await temp.make("authpool-journal-open-"), "pool.sqlite")}?synchronous=normal`,
  },
  {
    name: "postgres",
    uri: async () => {
      const fresh = await freshPostgresUri();
      cleanups.push(fresh.drop);
      return fresh.uri;
    },
  },
];

interface Writer {
  store: PoolStore;
  journal: Journal;
  pool: Pool;
  epoch: number;
}

async function track(store: Promise<PoolStore>): Promise<PoolStore> {
  const s = await store;
  stores.push(s);
  return s;
}

async function writer(uri: string): Promise<Writer> {
  const store = await track(openStore(uri));
  const { epoch } = await store.log.acquireLease("writer", "", Date.now(), HOUR_MS);
  const { journal, state } = await Journal.open(store.log, ids, { epoch });
  return { store, journal, pool: new Pool(state, settings), epoch };
}

/** busy appends records up to number `to`, each a session that starts and ends (record i at T0 + i minutes). */
async function busy(w: Writer, to: number): Promise<void> {
  for (let i = w.journal.headRecord + 1; i <= to; i++) {
    const now = T0 + i * 60_000;
    const commands: Command[] = [
      { kind: "allocate", sessionId: `s${i}`, priority: "normal", model: "", estimatedTokens: 0 },
      { kind: "release", sessionId: `s${i}` },
    ];
    await w.journal.append(commands.flatMap((c) => w.pool.run(c, now).events));
  }
}

/**
 * Reads counts a reader's reads of the store. It stops a Journal.open that
 * reads the same page over and over (the bug) after a few pages instead of
 * letting it spin until the test times out, and it can hand out a snapshot
 * read earlier: what a standby read just before the leader wrote a newer
 * one and pruned.
 */
class Reads {
  pages = 0;
  snapshots = 0;
  readonly log: JournalStore;

  constructor(inner: JournalStore, stale?: StoredSnapshot) {
    const log = Object.create(inner) as JournalStore;
    log.readPage = (after, limit) => {
      if (++this.pages > 10) return Promise.reject(new Error(`readPage called ${this.pages} times: looping`));
      return inner.readPage(after, limit);
    };
    log.readSnapshot = () =>
      ++this.snapshots === 1 && stale !== undefined ? Promise.resolve(stale) : inner.readSnapshot();
    this.log = log;
  }
}

function expectSameState(actual: PoolState, expected: PoolState): void {
  expect(actual.eventSeq).toBe(expected.eventSeq);
  expect(actual.sessions).toEqual(expected.sessions);
  expect(actual).toEqual(expected);
}

describe.each(backends)("Journal.open after a gap ($name)", ({ uri }) => {
  it("reads a full page that reaches the newest record once", async () => {
    const at = await uri();
    const w = await writer(at);
    await busy(w, 5);
    await w.journal.snapshot(w.pool.state);
    await busy(w, 5 + PAGE);

    const reads = new Reads((await track(openStore(at))).log);
    const opened = await Journal.open(reads.log, ids);
    expect(reads.pages).toBe(1);
    expect(opened.replayed).toBe(PAGE);
    expect(opened.journal.headRecord).toBe(5 + PAGE);
    expectSameState(opened.state, w.pool.state);
  });

  // A standby read snapshot 5; the leader then snapshotted record 10 and
  // pruned up to it, so the records left start at 11.
  it.each([
    { case: "a full page", tail: PAGE },
    { case: "a short page", tail: 3 },
  ])(
    "loads again from the newer snapshot when the records after the one it read were pruned meanwhile: $case",
    async ({ tail }) => {
      const at = await uri();
      const w = await writer(at);
      await busy(w, 5);
      await w.journal.snapshot(w.pool.state);
      const stale = await w.store.log.readSnapshot();
      await busy(w, 10);
      await w.journal.snapshot(w.pool.state);
      await busy(w, 10 + tail);
      expect(await w.journal.prune(LATER, 100)).toBe(10);

      const reads = new Reads((await track(openStore(at))).log, stale);
      const opened = await Journal.open(reads.log, ids);
      expect(opened.journal.headRecord).toBe(10 + tail);
      expect(opened.journal.oldestRecord).toBe(11);
      expect(opened.journal.recordsSinceSnapshot).toBe(tail);
      expect(opened.replayed).toBe(tail);
      expectSameState(opened.state, w.pool.state);
      // The page past the gap, then the one from the newer snapshot.
      expect(reads.snapshots).toBe(2);
      expect(reads.pages).toBe(2);
    },
  );

  // Journal.prune never deletes past its snapshot; the store's own prune
  // does what it is told, which makes a journal with records missing.
  it.each([
    { case: "a full page", tail: PAGE },
    { case: "a short page", tail: 3 },
  ])("refuses to open a journal whose records after the snapshot are missing: $case", async ({ tail }) => {
    const at = await uri();
    const w = await writer(at);
    await busy(w, 5);
    await w.journal.snapshot(w.pool.state);
    await busy(w, 10 + tail);
    expect(await w.store.log.prune(w.epoch, 10, LATER, 100)).toBe(10);

    const reads = new Reads((await track(openStore(at))).log);
    await expect(Journal.open(reads.log, ids)).rejects.toThrow(/records 6\.\.10 .*missing/);
    // A writer would have appended record 6 into the hole: it refuses as well.
    const store = await track(openStore(at));
    await expect(Journal.open(store.log, ids, { epoch: w.epoch })).rejects.toThrow(/missing/);
    expect(await store.log.readRecord(6)).toBeUndefined();
  });
});
