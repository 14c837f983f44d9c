import { DAY_MS, WEEK_MS } from "./time.js";

/**
 * The weekly reserve: how much of an account's week the pool leaves for its
 * owner's own use (claude.ai, Claude Code on their laptop) when the config
 * leaves `weeklyBudgetThreshold` at "auto".
 *
 * A fixed reserve (the former default, 15% of every week) cannot tell an
 * account whose owner uses it from one nobody else touches: in `npm run
 * simulate` it sent the defaults 2 to 27 times the tuned pool's work to the
 * paid API, to protect owners most accounts did not have. The pool can
 * measure that use instead. Between two upstream readings of the same week,
 * what utilization rose by beyond what the pool's own recorded spend
 * explains (at the account's learned ratio) was used elsewhere; transcripts
 * find more of it in dollars. The reserve is that use's rate over the
 * trailing week, projected to the week's reset: an account with no outside
 * use keeps nothing back, one whose owner spends 20% of a week keeps what
 * they will still need before it resets.
 */

/** MAX_RESERVE: the most of a week kept back, whatever was measured (a measurement gone wrong cannot close an account). */
export const MAX_RESERVE = 0.5;

/**
 * MIN_RESERVE: below this the measurement is noise (whole-percent readings,
 * the learned ratio's error over a week of the pool's own spend) and
 * nothing is kept back.
 */
export const MIN_RESERVE = 0.02;

/**
 * MIN_SPAN_MS: a rate measured over less than this is spread over this
 * long, so one evening's use seen on a new pool is not taken for a pace
 * that lasts all week.
 */
const MIN_SPAN_MS = DAY_MS;

/** WeeklyReserve is the reserve in force for one subscription, with what it was derived from. */
export interface WeeklyReserve {
  /** Share of the week kept back from normal-priority work (0 to MAX_RESERVE). */
  fraction: number;
  /** Outside use measured over the trailing week (share of the week): readings plus transcripts. */
  outsideWeek: number;
  /** The reset it is projected to (epoch ms); undefined: a rolling week. */
  resetsAt?: number;
}

/**
 * learnedReserve projects the outside use measured over the trailing week
 * (`outsideWeek`, a share of the week, over `spanMs` of history at most a
 * week) to the weekly reset, or over a whole rolling week when the reset
 * is unknown.
 */
export function learnedReserve(
  outsideWeek: number,
  spanMs: number,
  resetsAt: number | undefined,
  now: number,
): WeeklyReserve {
  const measured = Math.max(0, outsideWeek);
  const span = Math.min(WEEK_MS, Math.max(MIN_SPAN_MS, spanMs));
  const left = resetsAt !== undefined && resetsAt > now ? Math.min(WEEK_MS, resetsAt - now) : WEEK_MS;
  const projected = (measured / span) * left;
  const fraction = projected < MIN_RESERVE ? 0 : Math.min(MAX_RESERVE, projected);
  return { fraction, outsideWeek: measured, ...(resetsAt !== undefined ? { resetsAt } : {}) };
}

/**
 * outsideUse is what a reading of a week shows beyond what the pool
 * accounted for since the previous reading of the same week: signed, so a
 * reading under the prediction takes back what one over it added, and the
 * ratio's noise cancels over the week instead of piling up.
 */
export function outsideUse(
  previous: { utilization: number; costSinceUsd: number },
  utilization: number,
  perUsd: number,
): number {
  return utilization - previous.utilization - previous.costSinceUsd * perUsd;
}
