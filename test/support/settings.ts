import type { PoolSettings, SubscriptionSettings } from "../../src/domain/index.js";

/** subscriptionSettings builds one subscription's settings with test defaults. */
export function subscriptionSettings(id: string, overrides: Partial<SubscriptionSettings> = {}): SubscriptionSettings {
  return {
    id,
    email: `${id}@example.com`,
    type: "claude-pro",
    configDir: `/tmp/authpool-test/${id}`,
    weeklyBudgetUsd: 100,
    fiveHourBudgetUsd: 10,
    maxSessions: 15,
    ...overrides,
  };
}

/** poolSettings builds domain settings for ids (or full subscription settings). */
export function poolSettings(
  subs: (string | SubscriptionSettings)[],
  overrides: Partial<PoolSettings> = {},
): PoolSettings {
  return {
    subscriptions: subs.map((s) => (typeof s === "string" ? subscriptionSettings(s) : s)),
    weeklyBudgetThreshold: 0.85,
    lowPriorityThreshold: 0.765,
    fallback: { enabled: true, provider: "anthropic-api" },
    sessions: { activeMinutes: 5, staleMinutes: 60 },
    cooldown: { defaultMinutes: 60, timeZone: "UTC" },
    health: { weights: { weekly: 40, fiveHour: 30, sessions: 15, burnRate: 10, idle: 5 } },
    dedupeRetentionHours: 48,
    rebalancing: { enabled: false, intervalSeconds: 300, costGapThreshold: 5, maxMovesPerCycle: 3 },
    notifications: { rules: [] },
    upstream: { staleAfterSeconds: 900, fiveHourCap: 0.95, modelCap: 1 },
    ...overrides,
  };
}
