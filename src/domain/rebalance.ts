import { sessionActivity } from "./activity.js";
import type { RotationReason } from "./events.js";
import type { PoolSettings } from "./settings.js";
import type { PoolState, SessionState } from "./state.js";
import { type SubscriptionView, exclusionOf } from "./view.js";

/** RebalanceMove is one planned move of an idle session. */
export interface RebalanceMove {
  sessionId: string;
  from: string;
  to: string;
  reason: RotationReason;
  detail: string;
}

/**
 * loadUsd is a subscription's 5-hour load in USD: the window's share used
 * (upstream utilization when known) times the expected window cost, so
 * subscriptions of different sizes and bases compare in one unit.
 */
export function loadUsd(v: SubscriptionView): number {
  return v.fiveHour.value * v.cfg.fiveHourBudgetUsd;
}

/**
 * planRebalance decides which idle sessions to move, at most
 * maxMovesPerCycle. First it drains subscriptions that cannot serve
 * (cooldown, paused); then, while the gap in 5-hour load between the most
 * loaded subscription with idle sessions and the least loaded eligible one
 * is at least costGapThreshold, it moves the longest-idle session across.
 * Active sessions are never moved (a running `claude` cannot switch
 * accounts mid-turn); targets must be able to take the session (capacity,
 * cooldown, pause, its priority's weekly threshold, its model's limits).
 */
export function planRebalance(
  views: readonly SubscriptionView[],
  state: PoolState,
  settings: PoolSettings,
  now: number,
): RebalanceMove[] {
  const max = settings.rebalancing.maxMovesPerCycle;
  const counts = new Map(views.map((v) => [v.cfg.id, v.sessionCount]));
  const moved = new Set<string>();
  const moves: RebalanceMove[] = [];

  const idleOn = (v: SubscriptionView): SessionState[] =>
    [...(state.bySubscription.get(v.cfg.id) ?? [])]
      .map((id) => state.sessions.get(id)!)
      .filter((s) => s !== undefined && !moved.has(s.id) && sessionActivity(s, now, settings) === "idle")
      .sort((a, b) => a.lastActivityAt - b.lastActivityAt || (a.id < b.id ? -1 : 1));

  const canTake = (v: SubscriptionView, s: SessionState): boolean =>
    exclusionOf(
      { ...v, sessionCount: counts.get(v.cfg.id)! },
      { priority: s.priority, model: s.model, holdsSlot: false },
      settings,
    ) === undefined;

  const leastLoaded = (s: SessionState, except: string): SubscriptionView | undefined => {
    let best: SubscriptionView | undefined;
    for (const v of views) {
      if (v.cfg.id === except || !canTake(v, s)) continue;
      if (
        best === undefined ||
        loadUsd(v) < loadUsd(best) ||
        (loadUsd(v) === loadUsd(best) && counts.get(v.cfg.id)! < counts.get(best.cfg.id)!)
      ) {
        best = v;
      }
    }
    return best;
  };

  const move = (
    s: SessionState,
    from: SubscriptionView,
    to: SubscriptionView,
    reason: RotationReason,
    detail: string,
  ) => {
    moves.push({ sessionId: s.id, from: from.cfg.id, to: to.cfg.id, reason, detail });
    moved.add(s.id);
    counts.set(from.cfg.id, counts.get(from.cfg.id)! - 1);
    counts.set(to.cfg.id, counts.get(to.cfg.id)! + 1);
  };

  for (const v of views) {
    if (v.status !== "cooldown" && v.status !== "paused" && v.status !== "draining") continue;
    for (const s of idleOn(v)) {
      if (moves.length >= max) return moves;
      const to = leastLoaded(s, v.cfg.id);
      if (to === undefined) continue; // another session (other model or priority) may still have a target
      move(
        s,
        v,
        to,
        v.status === "cooldown" ? "cooldown" : "drain",
        v.status === "cooldown"
          ? `${v.cfg.id} is cooling down: ${v.cooldown?.reason ?? ""}`
          : `${v.cfg.id} is ${v.status}`,
      );
    }
  }

  const byLoad = [...views].sort((a, b) => loadUsd(b) - loadUsd(a) || (a.cfg.id < b.cfg.id ? -1 : 1));
  while (moves.length < max) {
    let done = true;
    for (const source of byLoad) {
      // The longest-idle session some subscription can take (its model or priority may rule out every target).
      let s: SessionState | undefined;
      let to: SubscriptionView | undefined;
      for (const candidate of idleOn(source)) {
        to = leastLoaded(candidate, source.cfg.id);
        if (to !== undefined) {
          s = candidate;
          break;
        }
      }
      if (s === undefined || to === undefined) continue;
      const gap = loadUsd(source) - loadUsd(to);
      if (gap < settings.rebalancing.costGapThreshold) break;
      move(
        s,
        source,
        to,
        "rebalance",
        `5-hour load $${loadUsd(source).toFixed(2)} vs $${loadUsd(to).toFixed(2)} (gap $${gap.toFixed(2)})`,
      );
      done = false;
      break;
    }
    if (done) break;
  }
  return moves;
}
