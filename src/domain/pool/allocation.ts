import { type ClientLimitHit, cappedPriority, clientLimitHit } from "../client-limits.js";
import type { AllocateResult, Command, Rejection, ReleaseResult } from "../commands.js";
import type { Exclusion } from "../events.js";
import { DEFAULT_CLIENT } from "../ledger.js";
import { type SubscriptionView, exclusionEnds, exclusionOf } from "../view.js";
import type { Emit, PoolContext } from "./pool-context.js";

type AllocateCommand = Extract<Command, { kind: "allocate" }>;

/** AllocationContext is what placing a session reads of the pool. */
type AllocationContext = Pick<PoolContext, "state" | "settings" | "view" | "views" | "bestCandidate">;

/**
 * allocate places a session: a session already held resumes where it is,
 * or moves to another subscription when its own can no longer take it; a
 * new one goes to the best eligible subscription, once its client's limits
 * allow it; with none, the fallback (or a refusal listing why each
 * subscription was excluded), or `unavailable` when the caller waits.
 */
export function allocate(
  pool: AllocationContext,
  cmd: AllocateCommand,
  now: number,
  emit: Emit,
): AllocateResult | Rejection {
  const existing = pool.state.sessions.get(cmd.sessionId);
  if (existing !== undefined) {
    const current = pool.view(existing.subscriptionId, now);
    const excluded =
      current === undefined
        ? { subscriptionId: existing.subscriptionId, reason: "paused" as const, detail: "no longer configured" }
        : exclusionOf(current, { priority: cmd.priority, model: cmd.model, holdsSlot: true }, pool.settings);
    if (current !== undefined && excluded === undefined) {
      const rotatedFrom = existing.rotatedFrom;
      emit({ type: "session_resumed", sessionId: cmd.sessionId, subscriptionId: current.cfg.id });
      return {
        kind: "granted",
        sessionId: cmd.sessionId,
        view: pool.view(current.cfg.id, now)!,
        resumed: true,
        ...(rotatedFrom !== undefined ? { rotatedFrom } : {}),
      };
    }
    // Its subscription can no longer take it: move it if another can.
    // (Read before emitting: applying the events mutates the session.)
    const from = existing.subscriptionId;
    const { best, exclusions, opensAt } = chooseByRoom(pool, cmd, from, now);
    if (best === undefined && cmd.wait === true) {
      // Its own subscription taking it back ends the wait as well.
      const ownOpens =
        current !== undefined && excluded !== undefined
          ? exclusionEnds(current, excluded, cmd.model, pool.settings, now)
          : opensAt;
      return unavailable(cmd.sessionId, exclusions, Math.min(opensAt, ownOpens));
    }
    if (best !== undefined) {
      emit({
        type: "session_rotated",
        sessionId: cmd.sessionId,
        from,
        to: best.cfg.id,
        reason: excluded?.reason === "cooldown" ? "cooldown" : "not_eligible",
        detail: excluded?.detail ?? "",
      });
      emit({ type: "session_resumed", sessionId: cmd.sessionId, subscriptionId: best.cfg.id });
      return {
        kind: "granted",
        sessionId: cmd.sessionId,
        view: pool.view(best.cfg.id, now)!,
        resumed: false,
        rotatedFrom: from,
      };
    }
    emit({ type: "session_released", sessionId: cmd.sessionId, subscriptionId: from, reason: "fallback" });
    const all = excluded !== undefined ? [excluded, ...exclusions] : exclusions;
    return fallback(pool, cmd.sessionId, existing.client, all, emit);
  }

  const client = cmd.client ?? DEFAULT_CLIENT;
  const limit = clientLimitHit(pool.state, pool.settings, client, cmd.model, now);
  if (limit !== undefined) return clientRefusal(pool, cmd.sessionId, limit, cmd.wait === true, emit);
  const priority = cappedPriority(pool.settings, client, cmd.priority);
  const asked = priority === cmd.priority ? cmd : { ...cmd, priority };
  const { best, exclusions, opensAt } = choose(pool, asked, undefined, now);
  if (best === undefined) {
    return cmd.wait === true
      ? unavailable(cmd.sessionId, exclusions, opensAt)
      : fallback(pool, cmd.sessionId, client, exclusions, emit);
  }
  emit({
    type: "session_allocated",
    sessionId: cmd.sessionId,
    subscriptionId: best.cfg.id,
    priority,
    model: cmd.model,
    estimatedTokens: cmd.estimatedTokens,
    ...(client !== DEFAULT_CLIENT ? { client } : {}),
  });
  return { kind: "granted", sessionId: cmd.sessionId, view: pool.view(best.cfg.id, now)!, resumed: false };
}

/** release ends a session: on request, or (`expired`) when the sweep finds it stale. */
export function release(
  pool: Pick<PoolContext, "state">,
  sessionId: string,
  reason: "released" | "expired",
  emit: Emit,
): ReleaseResult {
  const s = pool.state.sessions.get(sessionId);
  if (s === undefined) return { kind: "released", released: false, subscriptionId: "" };
  emit({ type: "session_released", sessionId, subscriptionId: s.subscriptionId, reason });
  return { kind: "released", released: true, subscriptionId: s.subscriptionId };
}

/**
 * Choice is where a session goes (`best`), or why nowhere (`exclusions`)
 * and the earliest time one of them may lift (`opensAt`: see exclusionEnds;
 * Infinity with no subscription to wait for).
 */
interface Choice {
  best?: SubscriptionView;
  exclusions: Exclusion[];
  opensAt: number;
}

/**
 * choose picks the eligible subscription with the best rank (its health
 * score, or with settings.pacing that score paced against each window's
 * reset; see pacedRank); ties go to fewer sessions, then config order, so
 * the choice is deterministic. The
 * candidate index finds it without deriving every view; only when it finds
 * none are all views derived, to list why each one was excluded.
 */
function choose(pool: AllocationContext, cmd: AllocateCommand, skip: string | undefined, now: number): Choice {
  const need = { priority: cmd.priority, model: cmd.model, holdsSlot: false };
  const best = pool.bestCandidate(need, skip, now);
  if (best !== undefined) return { best, exclusions: [], opensAt: now };
  return chooseAmong(pool, pool.views(now), cmd, skip, now);
}

/**
 * chooseByRoom picks where a session that must move goes: the eligible
 * subscription with the most room (free session slots times the share of
 * its windows left), best rank on ties. When a limit or a pause moves many
 * sessions at once, each move takes room from its target, so they spread
 * over the pool instead of all landing on the current best and exhausting
 * it in turn (the herd). Costs a view per subscription: moves are rare.
 */
function chooseByRoom(pool: AllocationContext, cmd: AllocateCommand, skip: string, now: number): Choice {
  const need = { priority: cmd.priority, model: cmd.model, holdsSlot: false };
  let best: SubscriptionView | undefined;
  let bestRoom = -1;
  const exclusions: Exclusion[] = [];
  let opensAt = Number.POSITIVE_INFINITY;
  for (const v of pool.views(now)) {
    if (v.cfg.id === skip) continue;
    const ex = exclusionOf(v, need, pool.settings);
    if (ex !== undefined) {
      exclusions.push(ex);
      opensAt = Math.min(opensAt, exclusionEnds(v, ex, cmd.model, pool.settings, now));
      continue;
    }
    const room = (v.sessionCap - v.sessionCount) * Math.max(0, 1 - Math.max(v.fiveHour.value, v.weekly.value));
    if (best === undefined || room > bestRoom || (room === bestRoom && v.rank > best.rank)) {
      best = v;
      bestRoom = room;
    }
  }
  return { best, exclusions, opensAt };
}

function chooseAmong(
  pool: Pick<PoolContext, "settings">,
  views: SubscriptionView[],
  cmd: AllocateCommand,
  skip: string | undefined,
  now: number,
): Choice {
  let best: SubscriptionView | undefined;
  const exclusions: Exclusion[] = [];
  let opensAt = Number.POSITIVE_INFINITY;
  for (const v of views) {
    if (v.cfg.id === skip) continue;
    const ex = exclusionOf(v, { priority: cmd.priority, model: cmd.model, holdsSlot: false }, pool.settings);
    if (ex !== undefined) {
      exclusions.push(ex);
      opensAt = Math.min(opensAt, exclusionEnds(v, ex, cmd.model, pool.settings, now));
      continue;
    }
    if (best === undefined || v.rank > best.rank || (v.rank === best.rank && v.sessionCount < best.sessionCount)) {
      best = v;
    }
  }
  return { best, exclusions, opensAt };
}

function fallback(
  pool: Pick<PoolContext, "settings">,
  sessionId: string,
  client: string,
  exclusions: Exclusion[],
  emit: Emit,
): AllocateResult | Rejection {
  const reason = noneEligible(exclusions);
  if (!pool.settings.fallback.enabled) {
    return { kind: "rejected", code: "resource_exhausted", message: reason, exclusions };
  }
  const provider = pool.settings.fallback.provider;
  emit({
    type: "fallback_used",
    sessionId,
    provider,
    reason,
    exclusions,
    ...(client !== DEFAULT_CLIENT ? { client } : {}),
  });
  return { kind: "fallback", sessionId, provider, reason, exclusions };
}

/**
 * clientRefusal answers a new session its client's limit refuses: the paid
 * API with the reason, unless the pool or the client has fallback off, or
 * the call asked to wait (it asked for a slot rather than the paid API, so
 * a paid-API answer it would not use is no failover to book).
 * Never a silent placement, and never a wait: the limit holds until the
 * client's own use drops, which no slot opening changes. A refusal is
 * announced (client_limited) when its limit is news: not while the same
 * limit has refused the client since it was last placed, so a client that
 * keeps asking writes one event, not one per call.
 */
function clientRefusal(
  pool: Pick<PoolContext, "settings" | "state">,
  sessionId: string,
  limit: ClientLimitHit,
  waits: boolean,
  emit: Emit,
): AllocateResult | Rejection {
  const reason = `${limit.detail} (${limit.kind} limit)`;
  const mayFallBack =
    !waits && pool.settings.fallback.enabled && pool.settings.clients?.[limit.client]?.fallback !== false;
  if (!mayFallBack) {
    if (pool.state.clientsLimited.get(limit.client) !== limit.kind) {
      emit({ type: "client_limited", sessionId, clientLimit: limit });
    }
    return { kind: "rejected", code: "resource_exhausted", message: reason, clientLimit: limit };
  }
  const provider = pool.settings.fallback.provider;
  emit({
    type: "fallback_used",
    sessionId,
    provider,
    reason,
    exclusions: [],
    client: limit.client,
    clientLimit: limit,
  });
  return { kind: "fallback", sessionId, provider, reason, exclusions: [], clientLimit: limit };
}

function unavailable(sessionId: string, exclusions: Exclusion[], opensAt: number): AllocateResult {
  return { kind: "unavailable", sessionId, reason: noneEligible(exclusions), exclusions, opensAt };
}

function noneEligible(exclusions: Exclusion[]): string {
  return exclusions.length === 0
    ? "no subscription is configured"
    : `no eligible subscription: ${exclusions.map((e) => `${e.subscriptionId}: ${e.detail}`).join("; ")}`;
}
