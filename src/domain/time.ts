/** Milliseconds in common spans; the domain counts time in epoch milliseconds. */
export const MINUTE_MS = 60_000;
export const HOUR_MS = 60 * MINUTE_MS;
export const DAY_MS = 24 * HOUR_MS;
export const FIVE_HOURS_MS = 5 * HOUR_MS;
export const WEEK_MS = 7 * DAY_MS;

/** floorHour returns the start of the UTC hour containing t (hours are zone-independent). */
export function floorHour(t: number): number {
  return Math.floor(t / HOUR_MS) * HOUR_MS;
}
