/**
 * Clock is the only source of "now" for the pool. The domain never reads the
 * system time itself, so windows, cooldowns and idleness are tested by moving
 * a clock instead of sleeping.
 */
export interface Clock {
  /** Epoch milliseconds. */
  now(): number;
}

/** systemClock reads the wall clock. */
export const systemClock: Clock = { now: () => Date.now() };
