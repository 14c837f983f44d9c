/** LATEST_MS is the last instant a JavaScript Date can hold (year 275760): past it a time cannot even be shown. */
const LATEST_MS = 8.64e15;

/**
 * TimestampReading is a google.protobuf.Timestamp read as epoch
 * milliseconds, or why it is not a time the pool can use: `nanos` outside
 * what the spec allows, or a time outside 1970 to year 275760.
 */
export type TimestampReading = { ok: true; ms: number } | { ok: false; reason: "nanos" | "range"; message: string };

/**
 * readTimestamp reads a Timestamp as whole epoch milliseconds. Callers add
 * their own rules (a reset time is at most a year ahead); this is the part
 * every Timestamp a caller sends must pass.
 */
export function readTimestamp(t: { seconds: bigint; nanos: number }): TimestampReading {
  if (!(t.nanos >= 0 && t.nanos < 1e9))
    return { ok: false, reason: "nanos", message: "nanos must be between 0 and 999999999" };
  // Number() of a huge bigint is Infinity, which the range check refuses.
  const ms = Number(t.seconds) * 1000 + Math.floor(t.nanos / 1e6);
  if (!(ms >= 0 && ms <= LATEST_MS))
    return { ok: false, reason: "range", message: "must be a time between 1970 and year 275760" };
  return { ok: true, ms };
}
