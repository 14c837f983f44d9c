import { randomUUID } from "node:crypto";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { AuthPoolService, file_authpool_v1_auth_pool } from "../../gen/authpool/v1/auth_pool_pb.js";
import { file_grpc_health_v1_health } from "../../gen/grpc/health/v1/health_pb.js";
import type { PoolConfig } from "../config/index.js";
import { type Clock, DAY_MS, MINUTE_MS, Pool, nextCooldownEnd, systemClock } from "../domain/index.js";
import { type Logger, silentLogger } from "../runtime/logger.js";
import { startLogNotifier } from "../notify/log-notifier.js";
import { WebhookDispatcher } from "../notify/webhook-dispatcher.js";
import { EventFeed } from "../runtime/event-feed.js";
import { TranscriptReconciler } from "../transcripts/index.js";
import { UsagePoller } from "../upstream/index.js";
import { PoolWriter, WriterUnavailableError } from "../runtime/pool-writer.js";
import { Scheduler } from "../runtime/scheduler.js";
import { Journal, type KvStore, openStore } from "../store/index.js";
import { createAuthPoolService } from "./auth-pool-service.js";
import { bearerAuth } from "./bearer-auth.js";
import { metricsFallback } from "./metrics.js";
import { configDirWarnings } from "./config-dir-warnings.js";
import { registerHealth } from "./health.js";
import { type Listener, listen } from "./listener.js";
import { registerReflection } from "./reflection.js";

/** AuthPoolServerOptions: what a server needs; everything but config has a default. */
export interface AuthPoolServerOptions {
  config: PoolConfig;
  clock?: Clock;
  /** An open store; by default config.store.uri is opened (and closed on close()). */
  store?: KvStore;
  logger?: Logger;
  /** Real-time poll of the scheduler in ms (default 1000); 0 disables it (tests call runJobs()). */
  schedulerPollMs?: number;
  /** Live events a stream subscriber may fall behind by (default 10000). */
  streamBufferEvents?: number;
  /** Webhook retry backoff bounds in ms (default 500 .. 60000); tests shorten them. */
  webhookBackoff?: { baseMs: number; maxMs: number };
}

/** AuthPoolServer is a running pool: its URL, its writer, and a graceful close. */
export interface AuthPoolServer {
  url: string;
  port: number;
  host: string;
  writer: PoolWriter;
  feed: EventFeed;
  /** runJobs runs the background jobs the clock says are due (sweep, rebalance). */
  runJobs(): Promise<void>;
  /** close stops accepting calls, finishes in-flight ones, writes a snapshot, closes the store. */
  close(): Promise<void>;
}

// gRPC's customary default; a claude_output larger than its own limit is
// refused with a message that names the field rather than a transport error.
const READ_MAX_BYTES = 4 * 1024 * 1024;

/** startAuthPoolServer opens the store, loads the pool and serves it on config.server. */
export async function startAuthPoolServer(options: AuthPoolServerOptions): Promise<AuthPoolServer> {
  const { config } = options;
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? silentLogger;
  const ownsStore = options.store === undefined;
  const store = options.store ?? (await openStore(config.store.uri));
  const ids = config.subscriptions.map((s) => s.id);

  let writer: PoolWriter;
  try {
    writer = await PoolWriter.open({
      clock,
      load: async () => {
        const { journal, state, replayed } = await Journal.open(store, ids);
        logger.info("pool loaded", { store: store.description, sessions: state.sessions.size, replayedRecords: replayed });
        return { pool: new Pool(state, config), journal };
      },
      snapshot: config.snapshot,
      retentionMs: config.events.retentionDays * DAY_MS,
      onError: (error) => logger.error("pool writer", { error: String(error) }),
    });
  } catch (error) {
    if (ownsStore) await store.close();
    throw error;
  }

  const feed = new EventFeed(writer);
  const stopLogNotifier = startLogNotifier(writer, config.notifications.rules, logger);
  const webhook = config.notifications.webhook;
  const dispatcher =
    webhook !== undefined && config.notifications.rules.some((r) => r.enabled && r.channels.includes("webhook"))
      ? await WebhookDispatcher.start({
          feed,
          store,
          webhook,
          rules: config.notifications.rules,
          logger,
          ...(options.webhookBackoff !== undefined ? { backoff: options.webhookBackoff } : {}),
        })
      : undefined;

  const polled = config.subscriptions.filter((s) => s.upstreamUsage && s.type !== "api");
  const poller = polled.length > 0
    ? new UsagePoller({
        subscriptions: polled,
        endpoint: config.upstream.endpoint,
        intervalMs: config.upstream.intervalSeconds * 1000,
        timeoutMs: config.upstream.timeoutMs,
        clock,
        logger,
        onReadings: async (subscriptionId, readings) => {
          const result = await writer.submit({ kind: "observe", subscriptionId, readings, source: "usage endpoint" });
          if (result.kind === "rejected") throw new Error(result.message);
        },
      })
    : undefined;

  const followed = config.subscriptions.filter((s) => s.transcripts);
  const reconciler =
    followed.length > 0
      ? new TranscriptReconciler({
          subscriptions: followed,
          store,
          clock,
          logger,
          graceMs: config.transcripts.graceMinutes * MINUTE_MS,
          defaultTimeZone: config.cooldown.timeZone,
          submit: async (subscriptionId, rows) => {
            const result = await writer.submit({ kind: "reconcile", subscriptionId, rows });
            if (result.kind === "rejected") throw new Error(result.message);
          },
        })
      : undefined;

  const warnings = configDirWarnings(config.subscriptions);
  for (const [id, list] of warnings) for (const w of list) logger.warn("subscription", { subscription: id, warning: w });

  let serving = true;
  const shutdown = new AbortController();
  const handler = connectNodeAdapter({
    readMaxBytes: READ_MAX_BYTES,
    // Everything that is not an RPC: GET /metrics for Prometheus, else 404.
    fallback: metricsFallback({
      writer,
      authTokens: config.server.authTokens,
      webhookPending: () => dispatcher?.status().pending,
    }),
    // Gzip costs more CPU than it saves on loopback and LAN for our small
    // messages (it cut streaming throughput ~12x in a prototype); only large
    // replies (a status with thousands of sessions) are worth compressing.
    compressMinBytes: 64 * 1024,
    interceptors: [bearerAuth(config.server.authTokens, [AuthPoolService.typeName]), storeErrors],
    routes(router) {
      router.service(
        AuthPoolService,
        createAuthPoolService({
          writer,
          feed,
          shutdown: shutdown.signal,
          streamBufferEvents: options.streamBufferEvents ?? 10_000,
          ...(dispatcher !== undefined ? { notificationStatus: () => dispatcher.status() } : {}),
          settings: config,
          clock,
          timeZone: config.cooldown.timeZone,
          maxClaudeOutputBytes: config.limits.maxClaudeOutputBytes,
          extras: (id) => {
            const list = warnings.get(id) ?? [];
            const polling = poller?.status(id);
            const transcripts = reconciler?.status(id);
            return {
              warnings: polling?.lastError === undefined ? list : [...list, `usage endpoint: ${polling.lastError}`],
              ...(polling !== undefined ? { polling } : {}),
              ...(transcripts !== undefined ? { transcripts } : {}),
            };
          },
          newSessionId: randomUUID,
        }),
      );
      registerHealth(router, () => serving);
      registerReflection(router, [file_authpool_v1_auth_pool, file_grpc_health_v1_health]);
    },
  });

  let listener: Listener;
  try {
    listener = await listen(handler, config.server);
  } catch (error) {
    await dispatcher?.close();
    stopLogNotifier();
    feed.close();
    await writer.close();
    if (ownsStore) await store.close();
    throw error;
  }

  const scheduler = new Scheduler(
    clock,
    [
      {
        name: "sweep",
        everyMs: config.sessions.sweepIntervalSeconds * 1000,
        run: () => writer.submit({ kind: "sweep" }),
        // A cooldown ends at its reset time: sweep then, so the status change
        // is announced on time rather than up to a sweep interval late.
        wakeAt: () => nextCooldownEnd(writer.currentPool.state),
      },
      ...(poller !== undefined
        ? [
            {
              name: "upstream",
              // Each subscription has its own next poll time; the poller
              // knows it, the job only wakes up to ask.
              everyMs: 60_000,
              run: () => poller.pollDue(),
              wakeAt: () => poller.nextDueAt(),
            },
          ]
        : []),
      ...(reconciler !== undefined
        ? [
            {
              name: "transcripts",
              everyMs: config.transcripts.intervalSeconds * 1000,
              run: () => reconciler.scanAll(),
              // The first read is due at start: use from before the pool ran counts too.
              wakeAt: () => (reconciler.neverScanned ? 0 : undefined),
            },
          ]
        : []),
      ...(config.rebalancing.enabled
        ? [
            {
              name: "rebalance",
              everyMs: config.rebalancing.intervalSeconds * 1000,
              run: () => writer.submit({ kind: "rebalance", dryRun: false, trigger: "periodic" }),
            },
          ]
        : []),
    ],
    (job, error) => logger.error("job failed", { job, error: String(error) }),
  );
  const poll = options.schedulerPollMs ?? 1000;
  if (poll > 0) scheduler.start(poll);

  let closing: Promise<void> | undefined;
  return {
    url: listener.url,
    port: listener.port,
    host: listener.host,
    writer,
    feed,
    runJobs: () => scheduler.runDue(),
    close() {
      closing ??= (async () => {
        serving = false;
        shutdown.abort();
        scheduler.stop();
        await listener.close();
        await dispatcher?.close();
        stopLogNotifier();
        feed.close();
        await writer.close();
        if (ownsStore) await store.close();
      })();
      return closing;
    },
  };
}

/** storeErrors maps a refused store write to UNAVAILABLE: the call had no effect and may be retried. */
const storeErrors: Interceptor = (next) => async (req) => {
  try {
    return await next(req);
  } catch (error) {
    if (error instanceof WriterUnavailableError) throw new ConnectError(error.message, Code.Unavailable);
    throw error;
  }
};
