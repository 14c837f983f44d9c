import { LOW_PRIORITY_SHARE } from "../domain/settings.js";

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
  /**
   * 1: the pool may spend every account's whole week, as a team that owns
   * its accounts runs it. In a pool over capacity every share kept back for
   * an owner's own use is work sent to the paid API: in `npm run simulate`
   * the learned reserve ("auto") protected the simulated owners (their use
   * refused 6.5/13.3/8.7% instead of 15.7/18.6/14.7% at 3/8/20 accounts) at
   * 1.12x/1.00x/1.14x the paid fallback, and the fixed 0.85 of earlier
   * versions cost 2 to 27 times it. An account its owner also uses
   * personally sets `weeklyBudgetThreshold: auto` on itself (or the pool
   * does, for all): it keeps back what that owner is measured to use until
   * the week resets, and nothing while nobody does (src/domain/reserve.ts).
   */
  weeklyBudgetThreshold: 1 as number | "auto",
  /** lowPriorityThreshold = weeklyBudgetThreshold * this; the domain's own rule for "auto". */
  lowPriorityShareOfThreshold: LOW_PRIORITY_SHARE,
  fallback: { enabled: true, provider: "anthropic-api" },
  sessions: { activeMinutes: 5, staleMinutes: 60, sweepIntervalSeconds: 30 },
  /** throttleSeconds: the pause after a request throttle that gave no retry-after (DEFAULT_THROTTLE_SECONDS). */
  /** rampMinutes: how long a subscription back from a limit takes to be admitted up to maxSessions (DEFAULT_RAMP_MINUTES). */
  cooldown: { defaultMinutes: 60, timeZone: "UTC", throttleSeconds: 60, rampMinutes: 15 },
  health: { weights: { weekly: 40, fiveHour: 30, sessions: 15, burnRate: 10, idle: 5 } },
  dedupeRetentionHours: 48,
  /**
   * On: where a reading gave a window's reset time, rank by the room left
   * against the time left until that reset, so a week about to reset is
   * spent before it is lost. Every stream-json run brings reset times, so it
   * needs no polling; without any it ranks by health alone. In `npm run
   * simulate` (against `--config '{"pacing":false}'`) it cut the defaults'
   * paid fallback by 9% at 3 accounts and 19% at 20 (5% more at 8), and with
   * weeklyBudgetThreshold 1 by 2%, 38% and 50% at 3, 8 and 20 accounts.
   */
  pacing: true,
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
  /** retryPauseSeconds: after maxAttempts failures in a row, the same event is tried again after this pause. */
  webhook: { timeoutMs: 5_000, maxAttempts: 3, retryPauseSeconds: 60 },
  /**
   * coolOffMinutes: an alert with no reset time to wait for (a failover, a
   * status change) is not repeated for this long. The digest is off until
   * enabled.
   */
  slack: {
    timeoutMs: 5_000,
    maxAttempts: 3,
    retryPauseSeconds: 60,
    coolOffMinutes: 60,
    digest: { enabled: false, hour: 9 },
  },
  notificationChannels: ["log"],
  events: { retentionDays: 7 },
  upstream: {
    /**
     * On: each logged-in account's OAuth usage endpoint (what Claude Code's
     * own `/usage` reads; it spends no message quota) is read every
     * intervalSeconds with that account's token, read fresh and never
     * stored or logged. Only the readings show use outside the pool and
     * where each window really stands; without them the pool places on its
     * own dollar estimates. In `npm run simulate` the defaults with polling
     * equal the tuned pool at 3, 8 and 20 accounts; without it they sent
     * 1.14x, 0.77x and 1.96x the tuned pool's work to the paid API, missing
     * "within 10%" at two sizes of three (docs/BENCHMARKS.md, "Defaults").
     */
    enabled: true,
    intervalSeconds: 90,
    endpoint: "https://api.anthropic.com/api/oauth/usage",
    timeoutMs: 10_000,
    /**
     * A week: a reading counts, plus what the pool spent since, until its
     * window resets. What replaces a stale one, the pool's own dollars of the
     * last 7 days, knows of no use the reading missed (transcript rows count
     * in both), and without polling an account nobody runs on gets no newer
     * reading: at fifteen minutes, idle accounts read as full on those
     * dollars and sat unused for days. In `npm run simulate` (against
     * `--config '{"upstream":{"staleAfterSeconds":900}}'`) the defaults' paid
     * fallback fell by 22%, 50% and 62% at 3, 8 and 20 accounts (20: 18.6%
     * of the demand to 7.1%), their 429s from 11, 20, 62 to 0, 5, 8; with
     * polling it changes nothing.
     */
    staleAfterSeconds: 604_800,
    /**
     * Where a 5-hour figure comes from a reading, new sessions stop at this
     * share of the window. Polled, the figure is at most intervalSeconds
     * old, so 2% is margin enough; without polling a reading can be hours
     * old plus an estimate, and FIVE_HOUR_CAP_UNPOLLED applies unless the
     * config sets one (simulated at 8 accounts, 0.98 unpolled gave 46
     * 429s a week against 30).
     */
    fiveHourCap: 0.98,
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

/** The 5-hour cap when upstream.enabled is off and the config names none: a session placed at 95% would likely hit the limit mid-run. */
export const FIVE_HOUR_CAP_UNPOLLED = 0.95;
