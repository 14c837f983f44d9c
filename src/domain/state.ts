import type { ClientLimitKind } from "./client-limits.js";
import type { SubscriptionStatusName } from "./events.js";
import type { LedgerEntry } from "./ledger.js";
import type { LearnedPrice } from "./pricing.js";
import type { SubscriptionSettings } from "./settings.js";
import type { LimitWindow, ModelScope, ObservationSource, RateLimitReading, TokenCounts } from "./usage.js";

/**
 * The pool's state: everything the journal rebuilds. Derived indexes (sessions
 * by subscription) live here too but are never persisted: they are rebuilt
 * from the sessions on load, so they cannot drift from them.
 */

/** Priority of a session; "normal" when the caller did not say. */
export type Priority = "low" | "normal" | "high";

/** UsageBucket is one UTC hour of one subscription's usage. */
export interface UsageBucket {
  /** Start of the hour, epoch ms. */
  hour: number;
  costUsd: number;
  tokens: TokenCounts;
  requests: number;
  /** The part of costUsd found in transcripts that the pool never saw reported (absent: 0). */
  externalCostUsd?: number;
  /** The part of externalCostUsd priced by the pool's own table, not by the CLI's figures (absent: 0). */
  externalEstimatedUsd?: number;
  /**
   * Share of the weekly window that readings in this hour showed was used
   * outside the pool, beyond its recorded spend (signed; absent: 0). See
   * reserve.ts.
   */
  outsideUse?: number;
}

/** FiveHourWindow is the current (or last) 5-hour window of a subscription. */
export interface FiveHourWindow {
  start: number;
  end: number;
  /** True for a local estimate (first use floored to the hour); false once upstream said. */
  estimated: boolean;
}

/** Cooldown benches a subscription (or one model family on it) until a reset time. */
export interface Cooldown {
  since: number;
  until: number;
  window: LimitWindow;
  estimated: boolean;
  reason: string;
  modelScope?: ModelScope;
}

/**
 * Throttle pauses new placements on a subscription after a request-scoped
 * 429 (a per-minute rate limit, not the usage limit): seconds, not a
 * cooldown. Sessions it holds go on.
 */
export interface Throttle {
  since: number;
  until: number;
  reason: string;
}

/** LoginProblem: why Claude cannot sign in with a subscription's config dir. */
export interface LoginProblem {
  status: LoginStatus;
  reason: string;
  since: number;
}

export type LoginStatus = "no_credentials" | "credentials_expired" | "login_required";

/** UpstreamObservation is the freshest utilization upstream reported for a window. */
export interface UpstreamObservation {
  /** 0-1 fraction. */
  utilization: number;
  resetsAt?: number;
  observedAt: number;
  /** Cost recorded locally since the observation: upstream truth plus the local delta. */
  costSinceUsd: number;
  /** Absent in records written before statuses were kept. */
  status?: RateLimitReading["status"];
  /** Absent in records written before sources were kept. */
  source?: ObservationSource;
}

/**
 * Calibration learns how much of a window one dollar of recorded use
 * consumes, from pairs of (cost recorded between two observations,
 * utilization change between them). The sums decay so the ratio follows an
 * account whose limits change; the anchor is the observation the next pair
 * is measured from.
 */
export interface Calibration {
  /** Decayed sum of utilization changes (fractions). */
  deltaSum: number;
  /** Decayed sum of the costs recorded over the same spans (USD). */
  costSum: number;
  samples: number;
  /** costUsd: recorded since the anchor was read at `at`. */
  anchor?: { utilization: number; resetsAt?: number; at: number; costUsd: number };
}

/** CountedRow is what was counted for one transcript row. */
export interface CountedRow {
  at: number;
  tokens: TokenCounts;
  costUsd: number;
  /** The Claude session the row belongs to, when the line said. */
  sessionId?: string;
  /** True once a report showed the row was the pool's own: no longer counted as external. */
  pool?: boolean;
  /** True when costUsd is the pool's own estimate (table price), not the CLI's figure or a rate it taught. */
  estimated?: boolean;
  /** The row's model (absent in snapshots from before the ledger). */
  model?: string;
}

/** CalibratedWindow names the windows whose dollar ratio is learned. */
export type CalibratedWindow = "five_hour" | "seven_day";

export interface SubscriptionState {
  id: string;
  /** Ascending by hour; at most BUCKET_RETENTION of history. */
  buckets: UsageBucket[];
  window?: FiveHourWindow;
  /** At most one whole-subscription cooldown (no modelScope) plus one per model scope. */
  cooldowns: Cooldown[];
  /** The last throttle pause; in force while `until` is ahead. */
  throttle?: Throttle;
  /** When its last whole-subscription cooldown ended: new sessions are admitted gradually from then on. */
  recoveredAt?: number;
  /**
   * Set while Claude cannot run on this subscription: its config dir or
   * credentials are missing, its token expired with no way to refresh, or
   * its refresh token is dead. Cleared when a check finds it usable.
   */
  login?: LoginProblem;
  paused: boolean;
  /** Set while draining; "removed" keeps the settings of a subscription a reload dropped. */
  drain?: { cause: "operator" | "removed"; settings?: SubscriptionSettings };
  upstream: Partial<Record<LimitWindow, UpstreamObservation>>;
  lastUsedAt?: number;
  /** The status last announced by a status_changed event (absent: "available"). */
  status?: SubscriptionStatusName;
  /** Usage thresholds currently crossed, so each crossing is announced once. */
  crossed?: number[];
  calibration?: Partial<Record<CalibratedWindow, Calibration>>;
  /** Epoch ms of the newest transcript usage counted as external. */
  externalSeenAt?: number;
}

export interface SessionState {
  id: string;
  subscriptionId: string;
  allocatedAt: number;
  lastActivityAt: number;
  costUsd: number;
  tokens: TokenCounts;
  requests: number;
  priority: Priority;
  model: string;
  estimatedTokens: number;
  /** Set when the session was moved; cleared once the gateway has been told on its next Allocate. */
  rotatedFrom?: string;
  /** Who the session is for: its use is booked to this client. */
  client: string;
}

/** EndedSession remembers where a released session ran, so a late report still counts. */
export interface EndedSession {
  subscriptionId: string;
  endedAt: number;
  /** The session's client (absent in snapshots from before clients: the default client). */
  client?: string;
}

export interface PoolState {
  /** Sequence of the last event applied. */
  eventSeq: number;
  subscriptions: Map<string, SubscriptionState>;
  sessions: Map<string, SessionState>;
  /** Idempotency keys already counted, with the time they were seen (insertion order = time order). */
  dedupe: Map<string, number>;
  ended: Map<string, EndedSession>;
  /**
   * Claude session ids known to be the pool's (its own session ids and the
   * `session_id` of reported results), with when they were last seen:
   * transcript rows of these sessions were reported, not external.
   */
  claudeSessions: Map<string, number>;
  /**
   * Transcript rows already counted, keyed "<subscription>|<message id>:<request id>",
   * with the time of the row and what was counted for it (so a longer copy
   * of the same message adds only the difference).
   */
  transcriptRows: Map<string, CountedRow>;
  /** Per model, the price the CLI's own cost figures taught (reports' modelUsage, transcripts' cost-state). */
  prices: Map<string, LearnedPrice>;
  /** Recorded use per hour, client, subscription and model (see ledger.ts), roughly in hour order. */
  ledger: Map<string, LedgerEntry>;
  /**
   * The limit each client was last refused by (a client_limited event),
   * until it is placed again (a session allocated, or a fallback for the
   * pool's reasons): while the same limit refuses it, no repeat is written.
   */
  clientsLimited: Map<string, ClientLimitKind>;
  /** Derived: each client's recorded cost per hour, for its budgets. */
  clientSpend: Map<string, Map<number, number>>;
  /** Derived: sessions held per client. */
  clientSessions: Map<string, number>;
  /**
   * Derived: keys of rows counted as external, per Claude session. When a
   * report later names one of these sessions, the rows were the pool's own
   * run (reported after it ended, past the grace period) and are taken back.
   */
  externalBySession: Map<string, Set<string>>;
  /** Derived: session ids per subscription. */
  bySubscription: Map<string, Set<string>>;
}

/** createPoolState returns an empty state with one entry per configured subscription. */
export function createPoolState(subscriptionIds: readonly string[]): PoolState {
  const state: PoolState = {
    eventSeq: 0,
    subscriptions: new Map(),
    sessions: new Map(),
    dedupe: new Map(),
    ended: new Map(),
    claudeSessions: new Map(),
    transcriptRows: new Map(),
    prices: new Map(),
    ledger: new Map(),
    clientsLimited: new Map(),
    clientSpend: new Map(),
    clientSessions: new Map(),
    externalBySession: new Map(),
    bySubscription: new Map(),
  };
  ensureSubscriptions(state, subscriptionIds);
  return state;
}

/**
 * ensureSubscriptions adds state for subscriptions added to the config since
 * the state was written. Subscriptions removed from the config keep their
 * state (their history is not thrown away by a typo) but are never offered.
 */
export function ensureSubscriptions(state: PoolState, ids: readonly string[]): void {
  for (const id of ids) {
    if (!state.subscriptions.has(id)) {
      state.subscriptions.set(id, {
        id,
        buckets: [],
        cooldowns: [],
        paused: false,
        upstream: {},
      });
    }
    if (!state.bySubscription.has(id)) state.bySubscription.set(id, new Set());
  }
}

/** sessionsOf returns the ids of the sessions a subscription holds. */
export function sessionsOf(state: PoolState, subscriptionId: string): ReadonlySet<string> {
  return state.bySubscription.get(subscriptionId) ?? emptySet;
}

const emptySet: ReadonlySet<string> = new Set();

/**
 * nextCooldownEnd is the earliest reset of a cooldown not yet swept; one
 * already past is returned too, so a scheduler asking "when next?" runs the
 * sweep that ends it right away.
 */
export function nextCooldownEnd(state: PoolState): number | undefined {
  let next: number | undefined;
  for (const sub of state.subscriptions.values()) {
    for (const c of sub.cooldowns) if (next === undefined || c.until < next) next = c.until;
  }
  return next;
}
