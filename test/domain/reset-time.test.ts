import { describe, it, expect } from "vitest";
import {
  epochSecondsToMs,
  isValidTimeZone,
  parseResetTime,
  wallClockAt,
  zonedWallTimeToEpoch,
} from "../../src/domain/reset-time.js";

// Monday 2026-11-23, 14:00 in Berlin (CET, +1), 05:00 in Los Angeles (PST, -8).
const NOW = Date.parse("2026-11-23T13:00:00Z");
const BERLIN = { now: NOW, defaultTimeZone: "Europe/Berlin" };

const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

describe("parseResetTime", () => {
  it.each([
    {
      name: "zone ahead of UTC, later today",
      text: "3pm (Europe/Berlin)",
      resetsAt: "2026-11-23T14:00:00.000Z",
      estimated: false,
    },
    {
      name: "minutes, already past today -> tomorrow",
      text: "4:50am (Europe/Rome)",
      resetsAt: "2026-11-24T03:50:00.000Z",
      estimated: false,
    },
    {
      name: "12:50am in a zone behind UTC",
      text: "12:50am (America/Los_Angeles)",
      resetsAt: "2026-11-24T08:50:00.000Z",
      estimated: false,
    },
    { name: "UTC zone", text: "6pm (UTC)", resetsAt: "2026-11-23T18:00:00.000Z", estimated: false },
    {
      name: "date without year",
      text: "Nov 28, 4am (America/New_York)",
      resetsAt: "2026-11-28T09:00:00.000Z",
      estimated: false,
    },
    { name: "no zone -> default zone, estimated", text: "5am", resetsAt: "2026-11-24T04:00:00.000Z", estimated: true },
    {
      name: "unknown zone -> default zone, estimated",
      text: "5am (Mars/Olympus_Mons)",
      resetsAt: "2026-11-24T04:00:00.000Z",
      estimated: true,
    },
    {
      name: "exactly now is not the next occurrence",
      text: "1pm (UTC)",
      resetsAt: "2026-11-24T13:00:00.000Z",
      estimated: false,
    },
    { name: "12pm is noon", text: "12pm (UTC)", resetsAt: "2026-11-24T12:00:00.000Z", estimated: false },
    { name: "12am is midnight", text: "12am (UTC)", resetsAt: "2026-11-24T00:00:00.000Z", estimated: false },
    { name: "24-hour clock", text: "15:30 (Europe/Berlin)", resetsAt: "2026-11-23T14:30:00.000Z", estimated: false },
    {
      name: "upper case and dotted meridiem",
      text: "RESETS 3 P.M. (Europe/Berlin)",
      resetsAt: "2026-11-23T14:00:00.000Z",
      estimated: false,
    },
    {
      name: "date already passed next year",
      text: "Jan 3, 9am (UTC)",
      resetsAt: "2027-01-03T09:00:00.000Z",
      estimated: false,
    },
    {
      name: "date passed by over a day -> next year",
      text: "Nov 20, 9am (UTC)",
      resetsAt: "2027-11-20T09:00:00.000Z",
      estimated: false,
    },
    {
      name: "date passed by under a day stays this year",
      text: "Nov 23, 9am (UTC)",
      resetsAt: "2026-11-23T09:00:00.000Z",
      estimated: false,
    },
    {
      name: "explicit year is kept",
      text: "Nov 20, 2026, 9am (UTC)",
      resetsAt: "2026-11-20T09:00:00.000Z",
      estimated: false,
    },
    {
      name: "full month name and 'at'",
      text: "December 1 at 8am (Asia/Tokyo)",
      resetsAt: "2026-11-30T23:00:00.000Z",
      estimated: false,
    },
    {
      name: "inside a full limit text",
      text: "You've hit your limit · resets 4:50am (Europe/Rome)",
      resetsAt: "2026-11-24T03:50:00.000Z",
      estimated: false,
    },
    {
      name: "'5-hour' is not a time",
      text: "5-hour limit reached ∙ resets 5am",
      resetsAt: "2026-11-24T04:00:00.000Z",
      estimated: true,
    },
  ])("$name: $text", ({ text, resetsAt, estimated }) => {
    const parsed = parseResetTime(text, BERLIN);
    expect(parsed).toBeDefined();
    expect(iso(parsed?.resetsAt)).toBe(resetsAt);
    expect(parsed?.estimated).toBe(estimated);
  });

  it.each([
    { name: "empty", text: "" },
    { name: "no time", text: "You've hit your limit" },
    { name: "bare number", text: "resets 5" },
    { name: "hour out of range", text: "resets 13pm (UTC)" },
    { name: "minute out of range", text: "resets 4:75am (UTC)" },
    { name: "impossible date", text: "resets Feb 30, 9am (UTC)" },
  ])("$name -> undefined", ({ text }) => {
    expect(parseResetTime(text, BERLIN)).toBeUndefined();
  });

  it("falls back to UTC when the default zone itself is invalid", () => {
    const parsed = parseResetTime("5am", { now: NOW, defaultTimeZone: "Not/AZone" });
    expect(iso(parsed?.resetsAt)).toBe("2026-11-24T05:00:00.000Z");
    expect(parsed?.estimated).toBe(true);
  });

  describe("daylight saving time", () => {
    it.each([
      {
        name: "Berlin summer (CEST, +2)",
        now: "2026-07-15T08:00:00Z",
        text: "3pm (Europe/Berlin)",
        resetsAt: "2026-07-15T13:00:00.000Z",
      },
      {
        name: "Berlin winter (CET, +1)",
        now: "2026-01-15T08:00:00Z",
        text: "3pm (Europe/Berlin)",
        resetsAt: "2026-01-15T14:00:00.000Z",
      },
      // `now` is still CET; the reset is after the spring-forward: the offset must be the target's.
      {
        name: "across spring-forward",
        now: "2026-03-28T12:00:00Z",
        text: "9am (Europe/Berlin)",
        resetsAt: "2026-03-29T07:00:00.000Z",
      },
      {
        name: "across fall-back",
        now: "2026-10-24T12:00:00Z",
        text: "4am (Europe/Berlin)",
        resetsAt: "2026-10-25T03:00:00.000Z",
      },
      {
        name: "New York across fall-back",
        now: "2026-10-31T12:00:00Z",
        text: "Nov 2, 4am (America/New_York)",
        resetsAt: "2026-11-02T09:00:00.000Z",
      },
      {
        name: "time inside the spring-forward gap lands after it",
        now: "2026-03-28T12:00:00Z",
        text: "2:30am (Europe/Berlin)",
        resetsAt: "2026-03-29T01:30:00.000Z",
      },
    ])("$name", ({ now, text, resetsAt }) => {
      const parsed = parseResetTime(text, { now: Date.parse(now), defaultTimeZone: "UTC" });
      expect(iso(parsed?.resetsAt)).toBe(resetsAt);
      expect(parsed?.estimated).toBe(false);
    });
  });
});

describe("zonedWallTimeToEpoch / wallClockAt", () => {
  it.each([
    {
      zone: "Europe/Berlin",
      wall: { year: 2026, month: 7, day: 1, hour: 12, minute: 0 },
      instant: "2026-07-01T10:00:00.000Z",
    },
    {
      zone: "Europe/Berlin",
      wall: { year: 2026, month: 12, day: 1, hour: 12, minute: 0 },
      instant: "2026-12-01T11:00:00.000Z",
    },
    {
      zone: "Asia/Kolkata",
      wall: { year: 2026, month: 1, day: 1, hour: 0, minute: 0 },
      instant: "2025-12-31T18:30:00.000Z",
    },
  ])("$zone $wall.month/$wall.day $wall.hour:00 -> $instant", ({ zone, wall, instant }) => {
    const epoch = zonedWallTimeToEpoch(wall, zone);
    expect(new Date(epoch).toISOString()).toBe(instant);
    expect(wallClockAt(epoch, zone)).toMatchObject(wall);
  });

  it("knows valid and invalid zones", () => {
    expect(isValidTimeZone("Europe/Berlin")).toBe(true);
    expect(isValidTimeZone("UTC")).toBe(true);
    expect(isValidTimeZone("Mars/Olympus_Mons")).toBe(false);
    expect(isValidTimeZone("")).toBe(false);
  });
});

describe("epochSecondsToMs", () => {
  it.each([
    { name: "number", value: 1750708800, ms: 1750708800000 },
    { name: "numeric string", value: "1750708800", ms: 1750708800000 },
    { name: "already ms", value: 1750708800000, ms: 1750708800000 },
    { name: "fractional seconds", value: 1750708800.5, ms: 1750708800500 },
    { name: "zero", value: 0, ms: undefined },
    { name: "negative", value: -5, ms: undefined },
    { name: "NaN", value: Number.NaN, ms: undefined },
    { name: "Infinity", value: Number.POSITIVE_INFINITY, ms: undefined },
    { name: "garbage string", value: "soon", ms: undefined },
    { name: "empty string", value: "", ms: undefined },
    { name: "null", value: null, ms: undefined },
  ])("$name", ({ value, ms }) => {
    expect(epochSecondsToMs(value)).toBe(ms);
  });
});
