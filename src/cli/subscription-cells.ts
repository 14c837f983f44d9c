import { SubscriptionState, type SubscriptionStatus } from "../../gen/authpool/v1/auth_pool_pb.js";
import type { Colors } from "./colors.js";
import { stateName } from "./enum-names.js";
import { formatTime, millisOf } from "./format-time.js";

// What the status table and its compact form both say about a subscription.

/** statusCell is the state's name in its colour: available green, approaching yellow, limited and cooldown red. */
export function statusCell(state: SubscriptionState, colors: Colors): string {
  const name = stateName(state);
  switch (state) {
    case SubscriptionState.AVAILABLE:
      return colors.green(name);
    case SubscriptionState.APPROACHING:
      return colors.yellow(name);
    case SubscriptionState.LIMITED:
    case SubscriptionState.COOLDOWN:
      return colors.red(name);
    default:
      return colors.gray(name);
  }
}

/** fiveHourPercent is the 5-hour window's use: the window's own figure, else the explained one. */
export function fiveHourPercent(s: SubscriptionStatus): number {
  return s.fiveHourWindow?.percentUsed ?? s.fiveHour?.percentUsed ?? 0;
}

/** cooldownUntil is when the subscription's cooldown ends (epoch ms), if it has one. */
export function cooldownUntil(s: SubscriptionStatus): number | undefined {
  return millisOf(s.cooldown?.until) ?? millisOf(s.cooldownUntil);
}

/** warningsOf gathers everything an operator should look at, from the reply's several places. */
export function warningsOf(s: SubscriptionStatus): string[] {
  const warnings = [...s.warnings];
  const throttledUntil = millisOf(s.throttle?.until);
  if (throttledUntil !== undefined)
    warnings.push(`throttled until ${formatTime(throttledUntil)}: ${s.throttle?.reason ?? ""}`);
  if (s.usagePolling !== undefined && s.usagePolling.lastError !== "")
    warnings.push(`usage polling: ${s.usagePolling.lastError}`);
  if (s.external !== undefined && s.external.scanError !== "") warnings.push(`transcripts: ${s.external.scanError}`);
  return warnings;
}
