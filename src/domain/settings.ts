/** DEFAULT_THROTTLE_SECONDS: a per-minute rate limit is over within a minute. */
export const DEFAULT_THROTTLE_SECONDS = 60;

/**
 * DEFAULT_RAMP_MINUTES: after a limit ends, a subscription's session cap
 * grows from one session to all of them over this long, so the sessions
 * waiting for it do not all land at once and hit the limit again.
 */
export const DEFAULT_RAMP_MINUTES = 15;

/** LOW_PRIORITY_SHARE: a low-priority threshold left to default is this share of the weekly threshold. */
export const LOW_PRIORITY_SHARE = 0.9;

/**
 * PoolSettings is what the domain needs from the configuration. The config
 * module's PoolConfig satisfies it structurally; the domain does not import
 * the config module so it stays free of I/O and file concerns.
 */
export interface SubscriptionSettings {
  readonly id: string;
  readonly email: string;
  readonly type: "claude-pro" | "claude-max" | "api";
  readonly configDir: string;
  readonly weeklyBudgetUsd: number;
  /** Expected cost of a full 5-hour window: the local proxy for 5-hour utilization. */
  readonly fiveHourBudgetUsd: number;
  readonly maxSessions: number;
  /** This account's own weekly threshold (absent: the pool's weeklyBudgetThreshold). */
  readonly weeklyBudgetThreshold?: number | "auto";
  /** This account's 5-hour cap (absent: upstream.fiveHourCap): the config lowers it for an account it does not poll. */
  readonly fiveHourCap?: number;
}

export interface HealthWeights {
  readonly weekly: number;
  readonly fiveHour: number;
  readonly sessions: number;
  readonly burnRate: number;
  readonly idle: number;
}

export interface PoolSettings {
  readonly subscriptions: readonly SubscriptionSettings[];
  /**
   * Weekly fraction (0-1] at which normal sessions stop being placed, or
   * "auto": 1 less the reserve learned from each account's use outside the
   * pool (see reserve.ts).
   */
  readonly weeklyBudgetThreshold: number | "auto";
  /**
   * Weekly fraction at which low-priority sessions stop (<= the weekly
   * threshold), or "auto": LOW_PRIORITY_SHARE of each account's threshold.
   */
  readonly lowPriorityThreshold: number | "auto";
  readonly fallback: { readonly enabled: boolean; readonly provider: string };
  readonly sessions: {
    readonly activeMinutes: number;
    readonly staleMinutes: number;
  };
  readonly cooldown: {
    readonly defaultMinutes: number;
    readonly timeZone: string;
    /**
     * Seconds new placements pause on a subscription after a request
     * throttle that gave no retry-after. Default: DEFAULT_THROTTLE_SECONDS.
     */
    readonly throttleSeconds?: number;
    /** Minutes over which a subscription back from a limit is admitted up to its maxSessions (0: at once). Default: DEFAULT_RAMP_MINUTES. */
    readonly rampMinutes?: number;
  };
  readonly health: { readonly weights: HealthWeights };
  readonly dedupeRetentionHours: number;
  readonly rebalancing: {
    readonly enabled: boolean;
    readonly intervalSeconds: number;
    /** USD gap in 5-hour load between the most and the least loaded subscription before idle sessions move. */
    readonly costGapThreshold: number;
    readonly maxMovesPerCycle: number;
  };
  readonly upstream: {
    /** An observation older than this may miss use from elsewhere: local estimates may override it. */
    readonly staleAfterSeconds: number;
    /** 5-hour utilization (0-1] at which a subscription takes no new sessions until the window resets. */
    readonly fiveHourCap: number;
    /** Utilization (0-1] of a model-scoped weekly window at which sessions asking for that model go elsewhere. */
    readonly modelCap: number;
  };
  /**
   * Rank allocations by pace: where upstream reported when a window resets,
   * weigh the room left against the time left until the reset (see
   * pacedRank). Absent or false: rank by the health score alone.
   */
  readonly pacing?: boolean;
  /** Only rules of type usage_threshold matter to the domain: their thresholds are announced. */
  readonly notifications: {
    readonly rules: readonly { readonly type: string; readonly threshold?: number; readonly enabled: boolean }[];
  };
  /** Limits per client, by name (absent: no client has limits). */
  readonly clients?: Readonly<Record<string, ClientSettings>>;
}

/**
 * ClientSettings are one client's limits (absent: none) and its weight in
 * the wait queue's fair share. Exceeding one sends a new session to the paid
 * API with the reason (or refuses it when `fallback` is false); sessions the
 * client holds go on.
 */
export interface ClientSettings {
  /** USD of recorded use over a rolling 7 days. */
  readonly weeklyUsd?: number;
  /** USD of recorded use over the last 5 hours. */
  readonly fiveHourUsd?: number;
  /** Concurrent sessions. */
  readonly maxSessions?: number;
  /** Share (0-1] of the pool's session slots. */
  readonly share?: number;
  /** Relative weight in the wait queue (default 1): twice the weight, twice the slots before it waits behind others. */
  readonly weight: number;
  /** Model families or id prefixes it may use (absent: any); a session that names no model is allowed. */
  readonly allowModels?: readonly string[];
  /** Model families or id prefixes it may not use. */
  readonly denyModels?: readonly string[];
  /** The highest priority its sessions get; higher asks are lowered to it. */
  readonly maxPriority?: "low" | "normal" | "high";
  /** Over a limit: the paid API (true, default) or RESOURCE_EXHAUSTED. */
  readonly fallback: boolean;
}
