/** Backoff bounds an exponential retry delay, in ms: baseMs after the first failure, doubling up to maxMs. */
export interface Backoff {
  readonly baseMs: number;
  readonly maxMs: number;
}

/**
 * Jitter spreads retries so that many clients failing together do not come
 * back in lockstep: `none`; `full`, anywhere below the delay (webhooks: a
 * recovering receiver); `equal`, between half the delay and all of it
 * (credential renewal: never sooner than half of baseMs); `{ spread }`,
 * within ±spread of the delay (usage polls: about as often as configured).
 */
export type Jitter = "none" | "full" | "equal" | { readonly spread: number };

/**
 * backoffDelay is the wait before retry number `attempt` (1 = after the
 * first failure): baseMs × 2^(attempt − 1), at most maxMs, jittered with
 * `random` ([0, 1); Math.random by default, tests pass a constant).
 */
export function backoffDelay(
  attempt: number,
  backoff: Backoff,
  jitter: Jitter = "none",
  random: () => number = Math.random,
): number {
  // Past 2^30 any cap has long been reached; and 0 × 2^n stays 0, where 0 × Infinity would be NaN.
  const uncapped = backoff.baseMs * 2 ** Math.min(30, Math.max(0, attempt - 1));
  const delay = Math.min(backoff.maxMs, uncapped);
  if (jitter === "none") return delay;
  if (jitter === "full") return Math.floor(random() * delay);
  if (jitter === "equal") return Math.round(delay / 2 + random() * (delay / 2));
  // The spread applies before the cap, so the cap still holds.
  return Math.min(backoff.maxMs, spreadDelay(uncapped, jitter.spread, random));
}

/** spreadDelay moves ms by up to ±fraction of it at random (rounded to whole ms). */
export function spreadDelay(ms: number, fraction: number, random: () => number = Math.random): number {
  return Math.round(ms * (1 + (random() * 2 - 1) * fraction));
}
