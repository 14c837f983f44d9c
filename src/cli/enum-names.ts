import {
  ClientLimitKind,
  EventType,
  HistoryGroupBy,
  LimitWindow,
  NotificationChannel,
  Priority,
  SessionState,
  SubscriptionState,
  UsageGroupBy,
} from "../../gen/authpool/v1/auth_pool_pb.js";

/**
 * The words the CLI uses for the proto enums: lower case, without the
 * prefix, the way the config file and the README spell them.
 */

const STATE_NAMES: Record<SubscriptionState, string> = {
  [SubscriptionState.UNSPECIFIED]: "unknown",
  [SubscriptionState.AVAILABLE]: "available",
  [SubscriptionState.APPROACHING]: "approaching",
  [SubscriptionState.LIMITED]: "limited",
  [SubscriptionState.COOLDOWN]: "cooldown",
  [SubscriptionState.PAUSED]: "paused",
  [SubscriptionState.DRAINING]: "draining",
  [SubscriptionState.SIGNED_OUT]: "signed out",
};

/** stateName is a SubscriptionState as operators say it: "available", "cooldown". */
export function stateName(state: SubscriptionState): string {
  return STATE_NAMES[state] ?? String(state);
}

/**
 * windowName is a LimitWindow in the config's spelling: "five_hour",
 * "seven_day_opus"; "" for a limit whose window the signal did not say.
 */
export function windowName(window: LimitWindow): string {
  return window === LimitWindow.UNSPECIFIED ? "" : (LimitWindow[window]?.toLowerCase() ?? String(window));
}

/** sessionStateName is a SessionState: "active", "idle", "stale". */
export function sessionStateName(state: SessionState): string {
  return state === SessionState.UNSPECIFIED ? "unknown" : (SessionState[state]?.toLowerCase() ?? String(state));
}

/** PRIORITY_NAMES are the `--priority` spellings of Priority. */
export const PRIORITY_NAMES: Readonly<Record<string, Priority>> = {
  low: Priority.LOW,
  normal: Priority.NORMAL,
  high: Priority.HIGH,
};

/** notificationChannelName is a NotificationChannel as the config's rules name it: "webhook", "slack". */
export function notificationChannelName(channel: NotificationChannel): string {
  return NotificationChannel[channel]?.toLowerCase() ?? String(channel);
}

/** priorityName is a Priority as `--priority` spells it; unspecified means normal. */
export function priorityName(priority: Priority): string {
  return (Priority[priority === Priority.UNSPECIFIED ? Priority.NORMAL : priority] ?? String(priority)).toLowerCase();
}

/**
 * EVENT_TYPE_NAMES are the `--type` spellings of EventType, the same words
 * as the notification rule types in the config.
 */
export const EVENT_TYPE_NAMES: Readonly<Record<string, EventType>> = {
  rotation: EventType.ROTATION,
  failover: EventType.FAILOVER,
  usage_threshold: EventType.USAGE_THRESHOLD,
  limit_reached: EventType.LIMIT_REACHED,
  status_changed: EventType.STATUS_CHANGED,
  rebalance_completed: EventType.REBALANCE_COMPLETED,
  session: EventType.SESSION,
  cooldown_cleared: EventType.COOLDOWN_CLEARED,
  client_limited: EventType.CLIENT_LIMITED,
};

/** HISTORY_GROUP_NAMES are the `history --by` spellings of HistoryGroupBy. */
export const HISTORY_GROUP_NAMES: Readonly<Record<string, HistoryGroupBy>> = {
  pool: HistoryGroupBy.UNSPECIFIED,
  client: HistoryGroupBy.CLIENT,
  subscription: HistoryGroupBy.SUBSCRIPTION,
  model: HistoryGroupBy.MODEL,
};

/** USAGE_GROUP_NAMES are the `usage --by` spellings of UsageGroupBy. */
export const USAGE_GROUP_NAMES: Readonly<Record<string, UsageGroupBy>> = {
  client: UsageGroupBy.CLIENT,
  subscription: UsageGroupBy.SUBSCRIPTION,
  model: UsageGroupBy.MODEL,
};

/**
 * limitName is a ClientLimitKind as the domain's refusals spell it:
 * "weekly_usd", "max_sessions"; "" for none.
 */
export function limitName(kind: ClientLimitKind): string {
  return kind === ClientLimitKind.UNSPECIFIED ? "" : (ClientLimitKind[kind]?.toLowerCase() ?? String(kind));
}
