import { formatPercent, formatTime } from "./format.js";
import {
  type Fraction,
  burnRateUsdPerHour,
  currentWindow,
  type BucketTotals,
  bucketTotals,
  fiveHourFraction,
  freshUpstream,
  sumCost,
  weeklyFraction,
  weeklyTotals,
  windowCostUsd,
} from "./accounting.js";
import { sessionActivity } from "./activity.js";
import type { Exclusion, SubscriptionStatusName } from "./events.js";
import { type Health, computeHealth } from "./health.js";
import { modelFamily } from "./model-family.js";
import { pacedRank } from "./pacing.js";
import { type WeeklyReserve, learnedReserve } from "./reserve.js";
import { DEFAULT_RAMP_MINUTES, LOW_PRIORITY_SHARE, type PoolSettings, type SubscriptionSettings } from "./settings.js";
import type { ActivityCounts } from "./session-lists.js";
import type {
  Cooldown,
  FiveHourWindow,
  PoolState,
  Priority,
  SubscriptionState,
  Throttle,
  UpstreamObservation,
} from "./state.js";
import { sessionsOf } from "./state.js";
import { FIVE_HOURS_MS, HOUR_MS, MINUTE_MS, WEEK_MS, floorHour } from "./time.js";
import type { LimitWindow } from "./usage.js";

/**
 * SubscriptionView is everything derived about one subscription at one
 * instant: what status, allocation and health read. Computed, never stored.
 */
export interface SubscriptionView {
  /** The instant it was derived for (epoch ms): ages are measured from it. */
  at: number;
  cfg: SubscriptionSettings;
  state: SubscriptionState;
  status: SubscriptionStatusName;
  health: Health;
  /** What allocation orders by: the health score or, with settings.pacing, that score paced against each window's reset (see pacedRank). */
  rank: number;
  weeklyUsedUsd: number;
  /** The part of weeklyUsedUsd found in transcripts, not reported through the pool. */
  weeklyExternalUsd: number;
  /** The part of weeklyExternalUsd priced by the pool's own table rather than the CLI's figures. */
  weeklyExternalEstimatedUsd: number;
  /** Weekly share used (0-1, may exceed 1) and how it was reached: basis, observation, staleness, dollar ratio. */
  weekly: Fraction;
  /** Weekly share at which normal-priority sessions stop: the configured threshold, or 1 less the learned reserve. */
  weeklyThreshold: number;
  /** Weekly share at which low-priority sessions stop. */
  lowPriorityThreshold: number;
  /** The learned reserve, when the threshold is "auto". */
  reserve?: WeeklyReserve;
  /**
   * Share of the week used outside the pool over the trailing week
   * (readings the pool's own spend does not explain, and transcripts'
   * dollars), whatever the threshold: what tells an operator which
   * accounts an owner also uses.
   */
  outsideWeek: number;
  /** The current 5-hour window's share used, likewise. */
  fiveHour: Fraction;
  /** True when upstream-based 5-hour use reached the cap: no new sessions until the window resets. */
  fiveHourCapped: boolean;
  window?: FiveHourWindow;
  windowCostUsd: number;
  windowExternalUsd: number;
  burnRateUsdPerHour: number;
  sessionCount: number;
  /**
   * Sessions it takes now: maxSessions, or fewer while it ramps back up
   * after a limit (see DEFAULT_RAMP_MINUTES).
   */
  sessionCap: number;
  /** Set while the cap ramps up after a limit: when it reaches maxSessions. */
  rampUntil?: number;
  activeSessions: number;
  idleSessions: number;
  /** The whole-subscription cooldown in force, if any. */
  cooldown?: Cooldown;
  /** Model-scoped cooldowns in force. */
  scopedCooldowns: Cooldown[];
  /** The throttle pause in force, if any: no new placements until it ends. */
  throttle?: Throttle;
  /** Observations whose window has not reset, with whether each is past the staleness limit. */
  upstream: { window: LimitWindow; observation: UpstreamObservation; stale: boolean }[];
  /** Hours until weekly use reaches 100% at the current burn rate; undefined when not burning. */
  hoursToExhaustion?: number;
  /**
   * Until when (epoch ms) what allocation ranks and excludes by stays as it
   * is while the subscription's state does not change: the next hour
   * boundary, window end, cooldown end, observation reset or staleness, or
   * the last active session turning idle. Two figures change continuously:
   * the trailing-hour burn rate while the previous hour had use, and with
   * pacing the time left until a reset; they are allowed to drift by
   * VIEW_DRIFT_MS. The session counts by activity may lag within it.
   */
  validUntil: number;
}

/**
 * VIEW_DRIFT_MS: how stale a reused view's continuously changing figures
 * may be. The burn rate decays by at most the previous hour's cost per hour
 * and pacing's time left by 10 s of a 5-hour window, so 10 s moves a rank by
 * a few hundredths of a point, while re-deriving every view at every instant
 * would make each allocation cost grow with the pool (see CandidateIndex).
 */
export const VIEW_DRIFT_MS = 10_000;

/**
 * viewSubscription derives a SubscriptionView. activity (the sessions
 * counted by activity) and week (weeklyTotals at now) are what the caller
 * may keep between derivations (the pool does: see SessionLists, and
 * Pool.view); otherwise they are worked out here.
 */
export function viewSubscription(
  state: PoolState,
  settings: PoolSettings,
  cfg: SubscriptionSettings,
  now: number,
  activity: ActivityCounts = countActivity(state, cfg.id, now, settings),
  week: BucketTotals = weeklyTotals(state.subscriptions.get(cfg.id)!, now),
): SubscriptionView {
  const sub = state.subscriptions.get(cfg.id)!;
  const ids = sessionsOf(state, cfg.id);
  const { active, idle, lastActiveAt } = activity;
  const staleAfterMs = settings.upstream.staleAfterSeconds * 1000;
  // Each sum is taken once: at 1,000 subscriptions a view is derived on every allocation.
  const windowCost = windowCostUsd(sub, now);
  const weekly = weeklyFraction(cfg, sub, now, staleAfterMs, week.costUsd);
  const fiveHour = fiveHourFraction(cfg, sub, now, staleAfterMs, windowCost);
  const burn = burnRateUsdPerHour(sub, now);
  const inForce = sub.cooldowns.filter((c) => c.until > now);
  const cooldown = inForce.find((c) => c.modelScope === undefined);
  const health = computeHealth({
    cfg,
    sub,
    weekly,
    fiveHour,
    sessionCount: ids.size,
    activeSessions: active,
    now,
    weights: settings.health.weights,
    burnRateUsdPerHour: burn,
    ...(blockedBy(sub, cooldown) !== undefined ? { blockedBy: blockedBy(sub, cooldown)! } : {}),
  });
  const upstream: SubscriptionView["upstream"] = [];
  for (const window of Object.keys(sub.upstream) as LimitWindow[]) {
    const observation = freshUpstream(sub, window, now);
    if (observation !== undefined)
      upstream.push({ window, observation, stale: now - observation.observedAt > staleAfterMs });
  }
  const window = currentWindow(sub, now);
  const remainingUsd = Math.max(0, (1 - weekly.value) * cfg.weeklyBudgetUsd);
  const windows = [
    { component: "weekly_use" as const, fraction: weekly, lengthMs: WEEK_MS },
    { component: "five_hour_use" as const, fraction: fiveHour, lengthMs: FIVE_HOURS_MS },
  ];
  const paced = settings.pacing === true;
  const ramp = rampOf(sub, cfg, settings, now);
  const thresholds = thresholdsOf(
    sub,
    cfg.weeklyBudgetThreshold ?? settings.weeklyBudgetThreshold,
    settings,
    weekly,
    week,
    now,
  );
  const view: SubscriptionView = {
    at: now,
    cfg,
    state: sub,
    status: "available",
    health,
    rank: paced ? pacedRank(health, windows, now) : health.score,
    weeklyUsedUsd: week.costUsd,
    weeklyExternalUsd: week.externalUsd,
    weeklyExternalEstimatedUsd: week.externalEstimatedUsd,
    weekly,
    ...thresholds,
    fiveHour,
    // Only upstream-based use benches an account: a dollar estimate against a guessed budget is too rough.
    fiveHourCapped: fiveHour.basis === "upstream" && fiveHour.value >= fiveHourCapOf(cfg, settings),
    window,
    windowCostUsd: windowCost,
    windowExternalUsd: window === undefined ? 0 : bucketTotals(sub, floorHour(window.start), window.end).externalUsd,
    burnRateUsdPerHour: burn,
    sessionCount: ids.size,
    sessionCap: ramp.cap,
    ...(ramp.until !== undefined ? { rampUntil: ramp.until } : {}),
    activeSessions: active,
    idleSessions: idle,
    cooldown,
    scopedCooldowns: inForce.filter((c) => c.modelScope !== undefined),
    ...(sub.throttle !== undefined && sub.throttle.until > now ? { throttle: sub.throttle } : {}),
    upstream,
    hoursToExhaustion: burn > 0 ? remainingUsd / burn : undefined,
    validUntil: validUntil(
      sub,
      now,
      staleAfterMs,
      active > 0 ? lastActiveAt + settings.sessions.activeMinutes * MINUTE_MS : Infinity,
      (paced &&
        windows.some((w) => w.fraction.basis === "upstream" && w.fraction.observation?.resetsAt !== undefined)) ||
        // A reserve shrinks continuously as its reset comes closer.
        (thresholds.reserve?.fraction ?? 0) > 0,
      ramp.next,
    ),
  };
  view.status = statusOf(view);
  return view;
}

/**
 * thresholdsOf: the configured weekly thresholds, or with "auto" 1 less the
 * reserve learned from the outside use of the trailing week (readings, and
 * transcripts' dollars at the account's ratio) projected to the weekly reset.
 */
function thresholdsOf(
  sub: SubscriptionState,
  configured: number | "auto",
  settings: PoolSettings,
  weekly: Fraction,
  week: BucketTotals,
  now: number,
): Pick<SubscriptionView, "weeklyThreshold" | "lowPriorityThreshold" | "reserve" | "outsideWeek"> {
  let reserve: WeeklyReserve | undefined;
  let weeklyThreshold: number;
  const outside = week.outsideUse + week.externalUsd * weekly.perUsd;
  if (configured === "auto") {
    const oldest = sub.buckets[0]?.hour ?? now;
    reserve = learnedReserve(outside, now - oldest, weekly.observation?.resetsAt, now);
    weeklyThreshold = 1 - reserve.fraction;
  } else weeklyThreshold = configured;
  const low = settings.lowPriorityThreshold;
  const lowPriorityThreshold = low === "auto" ? weeklyThreshold * LOW_PRIORITY_SHARE : Math.min(low, weeklyThreshold);
  return {
    weeklyThreshold,
    lowPriorityThreshold,
    outsideWeek: Math.max(0, outside),
    ...(reserve !== undefined ? { reserve } : {}),
  };
}

/** fiveHourCapOf: the 5-hour share at which a subscription takes no new sessions. */
function fiveHourCapOf(cfg: SubscriptionSettings, settings: PoolSettings): number {
  return cfg.fiveHourCap ?? settings.upstream.fiveHourCap;
}

/** countActivity counts a subscription's sessions by activity at now. */
function countActivity(state: PoolState, subscriptionId: string, now: number, settings: PoolSettings): ActivityCounts {
  const counts: ActivityCounts = { active: 0, idle: 0, lastActiveAt: -Infinity };
  for (const id of sessionsOf(state, subscriptionId)) {
    const s = state.sessions.get(id);
    if (s === undefined) continue;
    const a = sessionActivity(s, now, settings);
    if (a === "active") {
      counts.active++;
      if (s.lastActivityAt > counts.lastActiveAt) counts.lastActiveAt = s.lastActivityAt;
    } else if (a === "idle") counts.idle++;
  }
  return counts;
}

/**
 * validUntil is the first instant after now at which a time-driven input of
 * the view changes (see SubscriptionView.validUntil); idleFrom is when the
 * last active session turns idle, which ends the idle bonus's absence;
 * paced says the rank counts the time left until a reset.
 */
function validUntil(
  sub: SubscriptionState,
  now: number,
  staleAfterMs: number,
  idleFrom: number,
  paced: boolean,
  rampStep: number | undefined,
): number {
  const hour = floorHour(now);
  let until = Math.min(hour + HOUR_MS, idleFrom);
  const later = (t: number | undefined): void => {
    if (t !== undefined && t > now && t < until) until = t;
  };
  later(sub.window?.end);
  for (const c of sub.cooldowns) later(c.until);
  later(sub.throttle?.until);
  later(rampStep);
  for (const window of Object.keys(sub.upstream) as LimitWindow[]) {
    const o = sub.upstream[window]!;
    later(o.resetsAt);
    // Both ages count as past their limit only once they exceed it.
    later(o.observedAt + staleAfterMs + 1);
    if (o.resetsAt === undefined) later(o.observedAt + (window === "five_hour" ? FIVE_HOURS_MS : WEEK_MS) + 1);
  }
  // The previous hour's share of the trailing hour shrinks continuously, as does the time left until a reset.
  if (paced || sumCost(sub, hour - HOUR_MS, hour) > 0) later(now + VIEW_DRIFT_MS);
  return until;
}

/**
 * statusOf: paused and cooldown first (an operator's or upstream's word),
 * then limited (a safeguard stops new sessions), then approaching (80% of
 * the way to a safeguard, or upstream's own allowed_warning).
 */
/**
 * blockedBy says why the subscription can take no session at all now
 * (paused, signed out, cooling down): its health is then 0, whatever its
 * windows say, so a score never reads healthy for an account that cannot run.
 */
function blockedBy(sub: SubscriptionState, cooldown: Cooldown | undefined): string | undefined {
  if (sub.paused) return "paused";
  if (sub.login !== undefined) return sub.login.status.replaceAll("_", " ");
  if (cooldown !== undefined) return "cooling down";
  return undefined;
}

function statusOf(v: SubscriptionView): SubscriptionStatusName {
  if (v.state.paused) return "paused";
  if (v.state.login !== undefined) return "signed_out";
  if (v.state.drain !== undefined) return "draining";
  if (v.cooldown !== undefined) return "cooldown";
  const threshold = v.weeklyThreshold;
  if (v.weekly.value >= threshold || v.fiveHourCapped || v.sessionCount >= v.cfg.maxSessions) return "limited";
  if (v.weekly.value >= threshold * APPROACHING || v.fiveHour.value >= APPROACHING || upstreamWarns(v))
    return "approaching";
  return "available";
}

const APPROACHING = 0.8;

/** upstreamWarns: a fresh reading says a window of the whole subscription passed upstream's warning threshold. */
function upstreamWarns(v: SubscriptionView): boolean {
  return v.upstream.some(
    (u) =>
      !u.stale && u.observation.status === "allowed_warning" && (u.window === "five_hour" || u.window === "seven_day"),
  );
}

/** thresholdFor: high priority may spend the reserve the threshold keeps; low stops earlier. */
export function thresholdFor(priority: Priority, v: SubscriptionView): number {
  if (priority === "high") return 1;
  if (priority === "low") return v.lowPriorityThreshold;
  return v.weeklyThreshold;
}

/** AllocationNeed is what a session asks of a subscription. */
export interface AllocationNeed {
  priority: Priority;
  model: string;
  /** A session already on this subscription does not need a new slot. */
  holdsSlot: boolean;
}

/** exclusionOf returns why a subscription cannot take the session, or undefined if it can. */
export function exclusionOf(v: SubscriptionView, need: AllocationNeed, settings: PoolSettings): Exclusion | undefined {
  const id = v.cfg.id;
  if (v.state.paused) return { subscriptionId: id, reason: "paused", detail: "paused by an operator" };
  // Claude cannot run there at all: sessions held there must move too.
  if (v.state.login !== undefined)
    return { subscriptionId: id, reason: v.state.login.status, detail: v.state.login.reason };
  // A session already there finishes there; only new ones go elsewhere.
  if (v.state.drain !== undefined && !need.holdsSlot) {
    return {
      subscriptionId: id,
      reason: "draining",
      detail:
        v.state.drain.cause === "removed"
          ? "removed from the config; finishing its sessions"
          : "drained by an operator",
    };
  }
  if (v.cooldown !== undefined) {
    return {
      subscriptionId: id,
      reason: "cooldown",
      detail: `cooling down until ${formatTime(v.cooldown.until)}${v.cooldown.estimated ? " (estimated)" : ""}: ${v.cooldown.reason}`,
    };
  }
  // A throttle is seconds long: sessions held go on, new ones go elsewhere meanwhile.
  if (v.throttle !== undefined && !need.holdsSlot) {
    return {
      subscriptionId: id,
      reason: "throttled",
      detail: `throttled until ${formatTime(v.throttle.until)}: ${v.throttle.reason}`,
    };
  }
  const model = modelBlock(v, need.model, settings);
  if (model !== undefined) return { subscriptionId: id, reason: "model_limit", detail: model.detail };
  const threshold = thresholdFor(need.priority, v);
  if (v.weekly.value >= threshold) {
    return {
      subscriptionId: id,
      reason: "weekly_threshold",
      detail: `weekly use ${formatPercent(v.weekly.value)} >= ${formatPercent(threshold)} threshold`,
    };
  }
  if (v.fiveHourCapped) {
    return {
      subscriptionId: id,
      reason: "five_hour_exhausted",
      detail: `5-hour window at ${formatPercent(v.fiveHour.value)} >= ${formatPercent(fiveHourCapOf(v.cfg, settings))} cap${untilText(v.window?.end)}`,
    };
  }
  if (!need.holdsSlot && v.sessionCount >= v.sessionCap) {
    return {
      subscriptionId: id,
      reason: "sessions_full",
      detail:
        v.rampUntil === undefined
          ? `${v.sessionCount} of ${v.cfg.maxSessions} sessions`
          : `${v.sessionCount} of ${v.sessionCap} sessions while it ramps back up after a limit (all ${v.cfg.maxSessions} from ${formatTime(v.rampUntil)})`,
    };
  }
  return undefined;
}

/**
 * exclusionEnds is the earliest time an exclusion found at `now` may lift:
 * a cooldown's, a throttle's or a window's end; `now` when it may lift at
 * any moment (a session released frees a slot, an operator resumes or
 * undrains, a login is renewed, a learned reserve shrinks as its reset
 * nears, a window's end is unknown). A reading can still lift one sooner by
 * showing less use than the pool estimated, which is rare with polling.
 */
export function exclusionEnds(
  v: SubscriptionView,
  ex: Exclusion,
  model: string,
  settings: PoolSettings,
  now: number,
): number {
  const atOrNow = (at: number | undefined) => (at === undefined ? now : Math.max(now, at));
  switch (ex.reason) {
    case "cooldown":
      return atOrNow(v.cooldown?.until);
    case "throttled":
      return atOrNow(v.throttle?.until);
    case "model_limit":
      return atOrNow(modelBlock(v, model, settings)?.until);
    case "weekly_threshold":
      return (v.reserve?.fraction ?? 0) > 0 ? now : atOrNow(v.weekly.observation?.resetsAt);
    case "five_hour_exhausted":
      return atOrNow(v.window?.end);
    default:
      return now;
  }
}

/**
 * modelBlock is what keeps a model's sessions off a subscription, and until
 * when: a cooldown scoped to its family, or the family's weekly window at
 * upstream.modelCap (or rejected). Undefined for a model of no family.
 */
function modelBlock(
  v: SubscriptionView,
  model: string,
  settings: PoolSettings,
): { detail: string; until?: number } | undefined {
  const family = modelFamily(model);
  if (family === undefined) return undefined;
  const scoped = v.scopedCooldowns.find((c) => c.modelScope === family);
  if (scoped !== undefined) return { detail: `${family} limit until ${formatTime(scoped.until)}`, until: scoped.until };
  const window = v.upstream.find((u) => u.window === `seven_day_${family}`)?.observation;
  if (window === undefined || (window.utilization < settings.upstream.modelCap && window.status !== "rejected"))
    return undefined;
  return {
    detail: `weekly ${family} window at ${formatPercent(window.utilization)} upstream${untilText(window.resetsAt)}`,
    ...(window.resetsAt !== undefined ? { until: window.resetsAt } : {}),
  };
}

function untilText(at: number | undefined): string {
  return at === undefined ? "" : ` until ${formatTime(at)}`;
}

/**
 * rampOf is a subscription's session cap while it ramps back up after a
 * limit: from one session when the cooldown ended up to maxSessions over
 * rampMinutes, in even steps, so sessions held back by the limit spread
 * over the ramp instead of landing together and tripping it again. `next`
 * is when the cap grows next.
 */
function rampOf(
  sub: SubscriptionState,
  cfg: SubscriptionSettings,
  settings: PoolSettings,
  now: number,
): { cap: number; until?: number; next?: number } {
  const rampMs = (settings.cooldown.rampMinutes ?? DEFAULT_RAMP_MINUTES) * MINUTE_MS;
  const since = sub.recoveredAt;
  if (since === undefined || rampMs <= 0 || now >= since + rampMs || now < since || cfg.maxSessions <= 1) {
    return { cap: cfg.maxSessions };
  }
  const cap = Math.max(1, Math.ceil((cfg.maxSessions * (now - since)) / rampMs));
  return { cap, until: since + rampMs, next: since + Math.ceil((rampMs * cap) / cfg.maxSessions) };
}
