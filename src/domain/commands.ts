import type { Exclusion } from "./events.js";
import type { RebalanceMove } from "./rebalance.js";
import type { PoolSettings } from "./settings.js";
import type { LoginStatus, Priority, SessionState } from "./state.js";
import type { Cooldown } from "./state.js";
import type { ClientLimitHit } from "./client-limits.js";
import type { LearnedPrice } from "./pricing.js";
import type { TranscriptRow } from "./transcript.js";
import type { LimitSignal, ModelScope, RateLimitReading, UsageReport } from "./usage.js";
import type { SubscriptionView } from "./view.js";

/**
 * Commands are what callers ask of the pool; results are what they get back.
 * Every command, from an RPC or a background job, is decided by the one
 * writer, so no two decisions interleave.
 */
export type Command =
  | {
      kind: "allocate";
      sessionId: string;
      priority: Priority;
      model: string;
      estimatedTokens: number;
      /** Who the session is for (absent: the default client). */
      client?: string;
      /**
       * The caller will wait for a slot: when none is free, answer
       * `unavailable` and change nothing, rather than fall back.
       */
      wait?: boolean;
    }
  | {
      kind: "report";
      sessionId: string;
      /** Caller's idempotency key; "" when none. */
      requestId: string;
      report: UsageReport;
    }
  | { kind: "release"; sessionId: string }
  | { kind: "set_paused"; subscriptionId: string; paused: boolean }
  | { kind: "set_drained"; subscriptionId: string; drained: boolean }
  | {
      /**
       * The configuration was reloaded: the new settings apply from the
       * next decision; subscriptions no longer in it that still hold
       * sessions are drained (and remembered) until they are empty; removed
       * ones back in it stop draining.
       */
      kind: "reconfigure";
      settings: PoolSettings;
    }
  | { kind: "status"; includeSessions: boolean }
  | { kind: "sweep" }
  | { kind: "rebalance"; dryRun: boolean; trigger: "periodic" | "on_demand" }
  | {
      /** Upstream utilization read outside a run (the OAuth usage endpoint). */
      kind: "observe";
      subscriptionId: string;
      readings: RateLimitReading[];
      /** Where the readings came from, for limit messages. */
      source: string;
    }
  | {
      /**
       * An operator ends a subscription's cooldowns now: the one of
       * modelScope, or (without it) every cooldown and the throttle pause.
       */
      kind: "clear_cooldown";
      subscriptionId: string;
      modelScope?: ModelScope;
      /** The operator's words, kept in the event. */
      reason: string;
    }
  | {
      /**
       * What a check of the config dir and credentials found: "ok", or why
       * Claude cannot run there. Recorded only when it changes.
       */
      kind: "credentials";
      subscriptionId: string;
      status: LoginStatus | "ok";
      reason: string;
    }
  | {
      /**
       * Rows read from a subscription's transcripts: usage the pool did not
       * record is counted as external, usage-limit rows cool it down.
       */
      kind: "reconcile";
      subscriptionId: string;
      rows: readonly TranscriptRow[];
    };

/** Rejection is a domain refusal; the edge maps its code to a transport status. */
export interface Rejection {
  kind: "rejected";
  code: "not_found" | "resource_exhausted" | "failed_precondition";
  message: string;
  exclusions?: Exclusion[];
  /** Set when a limit of the calling client refused it. */
  clientLimit?: ClientLimitHit;
}

export type AllocateResult =
  | {
      kind: "granted";
      sessionId: string;
      view: SubscriptionView;
      resumed: boolean;
      rotatedFrom?: string;
    }
  | {
      kind: "fallback";
      sessionId: string;
      provider: string;
      reason: string;
      exclusions: Exclusion[];
      /** Set when a limit of the calling client, not the pool, sent it to the paid API. */
      clientLimit?: ClientLimitHit;
    }
  | {
      /** Nothing is free now and the caller waits (the command's `wait`): nothing changed. */
      kind: "unavailable";
      sessionId: string;
      reason: string;
      exclusions: Exclusion[];
      /**
       * The earliest time a subscription may open (a cooldown, a throttle or
       * a window ending; see exclusionEnds): now when one could at any
       * moment (a release, an operator). A wait that ends before it is spent
       * in vain.
       */
      opensAt: number;
    };

export interface ReportResult {
  kind: "reported";
  duplicate: boolean;
  view: SubscriptionView;
  limit?: LimitSignal & { resetsAt: number };
  countedCostUsd: number;
  /** Set when the report carried a throttle: new placements pause until then. */
  throttle?: { until: number; estimated: boolean };
  /** Estimated cooldowns a fresher reading in the report showed allowed, now ended. */
  healed?: Cooldown[];
}

/** ClearedResult is what clear_cooldown ended. */
export interface ClearedResult {
  kind: "cleared";
  /** The cooldowns that were in force, as they were. */
  cleared: Cooldown[];
  throttleCleared: boolean;
  view: SubscriptionView;
}

export interface ReleaseResult {
  kind: "released";
  released: boolean;
  subscriptionId: string;
}

export interface StatusResult {
  kind: "status";
  now: number;
  views: SubscriptionView[];
  totalSessions: number;
  /** Copies taken at decision time (empty unless asked for): later batches cannot leak in. */
  sessions: SessionState[];
  /** The prices the CLI's figures taught, per model. */
  prices: Array<LearnedPrice & { model: string }>;
}

/** PausedResult answers set_paused: the subscription as it is now. */
export interface PausedResult {
  kind: "paused";
  view: SubscriptionView;
}

/** DrainedResult answers set_drained: the subscription as it is now. */
export interface DrainedResult {
  kind: "drained";
  view: SubscriptionView;
}

/** ReconfiguredResult answers reconfigure: the removed subscriptions left draining the sessions they hold. */
export interface ReconfiguredResult {
  kind: "reconfigured";
  draining: string[];
}

/** CredentialsResult answers credentials: whether the login status recorded changed. */
export interface CredentialsResult {
  kind: "credentials";
  changed: boolean;
}

export interface SweepResult {
  kind: "swept";
  expired: number;
}

/** SubscriptionHealthSummary is one line of a rebalance report. */
export interface SubscriptionHealthSummary {
  subscriptionId: string;
  healthScore: number;
  fiveHourCostUsd: number;
  sessionCount: number;
}

export interface RebalanceResult {
  kind: "rebalanced";
  dryRun: boolean;
  moves: RebalanceMove[];
  before: SubscriptionHealthSummary[];
  after: SubscriptionHealthSummary[];
}

export interface ObservedResult {
  kind: "observed";
  view: SubscriptionView;
  /** Estimated cooldowns the readings showed allowed, now ended. */
  healed?: Cooldown[];
}

export interface ReconciledResult {
  kind: "reconciled";
  /** Rows counted as use outside the pool (or grown since last counted). */
  external: number;
  externalCostUsd: number;
  /** Rows of sessions the pool ran: already counted through reports. */
  pool: number;
  /** Rows already counted, or too old to matter. */
  skipped: number;
  /** Usage-limit rows that started a cooldown. */
  limits: number;
  /** Models whose price a cost-state row taught (or retaught). */
  learnedPrices?: number;
}

/** ResultOf maps a command kind to what it answers. */
export interface ResultMap {
  allocate: AllocateResult | Rejection;
  report: ReportResult | Rejection;
  release: ReleaseResult;
  set_paused: PausedResult | Rejection;
  set_drained: DrainedResult | Rejection;
  reconfigure: ReconfiguredResult;
  status: StatusResult;
  sweep: SweepResult;
  rebalance: RebalanceResult;
  observe: ObservedResult | Rejection;
  reconcile: ReconciledResult | Rejection;
  clear_cooldown: ClearedResult | Rejection;
  credentials: CredentialsResult | Rejection;
}

export type ResultOf<C extends Command> = ResultMap[C["kind"]];
