import { mkdtemp } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { AuthPoolClient } from "../../src/client/index.js";
import { type TestPool, startTestPool, testConfigRaw } from "../support/test-server.js";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

let pool: TestPool | undefined;
afterEach(async () => {
  await pool?.close();
  pool = undefined;
});

/** oneAccount is the test pool's first subscription alone, with its own weekly threshold when given. */
function oneAccount(dir: string, weeklyBudgetThreshold?: number | "auto") {
  const [first] = testConfigRaw(dir).subscriptions as Record<string, unknown>[];
  return [{ ...first, ...(weeklyBudgetThreshold !== undefined ? { weeklyBudgetThreshold } : {}) }];
}

/**
 * ownerUses runs the week the domain's reserve test runs, through ReportUsage:
 * three pairs of $5 moving the week 5 points each teach the pool 1% per
 * dollar, then overnight, with nobody in the pool on it, the week rises 12
 * points.
 */
async function ownerUses(p: TestPool, c: AuthPoolClient): Promise<void> {
  const resetsAt = { seconds: BigInt(Math.floor((p.clock.now() + 3 * 24 * HOUR) / 1000)) };
  let n = 0;
  const report = (costUsd: number, utilization?: number) =>
    c.reportUsage({
      sessionId: "s",
      requestId: `r${n++}`,
      source: {
        case: "usage",
        value: {
          costUsd,
          ...(utilization !== undefined ? { rateLimits: [{ window: 2, status: 1, utilization, resetsAt }] } : {}),
        },
      },
    });
  await c.allocate({ sessionId: "s" });
  let u = 0.1;
  await report(0, u);
  for (let i = 0; i < 3; i++) {
    p.clock.advance(10 * MINUTE);
    await report(5);
    p.clock.advance(MINUTE);
    u += 0.05;
    await report(0, u);
  }
  p.clock.advance(8 * HOUR);
  await report(0, 0.37);
}

/** statusAfterOwnerUse is the one account's status after ownerUses, with its own threshold when given. */
async function statusAfterOwnerUse(weeklyBudgetThreshold?: number | "auto") {
  const dir = await mkdtemp(path.join(os.tmpdir(), "authpool-owner-"));
  pool = await startTestPool({ dir, config: { subscriptions: oneAccount(dir, weeklyBudgetThreshold) } });
  await ownerUses(pool, pool.grpc);
  const [s] = (await pool.grpc.getPoolStatus({})).subscriptions;
  return s;
}

describe("GetPoolStatus owner_use", () => {
  it("shows an owner's use outside the pool under a fixed threshold, keeping nothing back", async () => {
    const s = await statusAfterOwnerUse();
    expect(s?.ownerUse?.outsideWeek).toBeCloseTo(0.12, 6);
    expect(s?.ownerUse?.learned).toBe(false);
    expect(s?.ownerUse?.keptBack).toBe(0);
    expect(s?.weeklyThreshold).toBe(1);
  });

  it("keeps it back on an account whose own threshold is auto", async () => {
    const s = await statusAfterOwnerUse("auto");
    expect(s?.ownerUse?.outsideWeek).toBeCloseTo(0.12, 6);
    expect(s?.ownerUse?.learned).toBe(true);
    expect(s?.ownerUse?.keptBack).toBeGreaterThan(0.02);
    expect(s?.weeklyThreshold).toBeCloseTo(1 - (s?.ownerUse?.keptBack ?? 0), 10);
  });
});
