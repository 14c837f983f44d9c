import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { Command, StatusResult } from "../../src/domain/index.js";
import { HOUR_MS, MINUTE_MS } from "../../src/domain/index.js";
import { PoolWriter, WriterUnavailableError } from "../../src/runtime/pool-writer.js";
import type { PoolWriterOptions } from "../../src/runtime/pool-writer.js";
import { Journal, kvJournalStore, openStore, recordKey } from "../../src/store/index.js";
import type { JournalRecord, KvStore } from "../../src/store/index.js";
import { ManualClock } from "../support/manual-clock.js";
import { poolSettings } from "../support/settings.js";
import { FlakyStore, loader, TempDirs } from "../store/store-helpers.js";

const ids = ["a", "b", "c"];
const settings = poolSettings(ids);

const temp = new TempDirs();
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
  await temp.cleanup();
});

const allocate = (sessionId: string) =>
  ({ kind: "allocate", sessionId, priority: "normal", model: "", estimatedTokens: 0 }) satisfies Command;
const status = { kind: "status", includeSessions: true } satisfies Command;

interface Harness {
  store: FlakyStore;
  writer: PoolWriter;
  clock: ManualClock;
  errors: unknown[];
}

async function sqliteStore(): Promise<KvStore> {
  const dir = await temp.make("authpool-writer-");
  const store = await openStore(`sqlite://${path.join(dir, "pool.sqlite")}`);
  cleanups.push(() => store.close());
  return store;
}

async function start(
  options: { inner?: KvStore; clock?: ManualClock } & Partial<
    Omit<PoolWriterOptions, "load" | "clock" | "onError">
  > = {},
): Promise<Harness> {
  const store = new FlakyStore(options.inner ?? (await sqliteStore()));
  const clock = options.clock ?? new ManualClock("2025-06-02T10:00:00Z");
  const errors: unknown[] = [];
  const writer = await PoolWriter.open({
    clock,
    load: loader(store, settings),
    snapshot: options.snapshot ?? { everyRecords: 10_000, everySeconds: 24 * 3600 },
    retentionMs: options.retentionMs ?? 7 * 24 * HOUR_MS,
    ...(options.maxBatch !== undefined ? { maxBatch: options.maxBatch } : {}),
    onError: (e) => errors.push(e),
  });
  cleanups.push(() => writer.close());
  return { store, writer, clock, errors };
}

async function sessionIds(writer: PoolWriter): Promise<string[]> {
  const res: StatusResult = await writer.submit(status);
  return res.sessions.map((s) => s.id).sort();
}

/** reloaded opens the journal afresh from the store, as a restart would. */
async function reloaded(store: KvStore) {
  return Journal.open(kvJournalStore(store), ids);
}

function settle(promises: Promise<unknown>[]): Promise<PromiseSettledResult<unknown>[]> {
  return Promise.allSettled(promises);
}

describe("PoolWriter", () => {
  it("group-commits a burst: 200 concurrent allocations, few records, never more than 45 sessions", async () => {
    const { writer, store } = await start();
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => writer.submit(allocate(`s${i}`))));
    const granted = results.filter((r) => r.kind === "granted");
    const fallback = results.filter((r) => r.kind === "fallback");
    expect(granted).toHaveLength(45);
    expect(fallback).toHaveLength(155);
    const head = writer.currentJournal.headRecord;
    expect(head).toBeGreaterThan(0);
    expect(head).toBeLessThanOrEqual(5);

    const st = await writer.submit(status);
    expect(st.totalSessions).toBe(45);
    expect(st.views.map((v) => v.sessionCount)).toEqual([15, 15, 15]);
    expect(writer.durableSeq).toBe(writer.currentPool.state.eventSeq);

    // Every acknowledged allocation is in the store.
    const { state } = await reloaded(store);
    expect(state.sessions.size).toBe(45);
    expect([...state.sessions.keys()].sort()).toEqual(granted.map((g) => g.sessionId).sort());
  });

  it("decides a command submitted just as the previous drain winds down", async () => {
    // Regression: a submit that landed after drain's last look at the queue but
    // before its clean-up started no drain, and waited for the next submit.
    const { writer } = await start({ inner: await openStore("memory://") });
    for (let ticks = 0; ticks < 16; ticks++) {
      await writer.submit(allocate(`s${ticks}`));
      for (let i = 0; i < ticks; i++) await null;
      let done = false;
      const answered = writer.submit(status).then(() => {
        done = true;
      });
      // The memory store answers within microtasks: one macrotask turn is plenty.
      await new Promise<void>((resolve) => setImmediate(resolve));
      expect(done, `status submitted ${ticks} microtasks after an answer`).toBe(true);
      await answered;
    }
  });

  it("bounds a batch by maxBatch", async () => {
    const { writer } = await start({ maxBatch: 10 });
    await Promise.all(Array.from({ length: 100 }, (_, i) => writer.submit(allocate(`s${i}`))));
    // 100 commands, at most 10 per record: at least 10 records.
    expect(writer.currentJournal.headRecord).toBeGreaterThanOrEqual(10);
    expect((await writer.submit(status)).totalSessions).toBe(45);
  });

  it("rejects the whole batch of a failed append, shows none of its effects, and recovers", async () => {
    const { writer, store, errors } = await start();
    expect((await writer.submit(allocate("before"))).kind).toBe("granted");
    const headBefore = writer.currentJournal.headRecord;
    const seqBefore = writer.durableSeq;

    // One command's append in flight; the next five (and a status) queue behind it as one batch.
    store.hold();
    const firstSet = store.whenSetCalled();
    const first = writer.submit(allocate("first"));
    await firstSet;
    store.failNextSets(1);
    const doomed = settle([
      ...["d1", "d2", "d3", "d4", "d5"].map((id) => writer.submit(allocate(id))),
      writer.submit(status),
    ]);
    store.release();
    expect((await first).kind).toBe("granted");
    const outcomes = await doomed;
    for (const o of outcomes) {
      expect(o.status).toBe("rejected");
      expect((o as PromiseRejectedResult).reason).toBeInstanceOf(WriterUnavailableError);
      expect(String((o as PromiseRejectedResult).reason)).toMatch(/injected set failure/);
    }
    expect(errors).toHaveLength(1);
    expect(String(errors[0])).toMatch(/injected set failure/);
    // Nothing of the failed batch became durable or was announced.
    expect(writer.durableSeq).toBeGreaterThan(seqBefore);
    expect(writer.currentJournal.headRecord).toBe(headBefore + 1);

    // A restart sees none of it...
    const { state, journal } = await reloaded(store);
    expect([...state.sessions.keys()].sort()).toEqual(["before", "first"]);
    expect(journal.headRecord).toBe(headBefore + 1);

    // ...and nor does the writer: the next command reloads before deciding.
    expect(await sessionIds(writer)).toEqual(["before", "first"]);
    expect(writer.durableSeq).toBe(state.eventSeq);

    // The store is back: the same ids allocate now, numbered on without a gap.
    const again = await Promise.all(["d1", "d2"].map((id) => writer.submit(allocate(id))));
    expect(again.map((r) => r.kind)).toEqual(["granted", "granted"]);
    expect(await sessionIds(writer)).toEqual(["before", "d1", "d2", "first"]);
    const re = await reloaded(store);
    expect([...re.state.sessions.keys()].sort()).toEqual(["before", "d1", "d2", "first"]);
    expect(re.state.eventSeq).toBe(writer.durableSeq);
    for (let n = 1; n <= re.journal.headRecord; n++) expect(await store.get(recordKey(n))).toBeDefined();
  });

  it("recovers when the failed command was alone and the next one arrives later", async () => {
    const { writer, store, errors } = await start();
    store.failNextSets(1);
    await expect(writer.submit(allocate("x"))).rejects.toBeInstanceOf(WriterUnavailableError);
    expect(errors).toHaveLength(1);
    const res = await writer.submit(allocate("y"));
    expect(res.kind).toBe("granted");
    expect(await sessionIds(writer)).toEqual(["y"]);
    expect((await reloaded(store)).state.sessions.has("x")).toBe(false);
  });

  it("keeps failing cleanly while the store is down, then picks up where the store is", async () => {
    const { writer, store, errors } = await start();
    await Promise.all(["a1", "a2", "a3"].map((id) => writer.submit(allocate(id))));
    const durable = writer.durableSeq;

    // Writes fail, reads work: each command reloads, decides, fails to append.
    store.failAllSets = true;
    for (let round = 0; round < 5; round++) {
      const outcomes = await settle(Array.from({ length: 4 }, (_, i) => writer.submit(allocate(`w${round}-${i}`))));
      for (const o of outcomes) {
        expect(o.status).toBe("rejected");
        expect((o as PromiseRejectedResult).reason).toBeInstanceOf(WriterUnavailableError);
      }
      // A command with no events still answers, from the reloaded (durable) state.
      expect(await sessionIds(writer)).toEqual(["a1", "a2", "a3"]);
      expect(writer.durableSeq).toBe(durable);
    }
    const errorsWhileWritesFail = errors.length;
    expect(errorsWhileWritesFail).toBeGreaterThanOrEqual(5);

    // Reads fail too: the reload itself fails, and every command is refused.
    store.failGets = true;
    const outcomes = await settle([
      writer.submit(allocate("z1")),
      writer.submit(status),
      writer.submit(allocate("z2")),
    ]);
    for (const o of outcomes) {
      expect(o.status).toBe("rejected");
      expect((o as PromiseRejectedResult).reason).toBeInstanceOf(WriterUnavailableError);
      expect(String((o as PromiseRejectedResult).reason)).toMatch(/unavailable|refused/);
    }
    expect(errors.length).toBeGreaterThan(errorsWhileWritesFail);
    for (const e of errors) expect(e).toBeInstanceOf(Error);

    // The store comes back: nothing of the failed commands, everything from before.
    store.failGets = false;
    store.failAllSets = false;
    expect(await sessionIds(writer)).toEqual(["a1", "a2", "a3"]);
    expect(writer.durableSeq).toBe(durable);
    expect((await writer.submit(allocate("w0-0"))).kind).toBe("granted");
    const { state } = await reloaded(store);
    expect([...state.sessions.keys()].sort()).toEqual(["a1", "a2", "a3", "w0-0"]);
  });

  it("reports failed snapshots to onError without failing commands", async () => {
    const { writer, store, errors } = await start({ snapshot: { everyRecords: 1, everySeconds: 3600 } });
    // Snapshots run beside the writer: the one after record 1 fails, and
    // neither that command nor the next one notices.
    const set = store.set.bind(store);
    let failSnapshots = true;
    store.set = async (key, value) => {
      if (failSnapshots && key === "snapshot") throw new Error("injected set failure (snapshot)");
      return set(key, value);
    };
    expect((await writer.submit(allocate("s1"))).kind).toBe("granted");
    await writer.settled();
    expect(errors).toHaveLength(1);
    expect(String(errors[0])).toMatch(/injected set failure \(snapshot\)/);
    failSnapshots = false;
    // The next record is followed by a snapshot that succeeds and covers both.
    expect((await writer.submit(allocate("s2"))).kind).toBe("granted");
    await writer.settled();
    expect(await sessionIds(writer)).toEqual(["s1", "s2"]);
    expect(errors).toHaveLength(1);
    const re = await reloaded(store);
    expect(re.replayed).toBe(0);
    expect(re.journal.headRecord).toBe(2);
    expect([...re.state.sessions.keys()].sort()).toEqual(["s1", "s2"]);
  });

  it("close() drains queued commands, writes a final snapshot, then refuses commands", async () => {
    const { writer, store } = await start();
    const queued = Array.from({ length: 30 }, (_, i) => writer.submit(allocate(`q${i}`)));
    const closing = writer.close();
    await expect(writer.submit(allocate("during-close"))).rejects.toBeInstanceOf(WriterUnavailableError);
    const results = await Promise.all(queued);
    await closing;
    expect(results.filter((r) => r.kind === "granted")).toHaveLength(30);
    await expect(writer.submit(allocate("late"))).rejects.toBeInstanceOf(WriterUnavailableError);
    await expect(writer.submit(status)).rejects.toThrow(/shutting down/);

    const snap = await store.get("snapshot");
    expect(snap).toBeDefined();
    expect((JSON.parse(snap!) as { record: number }).record).toBe(writer.currentJournal.headRecord);
    const { state, replayed } = await reloaded(store);
    expect(replayed).toBe(0);
    expect(state.sessions.size).toBe(30);
    expect(state.sessions.has("during-close")).toBe(false);
    expect(state.eventSeq).toBe(writer.durableSeq);
    // A second close is harmless.
    await writer.close();
  });

  it("close() after a failed write skips the snapshot and leaves the store consistent", async () => {
    const { writer, store } = await start();
    await writer.submit(allocate("ok"));
    store.failNextSets(1);
    await expect(writer.submit(allocate("lost"))).rejects.toBeInstanceOf(WriterUnavailableError);
    const setsBefore = store.setCalls;
    await writer.close();
    expect(store.setCalls).toBe(setsBefore);
    const { state } = await reloaded(store);
    expect([...state.sessions.keys()]).toEqual(["ok"]);
  });

  it("announces records only once durable, in order; a throwing listener breaks nothing", async () => {
    const { writer, store, errors } = await start();
    const seen: JournalRecord[] = [];
    const notDurable: number[] = [];
    const seqMismatch: number[] = [];
    writer.subscribe(() => {
      throw new Error("listener boom");
    });
    writer.subscribe((rec) => {
      if (!store.durableKeys.has(recordKey(rec.n))) notDurable.push(rec.n);
      if (writer.durableSeq !== rec.events[rec.events.length - 1]!.seq) seqMismatch.push(rec.n);
      seen.push(rec);
    });
    const late: JournalRecord[] = [];
    const unsubscribeLate = writer.subscribe((rec) => late.push(rec));

    await Promise.all(Array.from({ length: 20 }, (_, i) => writer.submit(allocate(`s${i}`))));
    unsubscribeLate();
    const lateCount = late.length;
    await writer.submit({ kind: "release", sessionId: "s0" });

    // A failed batch is never announced.
    store.failNextSets(1);
    await expect(writer.submit(allocate("lost"))).rejects.toBeInstanceOf(WriterUnavailableError);
    await writer.submit(allocate("s99"));
    // Status has no events: no record.
    await writer.submit(status);

    expect(notDurable).toEqual([]);
    expect(seqMismatch).toEqual([]);
    expect(seen.map((r) => r.n)).toEqual(Array.from({ length: seen.length }, (_, i) => i + 1));
    expect(seen.length).toBe(writer.currentJournal.headRecord);
    const seqs = seen.flatMap((r) => r.events.map((e) => e.seq));
    expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1));
    expect(seen.flatMap((r) => r.events).some((e) => "sessionId" in e && e.sessionId === "lost")).toBe(false);
    expect(late.length).toBe(lateCount);
    // What listeners saw is exactly what the store holds.
    for (const rec of seen) expect(JSON.parse((await store.get(recordKey(rec.n)))!)).toEqual(rec);

    const boom = errors.filter((e) => String(e).includes("listener boom"));
    expect(boom.length).toBe(seen.length);
  });

  it("snapshots every N records and prunes what retention lets go", async () => {
    const clock = new ManualClock("2025-06-02T10:00:00Z");
    const { writer, store } = await start({
      clock,
      snapshot: { everyRecords: 5, everySeconds: 24 * 3600 },
      retentionMs: 30 * MINUTE_MS,
    });
    for (let i = 0; i < 23; i++) {
      await writer.submit(allocate(`s${i}`));
      clock.advance(10 * MINUTE_MS);
    }
    const journal = writer.currentJournal;
    expect(journal.headRecord).toBe(23);
    expect(journal.recordsSinceSnapshot).toBe(3);
    // The snapshot at record 20 covers 1..20; records of the last 30 minutes stay.
    expect(journal.oldestRecord).toBeGreaterThan(1);
    expect(journal.oldestRecord).toBeLessThanOrEqual(21);
    expect(await journal.read(journal.oldestRecord - 1)).toBeUndefined();
    const { state, replayed, journal: re } = await reloaded(store);
    expect(replayed).toBe(3);
    expect(re.oldestRecord).toBe(journal.oldestRecord);
    expect(state).toEqual(writer.currentPool.state);
  });
});
