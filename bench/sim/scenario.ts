import { INLINE_SOURCE, type PoolConfig, configDefaults, parseConfig } from "../../src/config/index.js";
import { DAY_MS } from "../../src/domain/index.js";
import { originalHealth } from "./original-health.js";
import { type PoolStrategy, poolStrategy } from "./pool-strategy.js";
import { withClients } from "./client-workload.js";
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
  /** Book the work to clients and add a bot and a batch job (see withClients; default false). */
  clients?: boolean;
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
  const o: Required<ScenarioOptions> = {
    peoplePerAccount: 2.5,
    load: 1.1,
    externalShare: 0.3,
    clients: false,
    ...options,
  };
  const rng = createRng(o.seed);
  const team = generateWorkload(rng.fork(1), Math.round(o.accounts * o.peoplePerAccount), SIM_START);
  const workload = o.clients ? withClients(team, rng.fork(4), o.accounts) : team;
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
    external: generateExternalUse(
      rng.fork(3),
      caps.map((c, i) => ({ weeklyCapUsd: c, external: external[i]! })),
      SIM_START,
      0.04,
    ),
    nominalWeeklyUsd,
    accounts: () => caps.map((c, i) => new SimAccount(`acct${i + 1}`, c, c * FIVE_HOUR_SHARE, resets[i]!, used[i]!)),
  };
}

/**
 * STRATEGIES names what the simulator compares: the pool as a team that
 * owns its accounts runs it (judged), the pool out of the box, the pool out
 * of the box with nothing held back for the accounts' owners, then the
 * strategies a gateway could use instead.
 */
export const STRATEGIES = [
  "auth pool",
  "auth pool, defaults",
  "auth pool, learned reserve",
  "original health",
  "round-robin",
  "least-sessions",
  "fill-first",
  "sticky-until-limit",
] as const;

export type StrategyName = (typeof STRATEGIES)[number];

/** OURS is the pool as its owners would run it: the other pool rows are judged against it too. */
export const OURS: StrategyName = "auth pool";

/** POOL_ROWS are the rows that run the real domain; the rest are the baselines the verdict compares with. */
export const POOL_ROWS: readonly StrategyName[] = ["auth pool", "auth pool, defaults", "auth pool, learned reserve"];

/**
 * JUDGED_ROWS are the pool rows the verdict holds to beating every baseline
 * (and, but for OURS, to paid fallback within 10% of OURS's); the reserve
 * row is shown for what keeping owners' use back costs and buys.
 */
export const JUDGED_ROWS: readonly StrategyName[] = ["auth pool", "auth pool, defaults"];

/**
 * PROFILES are the config each pool row runs with, over the scenario's
 * subscriptions: every key not named here is the config module's default
 * (src/config/defaults.ts), so a changed default shows in the rows.
 * "tuned" is how a team that owns its accounts runs it: the whole week may
 * be spent (nothing held back for the owners), the 5-hour cap at 98%,
 * pacing, and each account's usage endpoint polled. "learned reserve" is the
 * defaults with `weeklyBudgetThreshold: auto` for every account: each keeps
 * back what its owner is measured to use outside the pool.
 */
export const PROFILES = {
  tuned: { weeklyBudgetThreshold: 1, pacing: true, upstream: { enabled: true, fiveHourCap: 0.98 } },
  defaults: {},
  "learned reserve": { weeklyBudgetThreshold: "auto" },
} as const satisfies Record<string, Record<string, unknown>>;

export type ProfileName = keyof typeof PROFILES;

/**
 * simPoolConfig is the pool's configuration for `accounts` simulated
 * accounts (acct1, acct2, ...), through the config module as a file would
 * go: each with the nominal weekly budget (the 5-hour budget, sessions and
 * everything else defaulted), `extra` (clients, or other defaults to try),
 * and the profile's keys over both.
 */
export function simPoolConfig(
  accounts: number,
  weeklyBudgetUsd: number,
  profile: ProfileName,
  extra: Record<string, unknown> = {},
): PoolConfig {
  const subscriptions = Array.from({ length: accounts }, (_, i) => ({
    id: `acct${i + 1}`,
    email: `acct${i + 1}@example.com`,
    type: "claude-max",
    configDir: `/sim/acct${i + 1}`,
    weeklyBudgetUsd,
  }));
  return parseConfig(mergeRaw(mergeRaw({ subscriptions }, extra), PROFILES[profile]), INLINE_SOURCE);
}

/** mergeRaw lays raw config keys over others, section by section (`upstream: { enabled }` keeps the other upstream keys). */
export function mergeRaw(
  base: Readonly<Record<string, unknown>>,
  over: Readonly<Record<string, unknown>>,
): Record<string, unknown> {
  const merged: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const under = merged[key];
    merged[key] = isSection(under) && isSection(value) ? mergeRaw(under, value) : value;
  }
  return merged;
}

function isSection(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

/** poolStrategyFor runs the pool with a config as the server would: polling when `upstream.enabled` says so. */
export function poolStrategyFor(name: string, config: PoolConfig, options: { wait?: boolean } = {}): PoolStrategy {
  return poolStrategy(name, config, {
    ...(config.upstream.enabled ? { pollMs: config.upstream.intervalSeconds * 1000 } : {}),
    ...(options.wait === true ? { queue: config.queue } : {}),
  });
}

/**
 * createStrategy builds a fresh strategy for a scenario; `config` stands in
 * for defaults under every pool row's profile (`npm run simulate -- --config
 * '{"pacing":false}'` shows what a default buys: the rows that do not set it
 * change).
 */
export function createStrategy(name: StrategyName, scenario: Scenario, config: Record<string, unknown> = {}): Strategy {
  const n = scenario.options.accounts;
  const pool = (profile: ProfileName) =>
    poolStrategyFor(name, simPoolConfig(n, scenario.nominalWeeklyUsd, profile, config));
  switch (name) {
    case "auth pool":
      return pool("tuned");
    case "auth pool, defaults":
      return pool("defaults");
    case "auth pool, learned reserve":
      return pool("learned reserve");
    case "original health":
      // The same budgets as ours, the whole week: only the formula and the knowledge differ.
      return originalHealth({
        accounts: n,
        weeklyBudgetUsd: scenario.nominalWeeklyUsd,
        fiveHourBudgetUsd: scenario.nominalWeeklyUsd / configDefaults.fiveHourBudgetDivisor,
        maxSessions: configDefaults.maxSessionsPerSubscription,
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
