import { learnedRatio } from "./calibration.js";
import type { SubscriptionSettings } from "./settings.js";
import type { CalibratedWindow, FiveHourWindow, SubscriptionState, UpstreamObservation } from "./state.js";
import { DAY_MS, FIVE_HOURS_MS, HOUR_MS, WEEK_MS, floorHour } from "./time.js";
import type { LimitWindow } from "./usage.js";

/**
 * Usage arithmetic over a subscription's hourly buckets. Pure reads: the
 * buckets are written by apply() only.
 */

/** BUCKET_RETENTION_MS: a rolling 7-day sum needs 7 days of buckets; one more day is slack. */
export const BUCKET_RETENTION_MS = 8 * DAY_MS;

/** sumCost adds the cost of buckets whose hour lies in [from, to). */
export function sumCost(sub: SubscriptionState, from: number, to: number): number {
  return bucketTotals(sub, from, to).costUsd;
}

/** weeklyUsedUsd is the rolling 7-day cost: the current hour and the 167 before it. */
export function weeklyUsedUsd(sub: SubscriptionState, now: number): number {
  const end = floorHour(now) + HOUR_MS;
  return sumCost(sub, end - WEEK_MS, end);
}

/** BucketTotals is the cost of some buckets and the part of it found in transcripts (external). */
export interface BucketTotals {
  costUsd: number;
  externalUsd: number;
  /** The part of externalUsd the pool priced itself, not by the CLI's figures. */
  externalEstimatedUsd: number;
  /** Outside use the readings showed, as a share of the weekly window (signed; see reserve.ts). */
  outsideUse: number;
}

/** bucketTotals adds the buckets whose hour lies in [from, to), cost and external part in one pass. */
export function bucketTotals(sub: SubscriptionState, from: number, to: number): BucketTotals {
  let costUsd = 0;
  let externalUsd = 0;
  let externalEstimatedUsd = 0;
  let outsideUse = 0;
  for (let i = sub.buckets.length - 1; i >= 0; i--) {
    const b = sub.buckets[i]!;
    if (b.hour < from) break;
    if (b.hour < to) {
      costUsd += b.costUsd;
      externalUsd += b.externalCostUsd ?? 0;
      externalEstimatedUsd += b.externalEstimatedUsd ?? 0;
      outsideUse += b.outsideUse ?? 0;
    }
  }
  return { costUsd, externalUsd, externalEstimatedUsd, outsideUse };
}

/** weeklyTotals is weeklyUsedUsd and its external part, in one pass over the buckets. */
export function weeklyTotals(sub: SubscriptionState, now: number): BucketTotals {
  const end = floorHour(now) + HOUR_MS;
  return bucketTotals(sub, end - WEEK_MS, end);
}

/**
 * currentWindow is the 5-hour window that contains now, or undefined when the
 * last one has ended (the next starts with the next use, not on a fixed slot).
 */
export function currentWindow(sub: SubscriptionState, now: number): FiveHourWindow | undefined {
  const w = sub.window;
  return w !== undefined && now < w.end ? w : undefined;
}

/**
 * nextWindow is the window a use at time t falls in: the current one, or a
 * new one starting at t floored to the hour (ccusage's approximation of
 * "starts with the first message").
 */
export function nextWindow(previous: FiveHourWindow | undefined, t: number): FiveHourWindow {
  if (previous !== undefined && t < previous.end && t >= previous.start) return previous;
  const start = floorHour(t);
  return { start, end: start + FIVE_HOURS_MS, estimated: true };
}

/** windowCostUsd is the cost spent in the current 5-hour window (0 when none is open). */
export function windowCostUsd(sub: SubscriptionState, now: number): number {
  const w = currentWindow(sub, now);
  return w === undefined ? 0 : sumCost(sub, floorHour(w.start), w.end);
}

/**
 * burnRateUsdPerHour is the cost of the trailing 60 minutes: the current
 * hour's bucket plus the part of the previous hour that is still inside the
 * trailing hour, pro rata.
 */
export function burnRateUsdPerHour(sub: SubscriptionState, now: number): number {
  const hour = floorHour(now);
  const current = sumCost(sub, hour, hour + HOUR_MS);
  const previous = sumCost(sub, hour - HOUR_MS, hour);
  const remaining = 1 - (now - hour) / HOUR_MS;
  return current + previous * remaining;
}

/** freshUpstream returns an upstream observation whose window has not reset yet. */
export function freshUpstream(
  sub: SubscriptionState,
  window: LimitWindow,
  now: number,
): UpstreamObservation | undefined {
  const o = sub.upstream[window];
  if (o === undefined) return undefined;
  if (o.resetsAt !== undefined && o.resetsAt <= now) return undefined;
  // Without a reset time an observation cannot be aged by its window; trust
  // it for one window length at most.
  if (o.resetsAt === undefined && now - o.observedAt > (window === "five_hour" ? FIVE_HOURS_MS : WEEK_MS)) {
    return undefined;
  }
  return o;
}

/** Fraction is a 0-1 (or beyond) share of a limit, with where it came from. */
export interface Fraction {
  value: number;
  /** "upstream": an observation plus what was spent since; "budget": local dollars alone. */
  basis: "budget" | "upstream";
  /** The observation of the window still in force (its window has not reset), fresh or stale. */
  observation?: UpstreamObservation;
  /** True when that observation is older than the staleness limit. */
  stale: boolean;
  /** Fraction of the window per dollar used to convert local spend. */
  perUsd: number;
  /** True when perUsd was learned from upstream; false when it is 1 / the configured budget. */
  learned: boolean;
}

/**
 * estimateFraction combines upstream truth with local spend. A fresh
 * observation wins: its utilization plus what the pool spent since, at the
 * account's learned ratio. A stale one may miss use from elsewhere, so the
 * local estimate takes over, except that utilization never falls within a
 * window: an old reading stays a floor until its reset.
 */
export function estimateFraction(
  sub: SubscriptionState,
  window: CalibratedWindow,
  budgetUsd: number,
  localCostUsd: number,
  now: number,
  staleAfterMs: number,
): Fraction {
  const ratio = learnedRatio(sub, window);
  const perUsd = ratio ?? 1 / budgetUsd;
  const learned = ratio !== undefined;
  const local = localCostUsd * perUsd;
  const observation = freshUpstream(sub, window, now);
  if (observation === undefined) return { value: local, basis: "budget", stale: false, perUsd, learned };
  const upstream = observation.utilization + observation.costSinceUsd * perUsd;
  const stale = now - observation.observedAt > staleAfterMs;
  if (!stale || upstream >= local) return { value: upstream, basis: "upstream", observation, stale, perUsd, learned };
  return { value: local, basis: "budget", observation, stale, perUsd, learned };
}

/** weeklyFraction is the share of the weekly limit used; usedUsd is weeklyUsedUsd when the caller has it. */
export function weeklyFraction(
  cfg: SubscriptionSettings,
  sub: SubscriptionState,
  now: number,
  staleAfterMs: number,
  usedUsd: number = weeklyUsedUsd(sub, now),
): Fraction {
  return estimateFraction(sub, "seven_day", cfg.weeklyBudgetUsd, usedUsd, now, staleAfterMs);
}

/** fiveHourFraction is the share of the current 5-hour window used; usedUsd is windowCostUsd when the caller has it. */
export function fiveHourFraction(
  cfg: SubscriptionSettings,
  sub: SubscriptionState,
  now: number,
  staleAfterMs: number,
  usedUsd: number = windowCostUsd(sub, now),
): Fraction {
  return estimateFraction(sub, "five_hour", cfg.fiveHourBudgetUsd, usedUsd, now, staleAfterMs);
}
