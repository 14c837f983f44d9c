import { randomUUID } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { AuthPoolService, file_authpool_v1_auth_pool } from "../../gen/authpool/v1/auth_pool_pb.js";
import { file_grpc_health_v1_health } from "../../gen/grpc/health/v1/health_pb.js";
import { ConfigError, type PoolConfig, readTlsCredentials } from "../config/index.js";
import { type Clock, DAY_MS, MINUTE_MS, Pool, nextCooldownEnd, systemClock } from "../domain/index.js";
import { type Logger, silentLogger } from "../runtime/logger.js";
import { startLogNotifier } from "../notify/log-notifier.js";
import { WebhookDispatcher } from "../notify/webhook-dispatcher.js";
import { EventFeed } from "../runtime/event-feed.js";
import { TranscriptReconciler } from "../transcripts/index.js";
import { UsagePoller } from "../upstream/index.js";
import { PoolWriter } from "../runtime/pool-writer.js";
import { Scheduler } from "../runtime/scheduler.js";
import { Journal, type KvStore, openStore } from "../store/index.js";
import { type ReloadSummary, createAuthPoolService } from "./auth-pool-service.js";
import { diffConfig } from "./config-diff.js";
import { watchConfigFile } from "./watch-config.js";
import { createBearerAuth } from "./bearer-auth.js";
import { exposureWarnings } from "./exposure.js";
import { edgeErrors } from "./edge-errors.js";
import { createPoolMetrics } from "./metrics.js";
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
  /**
   * Reads the config again for a reload (ReloadConfig, SIGHUP, a change of
   * the file); throws a ConfigError for an invalid file. Absent: no reload.
   */
  loadConfig?: () => Promise<PoolConfig>;
  /** Reload when the file at config.source changes (needs loadConfig). Default false. */
  watchConfig?: boolean;
  /**
   * While the store refuses writes, retry it every this many ms of real time
   * (default 1000), so service resumes by itself when it comes back; 0: only
   * when a call or job arrives.
   */
  storeRetryMs?: number;
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
  /** reload re-reads the config (see AuthPoolServerOptions.loadConfig) and applies it. */
  reload(): Promise<ReloadSummary>;
  /** close stops accepting calls, finishes in-flight ones, writes a snapshot, closes the store. */
  close(): Promise<void>;
}

/** startAuthPoolServer opens the store, loads the pool and serves it on config.server. */
export async function startAuthPoolServer(options: AuthPoolServerOptions): Promise<AuthPoolServer> {
  // The config in force; a reload replaces it, and everything that reads it
  // later (the writer's recovery, jobs, status extras) reads this variable.
  let config = options.config;
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? silentLogger;
  const ownsStore = options.store === undefined;
  // Read before the store is opened: a bad certificate is a config error, not a half-started pool.
  const tls = config.server.tls === undefined ? undefined : readTlsCredentials(config.server.tls);
  if (tls !== undefined && !tls.ok) {
    const [first, ...rest] = tls.issues;
    throw new ConfigError(config.source, [first ?? { path: "server.tls", expected: "expected readable TLS files" }, ...rest]);
  }
  const store = options.store ?? (await openStore(config.store.uri));
  let writer: PoolWriter;
  try {
    writer = await PoolWriter.open({
      clock,
      load: async () => {
        const { journal, state, replayed } = await Journal.open(store, config.subscriptions.map((s) => s.id));
        logger.info("pool loaded", { store: store.description, sessions: state.sessions.size, replayedRecords: replayed });
        return { pool: new Pool(state, config), journal };
      },
      snapshot: config.snapshot,
      retentionMs: config.events.retentionDays * DAY_MS,
      onError: (error) => logger.error("pool writer", { error: String(error) }),
      // A store that reads but refuses writes (a read-only file) must not look healthy.
      probe: () => store.set(PROBE_KEY, new Date(clock.now()).toISOString()),
      retryMs: options.storeRetryMs ?? 1000,
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

  const createPoller = (cfg: PoolConfig): UsagePoller | undefined => {
    const polled = cfg.subscriptions.filter((s) => s.upstreamUsage && s.type !== "api");
    if (polled.length === 0) return undefined;
    return new UsagePoller({
      subscriptions: polled,
      endpoint: cfg.upstream.endpoint,
      intervalMs: cfg.upstream.intervalSeconds * 1000,
      timeoutMs: cfg.upstream.timeoutMs,
      clock,
      logger,
      onReadings: async (subscriptionId, readings) => {
        const result = await writer.submit({ kind: "observe", subscriptionId, readings, source: "usage endpoint" });
        if (result.kind === "rejected") throw new Error(result.message);
      },
    });
  };
  const createReconciler = (cfg: PoolConfig): TranscriptReconciler | undefined => {
    const followed = cfg.subscriptions.filter((s) => s.transcripts);
    if (followed.length === 0) return undefined;
    return new TranscriptReconciler({
      subscriptions: followed,
      store,
      clock,
      logger,
      graceMs: cfg.transcripts.graceMinutes * MINUTE_MS,
      defaultTimeZone: cfg.cooldown.timeZone,
      submit: async (subscriptionId, rows) => {
        const result = await writer.submit({ kind: "reconcile", subscriptionId, rows });
        if (result.kind === "rejected") throw new Error(result.message);
      },
    });
  };
  const checkConfigDirs = (cfg: PoolConfig) => {
    const found = configDirWarnings(cfg.subscriptions);
    for (const [id, list] of found) for (const w of list) logger.warn("subscription", { subscription: id, warning: w });
    return found;
  };
  let poller = createPoller(config);
  let reconciler = createReconciler(config);
  let warnings = checkConfigDirs(config);

  let serving = true;
  const shutdown = new AbortController();
  // Tokens and TLS are read at start; a reload reports a change of them as needing a restart.
  const auth = createBearerAuth(config.server.authTokens);
  const metrics = createPoolMetrics({
    writer,
    auth,
    ...(dispatcher !== undefined
      ? { webhookPending: () => dispatcher.status().pending, webhookFailures: () => dispatcher.failedAttempts }
      : {}),
  });
  const handler = connectNodeAdapter({
    readMaxBytes: config.limits.maxRequestBytes,
    // Everything that is not an RPC: GET /metrics for Prometheus, else 404.
    fallback: metrics.fallback,
    // Gzip costs more CPU than it saves on loopback and LAN for our small
    // messages (it cut streaming throughput ~12x in a prototype); only large
    // replies (a status with thousands of sessions) are worth compressing.
    compressMinBytes: 64 * 1024,
    // Metrics first: they time everything and see the codes auth and edgeErrors answer with.
    interceptors: [metrics.interceptor, auth.interceptor([AuthPoolService.typeName]), edgeErrors],
    routes(router) {
      router.service(
        AuthPoolService,
        createAuthPoolService({
          writer,
          feed,
          shutdown: shutdown.signal,
          streamBufferEvents: options.streamBufferEvents ?? 10_000,
          ...(dispatcher !== undefined ? { notificationStatus: () => dispatcher.status() } : {}),
          streamGauge: metrics.streams,
          clock,
          limits: () => ({ maxClaudeOutputBytes: config.limits.maxClaudeOutputBytes, timeZone: config.cooldown.timeZone }),
          ...(options.loadConfig !== undefined ? { reload: () => reload() } : {}),
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
      // NOT_SERVING while draining for shutdown and while the store refuses writes.
      registerHealth(router, () => serving && writer.healthy);
      registerReflection(router, [file_authpool_v1_auth_pool, file_grpc_health_v1_health]);
    },
  });

  let listener: Listener;
  try {
    listener = await listen(handler, {
      host: config.server.host,
      port: config.server.port,
      ...(tls?.ok === true ? { tls: tls.credentials } : {}),
    });
  } catch (error) {
    await dispatcher?.close();
    stopLogNotifier();
    feed.close();
    await writer.close();
    if (ownsStore) await store.close();
    throw error;
  }

  for (const w of exposureWarnings(config.server, listener)) logger.warn(w.message, { warning: w.kind, ...w.fields });

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
      {
        name: "upstream",
        // Each subscription has its own next poll time; the poller knows
        // it, the job only wakes up to ask. (Read at each run: a reload may
        // replace the poller.)
        everyMs: 60_000,
        run: async () => poller?.pollDue(),
        wakeAt: () => poller?.nextDueAt(),
      },
      {
        name: "transcripts",
        everyMs: config.transcripts.intervalSeconds * 1000,
        run: async () => reconciler?.scanAll(),
        // The first read is due at start: use from before the pool ran counts too.
        wakeAt: () => (reconciler?.neverScanned === true ? 0 : undefined),
      },
      {
        name: "rebalance",
        everyMs: config.rebalancing.intervalSeconds * 1000,
        run: async () => {
          if (config.rebalancing.enabled) await writer.submit({ kind: "rebalance", dryRun: false, trigger: "periodic" });
        },
      },
    ],
    (job, error) => logger.error("job failed", { job, error: String(error) }),
  );
  const poll = options.schedulerPollMs ?? 1000;
  if (poll > 0) scheduler.start(poll);

  // One reload at a time, in order: a burst of file events must not interleave two.
  let reloading: Promise<unknown> = Promise.resolve();
  const reload = (): Promise<ReloadSummary> => {
    const run = reloading.then(() => applyReload());
    reloading = run.catch(() => undefined);
    return run;
  };
  const applyReload = async (): Promise<ReloadSummary> => {
    if (options.loadConfig === undefined) {
      throw new ConnectError("this pool was started without a config file to reload", Code.FailedPrecondition);
    }
    let next: PoolConfig;
    try {
      next = await options.loadConfig();
    } catch (error) {
      // The running config stays; the error names the file, the path in it and what was expected.
      // edgeErrors caps the message: a file's long key cannot flood the trailer.
      if (error instanceof ConfigError) throw new ConnectError(error.message, Code.InvalidArgument);
      throw error;
    }
    const summary = diffConfig(config, next);
    if (!summary.changed) return summary;
    const previous = config;
    config = next;
    try {
      await writer.submit({ kind: "reconfigure", settings: next });
    } catch (error) {
      // Not applied: the writer reloads its state with the config it had.
      config = previous;
      throw error;
    }
    poller = createPoller(next);
    reconciler = createReconciler(next);
    warnings = checkConfigDirs(next);
    logger.info("config reloaded", { ...summary });
    return summary;
  };
  const watcher = options.watchConfig === true && options.loadConfig !== undefined ? watchConfigFile(config.source, () => {
    reload().catch((error: unknown) => logger.error("config reload refused", { reason: error instanceof Error ? error.message : String(error) }));
  }) : undefined;

  let closing: Promise<void> | undefined;
  return {
    url: listener.url,
    port: listener.port,
    host: listener.host,
    writer,
    feed,
    runJobs: () => scheduler.runDue(),
    reload,
    close() {
      closing ??= (async () => {
        serving = false;
        shutdown.abort();
        scheduler.stop();
        watcher?.close();
        metrics.close();
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

/** PROBE_KEY is the store key the writer sets to prove the store takes writes. */
const PROBE_KEY = "probe:writable";
