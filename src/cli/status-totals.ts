import { type GetPoolStatusResponse, SubscriptionState } from "../../gen/authpool/v1/auth_pool_pb.js";
import type { Colors } from "./colors.js";

/**
 * totalsLine sums the pool up in one line under the table: how many
 * subscriptions take sessions now, the session slots held of all there are,
 * and how much of the week's capacity is left, e.g.
 * `total: 2/3 subscriptions available · sessions 4/45 · weekly left 71% (~$970 of $1368)`,
 * short enough for `status --compact`'s 100 columns at any pool size.
 * The weekly capacity left is each subscription's weekly budget times the share of its
 * week it has not used (upstream's figure when known), so a Max account
 * counts for what it is worth rather than as one of N.
 */
export function totalsLine(res: GetPoolStatusResponse, colors: Colors): string {
  const subs = res.subscriptions;
  const available = subs.filter((s) => isAvailable(s.status)).length;
  const held = subs.reduce((n, s) => n + s.sessionCount, 0);
  const slots = subs.reduce((n, s) => n + s.maxSessions, 0);
  const budget = subs.reduce((sum, s) => sum + s.weeklyBudgetUsd, 0);
  const left = subs.reduce((sum, s) => sum + s.weeklyBudgetUsd * Math.max(0, 1 - s.weeklyPercentUsed / 100), 0);
  const parts = [
    `${available}/${subs.length} subscription${subs.length === 1 ? "" : "s"} available`,
    `sessions ${held}/${slots}`,
  ];
  if (budget > 0) {
    const share = Math.round((left / budget) * 100);
    const paint = share <= 10 ? colors.red : share <= 25 ? colors.yellow : (s: string) => s;
    parts.push(paint(`weekly left ${share}% (~${usd(left)} of ${usd(budget)})`));
  }
  return `${colors.bold("total")}: ${parts.join(" · ")}`;
}

/** isAvailable: the states that take new sessions (approaching still does, with a warning). */
function isAvailable(state: SubscriptionState): boolean {
  return state === SubscriptionState.AVAILABLE || state === SubscriptionState.APPROACHING;
}

/** usd rounds to whole dollars, and to tenths of thousands from $10k, so the line stays short. */
function usd(amount: number): string {
  return amount < 9_999.5 ? `$${Math.round(amount)}` : `$${(amount / 1000).toFixed(1)}k`;
}
