import {
  type GetPoolStatusResponse,
  type RebalanceResponse,
  SubscriptionState,
  type SubscriptionStatus,
} from "../../gen/authpool/v1/auth_pool_pb.js";
import { stateName } from "./enum-names.js";
import { fiveHourPercent } from "./subscription-cells.js";

// Subscriptions a rebalance drains first: their idle sessions go anywhere that can take them.
const DRAINED = new Set([SubscriptionState.COOLDOWN, SubscriptionState.PAUSED, SubscriptionState.DRAINING]);
// Subscriptions a rebalance may move a session to (when they have room, and its model and priority fit).
const TAKING = new Set([SubscriptionState.AVAILABLE, SubscriptionState.APPROACHING]);

/**
 * noMovesReason says why a rebalance moved nothing, from the pool's status
 * read right after it: the reply carries only the moves. It follows
 * planRebalance (src/domain/rebalance.ts): only idle sessions move, first
 * off subscriptions that cannot serve, then from the most to the least
 * loaded while the 5-hour load gap reaches rebalancing.costGapThreshold.
 */
export function noMovesReason(status: GetPoolStatusResponse): string {
  const subs = status.subscriptions;
  const sessions = subs.reduce((n, s) => n + s.sessionCount, 0);
  if (sessions === 0) return "no sessions: there is nothing to move";
  const idle = subs.filter((s) => s.idleSessions > 0);
  if (idle.length === 0) {
    const which = sessions === 1 ? "the one session is" : `all ${sessions} sessions are`;
    return `no idle sessions: ${which} active, and a session in use never moves`;
  }
  const idleCount = idle.reduce((n, s) => n + s.idleSessions, 0);
  const targets = (from: SubscriptionStatus) =>
    subs.filter((t) => t.id !== from.id && TAKING.has(t.status) && t.sessionCount < t.maxSessions);
  const stranded = idle.filter((s) => DRAINED.has(s.status));
  if (stranded.length > 0 && stranded.every((s) => targets(s).length === 0)) {
    return `the idle sessions on ${stranded.map((s) => `${s.id} (${stateName(s.status)})`).join(", ")} have nowhere to go: no other subscription is available with a free slot`;
  }
  const movable = idle.filter((s) => targets(s).length > 0);
  if (movable.length === 0) {
    return `the ${idleCount} idle session${idleCount === 1 ? "" : "s"} ha${idleCount === 1 ? "s" : "ve"} nowhere to go: no other subscription is available with a free slot`;
  }
  const busiest = movable.reduce((a, b) => (fiveHourPercent(b) > fiveHourPercent(a) ? b : a));
  const least = targets(busiest).reduce((a, b) => (fiveHourPercent(b) < fiveHourPercent(a) ? b : a));
  return (
    `the 5-hour load is even enough: from ${busiest.id} (${pct(busiest)}, with idle sessions) to ${least.id} (${pct(least)}) ` +
    "the gap is below rebalancing.costGapThreshold (or the idle sessions' model or priority rules the others out)"
  );
}

/**
 * periodicNote says whether the pool also rebalances on its own
 * (rebalancing.enabled), where that matters: always when it does not, since
 * idle sessions then move only when someone asks, and after a rebalance that
 * moved nothing. Undefined when the reply does not say (an older pool).
 */
export function periodicNote(reply: RebalanceResponse): string | undefined {
  if (reply.periodicEnabled === false) {
    return "off (rebalancing.enabled is false): idle sessions move only when a rebalance is asked for, like this one";
  }
  if (reply.periodicEnabled === true && reply.moves.length === 0) {
    return "on: the pool tries again every rebalancing.intervalSeconds";
  }
  return undefined;
}

function pct(s: SubscriptionStatus): string {
  return `5-hour ${Math.round(fiveHourPercent(s))}%`;
}
