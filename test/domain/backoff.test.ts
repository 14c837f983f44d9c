import { describe, expect, it } from "vitest";
import { type Jitter, backoffDelay, spreadDelay } from "../../src/domain/index.js";

describe("backoffDelay()", () => {
  const b = { baseMs: 100, maxMs: 1000 };

  it.each<{ name: string; attempt: number; jitter: Jitter; random: number; delay: number }>([
    { name: "none: the base after the first failure", attempt: 1, jitter: "none", random: 0.5, delay: 100 },
    { name: "none: doubling", attempt: 3, jitter: "none", random: 0.5, delay: 400 },
    { name: "none: capped", attempt: 5, jitter: "none", random: 0.5, delay: 1000 },
    { name: "none: an attempt below 1 counts as the first", attempt: 0, jitter: "none", random: 0.5, delay: 100 },
    { name: "full: just below the delay", attempt: 1, jitter: "full", random: 0.999, delay: 99 },
    { name: "full: half", attempt: 3, jitter: "full", random: 0.5, delay: 200 },
    { name: "full: capped", attempt: 30, jitter: "full", random: 0.999, delay: 999 },
    { name: "full: down to nothing", attempt: 2, jitter: "full", random: 0, delay: 0 },
    { name: "equal: never below half", attempt: 2, jitter: "equal", random: 0, delay: 100 },
    { name: "equal: up to the delay", attempt: 2, jitter: "equal", random: 0.999_999, delay: 200 },
    { name: "equal: capped", attempt: 40, jitter: "equal", random: 0, delay: 500 },
    { name: "spread: down by the fraction", attempt: 2, jitter: { spread: 0.1 }, random: 0, delay: 180 },
    { name: "spread: up by the fraction", attempt: 2, jitter: { spread: 0.1 }, random: 0.999_999, delay: 220 },
    { name: "spread: never past the cap", attempt: 5, jitter: { spread: 0.1 }, random: 0.999_999, delay: 1000 },
    {
      name: "spread: applies before the cap (well past it, the cap itself)",
      attempt: 5,
      jitter: { spread: 0.1 },
      random: 0,
      delay: 1000,
    },
  ])("$name", ({ attempt, jitter, random, delay }) => {
    expect(backoffDelay(attempt, b, jitter, () => random)).toBe(delay);
  });

  it("stays finite for a zero base and any number of failures", () => {
    expect(backoffDelay(5000, { baseMs: 0, maxMs: 1000 }, "equal", () => 0.5)).toBe(0);
    expect(backoffDelay(5000, { baseMs: 1, maxMs: Infinity })).toBe(2 ** 30);
  });
});

describe("spreadDelay()", () => {
  it.each([
    [0, 900],
    [0.5, 1000],
    [0.999_999, 1100],
  ])("random %d moves 1000 ms to %d", (random, ms) => {
    expect(spreadDelay(1000, 0.1, () => random)).toBe(ms);
  });
});
