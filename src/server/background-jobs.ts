import type { PoolConfig } from "../config/index.js";
import {
  type CredentialSettings,
  type CredentialSnapshot,
  type CredentialStatus,
  type LoginCheck,
  CredentialManager,
  loginStatus,
  readLoginFacts,
} from "../credentials/index.js";
import { MINUTE_MS, nextCooldownEnd } from "../domain/index.js";
import { type DeliveryCounts, Notifications, type NotificationsOptions } from "../notify/index.js";
import { Scheduler } from "../runtime/scheduler.js";
import { UsageArchive } from "../store/index.js";
import { TranscriptReconciler } from "../transcripts/index.js";
import { UsagePoller } from "../upstream/index.js";
import type { ChannelSnapshot, DeliveryChannelName } from "./notification-status.js";
import { archiveUsage } from "./usage-archiving.js";

/**
 * BackgroundJobs is the work only the writer of a store does: the sweep,
 * rebalancing, upstream polling, transcript reading, managed credential
 * refresh, the login check of unmanaged subscriptions, and notifications
 * (webhook and Slack delivery with their cursors, the Slack digest, log
 * lines). It runs on the instance holding the lease and moves with it:
 * started at a takeover, stopped at a step-down, so nothing runs on two
 * instances and nothing stops after a failover.
 */
export interface BackgroundJobsOptions extends Omit<NotificationsOptions, "backoff"> {
  /** Real-time poll of the scheduler in ms; 0: tests call runDue(). */
  schedulerPollMs: number;
  /** Backoff between webhook and Slack delivery attempts in ms (default 500 .. 60000); tests shorten it. */
  webhookBackoff?: { baseMs: number; maxMs: number };
  /**
   * Hears every change of a managed login's status (and every refresh the
   * pool made). Default: a log line. No secrets are passed.
   */
  onCredentialStatus?: (subscriptionId: string, status: CredentialStatus) => void;
  /**
   * The OS whose Claude Code logs in the config dirs (default
   * process.platform): on macOS the login is in the Keychain, so a missing
   * credentials file does not exclude a subscription there.
   */
  platform?: NodeJS.Platform;
}

export class BackgroundJobs {
  private readonly options: BackgroundJobsOptions;
  private poller: UsagePoller | undefined;
  private reconciler: TranscriptReconciler | undefined;
  private credentials: CredentialManager | undefined;
  private scheduler: Scheduler | undefined;
  private readonly notifications: Notifications;
  private running = false;
  /** False until the login check ran since start or the last reload: the check is due at once then. */
  private loginsChecked = false;
  /** False until the usage archive ran since start: it is due at once then. */
  private archivedOnce = false;

  constructor(options: BackgroundJobsOptions) {
    this.options = options;
    const { pool, feed, store, clock, logger, config, webhookBackoff } = options;
    this.notifications = new Notifications({
      pool,
      feed,
      store,
      clock,
      logger,
      config,
      ...(webhookBackoff !== undefined ? { backoff: webhookBackoff } : {}),
    });
  }

  /** start begins the work (idempotent). */
  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    this.loginsChecked = false;
    this.archivedOnce = false;
    const { clock, logger } = this.options;
    await this.configure(this.options.config());
    this.scheduler = new Scheduler(clock, this.jobs(), (job, error) =>
      logger.error("job failed", { job, error: String(error) }),
    );
    if (this.options.schedulerPollMs > 0) this.scheduler.start(this.options.schedulerPollMs);
  }

  /** stop ends the work; a job in flight finishes (its writes fail once the lease is gone). */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.scheduler?.stop();
    this.scheduler = undefined;
    await this.notifications.stop();
    this.poller = undefined;
    this.reconciler = undefined;
    // A check in flight finishes under Claude Code's refresh lock; the next leader waits for that lock.
    this.credentials = undefined;
  }

  /**
   * configure rebuilds the pollers from a (reloaded) config and restarts the
   * notification channels whose settings changed (see Notifications.apply).
   */
  async configure(config: PoolConfig): Promise<void> {
    if (!this.running) return;
    this.poller = this.createPoller(config);
    this.reconciler = this.createReconciler(config);
    // Reconfigured, not replaced: per config dir one refresh at a time, also across a reload.
    if (this.credentials === undefined) this.credentials = this.createCredentialManager(config);
    else this.credentials.configure(credentialSettings(config));
    // A subscription added (or made unmanaged) by a reload is looked at now, not a sweep later.
    this.loginsChecked = false;
    await this.notifications.apply(config);
  }

  /** runDue runs the jobs the clock says are due (tests). */
  async runDue(): Promise<void> {
    await this.scheduler?.runDue();
  }

  pollingStatus(id: string) {
    return this.poller?.status(id);
  }

  transcriptStatus(id: string) {
    return this.reconciler?.status(id);
  }

  /** credentialStatus is a managed login's state (no secrets); undefined when not managed or not leading. */
  credentialStatus(id: string): CredentialSnapshot | undefined {
    return this.credentials?.status(id);
  }

  /** notificationStatus is each running delivery channel's progress (none while standing by). */
  notificationStatus(): ChannelSnapshot[] {
    return this.notifications.status();
  }

  /** deliveryCounts is each delivery channel's tally since this server started. */
  deliveryCounts(): ReadonlyMap<DeliveryChannelName, Readonly<DeliveryCounts>> {
    return this.notifications.deliveryCounts();
  }

  private jobs() {
    const { pool } = this.options;
    const config = this.options.config;
    return [
      {
        name: "sweep",
        everyMs: config().sessions.sweepIntervalSeconds * 1000,
        run: () => pool.submit({ kind: "sweep" }),
        // A cooldown ends at its reset time: sweep then, so the status change
        // is announced on time rather than up to a sweep interval late.
        wakeAt: () => nextCooldownEnd(pool.currentPool.state),
      },
      {
        name: "upstream",
        // Each subscription has its own next poll time; the poller knows
        // it, the job only wakes up to ask. (Read at each run: a reload may
        // replace the poller.)
        everyMs: 60_000,
        run: async () => this.poller?.pollDue(),
        wakeAt: () => this.poller?.nextDueAt(),
      },
      {
        name: "transcripts",
        everyMs: config().transcripts.intervalSeconds * 1000,
        run: async () => this.reconciler?.scanAll(),
        // The first read is due at start: use from before the pool ran counts too.
        wakeAt: () => (this.reconciler?.neverScanned === true ? 0 : undefined),
      },
      {
        name: "credentials",
        // Each managed login has its own next check; the manager knows it.
        everyMs: config().credentials.checkIntervalSeconds * 1000,
        run: async () => this.credentials?.checkDue(),
        wakeAt: () => this.credentials?.nextDueAt(),
      },
      {
        name: "logins",
        // Unmanaged logins are only looked at (the CLI renews them): at start, then every sweep.
        everyMs: config().sessions.sweepIntervalSeconds * 1000,
        run: () => this.checkLogins(),
        wakeAt: () => (this.loginsChecked ? undefined : 0),
      },
      {
        name: "usage archive",
        // Hours move to the archive a week after they end: at start, then every ten minutes is plenty.
        everyMs: 10 * MINUTE_MS,
        run: async () => {
          await archiveUsage(pool, new UsageArchive(this.options.store), this.options.clock.now());
          this.archivedOnce = true;
        },
        wakeAt: () => (this.archivedOnce ? undefined : 0),
      },
      {
        name: "rebalance",
        everyMs: config().rebalancing.intervalSeconds * 1000,
        run: async () => {
          if (config().rebalancing.enabled)
            await pool.submit({ kind: "rebalance", dryRun: false, trigger: "periodic" });
        },
      },
      this.notifications.digestJob(),
    ];
  }

  /**
   * checkLogins looks at the login of every unmanaged subscription (managed
   * ones are the credential manager's) and records a status only when it
   * differs from the journaled one, so the journal does not grow every sweep.
   * An api subscription has no OAuth login: it is only ever cleared.
   */
  private async checkLogins(): Promise<void> {
    this.loginsChecked = true;
    const { pool, clock, logger } = this.options;
    const platform = this.options.platform ?? process.platform;
    const unmanaged = this.options.config().subscriptions.filter((s) => !s.manageCredentials);
    await Promise.all(
      unmanaged.map(async (sub) => {
        const status: LoginCheck =
          sub.type === "api" ? { kind: "ok" } : loginStatus(await readLoginFacts(sub.configDir), clock.now(), platform);
        const recorded = pool.currentPool.state.subscriptions.get(sub.id)?.login;
        const same =
          status.kind === "ok"
            ? recorded === undefined
            : recorded?.status === status.kind && recorded.reason === status.reason;
        if (same) return;
        const reason = status.reason ?? "";
        const result = await pool.submit({ kind: "credentials", subscriptionId: sub.id, status: status.kind, reason });
        // Rejected only for a subscription a reload is adding or removing right now: the next check settles it.
        if (result.kind === "rejected") {
          logger.warn("login check not recorded", { subscription: sub.id, reason: result.message });
        } else if (status.kind === "ok") {
          logger.info("login check", { subscription: sub.id, status: "ok" });
        } else {
          logger.warn("login check", { subscription: sub.id, status: status.kind, reason });
        }
      }),
    );
  }

  private createPoller(cfg: PoolConfig): UsagePoller | undefined {
    const polled = cfg.subscriptions.filter((s) => s.upstreamUsage && s.type !== "api");
    if (polled.length === 0) return undefined;
    const { pool, clock, logger } = this.options;
    return new UsagePoller({
      subscriptions: polled,
      endpoint: cfg.upstream.endpoint,
      intervalMs: cfg.upstream.intervalSeconds * 1000,
      timeoutMs: cfg.upstream.timeoutMs,
      clock,
      logger,
      onReadings: async (subscriptionId, readings) => {
        const result = await pool.submit({ kind: "observe", subscriptionId, readings, source: "usage endpoint" });
        if (result.kind === "rejected") throw new Error(result.message);
      },
    });
  }

  private createCredentialManager(cfg: PoolConfig): CredentialManager {
    const { clock, logger } = this.options;
    const onStatus =
      this.options.onCredentialStatus ??
      ((subscriptionId: string, status: CredentialStatus) => {
        const fields = {
          subscriptionId,
          status: status.kind,
          ...(status.reason !== undefined ? { reason: status.reason } : {}),
          ...(status.expiresAt !== undefined ? { expiresAt: new Date(status.expiresAt).toISOString() } : {}),
        };
        if (status.kind === "ok" || status.kind === "refreshed") logger.info("credentials status", fields);
        else logger.warn("credentials status", fields);
      });
    return new CredentialManager({ ...credentialSettings(cfg), clock, logger, onStatus });
  }

  private createReconciler(cfg: PoolConfig): TranscriptReconciler | undefined {
    const followed = cfg.subscriptions.filter((s) => s.transcripts);
    if (followed.length === 0) return undefined;
    const { pool, store, clock, logger } = this.options;
    return new TranscriptReconciler({
      subscriptions: followed,
      store,
      clock,
      logger,
      graceMs: cfg.transcripts.graceMinutes * MINUTE_MS,
      defaultTimeZone: cfg.cooldown.timeZone,
      submit: async (subscriptionId, rows) => {
        const result = await pool.submit({ kind: "reconcile", subscriptionId, rows });
        if (result.kind === "rejected") throw new Error(result.message);
      },
    });
  }
}

/** credentialSettings: the managed subscriptions and the refresh settings of a config. */
function credentialSettings(cfg: PoolConfig): CredentialSettings {
  const c = cfg.credentials;
  return {
    subscriptions: cfg.subscriptions
      .filter((s) => s.manageCredentials)
      .map((s) => ({ id: s.id, configDir: s.configDir })),
    tokenEndpoint: c.tokenEndpoint,
    clientId: c.clientId,
    refreshBeforeMs: c.refreshBeforeMinutes * MINUTE_MS,
    checkIntervalMs: c.checkIntervalSeconds * 1000,
    timeoutMs: c.timeoutSeconds * 1000,
    backoff: { minMs: c.backoffMinSeconds * 1000, maxMs: c.backoffMaxSeconds * 1000 },
  };
}
