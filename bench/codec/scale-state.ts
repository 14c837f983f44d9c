import {
  type CountedRow,
  DAY_MS,
  HOUR_MS,
  type PoolState,
  type SessionState,
  type SubscriptionState,
  type UsageBucket,
  createPoolState,
} from "../../src/domain/index.js";
import { createRng } from "../sim/prng.js";

/** ScaleStateOptions sizes the state; defaults are the scale benchmark's largest size. */
export interface ScaleStateOptions {
  /** Default: 1,000. */
  subscriptions: number;
  /** Open sessions. Default: 100,000. */
  sessions: number;
  /** Idempotency keys remembered. Default: 1,000,000. */
  dedupeKeys: number;
  /** Released sessions remembered. Default: 100,000. */
  ended: number;
  /** Transcript rows counted. Default: 100,000. */
  transcriptRows: number;
  /** Days of hourly buckets per subscription. Default: 8 (the retention). */
  bucketDays: number;
}

const defaults: ScaleStateOptions = {
  subscriptions: 1_000,
  sessions: 100_000,
  dedupeKeys: 1_000_000,
  ended: 100_000,
  transcriptRows: 100_000,
  bucketDays: 8,
};

const NOW = Date.parse("2026-10-31T00:00:00Z");

/**
 * buildScaleState constructs a pool state of the scale benchmark's size
 * directly, in the shapes applyEvent gives it (same fields, same order, same
 * optional parts): driving a million reports through Pool.run would take
 * minutes and the codec only sees the result. Every subscription has an
 * hourly bucket for each hour of the retention, upstream readings with
 * calibration anchors, and one in ten a cooldown; dedupe keys are the two
 * forms a report makes (src/domain/pool/usage-report.ts:
 * "r:<session>:<request>", "u:<result uuid>"); every open and recently
 * ended session is a known Claude session.
 */
export function buildScaleState(options: Partial<ScaleStateOptions> = {}): PoolState {
  const o = { ...defaults, ...options };
  const rng = createRng(42);
  const ids = Array.from({ length: o.subscriptions }, (_, i) => `sub${i}`);
  const state = createPoolState(ids);
  const money = () => Math.round(rng.logNormal(0.2, 0.8) * 10_000) / 10_000;
  const tokensOf = (usd: number) => ({
    inputTokens: Math.round(usd * 2_000),
    outputTokens: Math.round(usd * 4_000),
    cacheCreationInputTokens: Math.round(usd * 20_000),
    cacheReadInputTokens: Math.round(usd * 200_000),
  });

  const hours = o.bucketDays * 24;
  for (const [i, id] of ids.entries()) {
    const sub: SubscriptionState = state.subscriptions.get(id)!;
    for (let h = hours; h > 0; h--) {
      const cost = money() * 5;
      const bucket: UsageBucket = {
        hour: NOW - h * HOUR_MS,
        costUsd: cost,
        tokens: tokensOf(cost),
        requests: rng.int(1, 40),
      };
      if (h % 7 === 0) bucket.externalCostUsd = cost / 3;
      sub.buckets.push(bucket);
    }
    sub.window = { start: NOW - 2 * HOUR_MS, end: NOW + 3 * HOUR_MS, estimated: i % 2 === 0 };
    sub.lastUsedAt = NOW - rng.int(0, 600_000);
    sub.upstream.five_hour = {
      utilization: rng.uniform(0, 0.6),
      resetsAt: NOW + 3 * HOUR_MS,
      observedAt: NOW - 600_000,
      costSinceUsd: money(),
      status: "allowed",
      source: "stream",
    };
    sub.upstream.seven_day = {
      utilization: rng.uniform(0, 0.5),
      resetsAt: NOW + 4 * DAY_MS,
      observedAt: NOW - 600_000,
      costSinceUsd: money(),
      status: "allowed",
      source: "stream",
    };
    sub.calibration = {
      five_hour: {
        deltaSum: 0.2,
        costSum: 12.5,
        samples: 4,
        anchor: { utilization: 0.3, resetsAt: NOW + 3 * HOUR_MS, at: NOW - 600_000, costUsd: 1.25 },
      },
      seven_day: { deltaSum: 0.1, costSum: 80, samples: 2, anchor: { utilization: 0.2, at: NOW - DAY_MS, costUsd: 7 } },
    };
    if (i % 10 === 0) {
      sub.cooldowns.push({
        since: NOW - HOUR_MS,
        until: NOW + HOUR_MS,
        window: "five_hour",
        estimated: false,
        reason: "usage limit reached",
      });
      sub.status = "cooldown";
      sub.crossed = [0.5, 0.75];
    }
  }

  for (let n = 0; n < o.sessions; n++) {
    const id = `s${n}`;
    const cost = money() * 3;
    const session: SessionState = {
      id,
      subscriptionId: ids[n % ids.length]!,
      allocatedAt: NOW - rng.int(0, 30 * DAY_MS),
      lastActivityAt: NOW - rng.int(0, DAY_MS),
      costUsd: cost,
      tokens: tokensOf(cost),
      requests: rng.int(0, 8),
      priority: "normal",
      model: "sonnet",
      estimatedTokens: 0,
      client: n % 3 === 0 ? "default" : `client-${n % 7}`,
    };
    if (n % 50 === 0) session.rotatedFrom = ids[(n + 1) % ids.length]!;
    state.sessions.set(id, session);
    state.claudeSessions.set(id, session.lastActivityAt);
  }
  for (let n = 0; n < o.ended; n++) {
    const id = `e${n}`;
    const endedAt = NOW - 2 * DAY_MS + n;
    state.ended.set(id, { subscriptionId: ids[n % ids.length]!, endedAt });
    state.claudeSessions.set(id, endedAt);
  }
  for (let n = 0; n < o.dedupeKeys; n += 2) {
    const at = NOW - 2 * DAY_MS + n;
    state.dedupe.set(`r:s${n % o.sessions}:r${n}`, at);
    state.dedupe.set(`u:00000000-0000-4000-8000-${String(n).padStart(12, "0")}`, at);
  }
  for (let n = 0; n < o.transcriptRows; n++) {
    const sub = ids[n % ids.length]!;
    const cost = money();
    const row: CountedRow = {
      at: NOW - rng.int(0, 7 * DAY_MS),
      tokens: tokensOf(cost),
      costUsd: cost,
      ...(n % 3 !== 0 ? { sessionId: `ext-${n % 20_000}` } : {}),
    };
    if (n % 5 === 0) row.pool = true;
    state.transcriptRows.set(`${sub}|msg_${n.toString(36).padStart(10, "0")}:req_${n}`, row);
  }
  return state;
}
