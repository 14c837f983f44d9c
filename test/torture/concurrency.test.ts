import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { durationFromMs, durationMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterEach, describe, expect, it } from "vitest";
import { type AuthPoolClient, createAuthPoolClient } from "../../src/client/index.js";
import { MINUTE_MS } from "../../src/domain/index.js";
import { EventWatch } from "../../bench/torture/event-watch.js";
import { Ledger, type LedgerOptions, type Tokens, USD_EPSILON, checkStatus } from "../../bench/torture/ledger.js";
import { Prng, weighted } from "../../bench/torture/prng.js";
import { type TestPool, startTestPool } from "../support/test-server.js";

/**
 * 2,000 mixed calls (allocate, resume, report, release, status, rebalance)
 * from 12 clients over gRPC, Connect over HTTP/1.1 and Connect over HTTP/2,
 * up to 200 in flight at once, against one in-process pool. Every status
 * read during the run is checked against the clients' ledger, bounded by
 * what was acknowledged before the read and what was in flight when it came
 * back (bench/torture/ledger.ts); at the end the books must match exactly.
 * The clock moves on during the run so sessions go idle and rebalances
 * really move them while reports for them are in flight.
 *
 * A third of the new allocations ask to wait for a slot (the pool fills):
 * a release grants them, or their max_wait runs out (RESOURCE_EXHAUSTED,
 * nothing granted). The pool's clock is the test's, so a wait is measured
 * and runs out on it: the clock moves a little with every call (and 6
 * minutes every 400, which ends every wait then), and once every call is
 * issued, with no release left to come, it moves past max_wait until the
 * last waits have run out.
 */
const CALLS = 2000;
const IN_FLIGHT = 200;
const CLIENTS = 12;
const SUBSCRIPTIONS = 3;
const MAX_SESSIONS = 15;
const SEED = 6_2026;
const WAIT_SHARE = 1 / 3;
/** max_wait of a waiting allocation, and how far the clock moves with each call, ms. */
const MAX_WAIT_MS = 5_000;
const CALL_TICK_MS = 100;
// Sessions move between subscriptions (rebalance, rotation), so the ledger does not pin them.
const LEDGER: LedgerOptions = { sessionsStay: false };

let pool: TestPool | undefined;
let dir: string | undefined;
afterEach(async () => {
  await pool?.close();
  pool = undefined;
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

describe("concurrency (2,000 mixed calls)", () => {
  it("should keep every invariant at every status read and match the ledger exactly at the end", async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "authpool-concurrency-"));
    const root = dir;
    pool = await startTestPool({
      dir,
      config: {
        subscriptions: Array.from({ length: SUBSCRIPTIONS }, (_, i) => ({
          id: `sub${i + 1}`,
          type: "claude-max",
          configDir: path.join(root, `sub${i + 1}`),
          // Capacity is what binds: budgets never exclude anyone in this run.
          weeklyBudgetUsd: 1_000_000,
          fiveHourBudgetUsd: 100_000,
          maxSessions: MAX_SESSIONS,
        })),
        sessions: { activeMinutes: 5, staleMinutes: 7 * 24 * 60 },
        // Any gap in 5-hour load moves idle sessions, so on-demand rebalances do move some.
        rebalancing: { enabled: false, costGapThreshold: 0.5, maxMovesPerCycle: 5 },
      },
    });
    const p = pool;
    const clients: AuthPoolClient[] = Array.from({ length: CLIENTS }, (_, i) =>
      i % 3 === 0
        ? createAuthPoolClient(p.server.url, { timeoutMs: 30_000 })
        : i % 3 === 1
          ? createAuthPoolClient(p.server.url, { timeoutMs: 30_000, protocol: "connect", httpVersion: "1.1" })
          : createAuthPoolClient(p.server.url, { timeoutMs: 30_000, protocol: "connect", httpVersion: "2" }),
    );
    const ledger = new Ledger(LEDGER);
    const watch = new EventWatch();
    watch.follow(p.server.url, () => false);

    const rng = new Prng(SEED);
    const violations: string[] = [];
    const figures = { statusReads: 0, rebalances: 0, moves: 0, rotations: 0, maxInFlight: 0 };
    const waits = { asked: 0, grantedAfterWait: 0, grantedAtOnce: 0, ranOut: 0, maxWaiting: 0 };
    let waiting = 0;
    /** Sessions granted and not being released or resumed right now: a release or resume may pick them. */
    const idle = new Set<string>();
    const everAllocated: string[] = [];
    let nextSession = 0;
    let nextReport = 0;
    let issued = 0;
    let inFlight = 0;

    const fail = (what: string, error: unknown) => {
      const e = ConnectError.from(error);
      violations.push(`${what}: ${Code[e.code]} ${e.rawMessage}`);
    };

    async function one(client: AuthPoolClient, i: number): Promise<void> {
      // Time passes: sessions go idle (rebalance may move them) while calls for them are in flight.
      if (i > 0 && i % 400 === 0) p.clock.advance(6 * MINUTE_MS);
      p.clock.advance(CALL_TICK_MS);
      const op = weighted(rng, {
        allocate: 26,
        resume: idle.size > 0 ? 4 : 0,
        report: everAllocated.length > 0 ? 35 : 0,
        release: idle.size > 0 ? 12 : 0,
        status: 17,
        rebalance: 6,
      });
      switch (op) {
        case "allocate":
        case "resume": {
          const sessionId = op === "allocate" ? `s${nextSession++}` : rng.pick([...idle]);
          if (op === "allocate") everAllocated.push(sessionId);
          idle.delete(sessionId);
          const wait = op === "allocate" && rng.chance(WAIT_SHARE);
          ledger.allocateSent(sessionId, false);
          if (wait) {
            waits.asked++;
            waits.maxWaiting = Math.max(waits.maxWaiting, ++waiting);
          }
          try {
            const res = await client.allocate(
              wait ? { sessionId, wait, maxWait: durationFromMs(MAX_WAIT_MS) } : { sessionId },
            );
            if (wait && res.outcome.case === "subscription") {
              if (res.waited !== undefined && durationMs(res.waited) > 0) waits.grantedAfterWait++;
              else waits.grantedAtOnce++;
            }
            if (res.outcome.case === "subscription") {
              ledger.allocateGranted(sessionId, res.outcome.value.subscriptionId, res.outcome.value.resumed, false);
              if (op === "resume" && res.outcome.value.rotatedFrom !== "") figures.rotations++;
              idle.add(sessionId);
            } else {
              ledger.allocateFallback(sessionId);
            }
          } catch (error) {
            // A wait that ran out is a definite answer: nothing was granted.
            if (wait && ConnectError.from(error).code === Code.ResourceExhausted) waits.ranOut++;
            else fail(`allocate ${sessionId}`, error);
            ledger.allocateFailed(sessionId);
          } finally {
            if (wait) waiting--;
          }
          return;
        }
        case "report": {
          // Mostly sessions known to be held; some whose allocation is in flight, fell back or was released.
          const sessionId = idle.size > 0 && rng.chance(0.8) ? rng.pick([...idle]) : rng.pick(everAllocated);
          const costUsd = rng.int(1, 128) / 64;
          const tokens: Tokens = {
            input: rng.int(1, 4000),
            output: rng.int(1, 1500),
            cacheCreation: rng.int(0, 800),
            cacheRead: rng.int(0, 9000),
          };
          const rec = ledger.reportSent(sessionId, `r${nextReport++}`, costUsd, tokens);
          try {
            const res = await client.reportUsage({
              sessionId,
              requestId: rec.requestId,
              source: {
                case: "usage",
                value: {
                  costUsd,
                  inputTokens: BigInt(tokens.input),
                  outputTokens: BigInt(tokens.output),
                  cacheCreationInputTokens: BigInt(tokens.cacheCreation),
                  cacheReadInputTokens: BigInt(tokens.cacheRead),
                },
              },
            });
            ledger.reportAcked(rec, {
              duplicate: res.duplicate,
              countedCostUsd: res.countedCostUsd,
              subscriptionId: res.subscription?.id ?? "",
            });
          } catch (error) {
            // A session whose allocation fell back (or had not landed yet) is not found: nothing counted.
            if (ConnectError.from(error).code === Code.NotFound) ledger.reportRejected(rec);
            else {
              fail(`report ${rec.requestId}`, error);
              ledger.reportRejected(rec);
            }
          }
          return;
        }
        case "release": {
          const sessionId = rng.pick([...idle]);
          idle.delete(sessionId);
          ledger.releaseSent(sessionId, false);
          try {
            const res = await client.release({ sessionId });
            ledger.releaseAcked(sessionId, res.released, false);
          } catch (error) {
            fail(`release ${sessionId}`, error);
          }
          return;
        }
        case "status": {
          const before = ledger.capture();
          try {
            const res = await client.getPoolStatus({ includeSessions: true });
            const after = ledger.capture();
            figures.statusReads++;
            ledger.acknowledged.status++;
            for (const problem of checkStatus(res, before, after, LEDGER))
              violations.push(`status read ${figures.statusReads}: ${problem}`);
          } catch (error) {
            fail("status", error);
          }
          return;
        }
        case "rebalance": {
          const dryRun = rng.chance(0.25);
          try {
            const res = await client.rebalance({ dryRun });
            figures.rebalances++;
            ledger.acknowledged.rebalance++;
            if (!dryRun) figures.moves += res.moves.length;
            for (const h of res.after) {
              if (h.sessionCount > MAX_SESSIONS)
                violations.push(`rebalance left ${h.subscriptionId} with ${h.sessionCount} sessions`);
            }
          } catch (error) {
            fail("rebalance", error);
          }
          return;
        }
      }
    }

    let running = true;
    // Once every call is issued no release is left to come and the clock stands
    // still: move it past max_wait, so the queue's next tick lets the last waits run out.
    const lastWaits = (async () => {
      while (running) {
        await sleep(250);
        if (issued >= CALLS && waiting > 0) p.clock.advance(MAX_WAIT_MS);
      }
    })();
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async (_, lane) => {
        while (issued < CALLS) {
          const i = issued++;
          inFlight++;
          figures.maxInFlight = Math.max(figures.maxInFlight, inFlight);
          await one(clients[(lane + i) % CLIENTS]!, i);
          inFlight--;
        }
      }),
    );
    running = false;
    await lastWaits;

    // Quiet now: the books must match exactly, and the stream must hold every session event once.
    expect(ledger.quiet()).toBe(true);
    const before = ledger.capture();
    const final = await p.grpc.getPoolStatus({ includeSessions: true });
    violations.push(
      ...checkStatus(final, before, ledger.capture(), { ...LEDGER, exact: true }).map((v) => `final: ${v}`),
    );
    violations.push(...(await watch.caughtUp(ledger, 5000)).map((v) => `events: ${v}`));
    await watch.stop();
    violations.push(...watch.violations.map((v) => `events: ${v}`), ...ledger.violations);

    const held = ledger.heldSessions().sort();
    const totals = ledger.totals();
    const weekly = final.subscriptions.reduce((sum, s) => sum + s.weeklyUsedUsd, 0);
    console.log(
      [
        `concurrency: ${CALLS} calls, up to ${figures.maxInFlight} in flight, ${CLIENTS} clients, seed ${SEED}`,
        `acknowledged: allocate ${ledger.acknowledged.allocate} (${ledger.outcomes.granted} granted, ${ledger.outcomes.resumed} resumed, ${ledger.outcomes.fallback} fallback), ` +
          `report ${ledger.acknowledged.report} (+${ledger.outcomes.rejectedReports} NOT_FOUND), release ${ledger.acknowledged.release}, ` +
          `status ${figures.statusReads} (each checked), rebalance ${figures.rebalances} (${figures.moves} moves, ${figures.rotations} rotations on resume)`,
        `waiting allocations: ${waits.asked} asked, ${waits.grantedAfterWait} granted after a wait, ${waits.grantedAtOnce} at once, ${waits.ranOut} ran out; up to ${waits.maxWaiting} out at once`,
        `final: ${held.length} sessions held, $${totals.usd} over ${totals.reports} reports, ${watch.events} events streamed`,
      ].join("\n"),
    );

    expect(violations).toEqual([]);
    expect(final.sessions.map((s) => s.sessionId).sort()).toEqual(held);
    expect(Math.abs(weekly - totals.usd)).toBeLessThan(USD_EPSILON);
    // The run exercised what it claims to.
    expect(figures.statusReads).toBeGreaterThan(200);
    expect(ledger.outcomes.fallback).toBeGreaterThan(0);
    expect(figures.moves).toBeGreaterThan(0);
    expect(waits.grantedAfterWait).toBeGreaterThan(0);
    expect(waits.ranOut).toBeGreaterThan(0);
  }, 120_000);
});
