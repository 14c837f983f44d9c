import type { Rejection } from "../commands.js";
import type { EventBody } from "../events.js";
import type { PoolSettings, SubscriptionSettings } from "../settings.js";
import type { PoolState } from "../state.js";
import type { AllocationNeed, SubscriptionView } from "../view.js";

/**
 * PoolContext is what a command handler reads of the pool: the state it
 * decides on, the settings in force and the views derived from both. A
 * handler changes nothing itself: it emits events, which the pool applies
 * at once (so the next read sees them). Handlers take a `Pick` of it that
 * names exactly what they read.
 */
export interface PoolContext {
  readonly state: PoolState;
  /** The settings in force. */
  readonly settings: PoolSettings;
  /** isConfigured: the id is in the settings in force (a removed one still draining is not). */
  isConfigured(subscriptionId: string): boolean;
  /**
   * settingsOf finds a subscription's settings: from the config, or for one
   * a reload removed, the settings remembered while it still holds sessions.
   */
  settingsOf(subscriptionId: string): SubscriptionSettings | undefined;
  /** view derives a subscription's view at now; undefined for an id settingsOf does not know. */
  view(subscriptionId: string, now: number): SubscriptionView | undefined;
  /** views derives every configured subscription's view, in config order, then removed ones still draining. */
  views(now: number): SubscriptionView[];
  /**
   * bestCandidate is the best-ranked configured subscription that can take
   * a new session with `need` (skipping `skip`), read from the ranking kept
   * between decisions; undefined when none can.
   */
  bestCandidate(need: AllocationNeed, skip: string | undefined, now: number): SubscriptionView | undefined;
}

/** Emit hands the pool an event to stamp, apply and journal. */
export type Emit = (event: EventBody) => void;

/** notConfigured refuses a command about a subscription the settings in force do not hold. */
export function notConfigured(subscriptionId: string): Rejection {
  return {
    kind: "rejected",
    code: "not_found",
    message: `subscription_id: subscription "${subscriptionId}" is not configured`,
  };
}
