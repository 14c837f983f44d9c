import type { Command, DrainedResult, PausedResult, ReconfiguredResult, Rejection } from "../commands.js";
import type { SubscriptionSettings } from "../settings.js";
import { type PoolState, sessionsOf } from "../state.js";
import { type Emit, type PoolContext, notConfigured } from "./pool-context.js";

/** setPaused: an operator stops (or resumes) placing sessions on a subscription; its sessions stay. */
export function setPaused(
  pool: Pick<PoolContext, "state" | "isConfigured" | "view">,
  cmd: Extract<Command, { kind: "set_paused" }>,
  now: number,
  emit: Emit,
): PausedResult | Rejection {
  if (!pool.isConfigured(cmd.subscriptionId)) return notConfigured(cmd.subscriptionId);
  if (pool.state.subscriptions.get(cmd.subscriptionId)?.paused !== cmd.paused) {
    emit({ type: "paused_set", subscriptionId: cmd.subscriptionId, paused: cmd.paused });
  }
  return { kind: "paused", view: pool.view(cmd.subscriptionId, now)! };
}

/**
 * setDrained: an operator drains a subscription (no new sessions; the ones
 * it holds resume there until the rebalance moves them) or ends its drain.
 */
export function setDrained(
  pool: Pick<PoolContext, "state" | "isConfigured" | "view">,
  cmd: Extract<Command, { kind: "set_drained" }>,
  now: number,
  emit: Emit,
): DrainedResult | Rejection {
  if (!pool.isConfigured(cmd.subscriptionId)) return notConfigured(cmd.subscriptionId);
  const drain = pool.state.subscriptions.get(cmd.subscriptionId)?.drain;
  if ((drain !== undefined) !== cmd.drained) {
    emit({ type: "drained_set", subscriptionId: cmd.subscriptionId, drained: cmd.drained, cause: "operator" });
  }
  return { kind: "drained", view: pool.view(cmd.subscriptionId, now)! };
}

/**
 * drainRemoved drains the subscriptions a reload dropped, remembering
 * their settings so the sessions they hold can resume until they end;
 * and ends the drain of removed ones the new config brought back.
 */
export function drainRemoved(
  pool: Pick<PoolContext, "state" | "settings">,
  removed: readonly SubscriptionSettings[],
  emit: Emit,
): ReconfiguredResult {
  const draining: string[] = [];
  for (const cfg of removed) {
    if (sessionsOf(pool.state, cfg.id).size === 0) continue;
    emit({ type: "drained_set", subscriptionId: cfg.id, drained: true, cause: "removed", settings: cfg });
    draining.push(cfg.id);
  }
  for (const cfg of pool.settings.subscriptions) {
    if (pool.state.subscriptions.get(cfg.id)?.drain?.cause === "removed") {
      emit({ type: "drained_set", subscriptionId: cfg.id, drained: false, cause: "removed" });
    }
  }
  return { kind: "reconfigured", draining };
}

/** isRetired: a subscription a reload removed; a late report on its sessions still counts. */
export function isRetired(state: PoolState, subscriptionId: string): boolean {
  return state.subscriptions.get(subscriptionId)?.drain?.cause === "removed";
}
