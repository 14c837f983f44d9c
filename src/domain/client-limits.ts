/**
 * The limits of the client a new session is for (settings.clients): which
 * one, if any, refuses it, and the client's standing for the wait queue's
 * fair share. Dollars come from the usage ledger, so a budget holds across
 * restarts and on every instance alike.
 */

import { FIVE_HOURS_MS, HOUR_MS, WEEK_MS, floorHour } from "./time.js";
import { clientSpend } from "./ledger.js";
import type { ClientSettings, PoolSettings } from "./settings.js";
import type { PoolState, Priority } from "./state.js";

/** ClientLimitKind names a client limit. */
export type ClientLimitKind = "weekly_usd" | "five_hour_usd" | "max_sessions" | "share" | "model";

/** ClientLimitHit is the limit that refuses a client's new session, and where the client stands. */
export interface ClientLimitHit {
  client: string;
  kind: ClientLimitKind;
  /** e.g. "client ci-bot: $41.20 of its $40.00 a week" */
  detail: string;
}

const PRIORITY_RANK: Readonly<Record<Priority, number>> = { low: 0, normal: 1, high: 2 };

/** clientSettingsOf is a client's limits; undefined for a client with none. */
export function clientSettingsOf(settings: PoolSettings, client: string): ClientSettings | undefined {
  return settings.clients?.[client];
}

/** cappedPriority lowers a session's priority to its client's ceiling. */
export function cappedPriority(settings: PoolSettings, client: string, asked: Priority): Priority {
  const ceiling = clientSettingsOf(settings, client)?.maxPriority;
  return ceiling !== undefined && PRIORITY_RANK[asked] > PRIORITY_RANK[ceiling] ? ceiling : asked;
}

/**
 * clientLimitHit checks a new session of `client` asking for `model`
 * against the client's limits, cheapest first; undefined when none refuses.
 * A session the client already holds is never refused here: limits gate new
 * work, they do not strand running work.
 */
export function clientLimitHit(
  state: PoolState,
  settings: PoolSettings,
  client: string,
  model: string,
  now: number,
): ClientLimitHit | undefined {
  const c = clientSettingsOf(settings, client);
  if (c === undefined) return undefined;
  const hit = (kind: ClientLimitKind, what: string): ClientLimitHit => ({
    client,
    kind,
    detail: `client ${client}: ${what}`,
  });
  if (model !== "") {
    const wanted = model.toLowerCase();
    const matches = (entry: string) => wanted.includes(entry.toLowerCase());
    if (c.allowModels !== undefined && !c.allowModels.some(matches)) {
      return hit("model", `model ${model} is not among its allowed models (${c.allowModels.join(", ")})`);
    }
    const denied = c.denyModels?.find(matches);
    if (denied !== undefined) return hit("model", `model ${model} is denied to it (${denied})`);
  }
  const held = state.clientSessions.get(client) ?? 0;
  if (c.maxSessions !== undefined && held >= c.maxSessions) {
    return hit("max_sessions", `holds ${held} sessions, its most (maxSessions ${c.maxSessions})`);
  }
  if (c.share !== undefined) {
    const slots = poolSlots(settings);
    const most = Math.max(1, Math.floor(c.share * slots));
    if (held >= most) return hit("share", `holds ${held} of the pool's ${slots} session slots, its share is ${most}`);
  }
  const end = floorHour(now) + HOUR_MS;
  if (c.fiveHourUsd !== undefined) {
    const spent = clientSpend(state, client, now - FIVE_HOURS_MS, end);
    if (spent >= c.fiveHourUsd)
      return hit("five_hour_usd", `spent ${usd(spent)} in 5 hours, its limit is ${usd(c.fiveHourUsd)}`);
  }
  if (c.weeklyUsd !== undefined) {
    const spent = clientSpend(state, client, end - WEEK_MS, end);
    if (spent >= c.weeklyUsd)
      return hit("weekly_usd", `spent ${usd(spent)} in 7 days, its limit is ${usd(c.weeklyUsd)}`);
  }
  return undefined;
}

/**
 * fairShareUse is how much of its fair share a client uses: sessions it
 * holds plus `recent` (slots lately granted it), per unit of weight. The
 * wait queue serves the lowest first.
 */
export function fairShareUse(state: PoolState, settings: PoolSettings, client: string, recent = 0): number {
  const weight = clientSettingsOf(settings, client)?.weight ?? 1;
  return ((state.clientSessions.get(client) ?? 0) + recent) / weight;
}

/** poolSlots is the pool's session slots: every configured subscription's maxSessions. */
export function poolSlots(settings: PoolSettings): number {
  let slots = 0;
  for (const s of settings.subscriptions) slots += s.maxSessions;
  return slots;
}

function usd(n: number): string {
  return `$${n.toFixed(2)}`;
}
