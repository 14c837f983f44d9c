import { FIVE_HOURS_MS, HOUR_MS, MINUTE_MS, floorHour } from "../../src/domain/index.js";
import { LimitBook, type RunReport, type Strategy, placementOf } from "./strategy.js";
import type { SimSession } from "./workload.js";

/** OriginalHealthOptions: the original design's knobs, as configured for the pool being compared. */
export interface OriginalHealthOptions {
  accounts: number;
  weeklyBudgetUsd: number;
  fiveHourBudgetUsd: number;
  maxSessions: number;
  weeklyBudgetThreshold: number;
}

/**
 * originalHealth is the original design's allocator: a 0-100 health score
 * of weights 40 / 30 / 15 / 10 / 5 over weekly spend against the weekly
 * budget, 5-hour window spend against the window budget, sessions held
 * against the maximum, the trailing hour's burn against a sustainable rate,
 * and a bonus when no session is active; the highest score wins, ties go
 * to fewer sessions. Everything is counted in dollars the pool recorded:
 * no upstream readings, no use outside the pool. A 429 benches the account
 * until the reset its message names.
 */
export function originalHealth(options: OriginalHealthOptions): Strategy {
  const book = new LimitBook(options.accounts);
  // The simulated week fits in one rolling 7-day window, so weekly spend is all spend.
  const weeklySpend = Array.from({ length: options.accounts }, () => 0);
  const hourly = Array.from({ length: options.accounts }, () => new Map<number, number>());
  const windows: ({ end: number; spend: number } | undefined)[] = Array.from(
    { length: options.accounts },
    () => undefined,
  );
  const lastActivity = new Map<string, number>();

  const score = (a: number, at: number): number => {
    const weekly = weeklySpend[a]! / options.weeklyBudgetUsd;
    const w = windows[a];
    const five = w !== undefined && at < w.end ? w.spend / options.fiveHourBudgetUsd : 0;
    const hour = floorHour(at);
    const burn = (hourly[a]!.get(hour) ?? 0) + (hourly[a]!.get(hour - HOUR_MS) ?? 0) * (1 - (at - hour) / HOUR_MS);
    const sustainable = options.fiveHourBudgetUsd / 5;
    let active = 0;
    for (const [id, account] of book.holder) {
      if (account === a && at - (lastActivity.get(id) ?? -Infinity) < 5 * MINUTE_MS) active++;
    }
    const left = (x: number) => 1 - Math.min(1, Math.max(0, x));
    return (
      40 * left(weekly) +
      30 * left(five) +
      15 * left(book.sessions[a]! / options.maxSessions) +
      10 * left(burn / sustainable) +
      (active === 0 ? 5 : 0)
    );
  };
  const eligible = (a: number, at: number, holdsSlot: boolean): boolean => {
    if (!book.usable(a, at)) return false;
    if (weeklySpend[a]! / options.weeklyBudgetUsd >= options.weeklyBudgetThreshold) return false;
    return holdsSlot || book.sessions[a]! < options.maxSessions;
  };

  return {
    name: "original health",
    place(session: SimSession, at: number) {
      lastActivity.set(session.id, at);
      const held = book.holder.get(session.id);
      if (held !== undefined && eligible(held, at, true)) return placementOf(held);
      let best: number | undefined;
      let bestScore = -Infinity;
      for (let a = 0; a < options.accounts; a++) {
        if (a === held || !eligible(a, at, false)) continue;
        const s = score(a, at);
        if (s > bestScore || (s === bestScore && book.sessions[a]! < book.sessions[best!]!)) {
          best = a;
          bestScore = s;
        }
      }
      return placementOf(book.assign(session, best));
    },
    report(r: RunReport) {
      book.report(r);
      if (r.costUsd <= 0) return;
      const hour = floorHour(r.at);
      hourly[r.account]!.set(hour, (hourly[r.account]!.get(hour) ?? 0) + r.costUsd);
      weeklySpend[r.account]! += r.costUsd;
      const w = windows[r.account];
      if (w === undefined || r.at >= w.end) windows[r.account] = { end: hour + FIVE_HOURS_MS, spend: r.costUsd };
      else w.spend += r.costUsd;
      lastActivity.set(r.session.id, r.at);
    },
    release(session: SimSession) {
      book.release(session);
      lastActivity.delete(session.id);
    },
    tick: () => {},
  };
}
