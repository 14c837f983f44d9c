/**
 * Times as a person reads them in a chat message: absolute in UTC, so
 * everyone on the channel sees the same figure, and relative, so nobody
 * has to work out their offset: "14:00 UTC, in 2 h 10 min". The relative
 * part is the dashboard's too (domain relativeTime).
 */

import { relativeTime } from "../domain/index.js";

const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** utcTime renders t as "14:00 UTC", with the day ("Tue 24 Nov 14:00 UTC") unless it falls on now's UTC date. */
export function utcTime(t: number, now: number): string {
  const d = new Date(t);
  const clock = `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())} UTC`;
  if (d.toISOString().slice(0, 10) === new Date(now).toISOString().slice(0, 10)) return clock;
  return `${dayText(t)} ${clock}`;
}

/** whenText is both: "14:00 UTC, in 2 h 10 min". */
export function whenText(t: number, now: number): string {
  return `${utcTime(t, now)}, ${relativeTime(t, now)}`;
}

function pad(n: number): string {
  return String(n).padStart(2, "0");
}

/** dayText renders t's UTC date as "Tue 24 Nov". */
export function dayText(t: number): string {
  const d = new Date(t);
  return `${DAYS[d.getUTCDay()]} ${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]}`;
}
