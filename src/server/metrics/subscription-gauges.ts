import { Gauge, type Registry } from "prom-client";
import type { StatusResult, SubscriptionView } from "../../domain/index.js";
import { PREFIX, finite } from "./exposition.js";
import type { ScrapeStatus } from "./scrape-status.js";

const STATUSES = ["available", "approaching", "limited", "cooldown", "paused", "draining"] as const;

type UpstreamView = SubscriptionView["upstream"][number];

/** Sample is one labelled value of a gauge. */
type Sample = readonly [labels: Record<string, string>, value: number];

/** SubscriptionGauge is one `subscription_*` series and how a status decision gives its samples. */
interface SubscriptionGauge {
  name: string;
  help: string;
  labelNames: readonly string[];
  samples(s: StatusResult): Iterable<Sample>;
}

/** perSubscription is a gauge with a value per subscription. */
function perSubscription(
  name: string,
  help: string,
  value: (v: SubscriptionView, s: StatusResult) => number,
): SubscriptionGauge {
  return {
    name,
    help,
    labelNames: ["subscription"],
    *samples(s) {
      for (const v of s.views) yield [{ subscription: v.cfg.id }, value(v, s)];
    },
  };
}

/** perWindow is a gauge with a value per subscription and upstream window. */
function perWindow(name: string, help: string, value: (u: UpstreamView, s: StatusResult) => number): SubscriptionGauge {
  return {
    name,
    help,
    labelNames: ["subscription", "window"],
    *samples(s) {
      for (const v of s.views) {
        for (const u of v.upstream) yield [{ subscription: v.cfg.id, window: u.window }, value(u, s)];
      }
    },
  };
}

/** statusGauge is 1 for each subscription's current status, 0 for the others. */
function statusGauge(): SubscriptionGauge {
  return {
    name: "status",
    help: "1 for the subscription's current status.",
    labelNames: ["subscription", "status"],
    *samples(s) {
      for (const v of s.views) {
        // A status this list does not know yet still shows, as the one set to 1.
        const names = new Set<string>([...STATUSES, v.status]);
        for (const name of names) yield [{ subscription: v.cfg.id, status: name }, v.status === name ? 1 : 0];
      }
    },
  };
}

/** The gauges in the order of the exposition. */
const GAUGES: readonly SubscriptionGauge[] = [
  perSubscription("health_score", "Health score 0-100 (higher is healthier).", (v) => v.health.score),
  perSubscription("weekly_used_usd", "Cost in the rolling 7 days (USD, API-price estimate).", (v) => v.weeklyUsedUsd),
  perSubscription("weekly_budget_usd", "Configured weekly budget (USD).", (v) => v.cfg.weeklyBudgetUsd),
  perSubscription(
    "weekly_used_ratio",
    "Share of the weekly limit used (upstream when known), 0-1.",
    (v) => v.weekly.value,
  ),
  perSubscription("five_hour_used_ratio", "Share of the current 5-hour window used, 0-1.", (v) => v.fiveHour.value),
  perSubscription(
    "external_weekly_usd",
    "Use in the rolling 7 days found in transcripts, not reported through the pool (USD).",
    (v) => v.weeklyExternalUsd,
  ),
  perWindow(
    "upstream_utilization_ratio",
    "Latest upstream utilization per window whose reset has not passed, 0-1.",
    (u) => u.observation.utilization,
  ),
  perWindow("upstream_age_seconds", "Age of the latest upstream observation per window.", (u, s) =>
    Math.max(0, (s.now - u.observation.observedAt) / 1000),
  ),
  perSubscription("burn_rate_usd_per_hour", "Cost of the trailing hour (USD).", (v) => v.burnRateUsdPerHour),
  perSubscription("sessions", "Sessions held.", (v) => v.sessionCount),
  perSubscription("active_sessions", "Sessions active within sessions.activeMinutes.", (v) => v.activeSessions),
  perSubscription("max_sessions", "Configured session limit.", (v) => v.cfg.maxSessions),
  perSubscription("cooldown", "1 while a whole-subscription cooldown is in force.", (v) =>
    v.cooldown === undefined ? 0 : 1,
  ),
  perSubscription("cooldown_until_seconds", "End of the cooldown in force (Unix seconds), 0 when none.", (v) =>
    v.cooldown === undefined ? 0 : Math.floor(v.cooldown.until / 1000),
  ),
  statusGauge(),
];

/**
 * registerSubscriptionGauges registers the per-subscription gauges, each
 * computed at scrape time from the scrape's status decision.
 */
export function registerSubscriptionGauges(registers: Registry[], status: ScrapeStatus): void {
  for (const gauge of GAUGES) register(registers, status, gauge);
}

function register(
  registers: Registry[],
  status: ScrapeStatus,
  { name, help, labelNames, samples }: SubscriptionGauge,
): void {
  const gauge: Gauge<string> = new Gauge({
    name: `${PREFIX}subscription_${name}`,
    help,
    labelNames,
    registers,
    async collect() {
      const s = await status();
      gauge.reset();
      for (const [labels, value] of samples(s)) gauge.set(labels, finite(value));
    },
  });
}
