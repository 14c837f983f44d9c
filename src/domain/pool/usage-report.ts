import type { Command, Rejection, ReportResult } from "../commands.js";
import { tokenTotal } from "../tokens.js";
import type { UsageReport } from "../usage.js";
import { heal, resolveLimit, throttle } from "./cooldowns.js";
import { isRetired } from "./operator-commands.js";
import { type Emit, type PoolContext, notConfigured } from "./pool-context.js";

/**
 * report books what a run on an allocated session used, once per dedupe
 * key, and what its output said about the subscription: readings (which
 * may heal estimated cooldowns), a throttle, a usage limit. A late report
 * on a session that ended, or on a subscription a reload removed, still
 * counts.
 */
export function report(
  pool: Pick<PoolContext, "state" | "settings" | "settingsOf" | "view">,
  cmd: Extract<Command, { kind: "report" }>,
  now: number,
  emit: Emit,
): ReportResult | Rejection {
  const open = pool.state.sessions.get(cmd.sessionId);
  const subscriptionId = open?.subscriptionId ?? pool.state.ended.get(cmd.sessionId)?.subscriptionId;
  if (subscriptionId === undefined) {
    return { kind: "rejected", code: "not_found", message: `session_id: session "${cmd.sessionId}" is not allocated` };
  }
  // Refuse before recording anything: a reply of not_found must mean "nothing changed".
  if (pool.settingsOf(subscriptionId) === undefined && !isRetired(pool.state, subscriptionId))
    return notConfigured(subscriptionId);
  const keys = dedupeKeys(cmd.sessionId, cmd.requestId, cmd.report.resultUuid);
  if (keys.some((k) => pool.state.dedupe.has(k))) {
    const view = pool.view(subscriptionId, now);
    if (view === undefined) return notConfigured(subscriptionId);
    return { kind: "reported", duplicate: true, view, countedCostUsd: 0 };
  }
  const r = cmd.report;
  // Rows of this run counted as external before its report arrived are the pool's own.
  const external = r.claudeSessionId === undefined ? undefined : pool.state.externalBySession.get(r.claudeSessionId);
  if (r.claudeSessionId !== undefined && external !== undefined && external.size > 0) {
    const subscriptionIds = [...new Set([...external].map((key) => key.slice(0, key.indexOf("|"))))];
    emit({ type: "transcript_reattributed", claudeSessionId: r.claudeSessionId, subscriptionIds });
  }
  const recorded = provesUse(r);
  if (recorded) {
    emit({
      type: "usage_recorded",
      sessionId: cmd.sessionId,
      subscriptionId,
      dedupeKeys: keys,
      costUsd: r.costUsd,
      tokens: r.tokens,
      models: r.models,
      durationMs: r.durationMs,
      sessionOpen: open !== undefined,
      ...(r.claudeSessionId !== undefined ? { claudeSessionId: r.claudeSessionId } : {}),
      ...(saysNothing(r) ? { activityOnly: true as const } : {}),
    });
  }
  if (r.readings.some((x) => x.utilization !== undefined)) {
    emit({ type: "upstream_observed", subscriptionId, readings: r.readings });
  }
  const healed = heal(pool, subscriptionId, r.readings, now, emit);
  let throttled: ReportResult["throttle"];
  if (r.transient?.kind === "throttle" && r.limit === undefined) {
    throttled = throttle(pool, subscriptionId, r.transient.retryAfterMs, r.transient.message, now, emit);
  }
  let limit: ReportResult["limit"];
  if (r.limit !== undefined) {
    limit = resolveLimit(pool.settings, r.limit, now);
    emit({
      type: "limit_reached",
      subscriptionId,
      kind: "upstream",
      window: limit.window,
      resetsAt: limit.resetsAt,
      estimated: limit.estimated,
      message: limit.message,
      ...(limit.modelScope !== undefined ? { modelScope: limit.modelScope } : {}),
    });
  }
  const view = pool.view(subscriptionId, now);
  if (view === undefined) return notConfigured(subscriptionId);
  return {
    kind: "reported",
    duplicate: false,
    view,
    countedCostUsd: recorded ? r.costUsd : 0,
    ...(limit ? { limit } : {}),
    ...(throttled ? { throttle: throttled } : {}),
    ...(healed.length > 0 ? { healed } : {}),
  };
}

/**
 * dedupeKeys: the caller's request id (scoped to the session, since callers
 * often number requests per session) and the Claude result's uuid (unique on
 * its own). A report seen under either key is a repeat: a gateway that
 * retries with a fresh request id but the same output still counts once.
 */
function dedupeKeys(sessionId: string, requestId: string, resultUuid: string | undefined): string[] {
  const keys: string[] = [];
  if (requestId !== "") keys.push(`r:${sessionId}:${requestId}`);
  if (resultUuid !== undefined && resultUuid !== "") keys.push(`u:${resultUuid}`);
  return keys;
}

/**
 * saysNothing: a report with no cost, tokens, readings, limit or transient
 * error, as a gateway's heartbeat sends it. A run that hit a limit used
 * nothing too, but it was a run.
 */
function saysNothing(r: UsageReport): boolean {
  return (
    r.costUsd === 0 &&
    tokenTotal(r.tokens) === 0 &&
    Object.keys(r.models).length === 0 &&
    r.readings.length === 0 &&
    r.limit === undefined &&
    r.transient === undefined
  );
}

/**
 * provesUse: what a report shows was used. A report read from output that
 * carried no cost (text, empty, a stream cut short) counts nothing; nor
 * does a throttle or an overload that used nothing (upstream refused the
 * request), which must not move a window or a request count.
 */
function provesUse(r: UsageReport): boolean {
  if (r.costUnknown === true) return false;
  if (r.transient !== undefined && r.costUsd === 0 && tokenTotal(r.tokens) === 0) return false;
  return true;
}
