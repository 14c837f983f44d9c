import { formatPercent } from "./format.js";
import { type Fraction, burnRateUsdPerHour } from "./accounting.js";
import type { HealthWeights, SubscriptionSettings } from "./settings.js";
import type { SubscriptionState } from "./state.js";

/**
 * Health: a 0-100 score per subscription, higher is healthier, with the
 * points of each component so an operator can see why. Weights are
 * normalised to 100, so the components always add up to the score.
 */

export type HealthComponentName = "weekly_use" | "five_hour_use" | "sessions" | "burn_rate" | "idle_bonus";

export interface HealthComponent {
  name: HealthComponentName;
  points: number;
  maxPoints: number;
  /** The input: a 0-1 fraction used, or for idle_bonus 1 when no session is active. */
  value: number;
  detail: string;
}

export interface Health {
  score: number;
  components: HealthComponent[];
}

/** HealthInput is what the score depends on, nothing else. */
export interface HealthInput {
  cfg: SubscriptionSettings;
  sub: SubscriptionState;
  /** The shares used, as the view derived them (upstream when known). */
  weekly: Fraction;
  fiveHour: Fraction;
  sessionCount: number;
  activeSessions: number;
  now: number;
  weights: HealthWeights;
  /** The trailing hour's cost when the caller has already summed it; derived from sub otherwise. */
  burnRateUsdPerHour?: number;
  /** Why the subscription can take nothing now (paused, signed out, cooling down): every component scores 0. */
  blockedBy?: string;
}

/** computeHealth scores one subscription; deterministic in its input. */
export function computeHealth(input: HealthInput): Health {
  const { cfg, sub, now, weights } = input;
  const [weeklyMax, fiveHourMax, sessionsMax, burnMax, idleMax] = maxPointsOf(weights);

  const { weekly, fiveHour } = input;
  const sessionShare = input.sessionCount / cfg.maxSessions;
  // The rate that would spend a whole expected window in its 5 hours: burning
  // faster than that heads for the 5-hour limit.
  const sustainable = cfg.fiveHourBudgetUsd / 5;
  const burn = input.burnRateUsdPerHour ?? burnRateUsdPerHour(sub, now);
  const burnShare = sustainable > 0 ? burn / sustainable : 0;
  const idle = input.activeSessions === 0 ? 1 : 0;

  const components: HealthComponent[] = [
    component(
      "weekly_use",
      weeklyMax,
      weekly.value,
      `${formatPercent(weekly.value)} of the weekly ${describeBasis(weekly, "budget")}`,
    ),
    component(
      "five_hour_use",
      fiveHourMax,
      fiveHour.value,
      `${formatPercent(fiveHour.value)} of the 5-hour ${describeBasis(fiveHour, "window budget")}`,
    ),
    component("sessions", sessionsMax, sessionShare, `${input.sessionCount} of ${cfg.maxSessions} sessions`),
    component(
      "burn_rate",
      burnMax,
      burnShare,
      `$${burn.toFixed(2)}/h against a sustainable $${sustainable.toFixed(2)}/h`,
    ),
    {
      name: "idle_bonus",
      maxPoints: idleMax,
      points: idleMax * idle,
      value: idle,
      detail: idle === 1 ? "no active session" : `${input.activeSessions} active sessions`,
    },
  ];
  if (input.blockedBy !== undefined) {
    for (const c of components) {
      c.points = 0;
      c.detail = `${c.detail}; 0 while ${input.blockedBy}`;
    }
  }
  const score = round2(components.reduce((s, c) => s + c.points, 0));
  return { score: Math.min(100, Math.max(0, score)), components };
}

/** describeBasis says what a share rests on, for the breakdown an operator reads. */
function describeBasis(f: Fraction, budgetName: string): string {
  if (f.basis === "upstream") return f.stale ? "limit (upstream, stale)" : "limit (upstream)";
  return f.learned ? "limit (estimated at the learned rate)" : budgetName;
}

function component(name: HealthComponentName, maxPoints: number, used: number, detail: string): HealthComponent {
  const clamped = Math.min(1, Math.max(0, used));
  return {
    name,
    maxPoints: round2(maxPoints),
    points: round2(maxPoints * (1 - clamped)),
    value: round4(used),
    detail,
  };
}

/** Each weights object's points, allotted once: settings are immutable and shared by every view. */
const allotted = new WeakMap<HealthWeights, [number, number, number, number, number]>();

function maxPointsOf(weights: HealthWeights): [number, number, number, number, number] {
  let points = allotted.get(weights);
  if (points === undefined) {
    points = allot([weights.weekly, weights.fiveHour, weights.sessions, weights.burnRate, weights.idle]) as [
      number,
      number,
      number,
      number,
      number,
    ];
    allotted.set(weights, points);
  }
  return points;
}

/**
 * allot shares 100 points among the weights in whole hundredths, handing the
 * cents lost to rounding to the largest remainders. Rounding each share on its
 * own can make the maxima add up to 100.01 (weights 1,1,1,1,2), and the score,
 * capped at 100, would then no longer be the sum of its components.
 */
function allot(weights: number[]): number[] {
  const total = weights.reduce((s, w) => s + w, 0);
  if (!(total > 0)) return weights.map(() => 0);
  const exact = weights.map((w) => (w * 10_000) / total);
  const cents = exact.map((e) => Math.floor(e));
  let left = 10_000 - cents.reduce((s, c) => s + c, 0);
  const byRemainder = exact.map((_, i) => i).sort((a, b) => exact[b]! - cents[b]! - (exact[a]! - cents[a]!) || a - b);
  for (const i of byRemainder) {
    if (left <= 0) break;
    cents[i]! += 1;
    left--;
  }
  return cents.map((c) => c / 100);
}

function round2(n: number): number {
  return Math.round(n * 100) / 100;
}

function round4(n: number): number {
  return Math.round(n * 10_000) / 10_000;
}
