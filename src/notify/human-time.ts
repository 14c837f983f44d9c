/**
 * Times as a person reads them in a chat message: absolute in UTC, so
 * everyone on the channel sees the same figure, and relative, so nobody
 * has to work out their offset: "14:00 UTC, in 2 h 10 min".
 */

const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** utcTime renders t as "14:00 UTC", with the day ("Tue 24 Nov 14:00 UTC") unless it falls on now's UTC date. */
export function utcTime(t: number, now: number): string {
  const d = new Date(t);
  const clock = `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())} UTC`;
  if (d.toISOString().slice(0, 10) === new Date(now).toISOString().slice(0, 10)) return clock;
  return `${dayText(t)} ${clock}`;
}

/** relativeTime renders t against now: "in 2 h 10 min", "3 d 4 h ago", "in less than a minute". */
export function relativeTime(t: number, now: number): string {
  const span = spanText(Math.abs(t - now));
  if (span === undefined) return t >= now ? "in less than a minute" : "less than a minute ago";
  return t >= now ? `in ${span}` : `${span} ago`;
}

/** whenText is both: "14:00 UTC, in 2 h 10 min". */
export function whenText(t: number, now: number): string {
  return `${utcTime(t, now)}, ${relativeTime(t, now)}`;
}

/** spanText: the two largest units, rounded to the minute; undefined under a minute. */
function spanText(ms: number): string | undefined {
  const minutes = Math.round(ms / 60_000);
  if (minutes < 1) return undefined;
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

function pad(n: number): string {
  return String(n).padStart(2, "0");
}

/** dayText renders t's UTC date as "Tue 24 Nov". */
export function dayText(t: number): string {
  const d = new Date(t);
  return `${DAYS[d.getUTCDay()]} ${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]}`;
}
