import type { SlackConfig } from "../config/index.js";
import {
  type Backoff,
  type Clock,
  DAY_MS,
  DEFAULT_CLIENT,
  HOUR_MS,
  type LimitWindow,
  floorHour,
  usageBy,
} from "../domain/index.js";
import type { EventFeed } from "../runtime/event-feed.js";
import type { Logger } from "../runtime/logger.js";
import type { PoolHandle } from "../runtime/pool-handle.js";
import type { KvStore } from "../store/index.js";
import { type DigestInput, digestText } from "./daily-digest.js";
import { deliveryRound } from "./delivery-round.js";
import { eventsSince } from "./recent-events.js";
import { slackBody } from "./slack-payload.js";
import type { WebhookTarget } from "./webhook-request.js";

/** SLACK_DIGEST_KEY is the store key of the UTC date ("2026-11-24") of the last digest sent. */
export const SLACK_DIGEST_KEY = "notify:slack:digest";

/** SlackDigestOptions: what the digest reads and where it posts. */
export interface SlackDigestOptions {
  pool: PoolHandle;
  feed: EventFeed;
  store: KvStore;
  clock: Clock;
  logger: Logger;
  target: WebhookTarget;
  slack: SlackConfig;
  backoff: Backoff;
  /** A subscription's email in the config in force ("" when none). */
  email(id: string): string;
}

/**
 * SlackDigest posts one summary a day at slack.digest.hour:00 UTC, driven
 * by the injected clock (the scheduler asks nextDueAt and calls runDue).
 * The date of the last one sent is kept in the store, so a restart or a
 * takeover by another instance neither repeats nor skips a day; a pool
 * down at the hour sends it when it is back. The first digest is at the
 * first hour after it was enabled. A failed round of attempts is tried
 * again after retryPauseSeconds.
 */
export class SlackDigest {
  private readonly options: SlackDigestOptions;
  private readonly closing = new AbortController();
  /** The date of the last digest sent; read from the store at the first run. */
  private sentDay: string | undefined;
  private loaded = false;
  private retryAt: number | undefined;
  private inFlight: Promise<void> | undefined;

  constructor(options: SlackDigestOptions) {
    this.options = options;
  }

  /** nextDueAt is when runDue has something to do: now-ish when today's digest is due, else the next one's time. */
  nextDueAt(): number {
    const due = lastDue(this.options.clock.now(), this.options.slack.digest.hour);
    if (!this.loaded) return due;
    if (this.sentDay !== undefined && this.sentDay >= dateOf(due)) return due + DAY_MS;
    return this.retryAt ?? due;
  }

  /** runDue sends today's digest if it is due and was not sent. */
  runDue(): Promise<void> {
    this.inFlight ??= this.send().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  /** close aborts a digest being posted. */
  async close(): Promise<void> {
    this.closing.abort();
    await this.inFlight;
  }

  private async send(): Promise<void> {
    const { clock, store, logger, target, slack } = this.options;
    const now = clock.now();
    const day = dateOf(lastDue(now, slack.digest.hour));
    if (!this.loaded) {
      this.sentDay = await store.get(SLACK_DIGEST_KEY);
      if (this.sentDay === undefined) {
        // A digest just enabled starts with the next hour: yesterday's was never promised.
        this.sentDay = day;
        await store.set(SLACK_DIGEST_KEY, day);
      }
      this.loaded = true;
    }
    if ((this.sentDay !== undefined && this.sentDay >= day) || (this.retryAt !== undefined && now < this.retryAt))
      return;
    const body = slackBody(digestText(await this.input(now)), `Auth Pool · daily digest for ${day}`);
    const policy = { maxAttempts: slack.maxAttempts, backoff: this.options.backoff };
    const outcome = await deliveryRound(target, { id: `digest-${day}`, body }, policy, this.closing.signal, () => {});
    switch (outcome.kind) {
      case "aborted":
        return;
      case "failing":
        this.retryAt = now + slack.retryPauseSeconds * 1000;
        logger.warn("slack digest failing, will retry", {
          url: target.display,
          day,
          error: target.redact(outcome.error),
        });
        return;
      case "refused":
        // The same message would be refused again: the day is over for it.
        logger.error("slack refused the digest", { url: target.display, day, error: target.redact(outcome.error) });
        break;
      case "delivered":
        logger.info("slack digest sent", { day });
    }
    this.retryAt = undefined;
    await store.set(SLACK_DIGEST_KEY, day);
    this.sentDay = day;
  }

  /** input gathers the last 24 hours: views for weekly use and status, the ledger for cost, the journal for limits and failovers. */
  private async input(now: number): Promise<DigestInput> {
    const { pool, feed, email } = this.options;
    const status = await pool.submit({ kind: "status", includeSessions: false });
    const from = now - DAY_MS;
    const rows = usageBy(pool.currentPool.state, "subscription", from, floorHour(now) + HOUR_MS);
    const dayUsd = new Map(rows.map((r) => [r.key, r.costUsd]));
    const limits = new Map<string, LimitWindow[]>();
    const fallbacks = new Map<string, number>();
    for await (const e of eventsSince(pool, feed, from)) {
      if (e.type === "limit_reached") limits.set(e.subscriptionId, [...(limits.get(e.subscriptionId) ?? []), e.window]);
      if (e.type === "fallback_used") {
        const client = e.client ?? DEFAULT_CLIENT;
        fallbacks.set(client, (fallbacks.get(client) ?? 0) + 1);
      }
    }
    return {
      now,
      fallbacks,
      accounts: status.views.map((v) => ({
        id: v.cfg.id,
        email: email(v.cfg.id),
        status: v.status,
        weeklyUsed: v.weekly.value,
        ...(v.weekly.observation?.resetsAt !== undefined ? { weeklyReset: v.weekly.observation.resetsAt } : {}),
        weeklyUsd: v.weeklyUsedUsd,
        dayUsd: dayUsd.get(v.cfg.id) ?? 0,
        limits: limits.get(v.cfg.id) ?? [],
      })),
    };
  }
}

/** lastDue is the latest hour:00 UTC at or before now. */
function lastDue(now: number, hour: number): number {
  const d = new Date(now);
  const today = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate(), hour);
  return now >= today ? today : today - DAY_MS;
}

function dateOf(t: number): string {
  return new Date(t).toISOString().slice(0, 10);
}
