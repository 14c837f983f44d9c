import { formatPercent } from "./format.js";
import type { EventBody, SubscriptionStatusName } from "./events.js";
import { HOUR_MS } from "./time.js";
import type { PoolSettings } from "./settings.js";
import type { SubscriptionView } from "./view.js";

/**
 * observeSubscription compares a subscription's derived view with what was
 * last announced and returns the events that announce the difference: a
 * status change (with the safeguard that caused a "limited"), and usage
 * thresholds crossed upwards (once per crossing) or dropped below (silently
 * re-arming them). Pure: the caller emits and applies them. `cleared` is
 * why a cooldown was cleared by the command being announced, if it was: the
 * reason a status change out of cooldown gives.
 */
export function observeSubscription(v: SubscriptionView, settings: PoolSettings, cleared?: string): EventBody[] {
  const events: EventBody[] = [];
  const id = v.cfg.id;
  const previous: SubscriptionStatusName = v.state.status ?? "available";
  if (v.status !== previous) {
    const reason = previous === "cooldown" && cleared !== undefined ? cleared : reasonFor(v, previous);
    events.push({ type: "status_changed", subscriptionId: id, from: previous, to: v.status, reason });
    if (v.status === "limited") {
      const full = v.sessionCount >= v.cfg.maxSessions;
      events.push({
        type: "limit_reached",
        subscriptionId: id,
        kind: full ? "sessions" : "weekly_threshold",
        window: full ? "unknown" : "seven_day",
        estimated: false,
        message: full
          ? `${v.sessionCount} of ${v.cfg.maxSessions} sessions`
          : `weekly use ${formatPercent(v.weekly.value)} reached the ${formatPercent(v.weeklyThreshold)} threshold`,
      });
    }
  }
  const crossed = v.state.crossed ?? [];
  for (const threshold of usageThresholds(settings)) {
    const above = v.weekly.value >= threshold;
    if (above && !crossed.includes(threshold)) {
      events.push({
        type: "usage_threshold",
        subscriptionId: id,
        value: v.weekly.value,
        threshold,
        basis: v.weekly.basis === "upstream" ? "upstream_seven_day" : "weekly_budget",
        ...(v.hoursToExhaustion !== undefined ? { timeToExhaustionMs: Math.round(v.hoursToExhaustion * HOUR_MS) } : {}),
      });
    } else if (!above && crossed.includes(threshold)) {
      events.push({ type: "usage_threshold_cleared", subscriptionId: id, threshold });
    }
  }
  return events;
}

/** usageThresholds are the distinct thresholds of the enabled usage_threshold rules, ascending. */
export function usageThresholds(settings: PoolSettings): number[] {
  const set = new Set<number>();
  for (const r of settings.notifications.rules) {
    if (r.type === "usage_threshold" && r.enabled && r.threshold !== undefined) set.add(r.threshold);
  }
  return [...set].sort((a, b) => a - b);
}

function reasonFor(v: SubscriptionView, previous: SubscriptionStatusName): string {
  switch (v.status) {
    case "paused":
      return "paused by an operator";
    case "signed_out":
      return v.state.login?.reason ?? "cannot sign in";
    case "draining":
      return v.state.drain?.cause === "removed"
        ? "removed from the config; finishing its sessions"
        : "drained by an operator";
    case "cooldown":
      return v.cooldown?.reason ?? "usage limit";
    case "limited":
      return v.sessionCount >= v.cfg.maxSessions
        ? `${v.sessionCount} of ${v.cfg.maxSessions} sessions`
        : `weekly use ${formatPercent(v.weekly.value)} >= ${formatPercent(v.weeklyThreshold)}`;
    case "approaching":
      return `weekly use ${formatPercent(v.weekly.value)}, 5-hour window ${formatPercent(v.fiveHour.value)}`;
    case "available":
      if (previous === "cooldown") return "cooldown ended";
      if (previous === "paused") return "resumed by an operator";
      if (previous === "draining") return "no longer draining";
      if (previous === "signed_out") return "signed in again";
      return "below every safeguard";
  }
}
