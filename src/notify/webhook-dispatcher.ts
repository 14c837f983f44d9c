import type { NotificationRule, WebhookConfig } from "../config/index.js";
import { type Backoff, type PoolEvent, backoffDelay } from "../domain/index.js";
import type { EventFeed } from "../runtime/event-feed.js";
import type { Logger } from "../runtime/logger.js";
import { toPublicEvent } from "../server/event-to-proto.js";
import type { NotificationSnapshot } from "../server/notification-status.js";
import type { KvStore } from "../store/index.js";
import { linkedAbort, sleep } from "./retry.js";
import { routed } from "./rules.js";
import { type WebhookTarget, postWebhook, webhookBody, webhookTarget } from "./webhook-request.js";

/** WebhookDispatcherOptions: what the dispatcher needs. */
export interface WebhookDispatcherOptions {
  feed: EventFeed;
  store: KvStore;
  webhook: WebhookConfig;
  rules: readonly NotificationRule[];
  logger: Logger;
  /** Retry backoff bounds in ms (default 500 .. 60000). */
  backoff?: { baseMs: number; maxMs: number };
}

/** WEBHOOK_CURSOR_KEY is the store key of the last event sequence the webhook is done with. */
export const WEBHOOK_CURSOR_KEY = "notify:webhook:cursor";

// Advancing over events no rule routes needs no write per event: losing such
// progress in a crash only means scanning them again, never a lost delivery.
const SKIP_PERSIST_EVERY_MS = 1_000;

/** DEFAULT_WEBHOOK_BACKOFF: half a second doubling up to a minute. */
const DEFAULT_WEBHOOK_BACKOFF: Backoff = Object.freeze({ baseMs: 500, maxMs: 60_000 });

/**
 * WebhookDispatcher delivers routed events to the configured webhook, one at
 * a time in sequence order, from one background loop. Its cursor (the last
 * sequence it is done with) lives in the store and only moves past an event
 * once that event was delivered or refused for good, so delivery is
 * at-least-once across restarts. It reads the event feed and never the
 * writer, so a slow or dead receiver cannot slow the pool.
 */
export class WebhookDispatcher {
  private readonly feed: EventFeed;
  private readonly store: KvStore;
  private readonly rules: readonly NotificationRule[];
  private readonly logger: Logger;
  private readonly backoff: Backoff;
  private readonly maxAttempts: number;
  private readonly target: WebhookTarget;
  private readonly closing = new AbortController();
  /** Undefined until read from the store (a store failure at start is retried by the loop). */
  private cursor: number | undefined;
  private persisted: number | undefined;
  private persistedAt = 0;
  private lastError: string | undefined;
  /** Failed attempts since start, for metrics. */
  private failures = 0;
  private lastErrorAt: number | undefined;
  private lastDeliveredAt: number | undefined;
  private loop: Promise<void> = Promise.resolve();
  private closed: Promise<void> | undefined;

  private constructor(options: WebhookDispatcherOptions) {
    this.feed = options.feed;
    this.store = options.store;
    this.rules = options.rules;
    this.logger = options.logger;
    this.backoff = options.backoff ?? DEFAULT_WEBHOOK_BACKOFF;
    this.maxAttempts = Math.max(1, options.webhook.maxAttempts);
    this.target = webhookTarget(options.webhook);
  }

  /**
   * start loads the cursor and starts delivering. A webhook with no cursor
   * yet starts at the current head: a new endpoint is not flooded with
   * history.
   */
  static async start(options: WebhookDispatcherOptions): Promise<WebhookDispatcher> {
    const d = new WebhookDispatcher(options);
    try {
      await d.loadCursor();
    } catch (error) {
      d.fail("webhook cursor unavailable", `cannot read the webhook cursor: ${String(error)}`);
    }
    d.logger.info("webhook dispatcher started", {
      url: d.target.display,
      signed: d.target.secret !== undefined,
      ...(d.cursor !== undefined ? { cursor: d.cursor } : {}),
    });
    d.loop = d.run();
    return d;
  }

  /** status is the dispatcher's progress and last failure, for GetPoolStatus; it never holds the secret. */
  status(): NotificationSnapshot {
    const head = this.feed.headSeq;
    return {
      deliveredSequence: this.cursor ?? 0,
      pending: this.cursor === undefined ? 0 : Math.max(0, head - this.cursor),
      ...(this.lastError !== undefined ? { lastError: this.lastError } : {}),
      ...(this.lastErrorAt !== undefined ? { lastErrorAt: this.lastErrorAt } : {}),
      ...(this.lastDeliveredAt !== undefined ? { lastDeliveredAt: this.lastDeliveredAt } : {}),
    };
  }

  /** failedAttempts counts failed deliveries (each attempt) since start. */
  get failedAttempts(): number {
    return this.failures;
  }

  /** close aborts any request in flight, stops the loop and saves the cursor. */
  close(): Promise<void> {
    this.closed ??= (async () => {
      this.closing.abort();
      await this.loop;
    })();
    return this.closed;
  }

  private async run(): Promise<void> {
    const signal = this.closing.signal;
    while (!signal.aborted) {
      try {
        if (this.cursor === undefined) await this.loadCursor();
        await this.catchUp(signal);
        await this.waitForEvents(signal);
      } catch (error) {
        if (signal.aborted) break;
        // Store or journal trouble: the pool reports it elsewhere; wait and try again.
        this.fail("webhook dispatcher", `webhook dispatcher: ${String(error)}`);
        await sleep(this.backoff.maxMs, signal);
      }
    }
    try {
      await this.persistCursor(true);
    } catch (error) {
      this.logger.warn("webhook cursor not saved", { error: this.target.redact(String(error)) });
    }
  }

  private async loadCursor(): Promise<void> {
    const stored = await this.store.get(WEBHOOK_CURSOR_KEY);
    const head = this.feed.headSeq;
    const value = stored === undefined ? undefined : Number(stored);
    if (value !== undefined && Number.isSafeInteger(value) && value >= 0 && value <= head) {
      this.cursor = value;
      this.persisted = value;
      return;
    }
    if (stored !== undefined) {
      // Ahead of the journal (or garbage): the store was replaced under us.
      this.logger.warn("webhook cursor reset to the head", { stored: stored.slice(0, 40), head });
    }
    this.cursor = head;
    await this.persistCursor(true);
  }

  /** catchUp handles every event after the cursor up to the head, then returns. */
  private async catchUp(signal: AbortSignal): Promise<void> {
    while (this.cursor !== undefined && this.cursor < this.feed.headSeq && !signal.aborted) {
      const until = this.feed.headSeq;
      for await (const e of this.feed.history(this.cursor, until)) {
        if (e.seq > this.cursor + 1) this.reportGap(this.cursor + 1, e.seq - 1);
        const delivered = await this.handle(e, signal);
        if (signal.aborted) return;
        this.cursor = e.seq;
        await this.persistCursor(delivered);
      }
      if (signal.aborted) return;
      // Whatever history no longer holds up to `until` was pruned; moving on is all there is.
      if (this.cursor < until) this.reportGap(this.cursor + 1, until);
      this.cursor = Math.max(this.cursor, until);
      await this.persistCursor(false);
    }
  }

  /**
   * waitForEvents returns once there is an event past the cursor (or on
   * close). The live reader only buffers in the writer's listener; it is a
   * wake-up call here, the events themselves are read from history.
   */
  private async waitForEvents(signal: AbortSignal): Promise<void> {
    const reader = this.feed.follow(1);
    // The reader listens on the signal it is given; a per-wait one keeps those
    // listeners from piling up on the long-lived close signal.
    const wait = linkedAbort(signal);
    try {
      if (this.cursor === undefined || this.feed.headSeq > this.cursor) return;
      await reader.next(wait.signal);
    } finally {
      wait.release();
      reader.close();
    }
  }

  /**
   * handle delivers one event if a rule routes it; true when a request was
   * answered for it (so the cursor should be saved now). Transient failures
   * are retried until delivery or close: an event is never skipped for them.
   */
  private async handle(e: PoolEvent, signal: AbortSignal): Promise<boolean> {
    if (!routed(this.rules, e, "webhook")) return false;
    const pub = toPublicEvent(e);
    if (pub === undefined) return false;
    const delivery = { id: String(e.seq), body: webhookBody(pub) };
    for (;;) {
      for (let attempt = 1; attempt <= this.maxAttempts; attempt++) {
        const outcome = await postWebhook(this.target, delivery, signal);
        if (signal.aborted) return false;
        if (outcome.kind === "delivered") {
          this.lastDeliveredAt = Date.now();
          return true;
        }
        if (outcome.kind === "refused") {
          this.fail("webhook refused event", outcome.error, { sequence: e.seq, status: outcome.status });
          return true;
        }
        this.recordError(outcome.error);
        if (attempt < this.maxAttempts) {
          // The receiver's Retry-After, else full jitter: many pools retrying a
          // recovering receiver do not arrive in lockstep.
          const wait =
            outcome.retryAfterMs !== undefined
              ? Math.min(outcome.retryAfterMs, this.backoff.maxMs)
              : backoffDelay(attempt, this.backoff, "full");
          await sleep(wait, signal);
        }
      }
      this.logger.warn("webhook delivery failing, will retry", {
        url: this.target.display,
        sequence: e.seq,
        attempts: this.maxAttempts,
        retryInMs: this.backoff.maxMs,
        error: this.lastError,
      });
      await sleep(this.backoff.maxMs, signal);
      if (signal.aborted) return false;
    }
  }

  /** persistCursor saves the cursor: always when forced, else at most once a second. */
  private async persistCursor(force: boolean): Promise<void> {
    const cursor = this.cursor;
    if (cursor === undefined || cursor === this.persisted) return;
    if (!force && Date.now() - this.persistedAt < SKIP_PERSIST_EVERY_MS) return;
    await this.store.set(WEBHOOK_CURSOR_KEY, String(cursor));
    this.persisted = cursor;
    this.persistedAt = Date.now();
  }

  private reportGap(from: number, to: number): void {
    this.fail(
      "webhook events pruned before delivery",
      `events ${from}..${to} were pruned before they could be delivered`,
    );
  }

  private recordError(error: string): void {
    this.failures += 1;
    this.lastError = this.target.redact(error);
    this.lastErrorAt = Date.now();
  }

  private fail(message: string, error: string, fields: Record<string, unknown> = {}): void {
    this.recordError(error);
    this.logger.error(message, { url: this.target.display, ...fields, error: this.lastError });
  }
}
