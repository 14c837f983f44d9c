import type { ClientLimitHit } from "./client-limits.js";
import type { PriceBasis } from "./pricing.js";
import type { SubscriptionSettings } from "./settings.js";
import type { LoginStatus, Priority } from "./state.js";
import type { LimitWindow, ModelScope, ModelUsage, RateLimitReading, TokenCounts } from "./usage.js";

/**
 * Domain events: the only way state changes. Each accepted batch of events is
 * appended to the journal as one record; the same events feed the event
 * stream and webhooks. Events carry everything apply() needs, so replaying
 * them rebuilds the state exactly.
 */

/** ExclusionReason says which safeguard kept a subscription out of an allocation. */
export type ExclusionReason =
  | "paused"
  | "draining"
  | "cooldown"
  | "model_limit"
  | "weekly_threshold"
  | "five_hour_exhausted"
  | "sessions_full"
  | "throttled"
  | LoginStatus;

export interface Exclusion {
  subscriptionId: string;
  reason: ExclusionReason;
  detail: string;
}

export type RotationReason = "rebalance" | "cooldown" | "drain" | "not_eligible";

export type SubscriptionStatusName =
  | "available"
  | "approaching"
  | "limited"
  | "cooldown"
  | "paused"
  | "draining"
  | "signed_out";

export type EventBody =
  | {
      type: "session_allocated";
      sessionId: string;
      subscriptionId: string;
      priority: Priority;
      model: string;
      estimatedTokens: number;
      /** Absent in records from before clients: the default client. */
      client?: string;
    }
  | { type: "session_resumed"; sessionId: string; subscriptionId: string }
  | {
      type: "session_rotated";
      sessionId: string;
      from: string;
      to: string;
      reason: RotationReason;
      detail: string;
    }
  | {
      type: "session_released";
      sessionId: string;
      subscriptionId: string;
      reason: "released" | "expired" | "fallback";
    }
  | {
      type: "fallback_used";
      sessionId: string;
      provider: string;
      reason: string;
      exclusions: Exclusion[];
      /** The client the call was for (absent in records from before clients). */
      client?: string;
      /** Set when a limit of the client, not the pool, sent it to the paid API. */
      clientLimit?: ClientLimitHit;
    }
  | {
      /**
       * A limit of the client refused its new session and the call was
       * refused (RESOURCE_EXHAUSTED: its fallback, or the pool's, is off).
       * Written once per client and limit (see PoolState.clientsLimited):
       * a client that keeps asking does not write an event per call.
       */
      type: "client_limited";
      sessionId: string;
      clientLimit: ClientLimitHit;
    }
  | {
      type: "usage_recorded";
      sessionId: string;
      subscriptionId: string;
      /** Idempotency keys; empty when the report had none. */
      dedupeKeys: string[];
      costUsd: number;
      tokens: TokenCounts;
      models: Record<string, ModelUsage>;
      durationMs: number;
      /** False for a late report on an ended session: counts on the subscription only. */
      sessionOpen: boolean;
      /** The Claude session the run belonged to, when the report said: its transcript rows are the pool's. */
      claudeSessionId?: string;
      /** A report with nothing in it (a heartbeat): it marks the session active and counts no run. */
      activityOnly?: true;
    }
  | {
      /**
       * Usage found in a subscription's transcripts that the pool did not
       * record (someone used the account outside the pool), and the keys of
       * usage-limit rows already acted on.
       */
      type: "transcript_read";
      subscriptionId: string;
      usage: TranscriptUsage[];
      limitKeys: string[];
      /** Per-model prices taught by the CLI's cost-state rows in this read (absent: none). */
      prices?: Array<{ model: string; scale: number; at: number }>;
    }
  | {
      /**
       * A report named a Claude session whose transcript rows had been
       * counted as external (the run outlasted the grace period): they were
       * the pool's own, and the report now counts them, so they are taken
       * back out of the windows.
       */
      type: "transcript_reattributed";
      claudeSessionId: string;
      subscriptionIds: string[];
    }
  | { type: "upstream_observed"; subscriptionId: string; readings: RateLimitReading[] }
  | {
      type: "limit_reached";
      subscriptionId: string;
      /** "upstream": a usage limit from Claude; the others are local safeguards. */
      kind: "upstream" | "weekly_threshold" | "sessions";
      window: LimitWindow;
      /** Epoch ms; for upstream limits, the end of the cooldown. */
      resetsAt?: number;
      estimated: boolean;
      message: string;
      modelScope?: ModelScope;
    }
  | { type: "cooldown_ended"; subscriptionId: string; window: LimitWindow; modelScope?: ModelScope }
  | {
      /**
       * Upstream throttled requests (a request-scoped 429: a per-minute rate
       * limit, "not your usage limit"): no new placements until `until`.
       * Never a cooldown; usage figures are untouched.
       */
      type: "throttled";
      subscriptionId: string;
      until: number;
      /** True when upstream gave no retry-after and cooldown.throttleSeconds was used. */
      estimated: boolean;
      reason: string;
    }
  | {
      /**
       * A cooldown (target "cooldown", the one of modelScope) or the throttle
       * pause (target "throttle") ended before its time: an operator cleared
       * it, or a fresher upstream reading showed an estimated cooldown's
       * window allowed.
       */
      type: "cooldown_cleared";
      subscriptionId: string;
      target: "cooldown" | "throttle";
      window: LimitWindow;
      modelScope?: ModelScope;
      cause: "operator" | "upstream";
      detail: string;
    }
  | {
      /**
       * A check of the subscription's config dir and credentials found it
       * unusable (status) or usable again ("ok"); only changes are recorded.
       */
      type: "credentials_changed";
      subscriptionId: string;
      status: LoginStatus | "ok";
      reason: string;
    }
  | { type: "paused_set"; subscriptionId: string; paused: boolean }
  | {
      /**
       * Draining: no new sessions; the ones held finish there. "operator"
       * by SetDrained; "removed" when a reload dropped the subscription from
       * the config, which keeps its settings here so its sessions can still
       * resume until they end (and across a restart).
       */
      type: "drained_set";
      subscriptionId: string;
      drained: boolean;
      cause: "operator" | "removed";
      settings?: SubscriptionSettings;
    }
  | {
      type: "status_changed";
      subscriptionId: string;
      from: SubscriptionStatusName;
      to: SubscriptionStatusName;
      reason: string;
    }
  | {
      type: "usage_threshold";
      subscriptionId: string;
      value: number;
      threshold: number;
      basis: "weekly_budget" | "upstream_seven_day";
      /** Projected ms until exhaustion at the current burn rate; absent when not burning. */
      timeToExhaustionMs?: number;
    }
  | { type: "usage_threshold_cleared"; subscriptionId: string; threshold: number }
  | {
      type: "rebalance_completed";
      trigger: "periodic" | "on_demand";
      moves: { sessionId: string; from: string; to: string; reason: RotationReason; detail: string }[];
    }
  | {
      /** Housekeeping: forget dedupe keys and ended sessions older than the horizon. */
      type: "pruned";
      before: number;
      /** Forget transcript rows and known Claude sessions older than this (absent: keep them). */
      transcriptsBefore?: number;
    };

/**
 * TranscriptUsage is one transcript row's contribution: what to add now
 * (tokens, costUsd: the whole row the first time, the growth when a longer
 * copy of the same message turns up) and the row's totals to remember.
 */
export interface TranscriptUsage {
  /** "<message id>:<request id>"; absent for rows that cannot be deduplicated. */
  key?: string;
  /** The Claude session of the row, when the line said. */
  sessionId?: string;
  /** Epoch ms the row was written: the hour its use is counted in. */
  at: number;
  model: string;
  tokens: TokenCounts;
  costUsd: number;
  /** What the row held in all: remembered for the next copy of it. */
  total: { tokens: TokenCounts; costUsd: number };
  /** Where costUsd came from (absent in records written before it was kept: not marked as an estimate). */
  basis?: PriceBasis;
}

/** PoolEvent is an EventBody stamped with its sequence and time. */
export type PoolEvent = EventBody & { seq: number; at: number };

export type EventOf<T extends EventBody["type"]> = Extract<PoolEvent, { type: T }>;

/** subscriptionsOf lists the subscriptions an event is about. */
export function subscriptionsOf(e: EventBody): string[] {
  switch (e.type) {
    case "session_rotated":
      return [e.from, e.to];
    case "rebalance_completed":
      return [...new Set(e.moves.flatMap((m) => [m.from, m.to]))];
    case "transcript_reattributed":
      return e.subscriptionIds;
    case "fallback_used":
    case "client_limited":
      // A fallback or a client's refusal changes no subscription: nothing to re-announce.
      return [];
    case "pruned":
      return [];
    default:
      return [e.subscriptionId];
  }
}
