import type { Command, CredentialsResult, ObservedResult, Rejection } from "../commands.js";
import { modelFamily } from "../model-family.js";
import { heal } from "./cooldowns.js";
import { type Emit, type PoolContext, notConfigured } from "./pool-context.js";

/**
 * observe records upstream readings taken outside a run. A window upstream
 * reports as rejected benches the subscription (or the model family) until
 * its reset, once: repeated polls of the same limit add nothing.
 */
export function observe(
  pool: Pick<PoolContext, "state" | "isConfigured" | "view">,
  cmd: Extract<Command, { kind: "observe" }>,
  now: number,
  emit: Emit,
): ObservedResult | Rejection {
  if (!pool.isConfigured(cmd.subscriptionId)) return notConfigured(cmd.subscriptionId);
  if (cmd.readings.some((r) => r.utilization !== undefined)) {
    emit({ type: "upstream_observed", subscriptionId: cmd.subscriptionId, readings: cmd.readings });
  }
  const healed = heal(pool, cmd.subscriptionId, cmd.readings, now, emit);
  const sub = pool.state.subscriptions.get(cmd.subscriptionId)!;
  for (const r of cmd.readings) {
    if (r.status !== "rejected" || r.resetsAt === undefined || r.resetsAt <= now) continue;
    const scope = modelFamily(r.window);
    if (sub.cooldowns.some((c) => c.modelScope === scope && c.until >= r.resetsAt!)) continue;
    emit({
      type: "limit_reached",
      subscriptionId: cmd.subscriptionId,
      kind: "upstream",
      window: r.window,
      resetsAt: r.resetsAt,
      estimated: false,
      message: `${cmd.source}: ${r.window} at ${Math.round((r.utilization ?? 1) * 100)}%`,
      ...(scope !== undefined ? { modelScope: scope } : {}),
    });
  }
  return { kind: "observed", view: pool.view(cmd.subscriptionId, now)!, ...(healed.length > 0 ? { healed } : {}) };
}

/**
 * recordCredentials records what a check of a subscription's config dir and
 * login found, only when it differs from what is recorded.
 */
export function recordCredentials(
  pool: Pick<PoolContext, "state" | "settingsOf">,
  cmd: Extract<Command, { kind: "credentials" }>,
  emit: Emit,
): CredentialsResult | Rejection {
  const sub = pool.state.subscriptions.get(cmd.subscriptionId);
  if (sub === undefined || pool.settingsOf(cmd.subscriptionId) === undefined) {
    return { kind: "rejected", code: "not_found", message: `unknown subscription ${cmd.subscriptionId}` };
  }
  const same =
    cmd.status === "ok"
      ? sub.login === undefined
      : sub.login?.status === cmd.status && sub.login?.reason === cmd.reason;
  if (same) return { kind: "credentials", changed: false };
  emit({ type: "credentials_changed", subscriptionId: cmd.subscriptionId, status: cmd.status, reason: cmd.reason });
  return { kind: "credentials", changed: true };
}
