import { FIVE_HOURS_MS, type RateLimitReading, floorHour } from "../../src/domain/index.js";

/** SimLimit says which window refused a run and when it resets. */
export interface SimLimit {
  window: "five_hour" | "seven_day";
  resetsAt: number;
}

/**
 * SimAccount is one Claude subscription as Claude limits it: a 5-hour
 * window that opens with the first use after the previous one ended (its
 * reset is that hour + 5 h, as Claude reports it) and a weekly window, each
 * capped at 100% of a capacity the pool never sees. Claude checks the limits
 * on every API request a run makes: a run that starts while either window is
 * at its cap is refused at once (a 429), and one that reaches a cap midway is
 * cut there (the rest of its requests are refused); either way the account
 * is limited until that window resets.
 */
export class SimAccount {
  readonly id: string;
  /** Capacities in utilization dollars: API-price dollars weighted by model. */
  readonly weeklyCapUsd: number;
  readonly fiveHourCapUsd: number;
  private weeklyResetAt: number;
  private windowEnd: number | undefined;
  private windowUsedUsd = 0;
  private weeklyUsedUsd = 0;

  /** The weekly utilization each time the weekly window reset: what was left then was lost. */
  readonly utilizationAtResets: number[] = [];

  /**
   * weeklyResetAt is the account's next weekly reset (each account has its
   * own), weeklyUsedUsd what it has used of the week that reset opens.
   */
  constructor(id: string, weeklyCapUsd: number, fiveHourCapUsd: number, weeklyResetAt: number, weeklyUsedUsd = 0) {
    this.id = id;
    this.weeklyCapUsd = weeklyCapUsd;
    this.fiveHourCapUsd = fiveHourCapUsd;
    this.weeklyResetAt = weeklyResetAt;
    this.weeklyUsedUsd = weeklyUsedUsd;
  }

  /** limitAt returns the window that refuses a run starting at `at`, or undefined if it may run. */
  limitAt(at: number): SimLimit | undefined {
    this.roll(at);
    if (this.weeklyUsedUsd >= this.weeklyCapUsd) return { window: "seven_day", resetsAt: this.weeklyResetAt };
    if (this.windowEnd !== undefined && this.windowUsedUsd >= this.fiveHourCapUsd)
      return { window: "five_hour", resetsAt: this.windowEnd };
    return undefined;
  }

  /** roomAt is how much more (utilization dollars) both windows take at `at` before one is at its cap. */
  roomAt(at: number): number {
    this.roll(at);
    const window = this.windowEnd === undefined ? this.fiveHourCapUsd : this.fiveHourCapUsd - this.windowUsedUsd;
    return Math.min(window, this.weeklyCapUsd - this.weeklyUsedUsd);
  }

  /** use takes usageUsd of both windows at `at` (a served run, or use outside the pool). */
  use(at: number, usageUsd: number): void {
    this.roll(at);
    if (this.windowEnd === undefined) this.windowEnd = floorHour(at) + FIVE_HOURS_MS;
    this.windowUsedUsd += usageUsd;
    this.weeklyUsedUsd += usageUsd;
  }

  /**
   * readings are what a run's stream-json `rate_limit_event`s (or the
   * response headers) tell about both windows at `at`.
   */
  readings(at: number): RateLimitReading[] {
    this.roll(at);
    const five = this.windowUsedUsd / this.fiveHourCapUsd;
    const week = this.weeklyUsedUsd / this.weeklyCapUsd;
    return [
      {
        window: "five_hour",
        source: "stream",
        status: five >= 1 ? "rejected" : five >= 0.8 ? "allowed_warning" : "allowed",
        utilization: round4(Math.min(1, five)),
        ...(this.windowEnd !== undefined ? { resetsAt: this.windowEnd } : {}),
      },
      {
        window: "seven_day",
        source: "stream",
        status: week >= 1 ? "rejected" : week >= 0.8 ? "allowed_warning" : "allowed",
        utilization: round4(Math.min(1, week)),
        resetsAt: this.weeklyResetAt,
      },
    ];
  }

  /**
   * usageEndpoint is what Claude's OAuth usage endpoint answers at `at`:
   * the same windows in whole percents (it rounds).
   */
  usageEndpoint(at: number): RateLimitReading[] {
    return this.readings(at).map((r) => ({
      ...r,
      source: "oauth",
      utilization: Math.round((r.utilization ?? 0) * 100) / 100,
    }));
  }

  private roll(at: number): void {
    if (this.windowEnd !== undefined && at >= this.windowEnd) {
      this.windowEnd = undefined;
      this.windowUsedUsd = 0;
    }
    while (at >= this.weeklyResetAt) {
      this.utilizationAtResets.push(this.weeklyUsedUsd / this.weeklyCapUsd);
      this.weeklyResetAt += 7 * 24 * 3_600_000;
      this.weeklyUsedUsd = 0;
    }
  }
}

function round4(x: number): number {
  return Math.round(x * 10_000) / 10_000;
}
