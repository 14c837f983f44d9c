import type { Fraction } from "./accounting.js";
import type { Health, HealthComponentName } from "./health.js";

/** PacedWindow is one limit window as pacing reads it. */
export interface PacedWindow {
  component: Extract<HealthComponentName, "weekly_use" | "five_hour_use">;
  fraction: Fraction;
  lengthMs: number;
}

/**
 * pacedRank is what allocation orders subscriptions by with
 * `settings.pacing`: the health score, except that for a window whose reset
 * time upstream has reported, the
 * window's points weigh the room left against the time left until that
 * reset instead of the room alone. A reset takes away whatever room is
 * left, so room that resets soon is worth spending first, and room that
 * must last for days is worth keeping: an account on pace (the share of
 * the window left equals the share of its time left) gets half the
 * window's points, one twice as far behind (or more) all of them. With no
 * reset time known the window's points are the health score's own.
 *
 * Across accounts whose weekly windows reset at different times this
 * spends each one's week before it resets, where ranking by room alone
 * keeps sparing the account about to reset and its room is lost (see
 * docs/BENCHMARKS.md, allocation quality).
 */
export function pacedRank(health: Health, windows: readonly PacedWindow[], now: number): number {
  let rank = health.score;
  for (const w of windows) {
    const resetsAt = w.fraction.observation?.resetsAt;
    if (w.fraction.basis !== "upstream" || resetsAt === undefined || resetsAt <= now) continue;
    const c = health.components.find((x) => x.name === w.component);
    if (c === undefined) continue;
    const timeLeft = Math.min(1, (resetsAt - now) / w.lengthMs);
    const roomLeft = Math.min(1, Math.max(0, 1 - w.fraction.value));
    rank += c.maxPoints * Math.min(1, roomLeft / (2 * timeLeft)) - c.points;
  }
  return Math.round(rank * 100) / 100;
}
