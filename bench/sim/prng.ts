/**
 * Rng is a small seeded pseudo-random generator (mulberry32): the same seed
 * gives the same stream on every machine, so a simulated week is
 * reproducible from its seed alone.
 */
export interface Rng {
  /** next returns a float in [0, 1). */
  next(): number;
  /** uniform returns a float in [min, max). */
  uniform(min: number, max: number): number;
  /** int returns an integer in [min, max]. */
  int(min: number, max: number): number;
  /** chance is true with probability p. */
  chance(p: number): boolean;
  /** exponential draws with the given mean. */
  exponential(mean: number): number;
  /** normal draws from N(mean, sd) (Box-Muller). */
  normal(mean: number, sd: number): number;
  /** logNormal draws with the given median and log-space sd: costs and durations are skewed. */
  logNormal(median: number, sigma: number): number;
  /** fork derives an independent generator, so one part of a trace can change without shifting the others. */
  fork(label: number): Rng;
}

/** createRng returns a generator for a 32-bit seed. */
export function createRng(seed: number): Rng {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const rng: Rng = {
    next,
    uniform: (min, max) => min + (max - min) * next(),
    int: (min, max) => min + Math.floor((max - min + 1) * next()),
    chance: (p) => next() < p,
    exponential: (mean) => -mean * Math.log(1 - next()),
    normal: (mean, sd) => mean + sd * Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next()),
    logNormal: (median, sigma) => median * Math.exp(rng.normal(0, sigma)),
    fork: (label) => createRng(Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(label + 1, 0xc2b2ae35)),
  };
  return rng;
}
