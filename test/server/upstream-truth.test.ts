import { appendFile, chmod, cp, mkdir, mkdtemp, readdir, stat } from "node:fs/promises";
import os from "node:os";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  EventType,
  FigureBasis,
  LimitWindow,
  ObservationSource,
  PriceBasis,
  RateLimitStatus,
  SubscriptionState,
} from "../../src/client/index.js";
import { type TestPool, fixture, startTestPool } from "../support/test-server.js";

/**
 * The pool sees what Claude sees: an account fed by the fixtures (its
 * transcripts, its credentials and the OAuth usage endpoint's reply) shows
 * upstream utilization with reset times, sources and ages, and the use done
 * outside the pool.
 */

let pool: TestPool | undefined;
let server: http.Server | undefined;
afterEach(async () => {
  await pool?.close();
  pool = undefined;
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

const MAIN = "projects/-srv-app/3f9a1c52-7d0e-4b8e-9a61-0c2d5e8f4a17.jsonl";
// config-a's rows after dedupe, at list prices: the Sonnet message (its two
// lines counted once), the Opus turn, the Haiku subagent.
const SONNET_USD = 0.044004;
const OPUS_USD = 0.14433;
const HAIKU_USD = 0.0486;

async function usageEndpoint(body: string): Promise<string> {
  server = http.createServer((_req, res) => res.writeHead(200, { "content-type": "application/json" }).end(body));
  await new Promise<void>((resolve) => server!.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** configDirFromFixtures copies config-a's transcripts and credentials into sub1's config dir. */
async function configDirFromFixtures(dir: string): Promise<string> {
  const configDir = path.join(dir, "sub1");
  await mkdir(configDir, { recursive: true });
  await cp(new URL("../fixtures/transcripts/config-a/", import.meta.url), configDir, { recursive: true });
  const creds = path.join(configDir, ".credentials.json");
  await cp(new URL("../fixtures/credentials/config-a/.credentials.json", import.meta.url), creds);
  await chmod(creds, 0o600);
  // The copies keep the fixtures' read-only modes; the test appends to one.
  await chmod(path.join(configDir, MAIN), 0o644);
  return configDir;
}

async function listing(dir: string): Promise<string[]> {
  const entries = (await readdir(dir, { recursive: true })) as string[];
  const out: string[] = [];
  for (const e of entries.sort()) {
    const s = await stat(path.join(dir, e));
    out.push(`${e} ${s.size} ${s.mtimeMs}`);
  }
  return out;
}

describe("ground truth for an account fed by the fixtures", () => {
  it("shows upstream utilization, resets, sources, ages and external use", async () => {
    const baseUrl = await usageEndpoint(await fixture("oauth-usage/2026-limits.json"));
    const dir = await mkdtemp(path.join(os.tmpdir(), "authpool-truth-"));
    const configDir = await configDirFromFixtures(dir);
    const before = await listing(configDir);
    pool = await startTestPool({
      dir,
      config: {
        subscriptions: ["sub1", "sub2"].map((id) => ({
          id,
          type: "claude-max",
          configDir: path.join(dir, id),
          weeklyBudgetUsd: 100,
          // Only sub1 is polled and read: opt-in per subscription.
          upstreamUsage: id === "sub1",
          transcripts: id === "sub1",
        })),
        upstream: { baseUrl, intervalSeconds: 90 },
      },
    });
    // After config-a's rows (09:12-10:47Z) and its limit row (14:02Z, resets 18:00Z).
    pool.clock.set(Date.parse("2026-11-23T15:00:00Z"));
    await pool.server.runJobs();
    pool.clock.advance(60_000);

    const status = await pool.grpc.getPoolStatus({});
    const sub1 = status.subscriptions.find((s) => s.id === "sub1")!;

    // Upstream: every window of the reply, with status, source and age.
    const byWindow = new Map(sub1.upstream.map((u) => [u.window, u]));
    expect([...byWindow.keys()].sort()).toEqual([
      LimitWindow.FIVE_HOUR,
      LimitWindow.SEVEN_DAY,
      LimitWindow.SEVEN_DAY_OPUS,
      LimitWindow.SEVEN_DAY_SONNET,
    ]);
    const five = byWindow.get(LimitWindow.FIVE_HOUR)!;
    expect(five.utilization).toBeCloseTo(0.33, 10);
    expect(five.status).toBe(RateLimitStatus.ALLOWED);
    expect(five.source).toBe(ObservationSource.OAUTH_USAGE);
    expect(Number(five.age?.seconds)).toBe(60);
    expect(five.stale).toBe(false);
    expect(new Date(Number(five.resetsAt!.seconds) * 1000).toISOString()).toBe("2026-11-23T19:00:00.000Z");
    expect(byWindow.get(LimitWindow.SEVEN_DAY_OPUS)?.utilization).toBeCloseTo(0.21, 10);

    // The weekly figure rests on the fresh observation (13%), not the budget.
    expect(sub1.weekly?.basis).toBe(FigureBasis.UPSTREAM);
    expect(sub1.weekly?.source).toBe(ObservationSource.OAUTH_USAGE);
    expect(sub1.weekly?.percentUsed).toBeCloseTo(13, 6);
    expect(Number(sub1.weekly?.age?.seconds)).toBe(60);
    expect(sub1.fiveHour?.basis).toBe(FigureBasis.UPSTREAM);
    expect(sub1.fiveHour?.percentUsed).toBeCloseTo(33, 6);
    expect(sub1.fiveHour?.usdPerWindowLearned).toBe(false);

    // External: config-a's rows were never reported through the pool.
    expect(sub1.external?.weeklyUsd).toBeCloseTo(SONNET_USD + OPUS_USD + HAIKU_USD, 6);
    // No figure of the CLI's covers them (hand-written rows, no cost-state): all the pool's estimate.
    expect(sub1.external?.weeklyEstimatedUsd).toBeCloseTo(SONNET_USD + OPUS_USD + HAIKU_USD, 6);
    expect(status.modelPrices).toEqual([]);
    expect(sub1.external?.files).toBe(2);
    expect(sub1.external?.scanError).toBe("");
    expect(sub1.weeklyUsedUsd).toBeCloseTo(SONNET_USD + OPUS_USD + HAIKU_USD, 6);
    expect(new Date(Number(sub1.external!.lastSeenAt!.seconds) * 1000).toISOString()).toBe("2026-11-23T10:47:31.000Z");

    // The synthetic usage-limit row benched the account until its reset.
    expect(sub1.status).toBe(SubscriptionState.COOLDOWN);
    expect(Number(sub1.cooldown?.until?.seconds)).toBe(1795456800);
    expect(sub1.cooldown?.reason).toMatch(/^transcript: /);

    // Polling state; sub2 is neither polled nor read.
    expect(sub1.usagePolling?.lastError).toBe("");
    const sub2 = status.subscriptions.find((s) => s.id === "sub2")!;
    expect(sub2.usagePolling).toBeUndefined();
    expect(sub2.external).toBeUndefined();
    expect(sub2.weekly?.basis).toBe(FigureBasis.BUDGET_ESTIMATE);

    // Nothing was written inside the config dir.
    expect(await listing(configDir)).toEqual(before);
  });

  it("counts a line appended later once, and rows of the pool's own sessions not at all", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "authpool-truth-"));
    const configDir = await configDirFromFixtures(dir);
    pool = await startTestPool({
      dir,
      config: {
        subscriptions: [{ id: "sub1", type: "claude-max", configDir, weeklyBudgetUsd: 100 }],
        transcripts: { enabled: true, graceMinutes: 10 },
      },
    });
    pool.clock.set(Date.parse("2026-11-23T18:30:00Z"));
    await pool.server.runJobs();
    const external = async () => (await pool!.grpc.getPoolStatus({})).subscriptions[0]!.external!.weeklyUsd;
    const first = await external();
    expect(first).toBeCloseTo(SONNET_USD + OPUS_USD + HAIKU_USD, 6);

    // The pool runs a session; its Claude session writes rows the report already counted.
    await pool.grpc.allocate({ sessionId: "pool-1" });
    await pool.grpc.reportUsage({
      sessionId: "pool-1",
      source: {
        case: "usage",
        value: { costUsd: 1, outputTokens: 10n, claudeSessionId: "c0ffee00-0000-4000-8000-000000000001" },
      },
    });
    const row = (id: string, session: string, at: string, output: number) =>
      `${JSON.stringify({
        type: "assistant",
        sessionId: session,
        requestId: `req_${id}`,
        timestamp: at,
        message: {
          id: `msg_${id}`,
          model: "claude-sonnet-4-5-20250929",
          usage: { input_tokens: 0, output_tokens: output },
        },
      })}\n`;
    await appendFile(
      path.join(configDir, MAIN),
      row("pool", "c0ffee00-0000-4000-8000-000000000001", "2026-11-23T18:31:00Z", 1000) +
        row("outside", "someone-else", "2026-11-23T18:31:30Z", 1000) +
        // Inside the grace period: waits for a later pass.
        row("recent", "someone-else", "2026-11-23T18:44:00Z", 2000),
    );
    pool.clock.set(Date.parse("2026-11-23T18:45:00Z"));
    await pool.server.runJobs();
    // Only the outside row: 1000 output tokens of Sonnet = $0.015.
    expect((await external()) - first).toBeCloseTo(0.015, 9);

    // Past the grace, the recent row counts once; later passes add nothing.
    pool.clock.set(Date.parse("2026-11-23T19:00:00Z"));
    await pool.server.runJobs();
    expect((await external()) - first).toBeCloseTo(0.045, 9);
    await pool.restart();
    pool.clock.advance(120_000);
    await pool.server.runJobs();
    expect((await external()) - first).toBeCloseTo(0.045, 9);
  });

  it("ends a cooldown from a rejected rate_limit_event at its resetsAt, with a status_changed event", async () => {
    pool = await startTestPool();
    const grant = await pool.grpc.allocate({ sessionId: "s1" });
    const subscriptionId = grant.outcome.case === "subscription" ? grant.outcome.value.subscriptionId : "";
    await pool.grpc.reportUsage({
      sessionId: "s1",
      source: { case: "claudeOutput", value: await fixture("claude-cli/stream-limit.ndjson") },
    });
    const status = await pool.grpc.getPoolStatus({});
    const sub = status.subscriptions.find((s) => s.id === subscriptionId)!;
    expect(sub.status).toBe(SubscriptionState.COOLDOWN);
    expect(sub.upstream.find((u) => u.window === LimitWindow.FIVE_HOUR)).toMatchObject({
      status: RateLimitStatus.REJECTED,
      source: ObservationSource.STREAM_EVENT,
      utilization: 1,
    });
    for (let i = 0; i < 4; i++) {
      const g = await pool.grpc.allocate({ sessionId: `n${i}` });
      expect(g.outcome.case === "subscription" && g.outcome.value.subscriptionId).not.toBe(subscriptionId);
    }
    const cursor = pool.server.writer.currentPool.state.eventSeq;
    pool.clock.set(1795456800 * 1000);
    await pool.server.runJobs();

    // History is served first: the next status change after the cursor is the cooldown's end.
    const abort = new AbortController();
    const events = pool.grpc
      .streamEvents({ afterSequence: BigInt(cursor), types: [EventType.STATUS_CHANGED] }, { signal: abort.signal })
      [Symbol.asyncIterator]();
    const next = await events.next();
    abort.abort();
    await events.return?.();
    expect(next.value?.event?.payload).toMatchObject({
      case: "statusChanged",
      value: { subscriptionId, from: SubscriptionState.COOLDOWN, to: SubscriptionState.AVAILABLE },
    });
    expect(next.value?.event?.time?.seconds).toBe(1795456800n);
    const g = await pool.grpc.allocate({ sessionId: "after-reset" });
    expect(g.outcome.case).toBe("subscription");
  });
  it("books the real CLI's transcripts at its own figures, says which dollars are estimates, and lists learned prices", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "authpool-truth-"));
    const configDir = path.join(dir, "sub1");
    const project = path.join(configDir, "projects", "-home-dev-runs-tooluse-oauth-json-work");
    await mkdir(project, { recursive: true });
    // Two requests of claude-sonnet-5-5, a model Auth Pool's table does not list; the CLI says $0.009422.
    await cp(new URL("../fixtures/claude-cli-real/transcripts/tooluse-oauth-json/", import.meta.url), project, {
      recursive: true,
    });
    // And one line of a model nothing has priced yet: the pool's own estimate (as Sonnet list price).
    const unknown = {
      type: "assistant",
      timestamp: "2026-12-02T11:30:00.000Z",
      sessionId: "7c0f3a5e-0000-4000-8000-000000000001",
      requestId: "req_nova_1",
      message: { id: "msg_nova_1", model: "claude-nova-1", usage: { input_tokens: 1000, output_tokens: 100 } },
    };
    await appendFile(path.join(project, "nova.jsonl"), `${JSON.stringify(unknown)}\n`);
    pool = await startTestPool({
      dir,
      config: {
        subscriptions: [{ id: "sub1", type: "claude-max", configDir, weeklyBudgetUsd: 100, transcripts: true }],
      },
    });
    pool.clock.set(Date.parse("2026-12-02T12:30:00Z"));
    await pool.server.runJobs();

    const status = await pool.grpc.getPoolStatus({});
    const sub1 = status.subscriptions.find((s) => s.id === "sub1")!;
    const novaUsd = (1000 * 3 + 100 * 15) / 1e6;
    expect(sub1.external?.weeklyUsd).toBeCloseTo(0.009422 + novaUsd, 9);
    expect(sub1.external?.weeklyEstimatedUsd).toBeCloseTo(novaUsd, 9);
    expect(status.modelPrices.map((p) => [p.model, p.basis])).toEqual([["claude-sonnet-5-5", PriceBasis.CLI]]);
    const sonnet55 = status.modelPrices[0]!;
    // One request: 3 in, 12 out, 1,234 cache writes, 15,000 cache reads = $0.004711 at the learned rates.
    const oneRequest =
      (3 * sonnet55.inputUsdPerMtok +
        12 * sonnet55.outputUsdPerMtok +
        1234 * sonnet55.cacheWriteUsdPerMtok +
        15000 * sonnet55.cacheReadUsdPerMtok) /
      1e6;
    expect(oneRequest).toBeCloseTo(0.004711, 6);
    expect(new Date(Number(sonnet55.learnedAt!.seconds) * 1000).toISOString().slice(0, 16)).toBe("2026-12-02T11:24");
  });
});
