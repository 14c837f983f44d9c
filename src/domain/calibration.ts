import type { CalibratedWindow, Calibration, SubscriptionState } from "./state.js";
import { MINUTE_MS } from "./time.js";

/**
 * Learning each account's dollars-to-utilization ratio. The CLI's dollar
 * figures are API-price estimates; upstream's utilization is the truth but
 * arrives only now and then. Pairing the cost the pool recorded between two
 * observations with the utilization change between them gives "fraction of
 * the window per dollar" for this account, so between observations the pool
 * converts new spend with the account's own ratio instead of a configured
 * guess.
 */

/**
 * MIN_DELTA: a pair is measured only once utilization moved this much. The
 * OAuth endpoint reports whole percents, so over a 1-point move the rounding
 * alone could be 100% of the signal; over 3 points it is a third at worst,
 * and the decayed sums average it out.
 */
export const CALIBRATION_MIN_DELTA = 0.03;

/** Below this much recorded cost a move was made by use the pool did not see: not a sample. */
export const CALIBRATION_MIN_COST_USD = 0.05;

/** The ratio is trusted once this many dollars of samples back it. */
export const CALIBRATION_MIN_LEARNED_USD = 1;

/** Weight of the past per new sample: the ratio follows an account whose limits change. */
const DECAY = 0.8;

/** Two reset times this close name the same window (sources round them differently). */
const SAME_WINDOW_MS = 10 * MINUTE_MS;

/**
 * Bounds on a believable ratio: a full window worth between $0.50 and
 * $1,000,000 of API prices. Outside them the pairs were noise.
 */
const MAX_RATIO = 2;
const MIN_RATIO = 1e-6;

/**
 * updateCalibration takes a new observation of a window. Within the same
 * window it measures from the anchor once utilization moved enough (and
 * moves the anchor); a new window, or utilization going down, starts over
 * from this observation.
 */
export function updateCalibration(
  sub: SubscriptionState,
  window: CalibratedWindow,
  utilization: number,
  resetsAt: number | undefined,
  at: number,
): void {
  const calibrations = (sub.calibration ??= {});
  const cal: Calibration = (calibrations[window] ??= { deltaSum: 0, costSum: 0, samples: 0 });
  const anchor = cal.anchor;
  const fresh = { utilization, ...(resetsAt !== undefined ? { resetsAt } : {}), at, costUsd: 0 };
  if (anchor === undefined || !sameWindow(anchor.resetsAt, resetsAt)) {
    cal.anchor = fresh;
    return;
  }
  if (wholePercent(utilization) !== wholePercent(anchor.utilization)) {
    // Pairs mix no precisions: a rounded reading measured from an exact
    // one, or the reverse, is off by up to half a point, and which pairs
    // end a sample or restart one depends on the way it was rounded (a
    // rounded-down poll restarted the sample, a rounded-up one ended it).
    // With runs' exact readings between polls that taught the simulated
    // accounts a ratio 15 to 20% too high, and every reading then showed
    // less use than the pool's own dollars explained: the reserve measured
    // no owner at all. An exact reading replaces a rounded anchor; a rounded
    // one waits for an exact one's sample to end.
    if (!wholePercent(utilization)) cal.anchor = fresh;
    return;
  }
  if (utilization < anchor.utilization) {
    cal.anchor = fresh;
    return;
  }
  const delta = utilization - anchor.utilization;
  if (delta < CALIBRATION_MIN_DELTA) return; // keep measuring from the same anchor
  if (anchor.costUsd >= CALIBRATION_MIN_COST_USD && !outlier(cal, delta / anchor.costUsd)) {
    cal.deltaSum = cal.deltaSum * DECAY + delta;
    cal.costSum = cal.costSum * DECAY + anchor.costUsd;
    cal.samples += 1;
  }
  cal.anchor = fresh;
}

/**
 * OUTLIER_FACTOR: a pair whose ratio is this many times the learned one
 * mostly measured use outside the pool (an owner's evening on claude.ai
 * while a session of the pool also ran): learning from it would make the
 * pool's own dollars explain that use, and the reserve (reserve.ts) would
 * never see it. A change of limits that large would be learned from the
 * pairs after it only through the ratio's decay, so the factor is wide.
 */
const OUTLIER_FACTOR = 2.5;

function outlier(cal: Calibration, sample: number): boolean {
  if (cal.samples === 0 || cal.costSum < CALIBRATION_MIN_LEARNED_USD) return false;
  return sample > OUTLIER_FACTOR * (cal.deltaSum / cal.costSum);
}

/**
 * wholePercent: the usage endpoint rounds to whole percents; stream events
 * and headers give fractions. An exact reading that happens to be a whole
 * percent is taken for a rounded one, which only makes it pair with those.
 */
function wholePercent(utilization: number): boolean {
  const percent = utilization * 100;
  return Math.abs(percent - Math.round(percent)) < 1e-9;
}

/** recordCalibrationCost adds cost spent at `at` to the anchors read before it (a negative cost takes it back). */
export function recordCalibrationCost(sub: SubscriptionState, costUsd: number, at: number): void {
  if (sub.calibration === undefined) return;
  for (const cal of Object.values(sub.calibration)) {
    if (cal?.anchor !== undefined && cal.anchor.at <= at)
      cal.anchor.costUsd = Math.max(0, cal.anchor.costUsd + costUsd);
  }
}

/** learnedRatio is the fraction of a window one dollar uses, once enough samples back it. */
export function learnedRatio(sub: SubscriptionState, window: CalibratedWindow): number | undefined {
  const cal = sub.calibration?.[window];
  // The decayed cost sum must still hold enough evidence.
  if (cal === undefined || cal.samples === 0 || cal.costSum < CALIBRATION_MIN_LEARNED_USD) return undefined;
  const ratio = cal.deltaSum / cal.costSum;
  return ratio >= MIN_RATIO && ratio <= MAX_RATIO ? ratio : undefined;
}

/** sameWindow says whether two readings' reset times name the same window. */
export function sameWindow(a: number | undefined, b: number | undefined): boolean {
  // Without reset times there is no telling windows apart: only a drop in utilization shows a reset.
  if (a === undefined || b === undefined) return a === b;
  return Math.abs(a - b) <= SAME_WINDOW_MS;
}
