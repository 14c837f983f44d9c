import { BUCKET_RETENTION_MS, nextWindow } from "./accounting.js";
import { learnedRatio, recordCalibrationCost, sameWindow, updateCalibration } from "./calibration.js";
import type { EventOf, PoolEvent } from "./events.js";
import {
  DEFAULT_CLIENT,
  EXTERNAL_CLIENT,
  bookFallback,
  bookLimit,
  bookUsage,
  clientOfSession,
  unbookUsage,
} from "./ledger.js";
import { isEstimate, learnPrice, type LearnedPrice } from "./pricing.js";
import { outsideUse } from "./reserve.js";
import { type PoolState, type SubscriptionState, type UsageBucket, ensureSubscriptions } from "./state.js";
import { FIVE_HOURS_MS, floorHour } from "./time.js";
import { addTokens, subtractTokens, zeroTokens } from "./tokens.js";

/**
 * applyEvent changes the state by one event. It is the only writer of
 * PoolState: live decisions and journal replay both go through it, so a
 * replayed state equals the live one. It never fails on an event it has
 * accepted before (a replayed journal must always load).
 */
export function applyEvent(state: PoolState, event: PoolEvent): void {
  state.eventSeq = event.seq;
  switch (event.type) {
    case "session_allocated": {
      ensureSubscriptions(state, [event.subscriptionId]);
      state.sessions.set(event.sessionId, {
        id: event.sessionId,
        subscriptionId: event.subscriptionId,
        allocatedAt: event.at,
        lastActivityAt: event.at,
        costUsd: 0,
        tokens: zeroTokens(),
        requests: 0,
        priority: event.priority,
        model: event.model,
        estimatedTokens: event.estimatedTokens,
        client: event.client ?? DEFAULT_CLIENT,
      });
      countClientSession(state, event.client ?? DEFAULT_CLIENT, 1);
      // Placed: its limits let it through, so the next refusal is news.
      state.clientsLimited.delete(event.client ?? DEFAULT_CLIENT);
      state.bySubscription.get(event.subscriptionId)!.add(event.sessionId);
      state.ended.delete(event.sessionId);
      // Gateways often run claude with --session-id set to the pool's id.
      touchClaudeSession(state, event.sessionId, event.at);
      return;
    }
    case "session_resumed": {
      const s = state.sessions.get(event.sessionId);
      if (s !== undefined) {
        s.lastActivityAt = event.at;
        delete s.rotatedFrom;
      }
      return;
    }
    case "session_rotated": {
      const s = state.sessions.get(event.sessionId);
      if (s === undefined) return;
      ensureSubscriptions(state, [event.to]);
      state.bySubscription.get(event.from)?.delete(event.sessionId);
      state.bySubscription.get(event.to)!.add(event.sessionId);
      s.subscriptionId = event.to;
      s.rotatedFrom = event.from;
      return;
    }
    case "session_released": {
      const client = state.sessions.get(event.sessionId)?.client;
      if (client !== undefined) countClientSession(state, client, -1);
      state.sessions.delete(event.sessionId);
      state.bySubscription.get(event.subscriptionId)?.delete(event.sessionId);
      // Re-insert so the map stays in time order, which pruning relies on.
      state.ended.delete(event.sessionId);
      state.ended.set(event.sessionId, {
        subscriptionId: event.subscriptionId,
        endedAt: event.at,
        ...(client !== undefined && client !== DEFAULT_CLIENT ? { client } : {}),
      });
      return;
    }
    case "usage_recorded":
      applyUsage(state, event);
      return;
    case "upstream_observed": {
      const sub = subscription(state, event.subscriptionId);
      for (const r of event.readings) {
        // A rejection without a figure is a window at its cap.
        const utilization = r.utilization ?? (r.status === "rejected" ? 1 : undefined);
        if (utilization === undefined) continue;
        if (r.window === "seven_day" && r.utilization !== undefined) measureOutsideUse(sub, r, event.at);
        if (r.window === "five_hour" || r.window === "seven_day") {
          updateCalibration(sub, r.window, utilization, r.resetsAt, event.at);
        }
        sub.upstream[r.window] = {
          utilization,
          resetsAt: r.resetsAt,
          observedAt: event.at,
          costSinceUsd: 0,
          status: r.status,
          source: r.source ?? "report",
        };
        // Upstream's reset time is the truth about the 5-hour window's bounds.
        if (r.window === "five_hour" && r.resetsAt !== undefined && r.resetsAt > event.at) {
          sub.window = { start: r.resetsAt - FIVE_HOURS_MS, end: r.resetsAt, estimated: false };
        }
      }
      return;
    }
    case "limit_reached": {
      if (event.kind === "upstream") bookLimit(state, event.at, event.subscriptionId, event.at);
      if (event.kind !== "upstream" || event.resetsAt === undefined) return;
      const sub = subscription(state, event.subscriptionId);
      const ended = sub.cooldowns.some((c) => c.modelScope === undefined && c.until > event.at);
      sub.cooldowns = sub.cooldowns.filter((c) => c.modelScope !== event.modelScope);
      if (event.modelScope === undefined && ended) sub.recoveredAt = event.at;
      sub.cooldowns.push({
        since: event.at,
        until: event.resetsAt,
        window: event.window,
        estimated: event.estimated,
        reason: event.message,
        ...(event.modelScope !== undefined ? { modelScope: event.modelScope } : {}),
      });
      if (event.window === "five_hour" && !event.estimated && event.resetsAt > event.at) {
        sub.window = { start: event.resetsAt - FIVE_HOURS_MS, end: event.resetsAt, estimated: false };
      }
      return;
    }
    case "cooldown_ended": {
      const sub = subscription(state, event.subscriptionId);
      sub.cooldowns = sub.cooldowns.filter((c) => !(c.modelScope === event.modelScope && c.until <= event.at));
      if (event.modelScope === undefined) sub.recoveredAt = event.at;
      return;
    }
    case "credentials_changed": {
      const sub = subscription(state, event.subscriptionId);
      if (event.status === "ok") delete sub.login;
      else sub.login = { status: event.status, reason: event.reason, since: event.at };
      return;
    }
    case "throttled":
      subscription(state, event.subscriptionId).throttle = {
        since: event.at,
        until: event.until,
        reason: event.reason,
      };
      return;
    case "cooldown_cleared": {
      const sub = subscription(state, event.subscriptionId);
      if (event.target === "throttle") {
        delete sub.throttle;
        return;
      }
      sub.cooldowns = sub.cooldowns.filter((c) => c.modelScope !== event.modelScope);
      // A rejection still on record would keep excluding the window (a capped 5-hour window, a model limit).
      if (sub.upstream[event.window]?.status === "rejected") delete sub.upstream[event.window];
      return;
    }
    case "paused_set":
      subscription(state, event.subscriptionId).paused = event.paused;
      return;
    case "drained_set": {
      const sub = subscription(state, event.subscriptionId);
      if (!event.drained) delete sub.drain;
      else sub.drain = { cause: event.cause, ...(event.settings !== undefined ? { settings: event.settings } : {}) };
      return;
    }
    case "transcript_read":
      applyTranscript(state, event);
      return;
    case "transcript_reattributed":
      applyReattribution(state, event);
      return;
    case "pruned": {
      if (event.transcriptsBefore !== undefined) {
        for (const [key, row] of state.transcriptRows) {
          if (row.at >= event.transcriptsBefore) continue;
          state.transcriptRows.delete(key);
          if (row.sessionId !== undefined) state.externalBySession.get(row.sessionId)?.delete(key);
        }
        for (const [id, keys] of state.externalBySession) if (keys.size === 0) state.externalBySession.delete(id);
        for (const [id, seenAt] of state.claudeSessions) {
          if (seenAt >= event.transcriptsBefore) break;
          state.claudeSessions.delete(id);
        }
      }
      for (const [key, seenAt] of state.dedupe) {
        if (seenAt >= event.before) break;
        state.dedupe.delete(key);
      }
      for (const [id, ended] of state.ended) {
        if (ended.endedAt >= event.before) break;
        state.ended.delete(id);
      }
      return;
    }
    case "status_changed":
      subscription(state, event.subscriptionId).status = event.to;
      return;
    case "usage_threshold": {
      const sub = subscription(state, event.subscriptionId);
      sub.crossed = [...(sub.crossed ?? []).filter((t) => t !== event.threshold), event.threshold];
      return;
    }
    case "usage_threshold_cleared": {
      const sub = subscription(state, event.subscriptionId);
      sub.crossed = (sub.crossed ?? []).filter((t) => t !== event.threshold);
      return;
    }
    case "fallback_used":
      bookFallback(state, event.at, event.client ?? DEFAULT_CLIENT, event.at);
      // Sent to the paid API for the pool's reasons: no limit of its own refused it.
      if (event.clientLimit === undefined) state.clientsLimited.delete(event.client ?? DEFAULT_CLIENT);
      return;
    case "client_limited":
      state.clientsLimited.set(event.clientLimit.client, event.clientLimit.kind);
      return;
    case "rebalance_completed":
      // Records of decisions, for the stream and the audit trail; no state.
      return;
  }
}

function subscription(state: PoolState, id: string): SubscriptionState {
  ensureSubscriptions(state, [id]);
  return state.subscriptions.get(id)!;
}

function applyUsage(state: PoolState, event: EventOf<"usage_recorded">): void {
  for (const key of event.dedupeKeys) state.dedupe.set(key, event.at);
  touchClaudeSession(state, event.sessionId, event.at);
  // Usually the same id (gateways run claude with --session-id set to the pool's): touch it once.
  if (event.claudeSessionId !== undefined && event.claudeSessionId !== event.sessionId) {
    touchClaudeSession(state, event.claudeSessionId, event.at);
  }
  for (const [model, usage] of Object.entries(event.models)) {
    const price = learnPrice(model, usage, event.at);
    if (price !== undefined) rememberPrice(state, model, price);
  }
  const sub = subscription(state, event.subscriptionId);
  const t = event.tokens;
  // A report of nothing (a heartbeat) only marks its session active: it is no run.
  if (event.activityOnly === true) {
    const s = event.sessionOpen ? state.sessions.get(event.sessionId) : undefined;
    if (s !== undefined) s.lastActivityAt = event.at;
    return;
  }
  if (event.sessionOpen) {
    const s = state.sessions.get(event.sessionId);
    if (s !== undefined) {
      s.costUsd += event.costUsd;
      addTokens(s.tokens, t);
      s.requests += 1;
      s.lastActivityAt = event.at;
    }
  }
  const bucket = bucketFor(sub, floorHour(event.at), event.at);
  bucket.costUsd += event.costUsd;
  addTokens(bucket.tokens, t);
  bucket.requests += 1;
  const session = state.sessions.get(event.sessionId);
  bookUsage(
    state,
    {
      at: event.at,
      client: clientOfSession(state, event.sessionId),
      subscriptionId: event.subscriptionId,
      costUsd: event.costUsd,
      tokens: t,
      models: event.models,
      model: session?.model ?? "",
    },
    event.at,
  );
  sub.window = nextWindow(sub.window, event.at);
  sub.lastUsedAt = event.at;
  addCostSince(sub, event.costUsd, event.at);
}

/**
 * addCostSince adds cost spent at time `at` to every upstream figure read
 * before it: a figure read later already includes it.
 */
function addCostSince(sub: SubscriptionState, costUsd: number, at: number): void {
  for (const o of Object.values(sub.upstream)) {
    if (o !== undefined && o.observedAt <= at) o.costSinceUsd += costUsd;
  }
  recordCalibrationCost(sub, costUsd, at);
}

/**
 * applyTranscript counts usage found in transcripts: in the bucket of the
 * hour it happened, marked external, and in the 5-hour window only when it
 * is not older than the window already known (old rows must not reopen a
 * window that has ended).
 */
function applyTranscript(state: PoolState, event: EventOf<"transcript_read">): void {
  for (const p of event.prices ?? []) rememberPrice(state, p.model, { scale: p.scale, at: p.at });
  const sub = subscription(state, event.subscriptionId);
  for (const key of event.limitKeys) {
    state.transcriptRows.set(`${event.subscriptionId}|${key}`, { at: event.at, tokens: zeroTokens(), costUsd: 0 });
  }
  for (const row of event.usage) {
    const estimated = row.basis !== undefined && isEstimate(row.basis);
    if (row.key !== undefined) {
      const key = `${event.subscriptionId}|${row.key}`;
      state.transcriptRows.set(key, {
        at: row.at,
        tokens: { ...row.total.tokens },
        costUsd: row.total.costUsd,
        ...(row.sessionId !== undefined ? { sessionId: row.sessionId } : {}),
        ...(estimated ? { estimated } : {}),
        model: row.model,
      });
      if (row.sessionId !== undefined) {
        let keys = state.externalBySession.get(row.sessionId);
        if (keys === undefined) state.externalBySession.set(row.sessionId, (keys = new Set()));
        keys.add(key);
      }
    }
    if (row.at < event.at - BUCKET_RETENTION_MS) continue;
    const bucket = bucketFor(sub, floorHour(row.at), event.at);
    bucket.costUsd += row.costUsd;
    bucket.externalCostUsd = (bucket.externalCostUsd ?? 0) + row.costUsd;
    if (estimated) bucket.externalEstimatedUsd = (bucket.externalEstimatedUsd ?? 0) + row.costUsd;
    addTokens(bucket.tokens, row.tokens);
    bookUsage(
      state,
      {
        at: row.at,
        client: EXTERNAL_CLIENT,
        subscriptionId: event.subscriptionId,
        costUsd: row.costUsd,
        tokens: row.tokens,
        model: row.model,
      },
      event.at,
    );
    bucket.requests += 1;
    if (sub.window === undefined || row.at >= sub.window.start) sub.window = nextWindow(sub.window, row.at);
    if (sub.lastUsedAt === undefined || row.at > sub.lastUsedAt) sub.lastUsedAt = row.at;
    if (sub.externalSeenAt === undefined || row.at > sub.externalSeenAt) sub.externalSeenAt = row.at;
    addCostSince(sub, row.costUsd, row.at);
  }
}

/**
 * applyReattribution takes rows of a Claude session back out of the external
 * use they were counted as: out of their hour's bucket and out of the
 * figures read before them. The report that named the session counts the
 * run instead.
 */
function applyReattribution(state: PoolState, event: EventOf<"transcript_reattributed">): void {
  const keys = state.externalBySession.get(event.claudeSessionId);
  state.externalBySession.delete(event.claudeSessionId);
  for (const key of keys ?? []) {
    const row = state.transcriptRows.get(key);
    if (row === undefined || row.pool === true) continue;
    row.pool = true;
    const sub = state.subscriptions.get(key.slice(0, key.indexOf("|")));
    if (sub === undefined) continue;
    const bucket = sub.buckets.find((b) => b.hour === floorHour(row.at));
    if (bucket !== undefined) {
      bucket.costUsd = Math.max(0, bucket.costUsd - row.costUsd);
      bucket.externalCostUsd = Math.max(0, (bucket.externalCostUsd ?? 0) - row.costUsd);
      if (row.estimated === true)
        bucket.externalEstimatedUsd = Math.max(0, (bucket.externalEstimatedUsd ?? 0) - row.costUsd);
      subtractTokens(bucket.tokens, row.tokens);
      bucket.requests = Math.max(0, bucket.requests - 1);
    }
    for (const o of Object.values(sub.upstream)) {
      if (o !== undefined && o.observedAt <= row.at) o.costSinceUsd = Math.max(0, o.costSinceUsd - row.costUsd);
    }
    recordCalibrationCost(sub, -row.costUsd, row.at);
    unbookUsage(state, {
      at: row.at,
      client: EXTERNAL_CLIENT,
      subscriptionId: sub.id,
      costUsd: row.costUsd,
      tokens: row.tokens,
      model: row.model ?? "",
    });
  }
}

/** touchClaudeSession re-inserts, so the map stays in time order for pruning. */
function touchClaudeSession(state: PoolState, id: string, at: number): void {
  state.claudeSessions.delete(id);
  state.claudeSessions.set(id, at);
}

/**
 * measureOutsideUse books to the reading's hour what a weekly reading shows
 * beyond the previous reading of the same week plus the pool's spend since
 * (see reserve.ts). Only a measured figure counts (a rejection without one
 * is not a measure of use), and only once the account's ratio is learned:
 * before that the pool's dollars cannot be told apart from outside use.
 */
function measureOutsideUse(sub: SubscriptionState, r: { utilization?: number; resetsAt?: number }, at: number): void {
  const previous = sub.upstream.seven_day;
  const perUsd = learnedRatio(sub, "seven_day");
  if (previous === undefined || perUsd === undefined || r.utilization === undefined) return;
  if (previous.observedAt > at || (previous.resetsAt !== undefined && previous.resetsAt <= at)) return;
  if (!sameWindow(previous.resetsAt, r.resetsAt)) return;
  const outside = outsideUse(previous, r.utilization, perUsd);
  if (outside === 0) return;
  const bucket = bucketFor(sub, floorHour(at), at);
  bucket.outsideUse = (bucket.outsideUse ?? 0) + outside;
}

/**
 * bucketFor finds or inserts the bucket of an hour, keeping buckets sorted
 * even if the clock stepped back, and drops buckets past retention.
 */
function bucketFor(sub: SubscriptionState, hour: number, now: number): UsageBucket {
  let i = sub.buckets.length - 1;
  while (i >= 0 && sub.buckets[i]!.hour > hour) i--;
  if (i >= 0 && sub.buckets[i]!.hour === hour) return sub.buckets[i]!;
  const bucket: UsageBucket = {
    hour,
    costUsd: 0,
    tokens: zeroTokens(),
    requests: 0,
  };
  sub.buckets.splice(i + 1, 0, bucket);
  const horizon = now - BUCKET_RETENTION_MS;
  let drop = 0;
  while (drop < sub.buckets.length && sub.buckets[drop]!.hour < horizon) drop++;
  if (drop > 0) sub.buckets.splice(0, drop);
  return bucket;
}

/** Models whose learned price is kept; the oldest goes first (reports may name any model). */
const MAX_LEARNED_PRICES = 100;

/** rememberPrice keeps the latest price per model: reading the same figure again changes nothing. */
function rememberPrice(state: PoolState, model: string, price: LearnedPrice): void {
  const known = state.prices.get(model);
  if (known !== undefined && known.at > price.at) return;
  state.prices.delete(model);
  state.prices.set(model, price);
  if (state.prices.size > MAX_LEARNED_PRICES) {
    let oldest: string | undefined;
    let oldestAt = Infinity;
    for (const [m, p] of state.prices) {
      if (p.at < oldestAt) {
        oldest = m;
        oldestAt = p.at;
      }
    }
    if (oldest !== undefined) state.prices.delete(oldest);
  }
}

function countClientSession(state: PoolState, client: string, delta: number): void {
  const n = (state.clientSessions.get(client) ?? 0) + delta;
  if (n > 0) state.clientSessions.set(client, n);
  else state.clientSessions.delete(client);
}
