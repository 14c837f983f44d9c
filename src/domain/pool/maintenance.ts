import { BUCKET_RETENTION_MS } from "../accounting.js";
import type { Command, RebalanceResult, SubscriptionHealthSummary, SweepResult } from "../commands.js";
import { computeHealth } from "../health.js";
import { planRebalance } from "../rebalance.js";
import { HOUR_MS, MINUTE_MS } from "../time.js";
import type { SubscriptionView } from "../view.js";
import { release } from "./allocation.js";
import type { Emit, PoolContext } from "./pool-context.js";

/**
 * rebalance moves idle sessions off subscriptions that should shed them
 * (see planRebalance), or with dryRun only says what it would move and how
 * the subscriptions would look after.
 */
export function rebalance(
  pool: Pick<PoolContext, "state" | "settings" | "views">,
  cmd: Extract<Command, { kind: "rebalance" }>,
  now: number,
  emit: Emit,
): RebalanceResult {
  const views = pool.views(now);
  const moves = planRebalance(views, pool.state, pool.settings, now);
  const before = views.map((v) => summary(v));
  let after: SubscriptionHealthSummary[];
  if (cmd.dryRun) {
    // Project: only session counts change (moved sessions are idle, so
    // the idle bonus and spend stay as they are).
    const delta = new Map<string, number>();
    for (const m of moves) {
      delta.set(m.from, (delta.get(m.from) ?? 0) - 1);
      delta.set(m.to, (delta.get(m.to) ?? 0) + 1);
    }
    after = views.map((v) => {
      const sessionCount = v.sessionCount + (delta.get(v.cfg.id) ?? 0);
      const health = computeHealth({
        cfg: v.cfg,
        sub: v.state,
        weekly: v.weekly,
        fiveHour: v.fiveHour,
        sessionCount,
        activeSessions: v.activeSessions,
        now,
        weights: pool.settings.health.weights,
      });
      return { ...summary(v), healthScore: health.score, sessionCount };
    });
  } else {
    for (const m of moves) {
      emit({
        type: "session_rotated",
        sessionId: m.sessionId,
        from: m.from,
        to: m.to,
        reason: m.reason,
        detail: m.detail,
      });
    }
    // A periodic run that found nothing to do is not news; an operator's
    // request always gets its record.
    if (moves.length > 0 || cmd.trigger === "on_demand")
      emit({ type: "rebalance_completed", trigger: cmd.trigger, moves });
    after = pool.views(now).map((v) => summary(v));
  }
  return { kind: "rebalanced", dryRun: cmd.dryRun, moves, before, after };
}

/**
 * sweep is the periodic housekeeping: release stale sessions, end
 * cooldowns whose reset time passed, forget dedupe keys past retention.
 */
export function sweep(pool: Pick<PoolContext, "state" | "settings">, now: number, emit: Emit): SweepResult {
  const staleBefore = now - pool.settings.sessions.staleMinutes * MINUTE_MS;
  let expired = 0;
  for (const s of [...pool.state.sessions.values()]) {
    if (s.lastActivityAt <= staleBefore) {
      release(pool, s.id, "expired", emit);
      expired++;
    }
  }
  for (const sub of pool.state.subscriptions.values()) {
    for (const c of sub.cooldowns) {
      if (c.until <= now) {
        emit({
          type: "cooldown_ended",
          subscriptionId: sub.id,
          window: c.window,
          ...(c.modelScope !== undefined ? { modelScope: c.modelScope } : {}),
        });
      }
    }
  }
  const horizon = now - pool.settings.dedupeRetentionHours * HOUR_MS;
  const oldestKey = pool.state.dedupe.values().next();
  const oldestEnded = pool.state.ended.values().next();
  // Transcript rows are remembered as long as a row that old could still
  // count (a week, plus the buckets' slack): forgetting one sooner would
  // count it again if its file were read again.
  const transcriptsBefore = now - BUCKET_RETENTION_MS;
  const oldestSession = pool.state.claudeSessions.values().next();
  const transcriptsDue =
    (!oldestSession.done && oldestSession.value < transcriptsBefore) ||
    someOlder(pool.state.transcriptRows.values(), transcriptsBefore);
  if (
    transcriptsDue ||
    (!oldestKey.done && oldestKey.value < horizon) ||
    (!oldestEnded.done && oldestEnded.value.endedAt < horizon)
  ) {
    emit({ type: "pruned", before: horizon, ...(transcriptsDue ? { transcriptsBefore } : {}) });
  }
  return { kind: "swept", expired };
}

function summary(v: SubscriptionView): SubscriptionHealthSummary {
  return {
    subscriptionId: v.cfg.id,
    healthScore: v.health.score,
    fiveHourCostUsd: v.windowCostUsd,
    sessionCount: v.sessionCount,
  };
}

function someOlder(rows: Iterable<{ at: number }>, before: number): boolean {
  for (const row of rows) if (row.at < before) return true;
  return false;
}
