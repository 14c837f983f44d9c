import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import os from "node:os";
import type http from "node:http";
import type http2 from "node:http2";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { AuthPoolService, file_authpool_v1_auth_pool } from "../../gen/authpool/v1/auth_pool_pb.js";
import { file_grpc_health_v1_health } from "../../gen/grpc/health/v1/health_pb.js";
import { ConfigError, type PoolConfig, readTlsCredentials } from "../config/index.js";
import { type Clock, DAY_MS, systemClock } from "../domain/index.js";
import { EventFeed } from "../runtime/event-feed.js";
import { type Logger, silentLogger } from "../runtime/logger.js";
import { PoolHost } from "../runtime/pool-host.js";
import { Teardown } from "../runtime/teardown.js";
import { type KvStore, type PoolStore, UsageArchive, kvJournalStore, openStore } from "../store/index.js";
import { dashboardDir, dashboardFallback } from "./dashboard.js";
import { type ReloadSummary, createAuthPoolService } from "./auth-pool-service.js";
import { BackgroundJobs } from "./background-jobs.js";
import { createBearerAuth } from "./bearer-auth.js";
import { advertisedAddress, clusterStatus } from "./cluster-status.js";
import { AllocationWaits } from "./allocation-waits.js";
import { configDirWarnings } from "./config-dir-warnings.js";
import { createReloader } from "./config-reload.js";
import { edgeErrors } from "./edge-errors.js";
import { exposureWarnings } from "./exposure.js";
import { forwardWrites } from "./forward-writes.js";
import { registerHealth } from "./health.js";
import { type Listener, listen } from "./listener.js";
import { createPoolMetrics } from "./metrics/index.js";
import { registerReflection } from "./reflection.js";
import { watchConfigFile } from "./watch-config.js";

/** AuthPoolServerOptions: what a server needs; everything but config has a default. */
export interface AuthPoolServerOptions {
  config: PoolConfig;
  clock?: Clock;
  /**
   * An open store; by default config.store.uri is opened (and closed on
   * close()). A bare KvStore gets an in-process lease and journal surface:
   * right for servers in one process only.
   */
  store?: KvStore | PoolStore;
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
  /** This instance's id in the store's lease (default: a new random id). */
  instanceId?: string;
  /** Real time for the lease (default Date.now); tests step it. */
  leaseNow?: () => number;
}

/** AuthPoolServer is a running pool: its URL, its pool, and a graceful close. */
export interface AuthPoolServer {
  url: string;
  port: number;
  host: string;
  /** The pool as this instance holds it (leader or standby). */
  writer: PoolHost;
  /** This instance's id in the store's lease. */
  instanceId: string;
  feed: EventFeed;
  /** runJobs runs the background jobs the clock says are due (sweep, rebalance); only the leader has any. */
  runJobs(): Promise<void>;
  /** reload re-reads the config (see AuthPoolServerOptions.loadConfig) and applies it. */
  reload(): Promise<ReloadSummary>;
  /** close stops accepting calls, finishes in-flight ones, writes a snapshot, hands the lease over, closes the store. */
  close(): Promise<void>;
}

/** Methods a standby answers itself; every other AuthPoolService call is forwarded to the leader. */
const READ_METHODS = new Set(["GetPoolStatus", "StreamEvents", "GetUsage", "GetUsageHistory"]);

/** CONFIG_DIR_RECHECK_MS: how stale a status's "config dir does not exist" may be. */
const CONFIG_DIR_RECHECK_MS = 30_000;
/**
 * startAuthPoolServer opens the store, listens, takes the store's lease (or
 * stands by for it) and serves the pool on config.server.
 */
export async function startAuthPoolServer(options: AuthPoolServerOptions): Promise<AuthPoolServer> {
  // The config in force; a reload replaces it, and everything that reads it
  // later (the writer's recovery, jobs, status extras) reads this variable.
  let config = options.config;
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? silentLogger;
  const teardown = new Teardown();
  const failed = (step: string, error: unknown) => logger.error("shutdown step failed", { step, error: String(error) });
  try {
    // Read before the store is opened: a bad certificate is a config error, not a half-started pool.
    const tls = config.server.tls === undefined ? undefined : readTlsCredentials(config.server.tls);
    if (tls !== undefined && !tls.ok) {
      const [first, ...rest] = tls.issues;
      throw new ConfigError(config.source, [
        first ?? { path: "server.tls", expected: "expected readable TLS files" },
        ...rest,
      ]);
    }
    const forwardCa = readForwardCa(config);

    const store = await storeFor(options, config);
    if (options.store === undefined) teardown.add("store", () => store.close());

    // Listen first (gated until the pool is loaded): the lease carries the
    // address other instances forward to, and with port 0 only the
    // listener knows it.
    let serve:
      | ((
          req: http.IncomingMessage | http2.Http2ServerRequest,
          res: http.ServerResponse | http2.Http2ServerResponse,
        ) => void)
      | undefined;
    let opened!: () => void;
    const ready = new Promise<void>((resolve) => (opened = resolve));
    const listener: Listener = await listen(
      (req, res) => {
        if (serve !== undefined) serve(req, res);
        else void ready.then(() => serve!(req, res));
      },
      { host: config.server.host, port: config.server.port, ...(tls?.ok === true ? { tls: tls.credentials } : {}) },
    );
    teardown.add("listener", () => listener.close());
    const address = advertisedAddress(config, listener);
    const instanceId = options.instanceId ?? config.cluster.instanceId ?? defaultInstanceId(config, listener);

    let jobs: BackgroundJobs | undefined;
    const host = await PoolHost.start({
      log: store.log,
      kv: store,
      clock,
      settings: () => config,
      holder: instanceId,
      address,
      leaseTtlMs: config.cluster.leaseTtlSeconds * 1000,
      ...(options.leaseNow !== undefined ? { leaseNow: options.leaseNow } : {}),
      followPollMs: config.cluster.followPollMs,
      writer: {
        snapshot: config.snapshot,
        retentionMs: config.events.retentionDays * DAY_MS,
        // A store that reads but refuses writes (a read-only file) must not look healthy.
        probe: () => store.set(PROBE_KEY, new Date(clock.now()).toISOString()),
        retryMs: options.storeRetryMs ?? 1000,
      },
      logger,
      onRole: async (role) => {
        if (role === "leader") await jobs?.start();
        else await jobs?.stop();
      },
    });
    teardown.add("pool", () => host.close());
    const feed = new EventFeed(host);
    teardown.add("feed", () => feed.close());
    const waits = new AllocationWaits({ writer: host, clock, limits: () => config.queue });
    teardown.add("waits", () => waits.close());
    jobs = new BackgroundJobs({
      pool: host,
      feed,
      store,
      clock,
      logger,
      config: () => config,
      schedulerPollMs: options.schedulerPollMs ?? 1000,
      ...(options.webhookBackoff !== undefined ? { webhookBackoff: options.webhookBackoff } : {}),
      // A managed login's status is journaled: a dead one is excluded (and
      // announced) until it works again; only changes are recorded.
      onCredentialStatus: (subscriptionId, status) => {
        host
          .submit({
            kind: "credentials",
            subscriptionId,
            status: status.kind === "refreshed" ? "ok" : status.kind,
            reason: status.reason ?? "",
          })
          .catch((error: unknown) =>
            logger.warn("credentials status not recorded", { subscription: subscriptionId, error: String(error) }),
          );
        if (status.kind !== "ok" && status.kind !== "refreshed") {
          logger.warn("managed credentials", {
            subscription: subscriptionId,
            status: status.kind,
            ...(status.reason !== undefined ? { reason: status.reason } : {}),
          });
        }
      },
    });
    if (host.role === "leader") await jobs.start();
    else
      logger.warn(standbyMessage(host), {
        role: "standby",
        leader: host.lease?.holder ?? "none",
        address: host.lease?.address ?? "",
      });
    const backgroundJobs = jobs;
    teardown.add("background jobs", () => backgroundJobs.stop());

    const checkConfigDirs = (cfg: PoolConfig) => {
      const found = configDirWarnings(cfg.subscriptions);
      for (const [id, list] of found)
        for (const w of list) logger.warn("subscription", { subscription: id, warning: w });
      return found;
    };
    let warnings = checkConfigDirs(config);
    // A dir created after start must not stay reported missing: looked at again at most this often.
    let warningsAt = clock.now();
    const currentWarnings = () => {
      if (clock.now() - warningsAt >= CONFIG_DIR_RECHECK_MS) {
        warnings = configDirWarnings(config.subscriptions);
        warningsAt = clock.now();
      }
      return warnings;
    };

    const reload = createReloader({
      ...(options.loadConfig !== undefined ? { loadConfig: options.loadConfig } : {}),
      current: () => config,
      replace: (next) => {
        config = next;
      },
      apply: async (next) => {
        if (host.role === "leader") await host.submit({ kind: "reconfigure", settings: next });
        else host.adoptSettings(next);
        await backgroundJobs.configure(next);
        warnings = checkConfigDirs(next);
        warningsAt = clock.now();
      },
      logger,
    });
    if (options.watchConfig === true && options.loadConfig !== undefined) {
      const watcher = watchConfigFile(config.source, () => {
        reload().catch((error: unknown) =>
          logger.error("config reload refused", { reason: error instanceof Error ? error.message : String(error) }),
        );
      });
      teardown.add("config watch", () => watcher.close());
    }

    let serving = true;
    const shutdown = new AbortController();
    teardown.add("streams", () => {
      serving = false;
      shutdown.abort();
    });
    // Tokens and TLS are read at start; a reload reports a change of them as needing a restart.
    const auth = createBearerAuth(config.server.authTokens);
    const metrics = createPoolMetrics({
      writer: host,
      auth,
      waiting: () => waits.queue.size,
      // The webhook's unlabelled series predate Slack's; they stay for the dashboards that read them.
      ...(config.notifications.webhook !== undefined
        ? {
            webhookPending: () => backgroundJobs.notificationStatus().find((c) => c.channel === "webhook")?.pending,
            webhookFailures: () => backgroundJobs.deliveryCounts().get("webhook")?.failures,
          }
        : {}),
      notifications: {
        status: () => backgroundJobs.notificationStatus(),
        counts: () => backgroundJobs.deliveryCounts(),
      },
    });
    teardown.add("metrics", () => metrics.close());
    serve = connectNodeAdapter({
      readMaxBytes: config.limits.maxRequestBytes,
      // Everything that is not an RPC: the dashboard at GET /, GET /metrics for Prometheus, else 404.
      fallback: dashboardFallback(dashboardDir(), metrics.fallback),
      // Gzip costs more CPU than it saves on loopback and LAN for our small
      // messages (it cut streaming throughput ~12x in a prototype); only large
      // replies (a status with thousands of sessions) are worth compressing.
      compressMinBytes: 64 * 1024,
      // Metrics first: they time everything and see the codes auth and edgeErrors answer with.
      interceptors: [metrics.interceptor, auth.interceptor([AuthPoolService.typeName]), edgeErrors],
      routes(router) {
        const service = createAuthPoolService({
          writer: host,
          archive: new UsageArchive(store),
          feed,
          shutdown: shutdown.signal,
          streamBufferEvents: options.streamBufferEvents ?? 10_000,
          notificationStatus: () => backgroundJobs.notificationStatus(),
          streamGauge: metrics.streams,
          clock,
          limits: () => ({
            maxClaudeOutputBytes: config.limits.maxClaudeOutputBytes,
            timeZone: config.cooldown.timeZone,
          }),
          ...(options.loadConfig !== undefined ? { reload } : {}),
          extras: (id) => {
            const list = currentWarnings().get(id) ?? [];
            const polling = backgroundJobs.pollingStatus(id);
            const transcripts = backgroundJobs.transcriptStatus(id);
            const login = backgroundJobs.credentialStatus(id);
            const shown = [...list];
            if (polling?.lastError !== undefined) shown.push(`usage endpoint: ${polling.lastError}`);
            if (login?.lastError !== undefined) shown.push(`managed credentials: ${login.lastError}`);
            return {
              warnings: shown,
              ...(polling !== undefined ? { polling } : {}),
              ...(transcripts !== undefined ? { transcripts } : {}),
            };
          },
          newSessionId: randomUUID,
          waits,
          cluster: () => clusterStatus(host, instanceId, store.log.description),
        });
        // A standby forwards what writes to the leader (after the token was checked).
        router.service(
          AuthPoolService,
          forwardWrites(AuthPoolService, service, {
            reads: READ_METHODS,
            leading: () => host.role === "leader",
            self: instanceId,
            leader: () => host.lease,
            waitForLeaderMs: config.cluster.leaseTtlSeconds * 1000 + 1000,
            ...(forwardCa !== undefined ? { ca: forwardCa } : {}),
          }),
        );
        // NOT_SERVING while draining for shutdown and while the store cannot be used.
        registerHealth(router, () => serving && host.healthy);
        registerReflection(router, [file_authpool_v1_auth_pool, file_grpc_health_v1_health]);
      },
    });
    opened();

    for (const w of exposureWarnings(config.server, listener)) logger.warn(w.message, { warning: w.kind, ...w.fields });

    let closing: Promise<void> | undefined;
    return {
      url: listener.url,
      port: listener.port,
      host: listener.host,
      writer: host,
      instanceId,
      feed,
      runJobs: () => backgroundJobs.runDue(),
      reload,
      close() {
        closing ??= teardown.run(failed);
        return closing;
      },
    };
  } catch (error) {
    await teardown.run(failed);
    throw error;
  }
}

/**
 * defaultInstanceId: host name and configured port, stable across restarts
 * of the same deployment (so a restart reclaims its lease at once); a
 * random id when the port is chosen by the OS, since then nothing ties a
 * restart to its predecessor.
 */
function defaultInstanceId(config: PoolConfig, listener: Listener): string {
  return config.server.port === 0
    ? `${os.hostname()}:${randomUUID().slice(0, 8)}`
    : `${os.hostname()}:${listener.port}`;
}

/** PROBE_KEY is the store key the writer sets to prove the store takes writes. */
const PROBE_KEY = "probe:writable";

async function storeFor(options: AuthPoolServerOptions, config: PoolConfig): Promise<PoolStore> {
  const given = options.store;
  if (given === undefined) return openStore(config.store.uri);
  if ("log" in given) return given;
  const kv = given;
  return {
    get description() {
      return kv.description;
    },
    get: (key) => kv.get(key),
    set: (key, value) => kv.set(key, value),
    delete: (key) => kv.delete(key),
    close: () => kv.close(),
    log: kvJournalStore(kv),
  };
}

function readForwardCa(config: PoolConfig): Buffer | undefined {
  const file = config.cluster.caFile ?? config.server.tls?.certFile;
  if (file === undefined) return undefined;
  try {
    return readFileSync(file);
  } catch (error) {
    throw new ConfigError(config.source, [
      { path: "cluster.caFile", expected: `a readable PEM file (${(error as Error).message})` },
    ]);
  }
}

function standbyMessage(host: PoolHost): string {
  const lease = host.lease;
  return lease === undefined
    ? "standby: another instance is loading the store"
    : `standby: instance ${lease.holder} holds the store's lease${lease.address !== "" ? ` at ${lease.address}` : ""}; this instance serves reads and forwards writes to it, and takes over if it stops`;
}
