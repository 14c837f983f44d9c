import { afterEach, describe, expect, it } from "vitest";
import { MINUTE_MS } from "../../src/domain/index.js";
import type { Command, PoolEvent } from "../../src/domain/index.js";
import { EventFeed } from "../../src/runtime/event-feed.js";
import { PoolWriter, WriterUnavailableError } from "../../src/runtime/pool-writer.js";
import { openStore } from "../../src/store/index.js";
import { ManualClock } from "../support/manual-clock.js";
import { poolSettings } from "../support/settings.js";
import { FlakyStore, loader } from "../store/store-helpers.js";

const settings = poolSettings(["a", "b", "c"]);
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const allocate = (sessionId: string) =>
  ({ kind: "allocate", sessionId, priority: "normal", model: "", estimatedTokens: 0 }) satisfies Command;
const release = (sessionId: string) => ({ kind: "release", sessionId }) satisfies Command;

interface Harness {
  writer: PoolWriter;
  store: FlakyStore;
  clock: ManualClock;
  /** Every durable event, as the writer announced it. */
  all: PoolEvent[];
  feed(options?: { recentRecords?: number }): EventFeed;
}

async function start(
  options: { snapshot?: { everyRecords: number; everySeconds: number }; retentionMs?: number } = {},
): Promise<Harness> {
  const store = new FlakyStore(await openStore("memory://"));
  const clock = new ManualClock("2025-06-02T10:00:00Z");
  const writer = await PoolWriter.open({
    clock,
    load: loader(store, settings),
    snapshot: options.snapshot ?? { everyRecords: 10_000, everySeconds: 24 * 3600 },
    retentionMs: options.retentionMs ?? 7 * 24 * 3600_000,
  });
  cleanups.push(() => writer.close());
  const all: PoolEvent[] = [];
  writer.subscribe((rec) => all.push(...rec.events));
  return {
    writer,
    store,
    clock,
    all,
    feed(feedOptions) {
      const feed = new EventFeed(writer, feedOptions);
      cleanups.push(() => feed.close());
      return feed;
    },
  };
}

/** churn submits `count` commands one at a time (one record each), moving the clock on. */
async function churn(h: Harness, from: number, count: number, stepMs = MINUTE_MS): Promise<void> {
  for (let i = from; i < from + count; i++) {
    await h.writer.submit(i % 3 === 2 ? release(`s${i - 1}`) : allocate(`s${i}`));
    h.clock.advance(stepMs);
  }
}

async function collect(gen: AsyncGenerator<PoolEvent>): Promise<PoolEvent[]> {
  const out: PoolEvent[] = [];
  for await (const e of gen) out.push(e);
  return out;
}

const seqs = (events: PoolEvent[]) => events.map((e) => e.seq);
const range = (from: number, to: number) => Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);

describe("EventFeed.history", () => {
  it("serves any range the same way from memory and from the store", async () => {
    const h = await start();
    const fromMemory = h.feed();
    const mostlyStore = h.feed({ recentRecords: 2 });
    await churn(h, 0, 40);
    const head = h.writer.durableSeq;
    expect(head).toBe(h.all.length);
    expect(seqs(h.all)).toEqual(range(1, head));
    expect(h.writer.currentJournal.headRecord).toBe(40);
    expect(fromMemory.headSeq).toBe(head);

    const cases: [number, number][] = [
      [0, head],
      [0, 1],
      [1, 2],
      [5, 17],
      [Math.floor(head / 2), head],
      [head - 1, head],
      [head - 3, head + 50],
      [0, head + 1000],
      [-10, 4],
      [head, head],
      [head, head + 10],
      [12, 12],
      [20, 10],
    ];
    for (const [after, until] of cases) {
      const want = seqs(h.all.filter((e) => e.seq > after && e.seq <= until));
      const getsBefore = h.store.getCalls;
      expect(seqs(await collect(fromMemory.history(after, until))), `memory (${after}, ${until}]`).toEqual(want);
      expect(h.store.getCalls, "recent records need no store read").toBe(getsBefore);
      expect(seqs(await collect(mostlyStore.history(after, until))), `store (${after}, ${until}]`).toEqual(want);
    }
    // The whole history through the small cache does go to the store, and yields the very same events.
    const getsBefore = h.store.getCalls;
    expect(await collect(mostlyStore.history(0, head))).toEqual(h.all);
    expect(h.store.getCalls).toBeGreaterThan(getsBefore);
  });

  it("serves records written before the feed existed from the store", async () => {
    const h = await start();
    await churn(h, 0, 15);
    const late = h.feed();
    await churn(h, 15, 5);
    expect(await collect(late.history(0, h.writer.durableSeq))).toEqual(h.all);
    expect(seqs(await collect(late.history(3, 9)))).toEqual(range(4, 9));
  });

  it("stays consistent across a failed write and the writer's reload", async () => {
    const h = await start();
    const small = h.feed({ recentRecords: 2 });
    const big = h.feed();
    await churn(h, 0, 6);
    h.store.failNextSets(1);
    await expect(h.writer.submit(allocate("lost"))).rejects.toBeInstanceOf(WriterUnavailableError);
    await churn(h, 6, 6);
    const head = h.writer.durableSeq;
    expect(seqs(h.all)).toEqual(range(1, head));
    for (const feed of [small, big]) {
      const events = await collect(feed.history(0, head));
      expect(events).toEqual(h.all);
      expect(events.some((e) => "sessionId" in e && e.sessionId === "lost")).toBe(false);
    }
  });
});

describe("EventFeed.follow", () => {
  it("delivers every event after the head at follow time, which history covers up to", async () => {
    const h = await start();
    const feed = h.feed({ recentRecords: 2 });
    await churn(h, 0, 5);
    const reader = feed.follow(1000);
    cleanups.push(() => reader.close());
    expect(reader.startSeq).toBe(h.writer.durableSeq);
    const signal = new AbortController().signal;
    // next() waits for the first record.
    const waiting = reader.next(signal);
    await churn(h, 5, 8);
    const live = [...(await waiting), ...(await reader.next(signal))];
    expect(reader.overflow).toBe(false);
    const past = await collect(feed.history(0, reader.startSeq));
    // History up to startSeq, then live: no gap, no duplicate.
    expect([...past, ...live]).toEqual(h.all);
  });

  it("marks a reader that falls behind as overflowed and stops buffering", async () => {
    const h = await start();
    const feed = h.feed();
    await churn(h, 0, 2);
    const reader = feed.follow(3);
    cleanups.push(() => reader.close());
    const startSeq = reader.startSeq;
    await churn(h, 2, 6);
    expect(h.writer.durableSeq - startSeq).toBeGreaterThan(3);
    expect(reader.overflow).toBe(true);
    const signal = new AbortController().signal;
    // It keeps what it buffered before overflowing: the first three events after startSeq.
    expect(seqs(await reader.next(signal))).toEqual(range(startSeq + 1, startSeq + 3));
    // Then nothing more, without waiting.
    await churn(h, 8, 2);
    expect(await reader.next(signal)).toEqual([]);
    // The rest is in history for a reader that starts again.
    expect(seqs(await collect(feed.history(startSeq + 3, h.writer.durableSeq)))).toEqual(
      range(startSeq + 4, h.writer.durableSeq),
    );
  });

  it("returns [] when aborted and stops after close", async () => {
    const h = await start();
    const feed = h.feed();
    const reader = feed.follow(10);
    const ac = new AbortController();
    const pending = reader.next(ac.signal);
    ac.abort();
    expect(await pending).toEqual([]);
    expect(await reader.next(ac.signal)).toEqual([]);
    reader.close();
    await churn(h, 0, 3);
    expect(await reader.next(ac.signal)).toEqual([]);
  });
});

describe("EventFeed.oldestSeq", () => {
  it("is head + 1 with no history and 1 before anything is pruned", async () => {
    const h = await start();
    const feed = h.feed();
    expect(await feed.oldestSeq()).toBe(1);
    expect(feed.headSeq).toBe(0);
    await churn(h, 0, 3);
    expect(await feed.oldestSeq()).toBe(1);
  });

  it("moves past pruned records, and history starts there", async () => {
    const h = await start({ snapshot: { everyRecords: 5, everySeconds: 24 * 3600 }, retentionMs: 30 * MINUTE_MS });
    const small = h.feed({ recentRecords: 2 });
    const big = h.feed();
    await churn(h, 0, 23, 10 * MINUTE_MS);
    const journal = h.writer.currentJournal;
    expect(journal.oldestRecord).toBeGreaterThan(1);
    const oldestRecord = await journal.read(journal.oldestRecord);
    const expectedOldest = oldestRecord!.events[0]!.seq;
    expect(expectedOldest).toBeGreaterThan(1);
    const head = h.writer.durableSeq;
    for (const feed of [small, big]) {
      expect(await feed.oldestSeq()).toBe(expectedOldest);
      // From the beginning: only what is retained, in order.
      expect(seqs(await collect(feed.history(0, head)))).toEqual(range(expectedOldest, head));
      // Wholly pruned ranges are empty; ranges straddling the cut start at the oldest kept.
      expect(await collect(feed.history(0, expectedOldest - 1))).toEqual([]);
      expect(seqs(await collect(feed.history(expectedOldest - 2, expectedOldest + 1)))).toEqual(
        range(expectedOldest, expectedOldest + 1),
      );
    }
  });
});
