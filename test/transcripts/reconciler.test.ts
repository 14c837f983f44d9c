import { appendFile, chmod, cp, mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { TranscriptRow, TranscriptUsageRow } from "../../src/domain/index.js";
import { silentLogger } from "../../src/runtime/logger.js";
import { type KvStore, openStore } from "../../src/store/index.js";
import { TranscriptReconciler } from "../../src/transcripts/index.js";
import { ManualClock } from "../support/manual-clock.js";

const MAIN = "projects/-srv-app/3f9a1c52-7d0e-4b8e-9a61-0c2d5e8f4a17.jsonl";

let dir: string;
let store: KvStore;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "authpool-reconciler-"));
  store = await openStore("memory://");
});
afterEach(async () => {
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

async function copyTree(name: string): Promise<string> {
  const target = path.join(dir, name);
  await cp(new URL(`../fixtures/transcripts/${name}/`, import.meta.url), target, { recursive: true });
  return target;
}

interface Harness {
  reconciler: TranscriptReconciler;
  submitted: TranscriptRow[][];
  clock: ManualClock;
  fail: { next: boolean };
}

function harness(configDir: string, now: string, graceMinutes = 10): Harness {
  const submitted: TranscriptRow[][] = [];
  const fail = { next: false };
  const clock = new ManualClock(now);
  const reconciler = new TranscriptReconciler({
    subscriptions: [{ id: "a", configDir }],
    store,
    clock,
    logger: silentLogger,
    graceMs: graceMinutes * 60_000,
    defaultTimeZone: "UTC",
    submit: async (_id, rows) => {
      if (fail.next) {
        fail.next = false;
        throw new Error("store refused the write");
      }
      submitted.push(rows);
    },
  });
  return { reconciler, submitted, clock, fail };
}

/** tokensByModel sums usage rows' tokens per model after the pool's dedupe rule (largest copy per key). */
function tokensByModel(rows: TranscriptRow[]): Record<string, number> {
  const best = new Map<string, TranscriptUsageRow>();
  const out: Record<string, number> = {};
  for (const r of rows) {
    if (r.kind !== "usage") continue;
    const total =
      r.tokens.inputTokens + r.tokens.outputTokens + r.tokens.cacheCreationInputTokens + r.tokens.cacheReadInputTokens;
    const key = r.key ?? `${r.at}`;
    const seen = best.get(key);
    const seenTotal =
      seen === undefined
        ? -1
        : seen.tokens.inputTokens +
          seen.tokens.outputTokens +
          seen.tokens.cacheCreationInputTokens +
          seen.tokens.cacheReadInputTokens;
    if (total > seenTotal) best.set(key, r);
  }
  for (const r of best.values()) {
    out[r.model] =
      (out[r.model] ?? 0) +
      r.tokens.inputTokens +
      r.tokens.outputTokens +
      r.tokens.cacheCreationInputTokens +
      r.tokens.cacheReadInputTokens;
  }
  return out;
}

describe("TranscriptReconciler", () => {
  it("hands config-a's rows to the pool: exact token totals by model, and the limit row", async () => {
    const h = harness(await copyTree("config-a"), "2026-11-23T15:00:00Z");
    await h.reconciler.scanAll();
    const rows = h.submitted.flat();
    expect(tokensByModel(rows)).toEqual({
      "claude-sonnet-4-5-20250929": 4 + 412 + 9120 + 12040,
      "claude-opus-4-1-20250805": 6 + 988 + 2048 + 21160,
      "claude-haiku-4-5-20251001": 41200 + 1480,
    });
    const limits = rows.filter((r) => r.kind === "limit");
    expect(limits).toHaveLength(1);
    expect(limits[0]).toMatchObject({ signal: { window: "five_hour", resetsAt: 1795456800000, estimated: false } });
    expect(h.reconciler.status("a")).toEqual({ scannedAt: Date.parse("2026-11-23T15:00:00Z"), files: 2 });
    // Nothing new: a second pass hands nothing over.
    h.submitted.length = 0;
    await h.reconciler.scanAll();
    expect(h.submitted.flat()).toEqual([]);
  });

  it("skips config-legacy's malformed line and summary row, keeps costUSD and the legacy limit text", async () => {
    const h = harness(await copyTree("config-legacy"), "2025-06-23T16:30:00Z");
    await h.reconciler.scanAll();
    const rows = h.submitted.flat();
    expect(rows.map((r) => r.kind)).toEqual(["usage", "limit"]);
    expect(rows[0]).toMatchObject({ costUsd: 0.10512, costSource: "line" });
    expect(rows[1]).toMatchObject({ signal: { resetsAt: 1750708800000, estimated: false } });
  });

  it("holds rows younger than the grace period, and does not advance past rows the pool did not take", async () => {
    const configDir = await copyTree("config-a");
    await chmod(path.join(configDir, MAIN), 0o644);
    // 10:00Z: the Opus turn at 10:47Z is in the future, so it and all after it wait.
    const h = harness(configDir, "2026-11-23T10:00:00Z", 30);
    await h.reconciler.scanAll();
    const firstModels = Object.keys(tokensByModel(h.submitted.flat())).sort();
    expect(firstModels).toEqual(["claude-haiku-4-5-20251001", "claude-sonnet-4-5-20250929"]);
    // The synthetic limit row after the held one is acted on at once.
    expect(h.submitted.flat().filter((r) => r.kind === "limit")).toHaveLength(1);

    // The pool refuses the next batch: the offsets stay, and the rows come again.
    h.clock.set("2026-11-23T15:00:00Z");
    await appendFile(
      path.join(configDir, MAIN),
      `${JSON.stringify({ type: "assistant", sessionId: "x", requestId: "req_n", timestamp: "2026-11-23T14:30:00Z", message: { id: "msg_n", model: "claude-sonnet-4-5-20250929", usage: { output_tokens: 7 } } })}\n`,
    );
    h.submitted.length = 0;
    h.fail.next = true;
    await h.reconciler.scanAll();
    expect(h.submitted).toEqual([]);
    expect(h.reconciler.status("a")?.error).toBe("store refused the write");

    await h.reconciler.scanAll();
    const usage = h.submitted.flat().filter((r): r is TranscriptUsageRow => r.kind === "usage");
    expect(usage.map((r) => r.model).sort()).toEqual(["claude-opus-4-1-20250805", "claude-sonnet-4-5-20250929"]);
    expect(usage.find((r) => r.key === "msg_n:req_n")?.tokens.outputTokens).toBe(7);
    expect(h.reconciler.status("a")?.error).toBeUndefined();
  });

  it("keeps its offsets in the store across restarts", async () => {
    const configDir = await copyTree("config-a");
    const first = harness(configDir, "2026-11-23T15:00:00Z");
    await first.reconciler.scanAll();
    expect(first.submitted.flat().length).toBeGreaterThan(0);
    const again = harness(configDir, "2026-11-23T15:05:00Z");
    await again.reconciler.scanAll();
    expect(again.submitted.flat()).toEqual([]);
  });

  it("reports a config dir without transcripts as scanned, with no files", async () => {
    const h = harness(path.join(dir, "empty"), "2026-11-23T15:00:00Z");
    await h.reconciler.scanAll();
    expect(h.reconciler.status("a")).toEqual({ scannedAt: Date.parse("2026-11-23T15:00:00Z"), files: 0 });
  });
});
