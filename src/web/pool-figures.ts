import { type GetPoolStatusResponse, SubscriptionState } from "../../gen/authpool/v1/auth_pool_pb.js";
import { relativeTime, spanText } from "../domain/index.js";

/**
 * What the dashboard shows about the pool as a whole, derived from one
 * GetPoolStatus answer: no DOM, so it is tested in Node.
 */

export interface PoolFigures {
  /** USD of weekly capacity left before each account's threshold, over accounts that can run. */
  capacityLeftUsd: number;
  /** USD per hour over the trailing hour, the whole pool. */
  burnUsdPerHour: number;
  /** When the capacity left runs out at that burn (epoch ms); undefined when nothing burns. */
  exhaustedAt?: number;
  sessions: number;
  maxSessions: number;
  /** Subscriptions that take new sessions now. */
  available: number;
  total: number;
}

const BLOCKED = new Set([SubscriptionState.PAUSED, SubscriptionState.SIGNED_OUT, SubscriptionState.COOLDOWN]);

/** poolFigures sums the status: capacity left, burn and the forecast of when it runs out. */
export function poolFigures(status: GetPoolStatusResponse, now: number): PoolFigures {
  let capacityLeftUsd = 0;
  let burnUsdPerHour = 0;
  let sessions = 0;
  let maxSessions = 0;
  let available = 0;
  for (const s of status.subscriptions) {
    sessions += s.sessionCount;
    maxSessions += s.maxSessions;
    burnUsdPerHour += s.burnRateUsdPerHour;
    if (s.status === SubscriptionState.AVAILABLE || s.status === SubscriptionState.APPROACHING) available++;
    if (BLOCKED.has(s.status)) continue;
    const left = Math.max(0, s.weeklyThreshold - s.weeklyPercentUsed / 100);
    capacityLeftUsd += left * s.weeklyBudgetUsd;
  }
  const figures: PoolFigures = {
    capacityLeftUsd,
    burnUsdPerHour,
    sessions,
    maxSessions,
    available,
    total: status.subscriptions.length,
  };
  if (burnUsdPerHour > 0) figures.exhaustedAt = now + (capacityLeftUsd / burnUsdPerHour) * 3_600_000;
  return figures;
}

/** untilText says how long until `at`: "in 2 h 10 min", "in 45 s", or "now" once it has passed. */
export function untilText(at: number, now: number): string {
  return at <= now ? "now" : relativeTime(at, now, "second");
}

/** agoText says how long ago `at` was: "12 s ago", "3 min ago" (a reading stamped ahead of this clock: "0 s ago"). */
export function agoText(at: number, now: number): string {
  return `${spanText(Math.max(0, now - at), "second")} ago`;
}

/** usdText: "$1,234" above $100, "$12.34" below. */
export function usdText(usd: number): string {
  return usd >= 100 ? `$${Math.round(usd).toLocaleString("en-US")}` : `$${usd.toFixed(2)}`;
}
