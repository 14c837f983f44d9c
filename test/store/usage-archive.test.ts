import { describe, expect, it } from "vitest";
import type { LedgerEntry } from "../../src/domain/index.js";
import type { KvStore } from "../../src/store/index.js";
import { UsageArchive } from "../../src/store/index.js";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const D0 = Date.parse("2026-11-01T00:00:00Z");

function memoryKv(): KvStore & { keys(): string[] } {
  const map = new Map<string, string>();
  return {
    description: "memory",
    get: async (k) => map.get(k),
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
