import { describe, expect, it } from "vitest";
import type { LedgerEntry } from "../../src/domain/index.js";
import type { KvStore } from "../../src/store/index.js";
import { UsageArchive } from "../../src/store/index.js";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const D0 = Date.parse("2026-11-01T00:00:00Z");

/** memoryKv is a KvStore in a Map that counts the archived days it is asked for (`history/day/...`). */
function memoryKv(): KvStore & { keys(): string[]; dayReads: string[] } {
  const map = new Map<string, string>();
  const dayReads: string[] = [];
  return {
    description: "memory",
    dayReads,
    get: async (k) => {
      if (k.startsWith("history/day/")) dayReads.push(k.slice("history/day/".length));
      return map.get(k);
    },
    set: async (k, v) => void map.set(k, v),
    delete: async (k) => void map.delete(k),
    close: async () => {},
    keys: () => [...map.keys()].sort(),
  };
}

const entry = (hour: number, costUsd: number, over: Partial<LedgerEntry> = {}): LedgerEntry => ({
  hour,
  client: "alice",
  subscriptionId: "sub1",
  model: "claude-sonnet-4",
  costUsd,
  tokens: { inputTokens: 1, outputTokens: 2, cacheCreationInputTokens: 3, cacheReadInputTokens: 4 },
  requests: 1,
  ...over,
});

describe("UsageArchive", () => {
  it("reads back what it archived, across days, with counts", async () => {
    const archive = new UsageArchive(memoryKv());
    const rows = [
      entry(D0 + 23 * HOUR, 1),
      entry(D0 + DAY, 2, { limits: 1 }),
      entry(D0 + DAY + HOUR, 0, { fallbacks: 3 }),
    ];
    await archive.archive(rows, D0, D0 + 2 * DAY);
    expect(await archive.archivedUntil()).toBe(D0 + 2 * DAY);
    expect(await archive.read(D0, D0 + 2 * DAY)).toEqual(rows);
    expect(await archive.read(D0 + DAY, D0 + DAY + HOUR)).toEqual([rows[1]]);
  });

  it("archiving the same hours again replaces them, so a crash before the cursor moved double-counts nothing", async () => {
    const archive = new UsageArchive(memoryKv());
    await archive.archive([entry(D0, 1), entry(D0 + HOUR, 2)], D0, D0 + 2 * HOUR);
    await archive.archive([entry(D0 + HOUR, 5)], D0 + HOUR, D0 + 2 * HOUR);
    expect((await archive.read(D0, D0 + DAY)).map((e) => e.costUsd)).toEqual([1, 5]);
  });

  it("prunes whole days that ended before the horizon", async () => {
    const kv = memoryKv();
    const archive = new UsageArchive(kv);
    await archive.archive([entry(D0, 1), entry(D0 + DAY, 2), entry(D0 + 2 * DAY, 3)], D0, D0 + 3 * DAY);
    await archive.prune(D0 + DAY + HOUR);
    expect((await archive.read(D0, D0 + 3 * DAY)).map((e) => e.costUsd)).toEqual([2, 3]);
    expect(kv.keys()).toEqual(["history/cursor", "history/day/2026-11-02", "history/day/2026-11-03", "history/days"]);
  });
});

describe("UsageArchive read cache", () => {
  /** archivedDays archives `days` days from D0 with $1 at 10:00 of each, up to `upTo`, and returns the archive. */
  async function archivedDays(
    kv: ReturnType<typeof memoryKv>,
    days: number,
    upTo = D0 + days * DAY,
  ): Promise<UsageArchive> {
    const archive = new UsageArchive(kv);
    const rows = Array.from({ length: days }, (_, i) => entry(D0 + i * DAY + 10 * HOUR, 1));
    await archive.archive(
      rows.filter((e) => e.hour < upTo),
      D0,
      upTo,
    );
    // Archiving reads each day it rewrites: only reading counts here.
    kv.dayReads.length = 0;
    return archive;
  }

  it("reads a complete day from the store once: a second identical read reads no day and answers the same", async () => {
    const kv = memoryKv();
    const archive = await archivedDays(kv, 3);
    const first = await archive.read(D0, D0 + 3 * DAY);
    expect(kv.dayReads).toEqual(["2026-11-01", "2026-11-02", "2026-11-03"]);
    kv.dayReads.length = 0;
    expect(await archive.read(D0, D0 + 3 * DAY)).toEqual(first);
    expect(kv.dayReads).toEqual([]);
    expect(first.map((e) => e.costUsd)).toEqual([1, 1, 1]);
  });

  it("reads the day still being archived every time, and keeps it once the cursor has passed it", async () => {
    const kv = memoryKv();
    // The cursor stands at 12:00 on the second day: that day is not complete.
    const archive = await archivedDays(kv, 2, D0 + DAY + 12 * HOUR);
    await archive.read(D0, D0 + 2 * DAY);
    kv.dayReads.length = 0;
    await archive.read(D0, D0 + 2 * DAY);
    expect(kv.dayReads).toEqual(["2026-11-02"]);

    // The leader (another instance on the same store, as a standby reads it) archives the rest of the day.
    await new UsageArchive(kv).archive([entry(D0 + DAY + 20 * HOUR, 5)], D0 + DAY + 12 * HOUR, D0 + 2 * DAY);
    kv.dayReads.length = 0;
    expect((await archive.read(D0, D0 + 2 * DAY)).map((e) => e.costUsd)).toEqual([1, 1, 5]);
    expect(kv.dayReads).toEqual(["2026-11-02"]);
    kv.dayReads.length = 0;
    expect((await archive.read(D0, D0 + 2 * DAY)).map((e) => e.costUsd)).toEqual([1, 1, 5]);
    expect(kv.dayReads).toEqual([]);
  });

  it("does not answer a kept day the leader has pruned since", async () => {
    const kv = memoryKv();
    const archive = await archivedDays(kv, 3);
    await archive.read(D0, D0 + 3 * DAY);
    await new UsageArchive(kv).prune(D0 + DAY + HOUR);
    expect((await archive.read(D0, D0 + 3 * DAY)).map((e) => e.hour)).toEqual([
      D0 + DAY + 10 * HOUR,
      D0 + 2 * DAY + 10 * HOUR,
    ]);
  });

  it("keeps at most the 41 days one answer can span, the least recently read going first", async () => {
    const kv = memoryKv();
    const archive = await archivedDays(kv, 50);
    await archive.read(D0, D0 + 50 * DAY);
    expect(kv.dayReads).toHaveLength(50);
    kv.dayReads.length = 0;
    await archive.read(D0 + 9 * DAY, D0 + 50 * DAY);
    expect(kv.dayReads).toEqual([]);
    await archive.read(D0, D0 + 9 * DAY);
    expect(kv.dayReads).toHaveLength(9);
  });
});
