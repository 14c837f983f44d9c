import { Counter, type Registry } from "prom-client";
import {
  type ClientLimitHit,
  type ClientLimitKind,
  type ClientSettings,
  DEFAULT_CLIENT,
  clientOfSession,
  type PoolEvent,
} from "../../domain/index.js";
import type { PoolHandle } from "../../runtime/pool-handle.js";
import { PREFIX, finite } from "./exposition.js";
import type { PoolClientLabels } from "./pool-client-labels.js";

/** Per-client outcomes of a new session, pre-created at 0 for every configured client. */
const CLIENT_OUTCOMES = ["grant", "fallback"] as const;

/** What became of a new session a client limit refused: the paid API, or RESOURCE_EXHAUSTED. */
const REFUSAL_OUTCOMES = ["fallback", "refused"] as const;

/** ClientCounters are the per-client counters fed by events. */
export interface ClientCounters {
  /** count adds one durable event to the counters. */
  count(e: PoolEvent): void;
  /**
   * refused counts a call a client limit refused with RESOURCE_EXHAUSTED.
   * Not an event: the journal has one client_limited for a run of them.
   */
  refused(hit: ClientLimitHit): void;
}

/** ClientCountersOptions are where the client of an event and its label come from. */
export interface ClientCountersOptions {
  writer: PoolHandle;
  clients: PoolClientLabels;
}

interface Counters {
  allocations: Counter<"client" | "outcome">;
  usageUsd: Counter<"client">;
  refusals: Counter<"client" | "limit" | "outcome">;
}

/** EventClients label the client an event names, or the one its session was booked to. */
interface EventClients {
  label(client: string): string;
  ofSession(sessionId: string): string;
}

/**
 * createClientCounters registers new sessions, cost and limit refusals by
 * client. Every configured client shows at 0 from the scrape after it is
 * configured (a reload included), so rate() works from its first session.
 */
export function createClientCounters(
  registers: Registry[],
  { writer, clients }: ClientCountersOptions,
): ClientCounters {
  const counters: Counters = {
    allocations: allocationsCounter(registers, clients),
    usageUsd: usageCounter(registers, clients),
    refusals: refusalsCounter(registers, clients),
  };
  const eventClients: EventClients = {
    label: clients.label,
    // Usage events do not carry their client. Called from the record listener:
    // the state holds this record's events, so a session it released is among
    // the ended ones, and the client is the one the ledger booked.
    ofSession: (sessionId) => clientOfSession(writer.currentPool.state, sessionId),
  };
  return {
    count: (e) => countEvent(counters, eventClients, e),
    refused: (hit) => counters.refusals.inc({ client: clients.label(hit.client), limit: hit.kind, outcome: "refused" }),
  };
}

function allocationsCounter(registers: Registry[], clients: PoolClientLabels): Counters["allocations"] {
  return new Counter({
    name: `${PREFIX}client_allocations_total`,
    help: "New sessions by client and outcome: grant (a subscription) or fallback (the paid API, a client limit's included).",
    labelNames: ["client", "outcome"] as const,
    registers,
    collect() {
      for (const client of Object.keys(clients.configured())) {
        for (const outcome of CLIENT_OUTCOMES) this.inc({ client: clients.label(client), outcome }, 0);
      }
    },
  });
}

function usageCounter(registers: Registry[], clients: PoolClientLabels): Counters["usageUsd"] {
  return new Counter({
    name: `${PREFIX}client_usage_usd_total`,
    help: "Cost reported through the pool by client (USD, API-price estimate); use outside the pool is not in it.",
    labelNames: ["client"] as const,
    registers,
    collect() {
      for (const client of Object.keys(clients.configured())) this.inc({ client: clients.label(client) }, 0);
    },
  });
}

function refusalsCounter(registers: Registry[], clients: PoolClientLabels): Counters["refusals"] {
  return new Counter({
    name: `${PREFIX}client_limit_refusals_total`,
    help:
      "New sessions a client limit refused, by client, limit (weekly_usd, five_hour_usd, max_sessions, share, model) " +
      "and outcome: fallback (sent to the paid API; counted from the journal) or refused (RESOURCE_EXHAUSTED, the client's " +
      "or the pool's fallback being off; counted by the instance that answered the call, as a run of them writes one event).",
    labelNames: ["client", "limit", "outcome"] as const,
    registers,
    collect() {
      for (const [client, limits] of Object.entries(clients.configured())) {
        for (const limit of configuredLimits(limits)) {
          for (const outcome of REFUSAL_OUTCOMES) this.inc({ client: clients.label(client), limit, outcome }, 0);
        }
      }
    },
  });
}

function countEvent(c: Counters, clients: EventClients, e: PoolEvent): void {
  switch (e.type) {
    case "session_allocated":
      c.allocations.inc({ client: clients.label(e.client ?? DEFAULT_CLIENT), outcome: "grant" });
      break;
    case "fallback_used":
      c.allocations.inc({ client: clients.label(e.client ?? DEFAULT_CLIENT), outcome: "fallback" });
      if (e.clientLimit !== undefined)
        c.refusals.inc({ client: clients.label(e.clientLimit.client), limit: e.clientLimit.kind, outcome: "fallback" });
      break;
    case "usage_recorded":
      c.usageUsd.inc({ client: clients.label(clients.ofSession(e.sessionId)) }, finite(e.costUsd));
      break;
    default:
      break;
  }
}

/** configuredLimits are the limits a client's settings set, as refusals name them. */
function configuredLimits(c: ClientSettings | undefined): ClientLimitKind[] {
  if (c === undefined) return [];
  const limits: ClientLimitKind[] = [];
  if (c.weeklyUsd !== undefined) limits.push("weekly_usd");
  if (c.fiveHourUsd !== undefined) limits.push("five_hour_usd");
  if (c.maxSessions !== undefined) limits.push("max_sessions");
  if (c.share !== undefined) limits.push("share");
  if (c.allowModels !== undefined || c.denyModels !== undefined) limits.push("model");
  return limits;
}
