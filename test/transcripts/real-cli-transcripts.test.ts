/**
 * Every transcript the real Claude Code (2.1.328) wrote in the captured runs
 * (test/fixtures/claude-cli-real/transcripts: one folder per scenario × auth
 * mode), read from a real config dir by the reconciler into a real Pool, as
 * use outside the pool. The CLI's own figures are the truth: what it wrote
 * in the session's cost-state row is what gets booked, to the micro-dollar.
 */
import { cp, mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { Pool, createPoolState } from "../../src/domain/index.js";
import type { TranscriptRow } from "../../src/domain/index.js";
import { silentLogger } from "../../src/runtime/logger.js";
import { type KvStore, openStore } from "../../src/store/index.js";
import { TranscriptReconciler } from "../../src/transcripts/index.js";
import { ManualClock } from "../support/manual-clock.js";
import { poolSettings, subscriptionSettings } from "../support/settings.js";

const ROOT = new URL("../fixtures/claude-cli-real/transcripts/", import.meta.url);
const SCENARIOS = (await readdir(ROOT)).sort();
// The captures ran at 11:24-11:27 UTC that day: an hour later every row is past the grace period.
const LATER = "2026-12-02T12:30:00Z";

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

interface CliFigures {
  totalCostUsd: number;
  tokens: number;
}

/** cliFigures: the last cost-state row of the capture, as the CLI wrote it. */
async function cliFigures(scenario: string): Promise<CliFigures | undefined> {
  const [file] = await readdir(new URL(`${scenario}/`, ROOT));
  const text = await readFile(new URL(`${scenario}/${file}`, ROOT), "utf8");
  const rows = text.split("\n").filter((l) => l.includes('"type":"cost-state"') || l.includes('"type": "cost-state"'));
  const last = rows.at(-1);
  if (last === undefined) return undefined;
  const row = JSON.parse(last) as { totalCostUSD: number; modelUsage: Record<string, Record<string, number>> };
  let tokens = 0;
  for (const m of Object.values(row.modelUsage)) {
    tokens += m.inputTokens! + m.outputTokens! + m.cacheReadInputTokens! + m.cacheCreationInputTokens!;
  }
  return { totalCostUsd: row.totalCostUSD, tokens };
}

interface Run {
  pool: Pool;
  clock: ManualClock;
  reconciler: TranscriptReconciler;
}

async function reconcile(scenario: string, at = LATER, graceMinutes = 10): Promise<Run> {
  const configDir = await mkdtemp(path.join(os.tmpdir(), "authpool-real-transcripts-"));
  const store: KvStore = await openStore("memory://");
  cleanups.push(async () => {
    await store.close();
    await rm(configDir, { recursive: true, force: true });
  });
  await cp(new URL(`${scenario}/`, ROOT), path.join(configDir, "projects", "-home-dev-runs-work"), { recursive: true });
  const pool = new Pool(createPoolState(["a"]), poolSettings([subscriptionSettings("a", {})]));
  const clock = new ManualClock(at);
  const reconciler = new TranscriptReconciler({
    subscriptions: [{ id: "a", configDir }],
    store,
    clock,
    logger: silentLogger,
    graceMs: graceMinutes * 60_000,
    defaultTimeZone: "UTC",
    submit: async (id: string, rows: TranscriptRow[]) => {
      pool.run({ kind: "reconcile", subscriptionId: id, rows }, clock.now());
    },
  });
  await reconciler.scanAll();
  return { pool, clock, reconciler };
}

function booked(pool: Pool): { costUsd: number; estimatedUsd: number; tokens: number } {
  const sub = pool.state.subscriptions.get("a")!;
  let costUsd = 0;
  let estimatedUsd = 0;
  let tokens = 0;
  for (const b of sub.buckets) {
    costUsd += b.externalCostUsd ?? 0;
    estimatedUsd += b.externalEstimatedUsd ?? 0;
    tokens +=
      b.tokens.inputTokens + b.tokens.outputTokens + b.tokens.cacheCreationInputTokens + b.tokens.cacheReadInputTokens;
  }
  return { costUsd, estimatedUsd, tokens };
}

describe("transcripts the real CLI wrote", () => {
  it("are all here: 11 scenarios × 3 auth modes", () => {
    expect(SCENARIOS).toHaveLength(33);
  });

  it.each(SCENARIOS)("%s: books the CLI's own cost and tokens, once", async (scenario) => {
    const cli = await cliFigures(scenario);
    expect(cli).toBeDefined();
    const { pool } = await reconcile(scenario);
    const got = booked(pool);
    expect(got.costUsd).toBeCloseTo(cli!.totalCostUsd, 9);
    expect(got.tokens).toBe(cli!.tokens);
    // Every dollar rests on the CLI's figures: nothing is the pool's estimate.
    expect(got.estimatedUsd).toBe(0);
    if (cli!.totalCostUsd > 0) expect(pool.state.prices.has("claude-sonnet-5-5")).toBe(true);
  });

  it.each(SCENARIOS)("%s: benches the account only for a usage limit of a subscription login", async (scenario) => {
    const { pool, clock } = await reconcile(scenario);
    const cooldowns = pool.state.subscriptions.get("a")!.cooldowns;
    const limit = /^limit(5h|7d|opus)-(oauth|credfile)-/.exec(scenario);
    if (limit === null) {
      // Throttles, 529s, warnings, and API-key limit texts (request-scoped) never bench.
      expect(cooldowns).toEqual([]);
      return;
    }
    expect(cooldowns).toHaveLength(1);
    const expected = {
      "5h": ["five_hour", undefined],
      "7d": ["seven_day", undefined],
      opus: ["seven_day_opus", "opus"],
    }[limit[1]!]!;
    expect(cooldowns[0]!.window).toBe(expected[0]);
    expect(cooldowns[0]!.modelScope).toBe(expected[1]);
    expect(cooldowns[0]!.until).toBeGreaterThan(clock.now());
  });

  it("prices rows read before their cost-state row by what the CLI taught, when they are booked", async () => {
    // Read while the run is fresh: the usage rows are held (grace), the cost-state row is not.
    const { pool, clock, reconciler } = await reconcile("tooluse-oauth-json", "2026-12-02T11:26:00Z");
    expect(booked(pool).costUsd).toBe(0);
    expect(pool.state.prices.get("claude-sonnet-5-5")).toBeDefined();
    clock.advance(60 * 60_000);
    await reconciler.scanAll();
    expect(booked(pool).costUsd).toBeCloseTo(0.009422, 9);
    expect(booked(pool).estimatedUsd).toBe(0);
  });
});
