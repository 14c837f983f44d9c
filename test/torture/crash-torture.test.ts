import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { formatFigures, runCrashTorture } from "../../bench/torture/crash-torture.js";

/**
 * The short crash run for CI: the built CLI (npm test builds first, as for
 * test/server/crash-recovery.test.ts) is killed with SIGKILL 20 times under
 * load from 8 clients, on a fixed seed. `npm run torture` is the long run.
 */
const cli = fileURLToPath(new URL("../../dist/src/cli/main.js", import.meta.url));

describe("crash torture (kill -9, short run)", () => {
  it("should count every acknowledged call exactly once across 20 kills", async () => {
    const result = await runCrashTorture({ kills: 20, seed: 20261123, cli, runMs: [30, 300] });
    // Printed so a CI log carries the figures (docs/RELIABILITY.md quotes them).
    console.log(formatFigures(result).join("\n"));
    expect(result.violations).toEqual([]);
    expect(result.kills).toBeGreaterThanOrEqual(20);
    // Every server that got to serve was checked (the last one too), except
    // those a start-up kill took down before their check ended.
    expect(result.checksPassed + result.startupKills).toBeGreaterThanOrEqual(result.starts);
    expect(result.checksFailed).toBe(0);
    // The run did what it claims: calls died with the server and were retried.
    expect(result.acknowledged.report).toBeGreaterThan(50);
    expect(result.retries.report.sent + result.retries.allocate.sent + result.retries.release.sent).toBeGreaterThan(0);
    // Allocates waited for a slot (the lanes want more than the pool holds): some were granted after
    // a wait, some ran out, and kills came while some waited (about 2 per kill on this seed).
    // A grant lost with its reply comes back "resumed" on retry (waits.resumedAfterLoss); the ledger
    // checks each, but too few happen in 20 kills (a handful) to require one.
    expect(result.waits.grantedAfterWait).toBeGreaterThan(0);
    expect(result.waits.ranOut).toBeGreaterThan(0);
    expect(result.waits.inFlightAtKill.total).toBeGreaterThan(0);
    expect(result.startupMs.max).toBeLessThan(10_000);
  }, 180_000);
});
