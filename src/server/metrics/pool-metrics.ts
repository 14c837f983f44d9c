import type { Interceptor } from "@connectrpc/connect";
import { Registry } from "prom-client";
import type { PoolHandle } from "../../runtime/pool-handle.js";
import type { BearerAuth } from "../bearer-auth.js";
import { createEventCounters } from "./event-counters.js";
import { type MetricsHooks, registerHookGauges } from "./hook-gauges.js";
import { type MetricsFallback, metricsFallback } from "./metrics-fallback.js";
import { type RpcInstruments, createRpcDuration, metricsInterceptor } from "./metrics-interceptor.js";
import { type NotificationFigures, registerNotificationSeries } from "./notification-series.js";
import { createPoolClientLabels } from "./pool-client-labels.js";
import { registerPoolGauges } from "./pool-gauges.js";
import { createScrapeStatus } from "./scrape-status.js";
import { type StreamGauge, createStreamGauge } from "./stream-gauge.js";
import { registerSubscriptionGauges } from "./subscription-gauges.js";

/** PoolMetricsOptions are what the metrics read from: the writer, the tokens, the server's hooks. */
export interface PoolMetricsOptions extends MetricsHooks {
  writer: PoolHandle;
  /** Checks the bearer token of GET /metrics (the reader role); without tokens it is open. */
  auth: BearerAuth;
  /** The webhook's and Slack's delivery figures; absent: no notification_* series. */
  notifications?: NotificationFigures;
}

/** PoolMetrics is one server's metrics: its own registry and the hooks that feed it. */
export interface PoolMetrics extends RpcInstruments {
  registry: Registry;
  /** Connect fallback: GET /metrics (a reader or admin token when auth is on), 404 for anything else. */
  fallback: MetricsFallback;
  /** Times every RPC; put it first in the interceptor list. */
  interceptor: Interceptor;
  /** Pass to the event stream handler (AuthPoolServiceOptions.streamGauge). */
  streams: StreamGauge;
  /** close stops counting events. */
  close(): void;
}

/**
 * createPoolMetrics registers the pool's series in a registry of its own
 * (never prom-client's global one, so two servers in a process do not
 * collide): counters fed by the writer's durable records, gauges computed
 * at scrape time, and the RPC timings.
 */
export function createPoolMetrics(options: PoolMetricsOptions): PoolMetrics {
  const { writer } = options;
  const registry = new Registry();
  const registers = [registry];
  const status = createScrapeStatus(writer);
  const clients = createPoolClientLabels(writer);

  // The exposition lists series in the order they are registered.
  const events = createEventCounters(registers, { writer, clients });
  registerSubscriptionGauges(registers, status);
  registerPoolGauges(registers, { writer, status, clients });
  const streams = createStreamGauge(registers);
  registerHookGauges(registers, options);
  if (options.notifications !== undefined) registerNotificationSeries(registers, options.notifications);
  const instruments: RpcInstruments = {
    rpcDuration: createRpcDuration(registers),
    allocations: events.allocations,
    clientLimitRefused: events.clientLimitRefused,
  };

  return {
    registry,
    ...instruments,
    fallback: metricsFallback(registry, options.auth),
    interceptor: metricsInterceptor(instruments),
    streams,
    close: events.close,
  };
}
