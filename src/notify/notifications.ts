import type { NotificationChannel, PoolConfig } from "../config/index.js";
import { type Backoff, type Clock, HOUR_MS } from "../domain/index.js";
import type { EventFeed } from "../runtime/event-feed.js";
import type { Logger } from "../runtime/logger.js";
import type { PoolHandle } from "../runtime/pool-handle.js";
import type { Job } from "../runtime/scheduler.js";
import type { ChannelSnapshot, DeliveryChannelName } from "../server/notification-status.js";
import type { KvStore } from "../store/index.js";
import { type DeliveryCounts, createDeliveryCounts } from "./delivery-counts.js";
import { DEFAULT_DELIVERY_BACKOFF, EventDispatcher } from "./event-dispatcher.js";
import { startLogNotifier } from "./log-notifier.js";
import type { SlackContext } from "./slack-alert.js";
import { slackChannel, slackTarget } from "./slack-channel.js";
import { SlackDigest } from "./slack-digest.js";
import { webhookChannel } from "./webhook-channel.js";

/** NotificationsOptions: what the channels read, where they keep their cursors, and the config in force. */
export interface NotificationsOptions {
  pool: PoolHandle;
  feed: EventFeed;
  store: KvStore;
  clock: Clock;
  logger: Logger;
  /** The config in force: subscriptions' emails are read from it at each message. */
  config: () => PoolConfig;
  /** Backoff between delivery attempts in ms (default 500 .. 60000); tests shorten it. */
  backoff?: Backoff;
}

/** Running is a started part and the settings it was started with (a key: compared, never shown). */
interface Running<T> {
  key: string;
  value: T;
}

interface Closable {
  close(): Promise<void>;
}

/**
 * Notifications runs every notification channel of the config: log lines,
 * the webhook, Slack alerts and the Slack digest. apply() brings them in
 * line with a config, at start and at each reload, restarting exactly the
 * parts whose settings changed. A dispatcher's cursor and Slack's alert
 * holds live in the store, so a restarted one carries on where the old one
 * stopped, at least once as always, and says nothing it already said.
 */
export class Notifications {
  private readonly options: NotificationsOptions;
  private log: Running<Closable> | undefined;
  private webhook: Running<EventDispatcher> | undefined;
  private slack: Running<EventDispatcher> | undefined;
  private digest: Running<SlackDigest> | undefined;
  /** apply and stop run one at a time: a reload racing a step-down must not leave a part running. */
  private queue: Promise<unknown> = Promise.resolve();
  /** Each channel's tally since start, kept across the restarts of its dispatcher. */
  private readonly counts = new Map<DeliveryChannelName, DeliveryCounts>();

  constructor(options: NotificationsOptions) {
    this.options = options;
  }

  /** apply starts, restarts and stops parts to match config; it returns what it did ("slack started"), also logged. */
  apply(config: PoolConfig): Promise<string[]> {
    return this.serially(() => this.applyNow(config));
  }

  /** stop ends every part; dispatchers save their cursors. */
  stop(): Promise<void> {
    return this.serially(async () => {
      await Promise.all([this.log, this.webhook, this.slack, this.digest].map((p) => p?.value.close()));
      this.log = this.webhook = this.slack = this.digest = undefined;
    });
  }

  /** status is each running dispatcher's progress, the webhook's first; empty with neither. */
  status(): ChannelSnapshot[] {
    return [this.webhook, this.slack].flatMap((p) => (p === undefined ? [] : [p.value.status()]));
  }

  /** deliveryCounts is each channel's tally since start, a channel a reload stopped included. */
  deliveryCounts(): ReadonlyMap<DeliveryChannelName, Readonly<DeliveryCounts>> {
    return this.counts;
  }

  /** digestJob is the scheduler's job for the daily digest; it follows apply() (no digest: nothing due). */
  digestJob(): Job {
    return {
      name: "slack digest",
      everyMs: HOUR_MS,
      run: async () => this.digest?.value.runDue(),
      wakeAt: () => this.digest?.value.nextDueAt(),
    };
  }

  private serially<T>(task: () => Promise<T>): Promise<T> {
    const run = this.queue.then(task);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async applyNow(config: PoolConfig): Promise<string[]> {
    const wanted = partKeys(config);
    const changes: string[] = [];
    this.log = await this.replace("log", this.log, wanted.log, changes, () => this.startLog(config));
    this.webhook = await this.replace("webhook", this.webhook, wanted.webhook, changes, () =>
      this.startWebhook(config),
    );
    this.slack = await this.replace("slack", this.slack, wanted.slack, changes, () => this.startSlack(config));
    this.digest = await this.replace("slack digest", this.digest, wanted.digest, changes, async () =>
      this.createDigest(config),
    );
    if (changes.length > 0) this.options.logger.info("notifications", { changes });
    return changes;
  }

  private async replace<T extends Closable>(
    name: string,
    current: Running<T> | undefined,
    key: string | undefined,
    changes: string[],
    start: () => Promise<T>,
  ): Promise<Running<T> | undefined> {
    if (current?.key === key) return current;
    await current?.value.close();
    const next = key === undefined ? undefined : { key, value: await start() };
    changes.push(`${name} ${current === undefined ? "started" : next === undefined ? "stopped" : "restarted"}`);
    return next;
  }

  private async startLog(config: PoolConfig): Promise<Closable> {
    const stop = startLogNotifier(this.options.pool, config.notifications.rules, this.options.logger);
    return { close: async () => stop() };
  }

  private startWebhook(config: PoolConfig): Promise<EventDispatcher> {
    const webhook = config.notifications.webhook!;
    return EventDispatcher.start({
      ...this.dispatcherBase(),
      channel: webhookChannel(webhook, config.notifications.rules),
      counts: this.countsOf("webhook"),
      maxAttempts: webhook.maxAttempts,
      retryPauseMs: webhook.retryPauseSeconds * 1000,
    });
  }

  private startSlack(config: PoolConfig): Promise<EventDispatcher> {
    const slack = config.notifications.slack!;
    return EventDispatcher.start({
      ...this.dispatcherBase(),
      channel: slackChannel(slack.url!, slack, config.notifications.rules, () => this.slackContext()),
      counts: this.countsOf("slack"),
      maxAttempts: slack.maxAttempts,
      retryPauseMs: slack.retryPauseSeconds * 1000,
    });
  }

  private createDigest(config: PoolConfig): SlackDigest {
    const slack = config.notifications.slack!;
    const { pool, feed, store, clock, logger } = this.options;
    return new SlackDigest({
      pool,
      feed,
      store,
      clock,
      logger,
      slack,
      target: slackTarget(slack.url!, slack),
      backoff: this.options.backoff ?? DEFAULT_DELIVERY_BACKOFF,
      email: (id) => this.email(id),
    });
  }

  private countsOf(channel: DeliveryChannelName): DeliveryCounts {
    let counts = this.counts.get(channel);
    if (counts === undefined) {
      counts = createDeliveryCounts();
      this.counts.set(channel, counts);
    }
    return counts;
  }

  private dispatcherBase() {
    const { feed, store, logger, backoff } = this.options;
    return { feed, store, logger, ...(backoff !== undefined ? { backoff } : {}) };
  }

  private slackContext(): SlackContext {
    const subscriptions = this.options.pool.currentPool.state.subscriptions;
    return {
      now: this.options.clock.now(),
      email: (id) => this.email(id),
      cooldownEnd: (id) => {
        const ends = (subscriptions.get(id)?.cooldowns ?? []).filter((c) => c.modelScope === undefined);
        return ends.length === 0 ? undefined : Math.max(...ends.map((c) => c.until));
      },
      weeklyReset: (id) => subscriptions.get(id)?.upstream.seven_day?.resetsAt,
    };
  }

  private email(id: string): string {
    return this.options.config().subscriptions.find((s) => s.id === id)?.email ?? "";
  }
}

/**
 * partKeys says which parts a config wants, each as the settings it runs
 * with (undefined: not wanted). A part restarts when its key changes: for a
 * channel, its own settings or the rules routing to it, nothing else.
 */
function partKeys(config: PoolConfig): Record<"log" | "webhook" | "slack" | "digest", string | undefined> {
  const { webhook, slack } = config.notifications;
  const routing = (channel: NotificationChannel) =>
    config.notifications.rules.filter((r) => r.enabled && r.channels.includes(channel));
  const keyOf = (wanted: boolean, settings: unknown) => (wanted ? JSON.stringify(settings) : undefined);
  const [toLog, toWebhook, toSlack] = [routing("log"), routing("webhook"), routing("slack")];
  const slackUrl = slack?.url;
  return {
    log: keyOf(toLog.length > 0, toLog),
    webhook: keyOf(webhook !== undefined && toWebhook.length > 0, { webhook, toWebhook }),
    slack: keyOf(slackUrl !== undefined && toSlack.length > 0, { slack, toSlack }),
    digest: keyOf(slackUrl !== undefined && slack?.digest.enabled === true, slack),
  };
}
