/**
 * Spans of time in words: "in 2 h 10 min", "3 d 4 h ago". Slack messages
 * and the dashboard both say times this way, so it lives here, free of
 * Node APIs: the dashboard's bundle imports it too.
 */

/**
 * SpanPrecision is the smallest unit said. A message is read minutes after
 * it is sent, so seconds there are noise; the dashboard redraws live, and
 * "12 s ago" tells a fresh reading from a stale one.
 */
export type SpanPrecision = "minute" | "second";

/**
 * spanText renders a span's length as its two largest units, a zero second
 * one left out: "3 d 4 h", "2 h 10 min", "3 h". Under a minute it is
 * "less than a minute", or at second precision "45 s".
 */
export function spanText(ms: number, precision: SpanPrecision = "minute"): string {
  const length = Math.abs(ms);
  const seconds = Math.round(length / 1000);
  if (precision === "second" && seconds < 60) return `${seconds} s`;
  const minutes = Math.round(length / 60_000);
  if (minutes < 1) return "less than a minute";
  const units: [number, string][] = [
    [Math.floor(minutes / 1440), "d"],
    [Math.floor(minutes / 60) % 24, "h"],
    [minutes % 60, "min"],
  ];
  const first = units.findIndex(([n]) => n > 0);
  return units
    .slice(first, first + 2)
    .filter(([n]) => n > 0)
    .map(([n, unit]) => `${n} ${unit}`)
    .join(" ");
}

/** relativeTime renders t against now: "in 2 h 10 min", "3 d 4 h ago", "in less than a minute". */
export function relativeTime(t: number, now: number, precision: SpanPrecision = "minute"): string {
  const span = spanText(t - now, precision);
  return t >= now ? `in ${span}` : `${span} ago`;
}
