import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { AuthPoolService } from "../../gen/authpool/v1/auth_pool_pb.js";
import {
  type ClientLimitKind,
  type ClientSettings,
  DEFAULT_CLIENT,
  clientOfSession,
  type PoolEvent,
  type StatusResult,
  type SubscriptionView,
} from "../domain/index.js";
import type { PoolHandle } from "../runtime/pool-handle.js";
import { type BearerAuth, METRICS_ROLE } from "./bearer-auth.js";
import { createClientLabels } from "./client-labels.js";

/** A minimal view of Node's request and response, HTTP/1.1 and HTTP/2 alike. */
interface Request {
  url?: string;
  method?: string;
  headers: { authorization?: string | undefined };
}
interface Response {
  writeHead(status: number, headers: Record<string, string>): unknown;
  end(body: string): unknown;
}

/** StreamGauge is told when an event stream opens and closes; it keeps the subscriber count. */
export interface StreamGauge {
  opened(): void;
  closed(): void;
}

/** PoolMetricsOptions are what the metrics read from: the writer, the tokens, the webhook. */
export interface PoolMetricsOptions {
  writer: PoolHandle;
  /** Checks the bearer token of GET /metrics (the reader role); without tokens it is open. */
  auth: BearerAuth;
  /** Events after the webhook's delivered cursor; absent: no webhook series. */
  webhookPending?: () => number | undefined;
  /** Webhook deliveries that failed since start (a count that only grows); absent: no series. */
  webhookFailures?: () => number | undefined;
  /** Allocate calls waiting for a slot (the wait queue's size); absent: no series. */
  waiting?: () => number;
}

/**
 * RpcInstruments are the series metricsInterceptor feeds: the duration
 * histogram and the allocation counter (for outcome="exhausted", which has
 * no event: a refused allocation writes nothing).
 */
export interface RpcInstruments {
  rpcDuration: Histogram<"method" | "code">;
  allocations: Counter<"outcome">;
}

/** PoolMetrics is one server's metrics: its own registry and the hooks that feed it. */
export interface PoolMetrics extends RpcInstruments {
  registry: Registry;
  /** Connect fallback: GET /metrics (a reader or admin token when auth is on), 404 for anything else. */
  fallback: (req: Request, res: Response) => void;
  /** Times every RPC; put it first in the interceptor list. */
  interceptor: Interceptor;
  /** Pass to the event stream handler (AuthPoolServiceOptions.streamGauge). */
  streams: StreamGauge;
  /** close stops counting events. */
  close(): void;
}

const PREFIX = "authpool_";

/** Allocation outcomes, pre-created at 0 so rate() works from the first scrape. */
const OUTCOMES = ["grant", "resume", "fallback", "exhausted"] as const;

const STATUSES = ["available", "approaching", "limited", "cooldown", "paused", "draining"] as const;

/** Per-client outcomes of a new session, pre-created at 0 for every configured client. */
const CLIENT_OUTCOMES = ["grant", "fallback"] as const;

// Unary calls take milliseconds; event streams last minutes to hours, so the
// tail buckets are there to keep their durations from all landing in +Inf.
const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60, 600, 3600];

/**
 * createPoolMetrics registers the pool's series in a registry of its own
 * (never prom-client's global one, so two servers in a process do not
 * collide) and subscribes to the writer's durable records: an event is
 * counted only once it is in the journal, so a refused write never is.
 * Per-subscription gauges are computed at scrape time from one status
 * decision, so the figures of a scrape are consistent with each other.
 */
export function createPoolMetrics(options: PoolMetricsOptions): PoolMetrics {
  const { writer } = options;
  const registry = new Registry();
  const registers = [registry];

  // One status decision per scrape: every gauge's collect() runs in the same
  // tick of registry.metrics() and shares the decision in flight.
  let inFlight: Promise<StatusResult> | undefined;
  const status = (): Promise<StatusResult> =>
    (inFlight ??= writer.submit({ kind: "status", includeSessions: false }).finally(() => {
      inFlight = undefined;
    }));

  const allocations = new Counter({
    name: `${PREFIX}allocations_total`,
    help: "Allocations by outcome: grant (new session), resume, fallback, exhausted (RESOURCE_EXHAUSTED).",
    labelNames: ["outcome"] as const,
    registers,
  });
  for (const outcome of OUTCOMES) allocations.inc({ outcome }, 0);
  const usageUsd = new Counter({
    name: `${PREFIX}usage_reported_usd_total`,
    help: "Cost reported through the pool (USD, API-price estimate).",
    labelNames: ["subscription"] as const,
    registers,
  });
  const usageTokens = new Counter({
    name: `${PREFIX}usage_tokens_total`,
    help: "Tokens reported through the pool, by model and kind.",
    labelNames: ["model", "kind"] as const,
    registers,
  });
  const limits = new Counter({
    name: `${PREFIX}limits_reached_total`,
    help: "Limits reached (upstream or local safeguards), by subscription and window.",
    labelNames: ["subscription", "window"] as const,
    registers,
  });
  const rotations = new Counter({
    name: `${PREFIX}rotations_total`,
    help: "Sessions moved to another subscription, by reason.",
    labelNames: ["reason"] as const,
    registers,
  });
  let grants = 0;
  let fallbacks = 0;
  new Gauge({
    name: `${PREFIX}fallback_ratio`,
    help: "Share of allocations answered with the fallback provider since start: fallback / (grant + fallback), 0 when none.",
    registers,
    collect() {
      this.set(grants + fallbacks === 0 ? 0 : fallbacks / (grants + fallbacks));
    },
  });

  // Clients are named by the config and the tokens, but also by the calls of
  // unnamed tokens: past a bound, unknown names share one label.
  const configuredClients = (): string[] => Object.keys(writer.currentPool.settings.clients ?? {});
  const clientLabel = createClientLabels({
    isKnown: (client) => client === DEFAULT_CLIENT || writer.currentPool.settings.clients?.[client] !== undefined,
  });
  const clientAllocations = new Counter({
    name: `${PREFIX}client_allocations_total`,
    help: "New sessions by client and outcome: grant (a subscription) or fallback (the paid API, a client limit's included).",
    labelNames: ["client", "outcome"] as const,
    registers,
    collect() {
      // A client added by a reload shows at 0 from the next scrape, so rate() works from its first session.
      for (const client of configuredClients()) {
        for (const outcome of CLIENT_OUTCOMES) this.inc({ client: clientLabel(client), outcome }, 0);
      }
    },
  });
  const clientUsageUsd = new Counter({
    name: `${PREFIX}client_usage_usd_total`,
    help: "Cost reported through the pool by client (USD, API-price estimate); use outside the pool is not in it.",
    labelNames: ["client"] as const,
    registers,
    collect() {
      for (const client of configuredClients()) this.inc({ client: clientLabel(client) }, 0);
    },
  });
  const clientRefusals = new Counter({
    name: `${PREFIX}client_limit_refusals_total`,
    help:
      "New sessions a client limit sent to the paid API, by client and limit (weekly_usd, five_hour_usd, max_sessions, share, model); " +
      'one refused with RESOURCE_EXHAUSTED (fallback off) writes no event and is in allocations_total{outcome="exhausted"}.',
    labelNames: ["client", "limit"] as const,
    registers,
    collect() {
      const clients = writer.currentPool.settings.clients ?? {};
      for (const [client, limits] of Object.entries(clients)) {
        for (const limit of configuredLimits(limits)) this.inc({ client: clientLabel(client), limit }, 0);
      }
    },
  });

  const count = (e: PoolEvent): void => {
    switch (e.type) {
      case "session_allocated":
        grants++;
        allocations.inc({ outcome: "grant" });
        clientAllocations.inc({ client: clientLabel(e.client ?? DEFAULT_CLIENT), outcome: "grant" });
        break;
      case "session_resumed":
        allocations.inc({ outcome: "resume" });
        break;
      case "fallback_used":
        fallbacks++;
        allocations.inc({ outcome: "fallback" });
        clientAllocations.inc({ client: clientLabel(e.client ?? DEFAULT_CLIENT), outcome: "fallback" });
        if (e.clientLimit !== undefined)
          clientRefusals.inc({ client: clientLabel(e.clientLimit.client), limit: e.clientLimit.kind });
        break;
      case "session_rotated":
        rotations.inc({ reason: e.reason });
        break;
      case "limit_reached":
        limits.inc({ subscription: e.subscriptionId, window: e.window });
        break;
      case "usage_recorded": {
        usageUsd.inc({ subscription: e.subscriptionId }, finite(e.costUsd));
        clientUsageUsd.inc({ client: clientLabel(sessionClient(e.sessionId)) }, finite(e.costUsd));
        const models = Object.entries(e.models);
        // A report without a per-model breakdown still counts its tokens.
        for (const [model, t] of models.length > 0 ? models : [["unknown", e.tokens] as const]) {
          usageTokens.inc({ model, kind: "input" }, finite(t.inputTokens));
          usageTokens.inc({ model, kind: "output" }, finite(t.outputTokens));
          usageTokens.inc({ model, kind: "cache_creation" }, finite(t.cacheCreationInputTokens));
          usageTokens.inc({ model, kind: "cache_read" }, finite(t.cacheReadInputTokens));
        }
        break;
      }
      default:
        break;
    }
  };
  // The client a usage event's session was booked to, as the ledger books it (usage
  // events do not carry it). Called from the record listener: the state holds
  // this record's events, so a session it released is among the ended ones.
  const sessionClient = (sessionId: string): string => clientOfSession(writer.currentPool.state, sessionId);
  const unsubscribe = writer.subscribe((record) => {
    for (const e of record.events) count(e);
  });

  const perSubscription = (name: string, help: string, value: (v: SubscriptionView, s: StatusResult) => number) => {
    const gauge: Gauge<"subscription"> = new Gauge({
      name: `${PREFIX}subscription_${name}`,
      help,
      labelNames: ["subscription"] as const,
      registers,
      async collect() {
        const s = await status();
        gauge.reset();
        for (const v of s.views) gauge.set({ subscription: v.cfg.id }, finite(value(v, s)));
      },
    });
  };
  const perWindow = (
    name: string,
    help: string,
    value: (u: SubscriptionView["upstream"][number], s: StatusResult) => number,
  ) => {
    const gauge: Gauge<"subscription" | "window"> = new Gauge({
      name: `${PREFIX}subscription_${name}`,
      help,
      labelNames: ["subscription", "window"] as const,
      registers,
      async collect() {
        const s = await status();
        gauge.reset();
        for (const v of s.views) {
          for (const u of v.upstream) gauge.set({ subscription: v.cfg.id, window: u.window }, finite(value(u, s)));
        }
      },
    });
  };

  perSubscription("health_score", "Health score 0-100 (higher is healthier).", (v) => v.health.score);
  perSubscription("weekly_used_usd", "Cost in the rolling 7 days (USD, API-price estimate).", (v) => v.weeklyUsedUsd);
  perSubscription("weekly_budget_usd", "Configured weekly budget (USD).", (v) => v.cfg.weeklyBudgetUsd);
  perSubscription(
    "weekly_used_ratio",
    "Share of the weekly limit used (upstream when known), 0-1.",
    (v) => v.weekly.value,
  );
  perSubscription("five_hour_used_ratio", "Share of the current 5-hour window used, 0-1.", (v) => v.fiveHour.value);
  perSubscription(
    "external_weekly_usd",
    "Use in the rolling 7 days found in transcripts, not reported through the pool (USD).",
    (v) => v.weeklyExternalUsd,
  );
  perWindow(
    "upstream_utilization_ratio",
    "Latest upstream utilization per window whose reset has not passed, 0-1.",
    (u) => u.observation.utilization,
  );
  perWindow("upstream_age_seconds", "Age of the latest upstream observation per window.", (u, s) =>
    Math.max(0, (s.now - u.observation.observedAt) / 1000),
  );
  perSubscription("burn_rate_usd_per_hour", "Cost of the trailing hour (USD).", (v) => v.burnRateUsdPerHour);
  perSubscription("sessions", "Sessions held.", (v) => v.sessionCount);
  perSubscription("active_sessions", "Sessions active within sessions.activeMinutes.", (v) => v.activeSessions);
  perSubscription("max_sessions", "Configured session limit.", (v) => v.cfg.maxSessions);
  perSubscription("cooldown", "1 while a whole-subscription cooldown is in force.", (v) =>
    v.cooldown === undefined ? 0 : 1,
  );
  perSubscription("cooldown_until_seconds", "End of the cooldown in force (Unix seconds), 0 when none.", (v) =>
    v.cooldown === undefined ? 0 : Math.floor(v.cooldown.until / 1000),
  );
  const statusGauge: Gauge<"subscription" | "status"> = new Gauge({
    name: `${PREFIX}subscription_status`,
    help: "1 for the subscription's current status.",
    labelNames: ["subscription", "status"] as const,
    registers,
    async collect() {
      const s = await status();
      statusGauge.reset();
      for (const v of s.views) {
        // A status this list does not know yet still shows, as the one set to 1.
        const names = new Set<string>([...STATUSES, v.status]);
        for (const name of names) statusGauge.set({ subscription: v.cfg.id, status: name }, v.status === name ? 1 : 0);
      }
    },
  });
  new Gauge({
    name: `${PREFIX}sessions`,
    help: "Sessions held across the pool.",
    registers,
    async collect() {
      this.set((await status()).totalSessions);
    },
  });
  const clientSessions: Gauge<"client"> = new Gauge({
    name: `${PREFIX}client_sessions`,
    help: "Sessions held by client (every configured client, 0 when it holds none).",
    labelNames: ["client"] as const,
    registers,
    async collect() {
      // Read after the scrape's status decision, as GetPoolStatus reads its clients: between batches.
      await status();
      const held = new Map<string, number>(configuredClients().map((client) => [clientLabel(client), 0]));
      for (const [client, n] of writer.currentPool.state.clientSessions) {
        const label = clientLabel(client);
        held.set(label, (held.get(label) ?? 0) + n);
      }
      clientSessions.reset();
      for (const [client, n] of held) clientSessions.set({ client }, n);
    },
  });
  new Gauge({
    name: `${PREFIX}event_sequence`,
    help: "Sequence of the last durable event.",
    registers,
    collect() {
      this.set(writer.durableSeq);
    },
  });
  const subscribers = new Gauge({
    name: `${PREFIX}event_stream_subscribers`,
    help: "Open StreamEvents calls.",
    registers,
  });
  // A gauge read at scrape time from a hook of the server's; no hook, no series.
  const hookGauge = (name: string, help: string, read: (() => number | undefined) | undefined) => {
    if (read === undefined) return;
    new Gauge({
      name: `${PREFIX}${name}`,
      help,
      registers,
      collect() {
        this.set(finite(read() ?? 0));
      },
    });
  };
  hookGauge("queue_waiting", "Allocate calls waiting for a slot.", options.waiting);
  hookGauge("webhook_pending_events", "Events after the webhook's delivered cursor.", options.webhookPending);
  const { webhookFailures } = options;
  if (webhookFailures !== undefined) {
    new Counter({
      name: `${PREFIX}webhook_failures_total`,
      help: "Webhook deliveries that failed since start.",
      registers,
      collect() {
        // The dispatcher keeps the count; mirror it rather than keep a second one.
        this.reset();
        this.inc(Math.max(0, finite(webhookFailures() ?? 0)));
      },
    });
  }

  const rpcDuration = new Histogram({
    name: `${PREFIX}rpc_duration_seconds`,
    help: "RPC duration by method and code (ok or the Connect code); for server streams, until the handler ends.",
    labelNames: ["method", "code"] as const,
    buckets: DURATION_BUCKETS,
    registers,
  });

  const instruments: RpcInstruments = { rpcDuration, allocations };
  return {
    registry,
    ...instruments,
    fallback: metricsFallback(registry, options.auth),
    interceptor: metricsInterceptor(instruments),
    streams: { opened: () => subscribers.inc(), closed: () => subscribers.dec() },
    close: unsubscribe,
  };
}

/**
 * metricsInterceptor times each RPC into rpc_duration_seconds{method, code}
 * and counts Allocate calls answered RESOURCE_EXHAUSTED. Put it first in the
 * interceptor list so the time and code include authentication and the
 * error mapping of the interceptors after it.
 */
export function metricsInterceptor(metrics: RpcInstruments): Interceptor {
  return (next) => async (req) => {
    const started = performance.now();
    const method = req.method.name;
    const done = (error: unknown) => {
      const code = error === undefined ? undefined : error instanceof ConnectError ? error.code : Code.Internal;
      metrics.rpcDuration.observe({ method, code: codeLabel(code) }, (performance.now() - started) / 1000);
      if (
        code === Code.ResourceExhausted &&
        method === "Allocate" &&
        req.service.typeName === AuthPoolService.typeName
      ) {
        metrics.allocations.inc({ outcome: "exhausted" });
      }
    };
    let res: Awaited<ReturnType<typeof next>>;
    try {
      res = await next(req);
    } catch (error) {
      done(error);
      throw error;
    }
    if (!res.stream) {
      done(undefined);
      return res;
    }
    return { ...res, message: timed(res.message, done) };
  };
}

/** timed passes a server stream through and reports how it ended, once. */
async function* timed<T>(messages: AsyncIterable<T>, done: (error: unknown) => void): AsyncGenerator<T> {
  let ended = false;
  try {
    yield* messages;
    ended = true;
    done(undefined);
  } catch (error) {
    ended = true;
    done(error);
    throw error;
  } finally {
    // The protocol stopped reading early (the client went away).
    if (!ended) done(new ConnectError("stream abandoned", Code.Canceled));
  }
}

/** codeLabel is "ok" or the Connect code name in snake_case ("resource_exhausted"). */
function codeLabel(code: Code | undefined): string {
  if (code === undefined) return "ok";
  return (Code[code] ?? "unknown").replace(/[A-Z]/g, (c, i: number) => (i === 0 ? "" : "_") + c.toLowerCase());
}

/**
 * metricsFallback answers GET /metrics from the registry, 404 otherwise.
 * With authentication on it needs a token with the reader role (or admin):
 * 401 without a valid token, 403 with one that lacks the role.
 */
function metricsFallback(registry: Registry, auth: BearerAuth): (req: Request, res: Response) => void {
  const reply = (res: Response, status: number, headers: Record<string, string>, body: string) => {
    res.writeHead(status, headers);
    res.end(body);
  };
  return (req, res) => {
    const path = (req.url ?? "").split("?")[0];
    if (path !== "/metrics" || req.method !== "GET") {
      reply(res, 404, { "content-type": "text/plain" }, "not found\n");
      return;
    }
    const decision = auth.check(req.headers.authorization, METRICS_ROLE, "GET /metrics");
    if (!decision.ok) {
      if (decision.code === Code.PermissionDenied)
        reply(res, 403, { "content-type": "text/plain" }, `${decision.message}\n`);
      else reply(res, 401, { "content-type": "text/plain", "www-authenticate": "Bearer" }, "unauthenticated\n");
      return;
    }
    registry.metrics().then(
      (body) => reply(res, 200, { "content-type": registry.contentType }, body),
      (error: unknown) => reply(res, 503, { "content-type": "text/plain" }, `${String(error)}\n`),
    );
  };
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

/** finite keeps NaN and ±Infinity (an empty ratio, a missing figure) out of the exposition. */
function finite(value: number | undefined): number {
  return value !== undefined && Number.isFinite(value) ? value : 0;
}
