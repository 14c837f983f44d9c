/**
 * Reset times as Claude prints them ("3pm (Europe/Berlin)", "Nov 28, 4am
 * (America/New_York)", "5am") turned into epoch milliseconds. Pure: the clock
 * is passed in, zones are resolved with Intl only.
 */

export interface ResetTimeOptions {
  /** Epoch ms the text is read at; a time without a date is the next one after it. */
  now: number;
  /** IANA zone assumed when the text names none (or an unknown one). */
  defaultTimeZone: string;
}

export interface ResetTime {
  /** Epoch ms. */
  resetsAt: number;
  /** True when the zone was assumed rather than read from the text. */
  estimated: boolean;
}

const DAY_MS = 86_400_000;

const MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];

// Groups: 1 month, 2 day, 3 year, 4 hour, 5 minute, 6 am/pm, 7 zone.
const RESET_PATTERN = new RegExp(
  String.raw`(?:\b(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+(\d{1,2})(?:st|nd|rd|th)?(?:,?\s+(\d{4}))?\s*,?\s*(?:at\s+)?)?` +
    String.raw`\b(\d{1,2})(?::(\d{2}))?\s*(?:([ap])\.?m\b\.?)?` +
    String.raw`(?:\s*\(\s*([^()]+?)\s*\))?`,
  "gi",
);

/**
 * parseResetTime reads the first reset time in `text` (searching after the word
 * "reset" when present). A time without a date is the next occurrence of that
 * wall-clock time in the zone strictly after `now`; a date without a year is
 * this year's, or next year's when this year's passed more than a day ago.
 * Returns undefined when the text holds no time or an impossible date.
 */
export function parseResetTime(text: string, options: ResetTimeOptions): ResetTime | undefined {
  const resetAt = text.search(/\breset/i);
  const haystack = resetAt >= 0 ? text.slice(resetAt) : text;
  for (const match of haystack.matchAll(RESET_PATTERN)) {
    const parsed = fromMatch(match, options);
    if (parsed) return parsed;
  }
  return undefined;
}

function fromMatch(match: RegExpMatchArray, options: ResetTimeOptions): ResetTime | undefined {
  const [, monthName, dayText, yearText, hourText, minuteText, meridiem, zoneText] = match;
  // A bare number ("5-hour") is not a time: require am/pm or hh:mm.
  if (meridiem === undefined && minuteText === undefined) return undefined;
  const wall = wallTime(Number(hourText), minuteText === undefined ? 0 : Number(minuteText), meridiem);
  if (!wall) return undefined;

  const named = zoneText !== undefined && isValidTimeZone(zoneText) ? zoneText : undefined;
  const zone = named ?? (isValidTimeZone(options.defaultTimeZone) ? options.defaultTimeZone : "UTC");
  const estimated = named === undefined;

  if (monthName === undefined || dayText === undefined) {
    return { resetsAt: nextWallTime(wall.hour, wall.minute, zone, options.now), estimated };
  }
  const month = MONTHS.indexOf(monthName.slice(0, 3).toLowerCase()) + 1;
  const day = Number(dayText);
  const today = wallClockAt(options.now, zone);
  let year = yearText === undefined ? today.year : Number(yearText);
  if (!isRealDate(year, month, day)) return undefined;
  let resetsAt = zonedWallTimeToEpoch({ year, month, day, ...wall }, zone);
  if (yearText === undefined && resetsAt < options.now - DAY_MS) {
    year += 1;
    if (!isRealDate(year, month, day)) return undefined;
    resetsAt = zonedWallTimeToEpoch({ year, month, day, ...wall }, zone);
  }
  return { resetsAt, estimated };
}

function wallTime(
  hour: number,
  minute: number,
  meridiem: string | undefined,
): { hour: number; minute: number } | undefined {
  if (minute > 59) return undefined;
  if (meridiem === undefined) return hour <= 23 ? { hour, minute } : undefined;
  if (hour < 1 || hour > 12) return undefined;
  const pm = meridiem.toLowerCase() === "p";
  return { hour: (hour % 12) + (pm ? 12 : 0), minute };
}

function nextWallTime(hour: number, minute: number, zone: string, now: number): number {
  const today = wallClockAt(now, zone);
  // Two extra days cover a wall time skipped or repeated by a DST change.
  for (let add = 0; add < 3; add++) {
    const date = new Date(Date.UTC(today.year, today.month - 1, today.day + add));
    const candidate = zonedWallTimeToEpoch(
      { year: date.getUTCFullYear(), month: date.getUTCMonth() + 1, day: date.getUTCDate(), hour, minute },
      zone,
    );
    if (candidate > now) return candidate;
  }
  return zonedWallTimeToEpoch({ year: today.year, month: today.month, day: today.day + 1, hour, minute }, zone);
}

function isRealDate(year: number, month: number, day: number): boolean {
  if (month < 1 || month > 12 || day < 1) return false;
  return new Date(Date.UTC(year, month - 1, day)).getUTCDate() === day;
}

/** WallClock is a local calendar date and time in some zone (month 1-12). */
export interface WallClock {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second?: number;
}

const formatters = new Map<string, Intl.DateTimeFormat | null>();

function formatterFor(zone: string): Intl.DateTimeFormat | undefined {
  let formatter = formatters.get(zone);
  if (formatter === undefined) {
    try {
      formatter = new Intl.DateTimeFormat("en-US", {
        timeZone: zone,
        hourCycle: "h23",
        year: "numeric",
        month: "numeric",
        day: "numeric",
        hour: "numeric",
        minute: "numeric",
        second: "numeric",
      });
    } catch {
      formatter = null;
    }
    formatters.set(zone, formatter);
  }
  return formatter ?? undefined;
}

/** isValidTimeZone says whether Intl knows the zone name (e.g. "Europe/Berlin", "UTC"). */
export function isValidTimeZone(zone: string): boolean {
  return zone.trim() !== "" && formatterFor(zone) !== undefined;
}

/** wallClockAt gives the local date and time in `zone` at the instant `epochMs`. */
export function wallClockAt(epochMs: number, zone: string): Required<WallClock> {
  const formatter = formatterFor(zone);
  if (!formatter) throw new RangeError(`unknown time zone: ${zone}`);
  const parts: Record<string, number> = {};
  for (const part of formatter.formatToParts(epochMs)) {
    if (part.type !== "literal") parts[part.type] = Number(part.value);
  }
  return {
    year: parts.year ?? NaN,
    month: parts.month ?? NaN,
    day: parts.day ?? NaN,
    // Some ICU versions print midnight as 24 even with h23.
    hour: (parts.hour ?? NaN) % 24,
    minute: parts.minute ?? NaN,
    second: parts.second ?? NaN,
  };
}

function offsetAt(epochMs: number, zone: string): number {
  const whole = Math.floor(epochMs / 1000) * 1000;
  const wall = wallClockAt(whole, zone);
  return Date.UTC(wall.year, wall.month - 1, wall.day, wall.hour, wall.minute, wall.second) - whole;
}

/**
 * zonedWallTimeToEpoch converts a local wall-clock time in `zone` to epoch ms.
 * The offset is taken at the target instant, not at "now", so DST is right.
 * A time skipped by a spring-forward gap lands after the gap; a repeated time
 * in a fall-back overlap resolves to its later instant.
 */
export function zonedWallTimeToEpoch(wall: WallClock, zone: string): number {
  const local = Date.UTC(wall.year, wall.month - 1, wall.day, wall.hour, wall.minute, wall.second ?? 0);
  let instant = local - offsetAt(local, zone);
  // One more step settles instants whose offset differs from the first guess.
  const settled = offsetAt(instant, zone);
  if (settled !== local - instant) instant = local - settled;
  return instant;
}

/**
 * epochSecondsToMs converts an upstream epoch-seconds value (number or numeric
 * string) to epoch ms; undefined when it is not a positive finite number.
 * Values already too large to be seconds (>= 1e12, i.e. after year 33658) are
 * taken as milliseconds, so a format change upstream cannot yield year 50000.
 */
export function epochSecondsToMs(value: unknown): number | undefined {
  const seconds =
    typeof value === "number" ? value : typeof value === "string" && value.trim() !== "" ? Number(value) : NaN;
  if (!Number.isFinite(seconds) || seconds <= 0) return undefined;
  return seconds >= 1e12 ? Math.round(seconds) : Math.round(seconds * 1000);
}
