/**
 * The domain: pure types and decisions. No I/O, no timers, no system time.
 */
export { Pool } from "./pool/index.js";
export { applyEvent } from "./apply.js";
export { formatTime } from "./format.js";
export { MIN_RESERVE } from "./reserve.js";
export { relativeTime, spanText } from "./relative-time.js";
export type { SpanPrecision } from "./relative-time.js";
export { createPoolState, ensureSubscriptions, nextCooldownEnd, sessionsOf } from "./state.js";
export type {
  Calibration,
  CalibratedWindow,
  CountedRow,
  Cooldown,
  EndedSession,
  FiveHourWindow,
  PoolState,
  Priority,
  SessionState,
  SubscriptionState,
  Throttle,
  UpstreamObservation,
  UsageBucket,
} from "./state.js";
export type {
  EventBody,
  EventOf,
  Exclusion,
  ExclusionReason,
  PoolEvent,
  RotationReason,
  SubscriptionStatusName,
} from "./events.js";
export type {
  AllocateResult,
  ClearedResult,
  Command,
  CredentialsResult,
  DrainedResult,
  ObservedResult,
  PausedResult,
  RebalanceResult,
  ReconciledResult,
  ReconfiguredResult,
  Rejection,
  ReleaseResult,
  ReportResult,
  ResultOf,
  StatusResult,
  SubscriptionHealthSummary,
  SweepResult,
} from "./commands.js";
export { planRebalance, loadUsd } from "./rebalance.js";
export type { RebalanceMove } from "./rebalance.js";
export { observeSubscription, usageThresholds } from "./observe.js";
export { subscriptionsOf } from "./events.js";
export type { ClientSettings, PoolSettings, SubscriptionSettings, HealthWeights } from "./settings.js";
export { DEFAULT_THROTTLE_SECONDS } from "./settings.js";
export { computeHealth } from "./health.js";
export type { Health, HealthComponent, HealthInput } from "./health.js";
export { viewSubscription, exclusionOf, thresholdFor } from "./view.js";
export type { SubscriptionView, AllocationNeed } from "./view.js";
export { sessionActivity } from "./activity.js";
export type { SessionActivity } from "./activity.js";
export { modelFamily } from "./model-family.js";
export type { Fraction } from "./accounting.js";
export {
  burnRateUsdPerHour,
  currentWindow,
  nextWindow,
  weeklyUsedUsd,
  windowCostUsd,
  BUCKET_RETENTION_MS,
} from "./accounting.js";
export { backoffDelay, spreadDelay } from "./backoff.js";
export type { Backoff, Jitter } from "./backoff.js";
export type { Clock } from "./clock.js";
export { systemClock } from "./clock.js";
export { HOUR_MS, MINUTE_MS, DAY_MS, FIVE_HOURS_MS, WEEK_MS, floorHour } from "./time.js";
export type {
  LimitSignal,
  LimitWindow,
  ModelScope,
  ModelUsage,
  ObservationSource,
  RateLimitReading,
  ReportFormat,
  TokenCounts,
  TransientKind,
  TransientSignal,
  UsageReport,
} from "./usage.js";
export { costOfTokens, isEstimate, learnPrice, priceOf, priceTokens, ratesOf } from "./pricing.js";
export type { LearnedPrice, ModelPrice, PriceBasis } from "./pricing.js";
export { dedupeTranscriptRows, parseTranscriptLine } from "./transcript.js";
export { tokenTotal, zeroTokens } from "./tokens.js";
export type {
  TranscriptCostRow,
  TranscriptLimitRow,
  TranscriptLineOptions,
  TranscriptRow,
  TranscriptUsageRow,
} from "./transcript.js";
export {
  DEFAULT_CLIENT,
  EXTERNAL_CLIENT,
  PAID_API,
  POOL_CLIENT,
  UNKNOWN_MODEL,
  bookUsage,
  clientOfSession,
  clientSpend,
  ledgerKey,
  rebuildClientIndexes,
  unbookUsage,
  usageBy,
} from "./ledger.js";
export type { Booking, LedgerEntry, UsageGroup, UsageTotal } from "./ledger.js";
export {
  ARCHIVE_AFTER_MS,
  HISTORY_RETENTION_MS,
  floorTo,
  historySeries,
  ledgerHours,
} from "./usage-history.js";
export type { HistoryGroup, HistoryPoint, HistorySeries } from "./usage-history.js";
export { cappedPriority, clientLimitHit, clientSettingsOf, fairShareUse, poolSlots } from "./client-limits.js";
export type { ClientLimitHit, ClientLimitKind } from "./client-limits.js";
