import { describe, expect, it } from "vitest";
import { readTimestamp } from "../../src/server/read-timestamp.js";

describe("readTimestamp()", () => {
  it.each([
    { name: "the epoch", t: { seconds: 0n, nanos: 0 }, ms: 0 },
    {
      name: "nanos floored to the millisecond",
      t: { seconds: 1_795_456_800n, nanos: 999_999_999 },
      ms: 1_795_456_800_999,
    },
    { name: "the last instant a Date holds", t: { seconds: 8_640_000_000_000n, nanos: 0 }, ms: 8.64e15 },
  ])("should read $name", ({ t, ms }) => {
    expect(readTimestamp(t)).toEqual({ ok: true, ms });
  });

  it.each([
    { name: "negative nanos", t: { seconds: 10n, nanos: -1 }, reason: "nanos" },
    { name: "a whole second of nanos", t: { seconds: 10n, nanos: 1e9 }, reason: "nanos" },
    { name: "NaN nanos", t: { seconds: 10n, nanos: Number.NaN }, reason: "nanos" },
    { name: "a time before 1970", t: { seconds: -1n, nanos: 0 }, reason: "range" },
    { name: "a time past year 275760", t: { seconds: 8_640_000_000_001n, nanos: 0 }, reason: "range" },
    { name: "seconds past what a number holds", t: { seconds: 10n ** 400n, nanos: 0 }, reason: "range" },
  ])("should refuse $name", ({ t, reason }) => {
    expect(readTimestamp(t)).toMatchObject({ ok: false, reason });
  });
});
