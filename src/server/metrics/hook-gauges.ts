import { Counter, Gauge, type Registry } from "prom-client";
import { PREFIX, finite } from "./exposition.js";

/** MetricsHooks are figures the server keeps outside the pool; each absent hook is a series not exposed. */
export interface MetricsHooks {
  /** Events after the webhook's delivered cursor; absent: no webhook series. */
  webhookPending?: () => number | undefined;
  /** Webhook deliveries that failed since start (a count that only grows); absent: no series. */
  webhookFailures?: () => number | undefined;
  /** Allocate calls waiting for a slot (the wait queue's size); absent: no series. */
  waiting?: () => number;
}

/** registerHookGauges registers a series, read at scrape time, for each hook the server gives. */
export function registerHookGauges(registers: Registry[], hooks: MetricsHooks): void {
  hookGauge(registers, "queue_waiting", "Allocate calls waiting for a slot.", hooks.waiting);
  hookGauge(registers, "webhook_pending_events", "Events after the webhook's delivered cursor.", hooks.webhookPending);
  if (hooks.webhookFailures !== undefined) webhookFailuresCounter(registers, hooks.webhookFailures);
}

function hookGauge(
  registers: Registry[],
  name: string,
  help: string,
  read: (() => number | undefined) | undefined,
): void {
  if (read === undefined) return;
  new Gauge({
    name: `${PREFIX}${name}`,
    help,
    registers,
    collect() {
      this.set(finite(read() ?? 0));
    },
  });
}

function webhookFailuresCounter(registers: Registry[], read: () => number | undefined): void {
  new Counter({
    name: `${PREFIX}webhook_failures_total`,
    help: "Webhook deliveries that failed since start.",
    registers,
    collect() {
      // The dispatcher keeps the count; mirror it rather than keep a second one.
      this.reset();
      this.inc(Math.max(0, finite(read() ?? 0)));
    },
  });
}
