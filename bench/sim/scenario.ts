import { DAY_MS, type PoolSettings, type SubscriptionSettings } from "../../src/domain/index.js";
import { originalHealth } from "./original-health.js";
import { poolStrategy } from "./pool-strategy.js";
import { createRng } from "./prng.js";
import { SimAccount } from "./sim-account.js";
import { type Strategy, fillFirst, leastSessions, roundRobin, stickyUntilLimit } from "./strategy.js";
import { type ExternalUse, type Workload, generateExternalUse, generateWorkload } from "./workload.js";

/** SIM_START: the Monday 00:00 UTC the simulated week starts (any Monday would do). */
export const SIM_START = Date.parse("2026-11-02T00:00:00Z");

/** ScenarioOptions size one simulated pool. */
export interface ScenarioOptions {
  seed: number;
  accounts: number;
  /** People per account (default 2.5). */
  peoplePerAccount?: number;
  /** Team demand over the pool's total weekly capacity (default 1.1: a bit over). */
  load?: number;
  /** Share of accounts whose owners also use them outside the pool (default 0.3). */
  externalShare?: number;
}

/** Scenario is one seeded week: the workload, the accounts' hidden limits, and the use outside the pool. */
export interface Scenario {
  options: Required<ScenarioOptions>;
  workload: Workload;
  external: ExternalUse[];
  /** The capacity every account is configured with: what the plan nominally gives. */
  nominalWeeklyUsd: number;
  /** Builds fresh accounts (strategies must not share their state). */
  accounts(): SimAccount[];
}

/**
 * FIVE_HOUR_SHARE: a 5-hour window holds this share of the weekly capacity,
 * so a heavy day meets the 5-hour limit before the week runs out.
 */
const FIVE_HOUR_SHARE = 1 / 6;

/**
 * createScenario draws a week for `accounts` accounts and 2.5 people per
 * account, then sizes the accounts so that the team's demand (weighted by
 * model), plus the owners' own use, is `load` times their total weekly
 * capacity. Each account's real capacity differs from the nominal one by up
 * to ±25% (plans differ, and Claude adjusts limits); nobody is told.
 */
export function createScenario(options: ScenarioOptions): Scenario {
  const o: Required<ScenarioOptions> = { peoplePerAccount: 2.5, load: 1.1, externalShare: 0.3, ...options };
  const rng = createRng(o.seed);
  const workload = generateWorkload(rng.fork(1), Math.round(o.accounts * o.peoplePerAccount), SIM_START);
  const shape = rng.fork(2);
  const factors = Array.from({ length: o.accounts }, () => shape.uniform(0.75, 1.25));
  const external = Array.from({ length: o.accounts }, (_, i) => i < Math.round(o.accounts * o.externalShare));
  // Owners use about 4% of their account's weekly capacity per weekday evening.
  const externalShareOfWeek = 5 * 0.04;
  const factorSum = factors.reduce((s, f, i) => s + f * (1 - (external[i] ? externalShareOfWeek : 0)), 0);
  const nominalWeeklyUsd = workload.demandUsageUsd / o.load / factorSum;
  const caps = factors.map((f) => f * nominalWeeklyUsd);
  // Each account's week resets at its own time during the simulated week,
  // and it starts with what the previous days of that week used of it.
  const resets = factors.map(() => SIM_START + shape.uniform(0.5, 7) * DAY_MS);
  const used = resets.map((r, i) => caps[i]! * (1 - (r - SIM_START) / (7 * DAY_MS)) * shape.uniform(0.5, 0.95));
  return {
    options: o,
    workload,
    external: generateExternalUse(rng.fork(3), caps.map((c, i) => ({ weeklyCapUsd: c, external: external[i]! })), SIM_START, 0.04),
    nominalWeeklyUsd,
    accounts: () => caps.map((c, i) => new SimAccount(`acct${i + 1}`, c, c * FIVE_HOUR_SHARE, resets[i]!, used[i]!)),
  };
}

/**
 * STRATEGIES names what the simulator compares: ours first, then the same
 * pool with its out-of-the-box settings (shown, not judged), then the
 * strategies a gateway could use instead.
 */
export const STRATEGIES = [
  "auth pool",
  "auth pool, defaults",
  "original health",
  "round-robin",
  "least-sessions",
  "fill-first",
  "sticky-until-limit",
] as const;

export type StrategyName = (typeof STRATEGIES)[number];

/** OURS is the strategy the verdict judges; OURS_DEFAULTS is reported beside it. */
export const OURS: StrategyName = "auth pool";
export const OURS_DEFAULTS: StrategyName = "auth pool, defaults";

/** POLL_MS: the usage endpoint's polling interval (`upstream.intervalSeconds`, default 90). */
const POLL_MS = 90_000;

/**
 * simPoolSettings is the pool's configuration for a scenario. Every account
 * is configured with the nominal weekly budget and the default 5-hour guess
 * (a tenth of it), 15 sessions, default health weights. "tuned" is how a
 * team that owns its accounts runs it (with upstream polling, see
 * createStrategy): the whole week may be spent (`weeklyBudgetThreshold: 1`,
 * nothing is held back for the owners), the 5-hour cap at 98%, and
 * allocation paced against each window's reset (`pacing`). "defaults" is
 * the out-of-the-box configuration: 85% of the week, a 95% 5-hour cap, no
 * pacing (and no polling).
 */
export function simPoolSettings(scenario: Scenario, profile: "tuned" | "defaults"): PoolSettings {
  const subscriptions: SubscriptionSettings[] = Array.from({ length: scenario.options.accounts }, (_, i) => ({
    id: `acct${i + 1}`,
    email: `acct${i + 1}@example.com`,
    type: "claude-max",
    configDir: `/sim/acct${i + 1}`,
    weeklyBudgetUsd: scenario.nominalWeeklyUsd,
    fiveHourBudgetUsd: scenario.nominalWeeklyUsd / 10,
    maxSessions: 15,
  }));
  const tuned = profile === "tuned";
  const threshold = tuned ? 1 : 0.85;
  return {
    subscriptions,
    weeklyBudgetThreshold: threshold,
    lowPriorityThreshold: threshold * 0.9,
    fallback: { enabled: true, provider: "anthropic-api" },
    sessions: { activeMinutes: 5, staleMinutes: 60 },
    cooldown: { defaultMinutes: 60, timeZone: "UTC" },
    health: { weights: { weekly: 40, fiveHour: 30, sessions: 15, burnRate: 10, idle: 5 } },
    dedupeRetentionHours: 48,
    rebalancing: { enabled: false, intervalSeconds: 300, costGapThreshold: 5, maxMovesPerCycle: 3 },
    upstream: { staleAfterSeconds: 900, fiveHourCap: tuned ? 0.98 : 0.95, modelCap: 1 },
    notifications: { rules: [] },
    ...(tuned ? { pacing: true } : {}),
  };
}

/** createStrategy builds a fresh strategy for a scenario. */
export function createStrategy(name: StrategyName, scenario: Scenario): Strategy {
  const n = scenario.options.accounts;
  switch (name) {
    case "auth pool":
      return poolStrategy(name, simPoolSettings(scenario, "tuned"), POLL_MS);
    case "auth pool, defaults":
      return poolStrategy(name, simPoolSettings(scenario, "defaults"));
    case "original health":
      // The same budgets and the same threshold as ours: only the formula and the knowledge differ.
      return originalHealth({
        accounts: n,
        weeklyBudgetUsd: scenario.nominalWeeklyUsd,
        fiveHourBudgetUsd: scenario.nominalWeeklyUsd / 10,
        maxSessions: 15,
        weeklyBudgetThreshold: 1,
      });
    case "round-robin":
      return roundRobin(n);
    case "least-sessions":
      return leastSessions(n);
    case "fill-first":
      return fillFirst(n);
    case "sticky-until-limit":
      return stickyUntilLimit(n);
  }
}
