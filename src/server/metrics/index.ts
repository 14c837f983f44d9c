/**
 * The pool's Prometheus metrics, served at GET /metrics: counters fed by
 * durable events, gauges computed at scrape time, and RPC timings.
 */
export { createPoolMetrics } from "./pool-metrics.js";
export type { PoolMetrics, PoolMetricsOptions } from "./pool-metrics.js";
export { metricsInterceptor } from "./metrics-interceptor.js";
export type { RpcInstruments } from "./metrics-interceptor.js";
export type { StreamGauge } from "./stream-gauge.js";
