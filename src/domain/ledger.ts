/**
 * The usage ledger: recorded use per hour, client, subscription and model.
 * It answers "who spent the pool" (GetUsage, `authpool usage --by ...`)
 * and the clients' dollar budgets, from the same durable events as the
 * subscriptions' buckets, so a budget survives a restart and a replica
 * checks it alike. Use found in transcripts is booked to the client
 * EXTERNAL_CLIENT: nobody in the pool spent it.
 */

import { BUCKET_RETENTION_MS } from "./accounting.js";
import type { PoolState } from "./state.js";
import { HOUR_MS, floorHour } from "./time.js";
import { addTokens, zeroTokens } from "./tokens.js";
import type { ModelUsage, TokenCounts } from "./usage.js";

/** DEFAULT_CLIENT is the client of a call that names none. */
export const DEFAULT_CLIENT = "default";

/** EXTERNAL_CLIENT is the client use outside the pool (read from transcripts) is booked to. */
export const EXTERNAL_CLIENT = "(outside the pool)";

/** UNKNOWN_MODEL is the model of use whose model nobody said. */
export const UNKNOWN_MODEL = "unknown";

/** PAID_API is the "subscription" a run sent to the paid API is counted on. */
export const PAID_API = "(paid API)";

/** POOL_CLIENT is the client of what no client did: a usage limit hitting a subscription. */
export const POOL_CLIENT = "(pool)";

/** LedgerEntry is one hour of one client's use of one subscription with one model. */
export interface LedgerEntry {
  hour: number;
  client: string;
  subscriptionId: string;
  model: string;
  costUsd: number;
  tokens: TokenCounts;
  requests: number;
  /** Usage limits Claude reported on the subscription in this hour (absent: 0). */
  limits?: number;
  /** Runs the client was sent to the paid API with (subscription PAID_API; absent: 0). */
  fallbacks?: number;
}

/** UsageGroup is what usage is summed by. */
export type UsageGroup = "client" | "subscription" | "model";

/** UsageTotal is the use of one client, subscription or model over a period. */
export interface UsageTotal {
  key: string;
  costUsd: number;
  tokens: TokenCounts;
  requests: number;
}

/** Booking is one recorded use to put in the ledger. */
export interface Booking {
  at: number;
  client: string;
  subscriptionId: string;
  /** The run's total cost and tokens. */
  costUsd: number;
  tokens: TokenCounts;
  /** Per model, when the report said: the total is split by it. */
  models?: Record<string, ModelUsage>;
  /** The model for what no per-model figure covers. */
  model: string;
}

/**
 * bookUsage adds a use to the ledger (and the derived per-client hourly
 * spend), split by model: each model's own figure, and what no model's
 * figure covers on the booking's model. Counts one request, on the first
 * model. Entries older than the retention go as newer hours come in.
 */
export function bookUsage(state: PoolState, booking: Booking, now: number): void {
  const hour = floorHour(booking.at);
  if (hour < now - BUCKET_RETENTION_MS) return;
  let restCost = booking.costUsd;
  const restTokens: TokenCounts = { ...booking.tokens };
  let first = true;
  for (const [model, usage] of Object.entries(booking.models ?? {})) {
    const entry = entryFor(state, hour, booking.client, booking.subscriptionId, model);
    entry.costUsd += usage.costUsd;
    addTokens(entry.tokens, usage);
    if (first) entry.requests += 1;
    first = false;
    restCost -= usage.costUsd;
    restTokens.inputTokens -= usage.inputTokens;
    restTokens.outputTokens -= usage.outputTokens;
    restTokens.cacheCreationInputTokens -= usage.cacheCreationInputTokens;
    restTokens.cacheReadInputTokens -= usage.cacheReadInputTokens;
  }
  // Rounding leaves crumbs below a micro-dollar: not worth an entry of their own.
  const rest = restCost > 1e-9 || Object.values(restTokens).some((n) => n > 0);
  if (first || rest) {
    const entry = entryFor(state, hour, booking.client, booking.subscriptionId, booking.model || UNKNOWN_MODEL);
    entry.costUsd += Math.max(0, restCost);
    addTokens(entry.tokens, clampTokens(restTokens));
    if (first) entry.requests += 1;
  }
  addClientSpend(state, booking.client, hour, Math.max(0, booking.costUsd));
  pruneLedger(state, now);
}

/** bookLimit counts a usage limit Claude reported on a subscription. */
export function bookLimit(state: PoolState, at: number, subscriptionId: string, now: number): void {
  bookCount(state, at, POOL_CLIENT, subscriptionId, "limits", now);
}

/** bookFallback counts a run a client was sent to the paid API with. */
export function bookFallback(state: PoolState, at: number, client: string, now: number): void {
  bookCount(state, at, client, PAID_API, "fallbacks", now);
}

function bookCount(
  state: PoolState,
  at: number,
  client: string,
  subscriptionId: string,
  count: "limits" | "fallbacks",
  now: number,
): void {
  const hour = floorHour(at);
  if (hour < now - BUCKET_RETENTION_MS) return;
  const entry = entryFor(state, hour, client, subscriptionId, UNKNOWN_MODEL);
  entry[count] = (entry[count] ?? 0) + 1;
  // Every entry has its client's hour, as rebuildClientIndexes makes it after a load.
  addClientSpend(state, client, hour, 0);
  pruneLedger(state, now);
}

/** unbookUsage takes a use back out (transcript rows that proved to be the pool's own). */
export function unbookUsage(state: PoolState, booking: Omit<Booking, "models">): void {
  const hour = floorHour(booking.at);
  const entry = state.ledger.get(
    ledgerKey(hour, booking.client, booking.subscriptionId, booking.model || UNKNOWN_MODEL),
  );
  if (entry === undefined) return;
  entry.costUsd = Math.max(0, entry.costUsd - booking.costUsd);
  entry.tokens = clampTokens({
    inputTokens: entry.tokens.inputTokens - booking.tokens.inputTokens,
    outputTokens: entry.tokens.outputTokens - booking.tokens.outputTokens,
    cacheCreationInputTokens: entry.tokens.cacheCreationInputTokens - booking.tokens.cacheCreationInputTokens,
    cacheReadInputTokens: entry.tokens.cacheReadInputTokens - booking.tokens.cacheReadInputTokens,
  });
  entry.requests = Math.max(0, entry.requests - 1);
  addClientSpend(state, booking.client, hour, -booking.costUsd);
}

/** usageBy sums the ledger's hours in [from, to) by client, subscription or model; largest cost first. */
export function usageBy(state: PoolState, group: UsageGroup, from: number, to: number): UsageTotal[] {
  const totals = new Map<string, UsageTotal>();
  for (const entry of state.ledger.values()) {
    if (entry.hour < floorHour(from) || entry.hour >= to) continue;
    // Counts of limits and paid runs are history's (usage-history.ts), not spend.
    if (entry.requests === 0 && entry.costUsd === 0) continue;
    const key = group === "client" ? entry.client : group === "subscription" ? entry.subscriptionId : entry.model;
    let total = totals.get(key);
    if (total === undefined) totals.set(key, (total = { key, costUsd: 0, tokens: zeroTokens(), requests: 0 }));
    total.costUsd += entry.costUsd;
    addTokens(total.tokens, entry.tokens);
    total.requests += entry.requests;
  }
  return [...totals.values()].sort((a, b) => b.costUsd - a.costUsd || a.key.localeCompare(b.key));
}

/** clientSpend is a client's recorded cost in the hours that overlap [from, to). */
export function clientSpend(state: PoolState, client: string, from: number, to: number): number {
  const hours = state.clientSpend.get(client);
  if (hours === undefined) return 0;
  const first = floorHour(from);
  let sum = 0;
  for (const [hour, cost] of hours) if (hour >= first && hour < to) sum += cost;
  return Math.max(0, sum);
}

/** clientOfSession is the client a session's use is booked to: an open session's, else an ended one's, else the default. */
export function clientOfSession(state: PoolState, sessionId: string): string {
  return state.sessions.get(sessionId)?.client ?? state.ended.get(sessionId)?.client ?? DEFAULT_CLIENT;
}

/** rebuildClientIndexes recomputes the derived per-client spend and session counts (after a load). */
export function rebuildClientIndexes(state: PoolState): void {
  state.clientSpend.clear();
  for (const entry of state.ledger.values()) addClientSpend(state, entry.client, entry.hour, entry.costUsd);
  state.clientSessions.clear();
  for (const s of state.sessions.values())
    state.clientSessions.set(s.client, (state.clientSessions.get(s.client) ?? 0) + 1);
}

function entryFor(state: PoolState, hour: number, client: string, subscriptionId: string, model: string): LedgerEntry {
  const key = ledgerKey(hour, client, subscriptionId, model);
  let entry = state.ledger.get(key);
  if (entry === undefined) {
    entry = { hour, client, subscriptionId, model, costUsd: 0, tokens: zeroTokens(), requests: 0 };
    state.ledger.set(key, entry);
  }
  return entry;
}

/** ledgerKey is an entry's key in PoolState.ledger. */
export function ledgerKey(hour: number, client: string, subscriptionId: string, model: string): string {
  return `${hour}\u0000${client}\u0000${subscriptionId}\u0000${model}`;
}

function addClientSpend(state: PoolState, client: string, hour: number, costUsd: number): void {
  let hours = state.clientSpend.get(client);
  if (hours === undefined) state.clientSpend.set(client, (hours = new Map()));
  hours.set(hour, (hours.get(hour) ?? 0) + costUsd);
}

/** Entries go in roughly hour order: dropping from the front while they are too old is cheap. */
function pruneLedger(state: PoolState, now: number): void {
  const horizon = now - BUCKET_RETENTION_MS - HOUR_MS;
  for (const [key, entry] of state.ledger) {
    if (entry.hour >= horizon) break;
    state.ledger.delete(key);
    const hours = state.clientSpend.get(entry.client);
    hours?.delete(entry.hour);
    if (hours?.size === 0) state.clientSpend.delete(entry.client);
  }
}

function clampTokens(t: TokenCounts): TokenCounts {
  return {
    inputTokens: Math.max(0, t.inputTokens),
    outputTokens: Math.max(0, t.outputTokens),
    cacheCreationInputTokens: Math.max(0, t.cacheCreationInputTokens),
    cacheReadInputTokens: Math.max(0, t.cacheReadInputTokens),
  };
}
