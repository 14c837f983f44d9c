import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  type CooldownSchema,
  ExclusionReason,
  Priority,
  ReportFormat,
  RotationReason,
  type SessionSchema,
  SessionState,
  SubscriptionState,
  type SubscriptionStatusSchema,
  SubscriptionType,
  TransientKind,
} from "../../gen/authpool/v1/auth_pool_pb.js";
import type {
  Cooldown as DomainCooldown,
  Exclusion,
  PoolSettings,
  Priority as DomainPriority,
  RotationReason as DomainRotationReason,
  SessionState as DomainSession,
  SubscriptionStatusName,
  SubscriptionView,
  UsageReport,
} from "../domain/index.js";
import { sessionActivity } from "../domain/index.js";
import type { TranscriptScanStatus } from "../transcripts/index.js";
import type { PollStatus } from "../upstream/index.js";
import { percent, windowToProto } from "./proto-values.js";
import { externalToProto, figureToProto, pollingToProto, upstreamToProto } from "./upstream-to-proto.js";

export { percent, windowToProto };

/**
 * Mapping from domain values to protobuf init shapes: the one place that
 * knows both vocabularies.
 */

export const statusToProto: Record<SubscriptionStatusName, SubscriptionState> = {
  available: SubscriptionState.AVAILABLE,
  approaching: SubscriptionState.APPROACHING,
  limited: SubscriptionState.LIMITED,
  cooldown: SubscriptionState.COOLDOWN,
  paused: SubscriptionState.PAUSED,
  draining: SubscriptionState.DRAINING,
  signed_out: SubscriptionState.SIGNED_OUT,
};

const exclusionToProto: Record<Exclusion["reason"], ExclusionReason> = {
  paused: ExclusionReason.PAUSED,
  cooldown: ExclusionReason.COOLDOWN,
  model_limit: ExclusionReason.MODEL_LIMIT,
  weekly_threshold: ExclusionReason.WEEKLY_THRESHOLD,
  five_hour_exhausted: ExclusionReason.FIVE_HOUR_EXHAUSTED,
  sessions_full: ExclusionReason.SESSIONS_FULL,
  draining: ExclusionReason.DRAINING,
  throttled: ExclusionReason.THROTTLED,
  no_credentials: ExclusionReason.NO_CREDENTIALS,
  credentials_expired: ExclusionReason.CREDENTIALS_EXPIRED,
  login_required: ExclusionReason.LOGIN_REQUIRED,
};

export const reportFormatToProto: Record<NonNullable<UsageReport["format"]>, ReportFormat> = {
  structured: ReportFormat.STRUCTURED,
  json: ReportFormat.JSON,
  json_verbose: ReportFormat.JSON_VERBOSE,
  stream_json: ReportFormat.STREAM_JSON,
  text: ReportFormat.TEXT,
  empty: ReportFormat.EMPTY,
};

export const transientKindToProto: Record<NonNullable<UsageReport["transient"]>["kind"], TransientKind> = {
  throttle: TransientKind.THROTTLE,
  overloaded: TransientKind.OVERLOADED,
  billing: TransientKind.BILLING,
  server_error: TransientKind.SERVER_ERROR,
};

/** cooldownToProto renders one cooldown (status, and what ClearCooldown cleared). */
export function cooldownToProto(c: DomainCooldown): MessageInitShape<typeof CooldownSchema> {
  return {
    until: timestampFromMs(c.until),
    since: timestampFromMs(c.since),
    window: windowToProto[c.window],
    estimated: c.estimated,
    reason: c.reason,
    modelScope: c.modelScope ?? "",
  };
}

const typeToProto = {
  "claude-pro": SubscriptionType.CLAUDE_PRO,
  "claude-max": SubscriptionType.CLAUDE_MAX,
  api: SubscriptionType.API,
} as const;

export const rotationReasonToProto: Record<DomainRotationReason, RotationReason> = {
  rebalance: RotationReason.REBALANCE,
  cooldown: RotationReason.COOLDOWN,
  drain: RotationReason.DRAIN,
  not_eligible: RotationReason.NOT_ELIGIBLE,
};

export const priorityToProto: Record<DomainPriority, Priority> = {
  low: Priority.LOW,
  normal: Priority.NORMAL,
  high: Priority.HIGH,
};

/** priorityFromProto: UNSPECIFIED (and values from a newer client) mean normal. */
export function priorityFromProto(p: Priority): DomainPriority {
  if (p === Priority.LOW) return "low";
  if (p === Priority.HIGH) return "high";
  return "normal";
}

export function exclusionsToProto(exclusions: readonly Exclusion[]) {
  return exclusions.map((e) => ({
    subscriptionId: e.subscriptionId,
    reason: exclusionToProto[e.reason],
    detail: e.detail,
  }));
}

function round(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

/** SubscriptionExtras is what the status shows beyond the pool's state: warnings, polling, transcript reading. */
export interface SubscriptionExtras {
  warnings: readonly string[];
  polling?: PollStatus;
  transcripts?: TranscriptScanStatus;
}

/** subscriptionToProto renders a view for status, grants and report replies. */
export function subscriptionToProto(
  v: SubscriptionView,
  extras: SubscriptionExtras,
): MessageInitShape<typeof SubscriptionStatusSchema> {
  return {
    id: v.cfg.id,
    email: v.cfg.email,
    type: typeToProto[v.cfg.type],
    configDir: v.cfg.configDir,
    status: statusToProto[v.status],
    healthScore: v.health.score,
    healthBreakdown: v.health.components.map((c) => ({
      name: c.name,
      points: c.points,
      maxPoints: c.maxPoints,
      value: c.value,
      detail: c.detail,
    })),
    weeklyUsedUsd: v.weeklyUsedUsd,
    weeklyBudgetUsd: v.cfg.weeklyBudgetUsd,
    weeklyPercentUsed: percent(v.weekly.value),
    weeklyThreshold: v.weeklyThreshold,
    fiveHourWindow:
      v.window === undefined
        ? undefined
        : {
            start: timestampFromMs(v.window.start),
            end: timestampFromMs(v.window.end),
            costUsd: v.windowCostUsd,
            percentUsed: percent(v.fiveHour.value),
            estimated: v.window.estimated,
          },
    burnRateUsdPerHour: v.burnRateUsdPerHour,
    sessionCount: v.sessionCount,
    maxSessions: v.cfg.maxSessions,
    activeSessions: v.activeSessions,
    idleSessions: v.idleSessions,
    cooldownUntil: v.cooldown === undefined ? undefined : timestampFromMs(v.cooldown.until),
    cooldown: v.cooldown === undefined ? undefined : cooldownToProto(v.cooldown),
    throttle:
      v.throttle === undefined
        ? undefined
        : {
            since: timestampFromMs(v.throttle.since),
            until: timestampFromMs(v.throttle.until),
            reason: v.throttle.reason,
          },
    warnings: [
      ...(v.state.login !== undefined ? [`signed out (${v.state.login.status}): ${v.state.login.reason}`] : []),
      ...extras.warnings,
      ...v.scopedCooldowns.map(
        (c) =>
          `${c.modelScope ?? ""} limit until ${new Date(c.until).toISOString()}${c.estimated ? " (estimated)" : ""}`,
      ),
    ],
    lastUsedAt: v.state.lastUsedAt === undefined ? undefined : timestampFromMs(v.state.lastUsedAt),
    upstream: upstreamToProto(v),
    hoursToExhaustion: v.hoursToExhaustion === undefined ? 0 : round(v.hoursToExhaustion, 2),
    weekly: figureToProto(v, v.weekly, "seven_day"),
    fiveHour: figureToProto(v, v.fiveHour, "five_hour"),
    external: externalToProto(v, extras.transcripts),
    ownerUse: { outsideWeek: v.outsideWeek, learned: v.reserve !== undefined, keptBack: v.reserve?.fraction ?? 0 },
    usagePolling: pollingToProto(extras.polling),
  };
}

/** sessionToProto renders one session for status. */
export function sessionToProto(
  s: DomainSession,
  now: number,
  settings: PoolSettings,
): MessageInitShape<typeof SessionSchema> {
  const activity = sessionActivity(s, now, settings);
  return {
    sessionId: s.id,
    subscriptionId: s.subscriptionId,
    state: activity === "active" ? SessionState.ACTIVE : activity === "idle" ? SessionState.IDLE : SessionState.STALE,
    allocatedAt: timestampFromMs(s.allocatedAt),
    lastActivityAt: timestampFromMs(s.lastActivityAt),
    costUsd: s.costUsd,
    inputTokens: BigInt(s.tokens.inputTokens),
    outputTokens: BigInt(s.tokens.outputTokens),
    cacheCreationInputTokens: BigInt(s.tokens.cacheCreationInputTokens),
    cacheReadInputTokens: BigInt(s.tokens.cacheReadInputTokens),
    requests: s.requests,
    priority: priorityToProto[s.priority],
    model: s.model,
    estimatedTokens: BigInt(s.estimatedTokens),
    rotatedFrom: s.rotatedFrom ?? "",
    client: s.client,
  };
}

/** moveToProto renders one rebalance move (report and event alike). */
export function moveToProto(m: {
  sessionId: string;
  from: string;
  to: string;
  reason: DomainRotationReason;
  detail: string;
}) {
  return {
    sessionId: m.sessionId,
    fromSubscriptionId: m.from,
    toSubscriptionId: m.to,
    reason: rotationReasonToProto[m.reason],
    detail: m.detail,
  };
}
