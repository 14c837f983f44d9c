import { encodeFormat1 } from "../../bench/codec/format1.js";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { HOUR_MS, Pool, createPoolState } from "../../src/domain/index.js";
import type { Command, PoolEvent, PoolState } from "../../src/domain/index.js";
import { Journal, openStore, recordKey } from "../../src/store/index.js";
import type { JournalRecord, PoolStore } from "../../src/store/index.js";
import { poolSettings } from "../support/settings.js";
import { TempDirs } from "./store-helpers.js";

const ids = ["a", "b", "c"];
const settings = poolSettings(ids);
const T0 = Date.parse("2025-06-02T10:00:00Z");

const temp = new TempDirs();
const open: PoolStore[] = [];
afterEach(async () => {
  for (const s of open.splice(0)) await s.close().catch(() => undefined);
  await temp.cleanup();
});

interface Opened {
  store: PoolStore;
  journal: Journal;
  pool: Pool;
  replayed: number;
}

async function openAt(file: string, subscriptionIds: readonly string[] = ids): Promise<Opened> {
  const store = await openStore(`sqlite://${file}`);
  open.push(store);
  // The one writer of this file for the test: epoch 1.
  const lease = await store.log.acquireLease("test", "", Date.now(), 3_600_000);
  const { journal, state, replayed } = await Journal.open(store.log, subscriptionIds, {
    epoch: lease.epoch,
    legacyKv: store,
  });
  return { store, journal, pool: new Pool(state, settings), replayed };
}

async function reopen(o: Opened, file: string, subscriptionIds: readonly string[] = ids): Promise<Opened> {
  open.splice(open.indexOf(o.store), 1);
  await o.store.close();
  return openAt(file, subscriptionIds);
}

async function newFile(): Promise<string> {
  return path.join(await temp.make("authpool-journal-"), "pool.sqlite");
}

const allocate = (sessionId: string): Command => ({
  kind: "allocate",
  sessionId,
  priority: "normal",
  model: "",
  estimatedTokens: 0,
});

const report = (sessionId: string, requestId: string, costUsd: number): Command => ({
  kind: "report",
  sessionId,
  requestId,
  report: {
    costUsd,
    tokens: { inputTokens: 1000, outputTokens: 200, cacheCreationInputTokens: 10, cacheReadInputTokens: 5 },
    models: {
      "claude-sonnet-4-5": {
        inputTokens: 1000,
        outputTokens: 200,
        cacheCreationInputTokens: 10,
        cacheReadInputTokens: 5,
        costUsd,
      },
    },
    durationMs: 1200,
    readings: [],
  },
});

/** step decides commands at `now` and appends their events as one record (as the writer does). */
async function step(o: Opened, now: number, ...commands: Command[]): Promise<JournalRecord> {
  const events: PoolEvent[] = [];
  for (const c of commands) events.push(...o.pool.run(c, now).events);
  expect(events.length).toBeGreaterThan(0);
  return o.journal.append(events);
}

/** busy appends `count` records with a mix of commands, record i (1-based from `from`) at T0 + i hours. */
async function busy(o: Opened, from: number, count: number): Promise<void> {
  for (let i = from; i < from + count; i++) {
    const now = T0 + i * HOUR_MS;
    const cmds: Command[] = [allocate(`s${i}`), report(`s${i}`, `req-${i}`, 0.25 * i)];
    if (i % 3 === 0) cmds.push({ kind: "release", sessionId: `s${i - 1}` });
    if (i % 4 === 0) cmds.push({ kind: "set_paused", subscriptionId: "b", paused: i % 8 === 0 });
    await step(o, now, ...cmds);
  }
}

function expectSameState(actual: PoolState, expected: PoolState): void {
  expect(actual.eventSeq).toBe(expected.eventSeq);
  expect(actual.sessions).toEqual(expected.sessions);
  expect(actual.subscriptions).toEqual(expected.subscriptions);
  expect(actual.dedupe).toEqual(expected.dedupe);
  expect(actual.ended).toEqual(expected.ended);
  expect(actual.bySubscription).toEqual(expected.bySubscription);
  expect(actual).toEqual(expected);
}

describe("recordKey", () => {
  it("zero-pads record numbers so keys sort in record order", () => {
    expect(recordKey(1)).toBe("journal:000000000001");
    expect(recordKey(123_456_789_012)).toBe("journal:123456789012");
    const ns = [1, 2, 9, 10, 11, 99, 100, 1000, 123_456];
    const keys = ns.map(recordKey);
    expect([...keys].sort()).toEqual(keys);
  });
});

describe("Journal over sqlite", () => {
  it("starts empty and numbers records without gaps", async () => {
    const file = await newFile();
    const o = await openAt(file);
    expect(o.replayed).toBe(0);
    expect(o.journal.headRecord).toBe(0);
    expect(o.journal.oldestRecord).toBe(1);
    expect(o.journal.recordsSinceSnapshot).toBe(0);
    expect(o.pool.state.eventSeq).toBe(0);
    expect([...o.pool.state.subscriptions.keys()]).toEqual(ids);

    await busy(o, 1, 12);
    expect(o.journal.headRecord).toBe(12);
    expect(o.journal.recordsSinceSnapshot).toBe(12);
    const seqs: number[] = [];
    for (let n = 1; n <= 12; n++) {
      const raw = await o.store.log.readRecord(n);
      expect(raw, `record ${n}`).toBeDefined();
      const rec = JSON.parse(raw!) as JournalRecord;
      expect(rec.n).toBe(n);
      expect(await o.journal.read(n)).toEqual(rec);
      seqs.push(...rec.events.map((e) => e.seq));
    }
    // Event sequence numbers run on across records, with no gap and no repeat.
    expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1));
    expect(seqs.length).toBe(o.pool.state.eventSeq);
    expect(await o.store.log.readRecord(13)).toBeUndefined();
    expect(await o.store.log.readRecord(0)).toBeUndefined();
    expect(await o.journal.read(0)).toBeUndefined();
    expect(await o.journal.read(13)).toBeUndefined();
  });

  it("rebuilds the live state from the records on reopen, and appends on from there", async () => {
    const file = await newFile();
    let o = await openAt(file);
    await busy(o, 1, 9);
    const live = o.pool.state;
    expect(live.sessions.size).toBeGreaterThan(0);
    expect(live.dedupe.size).toBeGreaterThan(0);
    expect(live.ended.size).toBeGreaterThan(0);

    o = await reopen(o, file);
    expect(o.replayed).toBe(9);
    expect(o.journal.headRecord).toBe(9);
    expectSameState(o.pool.state, live);

    // A new record after the reopen gets the next number.
    const rec = await step(o, T0 + 20 * HOUR_MS, allocate("after-reopen"));
    expect(rec.n).toBe(10);
    expect(rec.events[0]!.seq).toBe(live.eventSeq + 1);
    const after = o.pool.state;
    o = await reopen(o, file);
    expect(o.replayed).toBe(10);
    expectSameState(o.pool.state, after);
    expect(o.pool.state.sessions.has("after-reopen")).toBe(true);
  });

  it("replays only the records after the snapshot", async () => {
    const file = await newFile();
    let o = await openAt(file);
    await busy(o, 1, 5);
    await o.journal.snapshot(o.pool.state);
    expect(o.journal.recordsSinceSnapshot).toBe(0);
    await busy(o, 6, 3);
    expect(o.journal.recordsSinceSnapshot).toBe(3);
    const live = o.pool.state;

    o = await reopen(o, file);
    expect(o.replayed).toBe(3);
    expect(o.journal.headRecord).toBe(8);
    expect(o.journal.recordsSinceSnapshot).toBe(3);
    expectSameState(o.pool.state, live);

    // A snapshot at the head: nothing to replay.
    await o.journal.snapshot(o.pool.state);
    o = await reopen(o, file);
    expect(o.replayed).toBe(0);
    expect(o.journal.headRecord).toBe(8);
    expectSameState(o.pool.state, live);
  });

  it("adds newly configured subscriptions on load and keeps removed ones", async () => {
    const file = await newFile();
    let o = await openAt(file);
    await busy(o, 1, 4);
    await o.journal.snapshot(o.pool.state);
    const live = o.pool.state;
    o = await reopen(o, file, ["a", "b", "d"]);
    expect([...o.pool.state.subscriptions.keys()].sort()).toEqual(["a", "b", "c", "d"]);
    expect(o.pool.state.subscriptions.get("c")).toEqual(live.subscriptions.get("c"));
    expect(o.pool.state.bySubscription.get("d")).toEqual(new Set());
    expect(o.pool.state.sessions).toEqual(live.sessions);
  });

  it("prunes only what the snapshot covers and is older than `before`, at most `max` per call", async () => {
    const file = await newFile();
    let o = await openAt(file);
    // Nothing is covered before the first snapshot.
    await busy(o, 1, 6);
    expect(await o.journal.prune(T0 + 100 * HOUR_MS, 100)).toBe(0);
    expect(o.journal.oldestRecord).toBe(1);

    await o.journal.snapshot(o.pool.state); // covers records 1..6
    await busy(o, 7, 4); // records 7..10, not covered
    const live = o.pool.state;

    // Record i holds events at T0 + i hours: before = T0 + 4h covers records 1..3.
    const before = T0 + 4 * HOUR_MS;
    expect(await o.journal.prune(before, 0)).toBe(0);
    expect(await o.journal.prune(before, 2)).toBe(2);
    expect(o.journal.oldestRecord).toBe(3);
    expect(await o.journal.prune(before, 10)).toBe(1);
    expect(o.journal.oldestRecord).toBe(4);
    expect(await o.journal.prune(before, 10)).toBe(0);
    expect(o.journal.oldestRecord).toBe(4);
    expect(await o.journal.read(3)).toBeUndefined();
    expect((await o.journal.read(4))?.n).toBe(4);

    // However old, records after the snapshot stay.
    expect(await o.journal.prune(T0 + 1000 * HOUR_MS, 100)).toBe(3);
    expect(o.journal.oldestRecord).toBe(7);
    expect(await o.journal.prune(T0 + 1000 * HOUR_MS, 100)).toBe(0);
    for (let n = 1; n <= 6; n++) {
      expect(await o.journal.read(n)).toBeUndefined();
      expect(await o.store.log.readRecord(n)).toBeUndefined();
    }
    for (let n = 7; n <= 10; n++) expect((await o.journal.read(n))?.n).toBe(n);
    expect(o.journal.headRecord).toBe(10);

    // The reopened journal loads from the snapshot and remembers where history starts.
    o = await reopen(o, file);
    expect(o.replayed).toBe(4);
    expect(o.journal.oldestRecord).toBe(7);
    expect(o.journal.headRecord).toBe(10);
    expectSameState(o.pool.state, live);
    expect(await o.journal.read(6)).toBeUndefined();
    expect((await o.journal.read(7))?.n).toBe(7);

    // A later snapshot lets the rest go, and numbering carries on.
    await o.journal.snapshot(o.pool.state);
    expect(await o.journal.prune(T0 + 1000 * HOUR_MS, 100)).toBe(4);
    expect(o.journal.oldestRecord).toBe(11);
    const rec = await step(o, T0 + 30 * HOUR_MS, allocate("late"));
    expect(rec.n).toBe(11);
    const after = o.pool.state;
    o = await reopen(o, file);
    expect(o.journal.oldestRecord).toBe(11);
    expect(o.replayed).toBe(1);
    expectSameState(o.pool.state, after);
  });

  it("takes over a store written before leases: its snapshot and records, once, then writes on from there", async () => {
    const file = await newFile();
    // What the previous version left in the file: the snapshot and records
    // as plain values (the snapshot's state as JSON text).
    const old = await openStore(`sqlite://${file}`);
    const earlier = new Pool(createPoolState(ids), settings);
    const records: JournalRecord[] = [];
    for (let i = 1; i <= 4; i++) {
      const { events } = earlier.run(allocate(`old${i}`), T0 + i * HOUR_MS);
      records.push({ n: i, events });
      if (i === 2) {
        await old.set("snapshot", JSON.stringify({ record: 2, state: encodeFormat1(earlier.state) }));
      }
    }
    for (const rec of records.slice(2)) await old.set(recordKey(rec.n), JSON.stringify(rec));
    await old.close();

    let o = await openAt(file);
    expect(o.journal.needsSnapshot).toBe(true);
    expect(o.journal.headRecord).toBe(4);
    expect([...o.pool.state.sessions.keys()].sort()).toEqual(["old1", "old2", "old3", "old4"]);
    expect(o.pool.state.eventSeq).toBe(earlier.state.eventSeq);
    // Nothing is appended before the migrated state is in a snapshot of its own.
    await expect(step(o, T0 + 5 * HOUR_MS, allocate("new1"))).rejects.toThrow(/snapshotted/);
    o = await reopen(o, file);
    await o.journal.snapshot(o.pool.state);
    expect(o.journal.needsSnapshot).toBe(false);
    const rec = await step(o, T0 + 6 * HOUR_MS, allocate("new2"));
    expect(rec.n).toBe(5);
    // From now on the journal's own snapshot and records are read, not the old values.
    o = await reopen(o, file);
    expect(o.journal.needsSnapshot).toBe(false);
    expect(o.replayed).toBe(1);
    expect([...o.pool.state.sessions.keys()].sort()).toEqual(["new2", "old1", "old2", "old3", "old4"]);
  });
});
