/** PREFIX begins the name of every series the pool exposes. */
export const PREFIX = "authpool_";

/** finite keeps NaN and ±Infinity (an empty ratio, a missing figure) out of the exposition. */
export function finite(value: number | undefined): number {
  return value !== undefined && Number.isFinite(value) ? value : 0;
}
