/**
 * Every default the config module applies, in one place, so the example
 * config, the docs and the resolver cannot drift apart.
 */

/** configDefaults holds the value used for each key the file leaves out. */
export const configDefaults = deepFreeze({
  /** Per-subscription maxSessions when neither it nor an alias is given. */
  maxSessionsPerSubscription: 15,
  /**
   * fiveHourBudgetUsd = weeklyBudgetUsd / this. A local guess, used only
   * until upstream utilization readings are known; the original design
   * hard-coded $25 per window. A divisor, not a 0.1 factor, so round budgets
   * give round results.
   */
  fiveHourBudgetDivisor: 10,
  weeklyBudgetThreshold: 0.85,
  /** lowPriorityThreshold = weeklyBudgetThreshold * this. */
  lowPriorityShareOfThreshold: 0.9,
  fallback: { enabled: true, provider: "anthropic-api" },
  sessions: { activeMinutes: 5, staleMinutes: 60, sweepIntervalSeconds: 30 },
  /** throttleSeconds: the pause after a request throttle that gave no retry-after (DEFAULT_THROTTLE_SECONDS). */
  /** rampMinutes: how long a subscription back from a limit takes to be admitted up to maxSessions (DEFAULT_RAMP_MINUTES). */
  cooldown: { defaultMinutes: 60, timeZone: "UTC", throttleSeconds: 60, rampMinutes: 15 },
  health: { weights: { weekly: 40, fiveHour: 30, sessions: 15, burnRate: 10, idle: 5 } },
  dedupeRetentionHours: 48,
  pacing: false,
  /**
   * maxRequestBytes: the largest request message the server reads (gRPC's
   * customary 4 MiB); a larger one is refused with RESOURCE_EXHAUSTED before
   * it is parsed.
   */
  limits: { maxClaudeOutputBytes: 1_048_576, maxRequestBytes: 4_194_304 },
  rebalancing: { enabled: false, intervalSeconds: 300, costGapThreshold: 5, maxMovesPerCycle: 3 },
  /**
   * Allocate calls that asked to wait: at most this many in all and per
   * client, each for at most maxWaitSeconds unless its deadline is sooner.
   */
  queue: { maxWaiting: 1000, maxWaitingPerClient: 200, maxWaitSeconds: 300 },
  /** A client's weight in the wait queue, and whether its over-limit sessions fall back. */
  client: { weight: 1, fallback: true },
  webhook: { timeoutMs: 5_000, maxAttempts: 3 },
  notificationChannels: ["log"],
  events: { retentionDays: 7 },
  upstream: {
    enabled: false,
    intervalSeconds: 90,
    endpoint: "https://api.anthropic.com/api/oauth/usage",
    timeoutMs: 10_000,
    /**
     * Fifteen minutes: the poller reads every 90 s and each stream-json run
     * brings a reading, so an older one means no fresh source is coming in.
     */
    staleAfterSeconds: 900,
    /** Leave the last 5 %: a session placed at 95 % would likely hit the limit mid-run. */
    fiveHourCap: 0.95,
    modelCap: 1,
  },
  transcripts: {
    enabled: false,
    intervalSeconds: 60,
    /**
     * A run reports its usage when it ends; until then its transcript rows
     * cannot be told from use outside the pool unless its session id is
     * known. Rows younger than this wait.
     */
    graceMinutes: 10,
  },
  snapshot: { everyRecords: 1_000, everySeconds: 60 },
  credentials: {
    /**
     * Off: managing makes the pool write a file the CLI owns, from a host
     * that must reach the token endpoint; an operator opts in (see README,
     * "Managed credentials").
     */
    manage: false,
    tokenEndpoint: "https://platform.claude.com/v1/oauth/token",
    /** Claude Code's public OAuth client id. */
    clientId: "9d1c250a-e61b-44d9-88ed-5944d1962f5e",
    /**
     * An hour: far ahead of Claude Code's own 5-minute margin, so a failing
     * endpoint leaves 55 minutes of retries before any `claude` process
     * would try on its own; about 7 of an access token's 8 hours are used.
     */
    refreshBeforeMinutes: 60,
    checkIntervalSeconds: 60,
    timeoutSeconds: 15,
    backoffMinSeconds: 30,
    backoffMaxSeconds: 600,
  },
  server: { host: "127.0.0.1", port: 50051, authTokens: [] },
  store: { uri: "sqlite://./data/authpool.sqlite" },
  cluster: { leaseTtlSeconds: 5, followPollMs: 200 },
} as const);

/**
 * deepFreeze freezes an object graph in place and returns it: a resolved
 * config is shared by every component, so one of them mutating it would
 * silently change the others' view.
 */
export function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
