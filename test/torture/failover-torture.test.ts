import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import {
  type FailoverTortureResult,
  formatFailoverFigures,
  runFailoverTorture,
} from "../../bench/torture/failover-torture.js";

/**
 * The short failover runs for CI: several built CLIs (npm test builds
 * first) on one store, the current leader killed with SIGKILL under load
 * from clients spread over every instance, on fixed seeds. `npm run torture
 * -- --instances 3 --store postgres` is the long run.
 */
const cli = fileURLToPath(new URL("../../dist/src/cli/main.js", import.meta.url));
/**
 * The takeover bound is lease TTL (2 s) + 1 s + this slack. CI runs these
 * beside the other test files on two CPUs, where a process start can take
 * 5 s; the slack keeps such noise from failing the run (the long run uses 500 ms).
 */
const SLACK_MS = 1_500;

function expectClean(result: FailoverTortureResult, kills: number): void {
  // Printed so a CI log carries the figures (docs/RELIABILITY.md quotes them).
  console.log(formatFailoverFigures(result).join("\n"));
  expect(result.violations).toEqual([]);
  expect(result.kills).toBe(kills);
  // An exact check at the start, after every kill, and at the end, on every instance.
  expect(result.checksPassed).toBe(kills + 2);
  expect(result.checksFailed).toBe(0);
  // Every kill was followed by a write through a surviving instance within lease TTL + 1 s (+ slack).
  expect(result.takeoverMs.count).toBe(kills);
  expect(result.takeoverMs.max).toBeLessThanOrEqual(result.takeoverMs.boundMs);
  // The run did what it claims: calls died with the leader and were retried, standbys were read under load.
  expect(result.acknowledged.report).toBeGreaterThan(100);
  expect(result.unknownFate).toBeGreaterThan(0);
  expect(result.liveReads.standby).toBeGreaterThan(0);
  // Allocates waited in the leader's queue: some were granted after a wait, some ran out, and
  // leader kills came while some waited (3 to 5 per kill on these seeds). A grant lost with its
  // reply comes back "resumed" on retry (waits.resumedAfterLoss); too rare in a few kills to require.
  expect(result.waits.grantedAfterWait).toBeGreaterThan(0);
  expect(result.waits.ranOut).toBeGreaterThan(0);
  expect(result.waits.inFlightAtKill.total).toBeGreaterThan(0);
  expect(result.events.comparedUpTo).toBe(result.events.lastSequence);
}

// Start-up here is a liveness check (an instance that never serves), not a measure:
// test files run side by side on CI's two cores, so the bench's 10 s bound is too tight.
const MAX_STARTUP_MS = 30_000;

describe("failover torture (leader kill -9, short runs)", () => {
  it("3 instances on PostgreSQL: counts every acknowledged call once across 10 leader kills", async () => {
    const result = await runFailoverTorture({
      instances: 3,
      store: "postgres",
      kills: 10,
      seed: 20261124,
      cli,
      runMs: [100, 500],
      slackMs: SLACK_MS,
      maxStartupMs: MAX_STARTUP_MS,
    });
    expectClean(result, 10);
  }, 150_000);

  it("2 instances on one SQLite file: counts every acknowledged call once across 6 leader kills", async () => {
    const result = await runFailoverTorture({
      instances: 2,
      store: "sqlite",
      kills: 6,
      seed: 20261125,
      cli,
      runMs: [100, 500],
      slackMs: SLACK_MS,
      maxStartupMs: MAX_STARTUP_MS,
    });
    expectClean(result, 6);
  }, 120_000);
});
