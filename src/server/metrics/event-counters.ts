import type { Counter, Registry } from "prom-client";
import type { ClientLimitHit } from "../../domain/index.js";
import { type ClientCountersOptions, createClientCounters } from "./client-counters.js";
import { createPoolCounters } from "./pool-counters.js";

/** EventCounters are the counters fed by the writer's durable records. */
export interface EventCounters {
  /** allocations_total, which metricsInterceptor feeds too. */
  allocations: Counter<"outcome">;
  /** Counts a call a client limit refused with RESOURCE_EXHAUSTED (client_limit_refusals_total), which metricsInterceptor sees. */
  clientLimitRefused(hit: ClientLimitHit): void;
  /** close stops counting events. */
  close(): void;
}

/** EventCountersOptions are the records to count and the labels of their clients. */
export type EventCountersOptions = ClientCountersOptions;

/**
 * createEventCounters registers the pool-wide and per-client counters and
 * subscribes them to the writer's durable records: an event is counted
 * only once it is in the journal, so a refused write never is.
 */
export function createEventCounters(registers: Registry[], options: EventCountersOptions): EventCounters {
  const pool = createPoolCounters(registers);
  const perClient = createClientCounters(registers, options);
  const unsubscribe = options.writer.subscribe((record) => {
    for (const e of record.events) {
      pool.count(e);
      perClient.count(e);
    }
  });
  return { allocations: pool.allocations, clientLimitRefused: perClient.refused, close: unsubscribe };
}
