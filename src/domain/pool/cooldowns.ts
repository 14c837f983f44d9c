import type { ClearedResult, Command, Rejection } from "../commands.js";
import { DEFAULT_THROTTLE_SECONDS, type PoolSettings } from "../settings.js";
import type { Cooldown } from "../state.js";
import { MINUTE_MS } from "../time.js";
import type { LimitSignal, LimitWindow, RateLimitReading } from "../usage.js";
import { type Emit, type PoolContext, notConfigured } from "./pool-context.js";

/**
 * throttle pauses new placements on a subscription after a request-scoped
 * 429, for the retry-after upstream gave, else cooldown.throttleSeconds. A
 * pause already reaching as far is not extended or announced again.
 */
export function throttle(
  pool: Pick<PoolContext, "state" | "settings">,
  subscriptionId: string,
  retryAfterMs: number | undefined,
  reason: string,
  now: number,
  emit: Emit,
): { until: number; estimated: boolean } {
  const estimated = retryAfterMs === undefined;
  const until = now + (retryAfterMs ?? (pool.settings.cooldown.throttleSeconds ?? DEFAULT_THROTTLE_SECONDS) * 1000);
  const current = pool.state.subscriptions.get(subscriptionId)?.throttle;
  if (current !== undefined && current.until >= until) return { until: current.until, estimated };
  emit({ type: "throttled", subscriptionId, until, estimated, reason });
  return { until, estimated };
}

/**
 * heal ends the cooldowns in force whose reset was only estimated (a text
 * without a zone, no reset at all) when a reading taken now shows their
 * window allowed: upstream's word beats a guess. A model-scoped cooldown
 * heals on its model's window; one of an unknown window when the readings
 * hold a window of the whole subscription and none of those is rejected.
 * Exact resets stand: upstream itself gave them.
 */
export function heal(
  pool: Pick<PoolContext, "state">,
  subscriptionId: string,
  readings: readonly RateLimitReading[],
  now: number,
  emit: Emit,
): Cooldown[] {
  const sub = pool.state.subscriptions.get(subscriptionId);
  if (sub === undefined || readings.length === 0) return [];
  const healed: Cooldown[] = [];
  for (const c of sub.cooldowns) {
    if (!c.estimated || c.until <= now || c.since >= now) continue;
    const proof = allowedProof(c, readings);
    if (proof === undefined) continue;
    healed.push(c);
    emit({
      type: "cooldown_cleared",
      subscriptionId,
      target: "cooldown",
      window: c.window,
      ...(c.modelScope !== undefined ? { modelScope: c.modelScope } : {}),
      cause: "upstream",
      detail: `cooldown cleared: ${describeReading(proof)} (its reset was estimated)`,
    });
  }
  return healed;
}

/**
 * clearCooldown: an operator who knows the account works again ends its
 * cooldowns (or one model family's) and its throttle pause, each recorded.
 */
export function clearCooldown(
  pool: Pick<PoolContext, "state" | "isConfigured" | "view">,
  cmd: Extract<Command, { kind: "clear_cooldown" }>,
  now: number,
  emit: Emit,
): ClearedResult | Rejection {
  if (!pool.isConfigured(cmd.subscriptionId)) return notConfigured(cmd.subscriptionId);
  const sub = pool.state.subscriptions.get(cmd.subscriptionId)!;
  const detail = `cleared by an operator${cmd.reason.trim() === "" ? "" : `: ${cmd.reason.trim()}`}`;
  const cleared = sub.cooldowns.filter(
    (c) => c.until > now && (cmd.modelScope === undefined || c.modelScope === cmd.modelScope),
  );
  for (const c of cleared) {
    emit({
      type: "cooldown_cleared",
      subscriptionId: cmd.subscriptionId,
      target: "cooldown",
      window: c.window,
      ...(c.modelScope !== undefined ? { modelScope: c.modelScope } : {}),
      cause: "operator",
      detail,
    });
  }
  const throttleCleared = cmd.modelScope === undefined && sub.throttle !== undefined && sub.throttle.until > now;
  if (throttleCleared) {
    emit({
      type: "cooldown_cleared",
      subscriptionId: cmd.subscriptionId,
      target: "throttle",
      window: "unknown",
      cause: "operator",
      detail,
    });
  }
  return { kind: "cleared", cleared, throttleCleared, view: pool.view(cmd.subscriptionId, now)! };
}

/** resolveLimit gives a limit without a reset time the configured default cooldown. */
export function resolveLimit(
  settings: PoolSettings,
  limit: LimitSignal,
  now: number,
): LimitSignal & { resetsAt: number } {
  if (limit.resetsAt !== undefined) return { ...limit, resetsAt: limit.resetsAt };
  return { ...limit, resetsAt: now + settings.cooldown.defaultMinutes * MINUTE_MS, estimated: true };
}

const WHOLE_WINDOWS: readonly LimitWindow[] = ["five_hour", "seven_day"];

/** allowedProof finds the reading that shows a cooldown's window allowed, if one does. */
function allowedProof(c: Cooldown, readings: readonly RateLimitReading[]): RateLimitReading | undefined {
  const allowed = (window: string) => readings.find((r) => r.window === window && r.status !== "rejected");
  if (c.modelScope !== undefined) return allowed(`seven_day_${c.modelScope}`);
  // Overage "allowed" says nothing about the subscription's own windows.
  if (c.window === "overage") return undefined;
  if (c.window !== "unknown") return allowed(c.window);
  const whole = readings.filter((r) => WHOLE_WINDOWS.includes(r.window));
  if (whole.some((r) => r.status === "rejected")) return undefined;
  return whole[0];
}

function describeReading(r: RateLimitReading): string {
  const used = r.utilization === undefined ? "" : ` at ${Math.round(r.utilization * 100)}%`;
  return `${r.source ?? "report"} reading: ${r.window} ${r.status}${used}`;
}
