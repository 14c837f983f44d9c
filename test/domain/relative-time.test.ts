import { describe, expect, it } from "vitest";
import { type SpanPrecision, relativeTime, spanText } from "../../src/domain/index.js";

const NOW = Date.parse("2026-11-23T10:00:00Z");
const S = 1000;
const MIN = 60 * S;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;

describe("spanText()", () => {
  it.each<[string, number, SpanPrecision, string]>([
    ["hours and minutes", 3 * HOUR + 20 * MIN, "minute", "3 h 20 min"],
    ["a zero second unit is left out", 3 * HOUR, "minute", "3 h"],
    ["days and hours, from the first day", 26 * HOUR, "minute", "1 d 2 h"],
    ["only the two largest units", 3 * DAY + 21 * HOUR + 59 * MIN, "minute", "3 d 21 h"],
    ["rounded to the minute", 5 * MIN + 31 * S, "minute", "6 min"],
    ["under a minute, in a message", 20 * S, "minute", "less than a minute"],
    ["seconds, on the dashboard", 45 * S, "second", "45 s"],
    ["no time at all", 0, "second", "0 s"],
    ["59.6 s is a minute, not 60 s", 59_600, "second", "1 min"],
    ["minutes alike at either precision", 2 * HOUR + 10 * MIN, "second", "2 h 10 min"],
    ["a negative span reads as its length", -90 * MIN, "minute", "1 h 30 min"],
  ])("%s", (_name, ms, precision, text) => {
    expect(spanText(ms, precision)).toBe(text);
  });
});

describe("relativeTime()", () => {
  it.each<[string, number, SpanPrecision, string]>([
    ["the future", NOW + 2 * HOUR + 10 * MIN, "minute", "in 2 h 10 min"],
    ["the past", NOW - 90 * MIN, "minute", "1 h 30 min ago"],
    ["soon, in a message", NOW + 20 * S, "minute", "in less than a minute"],
    ["just now, in a message", NOW - 20 * S, "minute", "less than a minute ago"],
    ["soon, on the dashboard", NOW + 45 * S, "second", "in 45 s"],
    ["a while ago, on the dashboard", NOW - 12 * S, "second", "12 s ago"],
  ])("%s", (_name, t, precision, text) => {
    expect(relativeTime(t, NOW, precision)).toBe(text);
  });
});
