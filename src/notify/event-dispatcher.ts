import type { Backoff, PoolEvent } from "../domain/index.js";
import type { EventFeed } from "../runtime/event-feed.js";
import type { Logger } from "../runtime/logger.js";
import type { ChannelSnapshot, DeliveryChannelName } from "../server/notification-status.js";
import type { KvStore } from "../store/index.js";
import { type DeliveryCounts, createDeliveryCounts } from "./delivery-counts.js";
import { deliveryRound } from "./delivery-round.js";
import { linkedAbort, sleep } from "./retry.js";
import type { WebhookDelivery, WebhookTarget } from "./webhook-request.js";

/**
 * DeliveryChannel is one outbound endpoint an EventDispatcher serves (the
 * webhook, Slack): where to post and what to post for each event.
 */
export interface DeliveryChannel {
  /** Names the channel in logs, errors, status and metrics. */
  readonly name: DeliveryChannelName;
  /** Store key of the last event sequence the channel is done with. */
  readonly cursorKey: string;
  readonly target: WebhookTarget;
  /** render is what to post for an event; undefined when nothing is (no rule routes it, or it is held back). */
  render(e: PoolEvent): WebhookDelivery | undefined;
  /** State kept beside the cursor, saved whenever the cursor is. */
  readonly memory?: ChannelMemory;
}

/**
 * ChannelMemory is a channel's own state that must agree with the cursor
 * (the Slack alert gate): it is told of every event the cursor moves past
 * and saved just before the cursor, so after a restart it holds exactly
 * the events before the cursor (or, after a crash between the two writes,
 * a few more, which only holds back a repeat that was in fact sent).
 */
export interface ChannelMemory {
  readonly key: string;
  restore(saved: string | undefined): void;
  /** passed: the cursor moved past e; `sent` when a request was answered for it. */
  passed(e: PoolEvent, sent: boolean): void;
  save(): string;
}

/** EventDispatcherOptions: what a dispatcher needs. */
export interface EventDispatcherOptions {
  feed: EventFeed;
  store: KvStore;
  channel: DeliveryChannel;
  logger: Logger;
  /** Attempts in a row before the pause. */
  maxAttempts: number;
  /** The pause after maxAttempts failed attempts, in ms. */
  retryPauseMs: number;
  /** Backoff between attempts in ms (default 500 .. 60000). */
  backoff?: { baseMs: number; maxMs: number };
  /** Where outcomes are tallied for metrics (default: a tally of this dispatcher's own). */
  counts?: DeliveryCounts;
}

// Advancing over events no rule routes needs no write per event: losing such
// progress in a crash only means scanning them again, never a lost delivery.
const SKIP_PERSIST_EVERY_MS = 1_000;

/** DEFAULT_DELIVERY_BACKOFF: half a second doubling up to a minute. */
export const DEFAULT_DELIVERY_BACKOFF: Backoff = Object.freeze({ baseMs: 500, maxMs: 60_000 });

/**
 * EventDispatcher delivers events to one channel, one at a time in sequence
 * order, from one background loop. Its cursor (the last sequence it is done
 * with) lives in the store and only moves past an event once that event was
 * delivered or refused for good, so delivery is at-least-once across
 * restarts. It reads the event feed and never the writer, so a slow or dead
 * receiver cannot slow the pool.
 */
export class EventDispatcher {
  private readonly feed: EventFeed;
  private readonly store: KvStore;
  private readonly channel: DeliveryChannel;
  private readonly logger: Logger;
  private readonly backoff: Backoff;
  private readonly maxAttempts: number;
  private readonly retryPauseMs: number;
  private readonly closing = new AbortController();
  /** Undefined until read from the store (a store failure at start is retried by the loop). */
  private cursor: number | undefined;
  private persisted: number | undefined;
  private persistedAt = 0;
  private savedMemory: string | undefined;
  private lastError: string | undefined;
  private readonly counts: DeliveryCounts;
  private lastErrorAt: number | undefined;
  private lastDeliveredAt: number | undefined;
  private loop: Promise<void> = Promise.resolve();
  private closed: Promise<void> | undefined;

  private constructor(options: EventDispatcherOptions) {
    this.feed = options.feed;
    this.store = options.store;
    this.channel = options.channel;
    this.logger = options.logger;
    this.backoff = options.backoff ?? DEFAULT_DELIVERY_BACKOFF;
    this.maxAttempts = Math.max(1, options.maxAttempts);
    this.retryPauseMs = options.retryPauseMs;
    this.counts = options.counts ?? createDeliveryCounts();
  }

  /**
   * start loads the cursor and starts delivering. A channel with no cursor
   * yet starts at the current head: a new endpoint is not flooded with
   * history.
   */
  static async start(options: EventDispatcherOptions): Promise<EventDispatcher> {
    const d = new EventDispatcher(options);
    try {
      await d.loadCursor();
    } catch (error) {
      d.fail(`${d.name} cursor unavailable`, `cannot read the ${d.name} cursor: ${String(error)}`);
    }
    d.logger.info(`${d.name} dispatcher started`, {
      url: d.target.display,
      signed: d.target.secret !== undefined,
      ...(d.cursor !== undefined ? { cursor: d.cursor } : {}),
    });
    d.loop = d.run();
    return d;
  }

  /** status is the dispatcher's progress and last failure, for GetPoolStatus; it never holds a secret. */
  status(): ChannelSnapshot {
    const head = this.feed.headSeq;
    return {
      channel: this.name,
      deliveredSequence: this.cursor ?? 0,
      pending: this.cursor === undefined ? 0 : Math.max(0, head - this.cursor),
      ...(this.lastError !== undefined ? { lastError: this.lastError } : {}),
      ...(this.lastErrorAt !== undefined ? { lastErrorAt: this.lastErrorAt } : {}),
      ...(this.lastDeliveredAt !== undefined ? { lastDeliveredAt: this.lastDeliveredAt } : {}),
    };
  }

  /** close aborts any request in flight, stops the loop and saves the cursor. */
  close(): Promise<void> {
    this.closed ??= (async () => {
      this.closing.abort();
      await this.loop;
    })();
    return this.closed;
  }

  private get name(): DeliveryChannelName {
    return this.channel.name;
  }

  private get target(): WebhookTarget {
    return this.channel.target;
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
        this.fail(`${this.name} dispatcher`, `${this.name} dispatcher: ${String(error)}`);
        await sleep(this.backoff.maxMs, signal);
      }
    }
    try {
      await this.persistCursor(true);
    } catch (error) {
      this.logger.warn(`${this.name} cursor not saved`, { error: this.target.redact(String(error)) });
    }
  }

  private async loadCursor(): Promise<void> {
    const memory = this.channel.memory;
    if (memory !== undefined) {
      this.savedMemory = await this.store.get(memory.key);
      memory.restore(this.savedMemory);
    }
    const stored = await this.store.get(this.channel.cursorKey);
    const head = this.feed.headSeq;
    const value = stored === undefined ? undefined : Number(stored);
    if (value !== undefined && Number.isSafeInteger(value) && value >= 0 && value <= head) {
      this.cursor = value;
      this.persisted = value;
      return;
    }
    if (stored !== undefined) {
      // Ahead of the journal (or garbage): the store was replaced under us.
      this.logger.warn(`${this.name} cursor reset to the head`, { stored: stored.slice(0, 40), head });
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
        const sent = await this.handle(e, signal);
        if (signal.aborted) return;
        this.cursor = e.seq;
        this.channel.memory?.passed(e, sent);
        await this.persistCursor(sent);
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
   * handle delivers one event if the channel has something to post for it;
   * true when a request was answered for it (so the cursor should be saved
   * now). Transient failures are retried until delivery or close, a round
   * of maxAttempts, then the pause: an event is never skipped for them.
   */
  private async handle(e: PoolEvent, signal: AbortSignal): Promise<boolean> {
    const delivery = this.channel.render(e);
    if (delivery === undefined) return false;
    const policy = { maxAttempts: this.maxAttempts, backoff: this.backoff };
    for (;;) {
      const outcome = await deliveryRound(this.target, delivery, policy, signal, (error) => this.recordError(error));
      switch (outcome.kind) {
        case "aborted":
          return false;
        case "delivered":
          this.counts.delivered += 1;
          this.lastDeliveredAt = Date.now();
          return true;
        case "refused":
          this.counts.refused += 1;
          this.fail(`${this.name} refused event`, outcome.error, { sequence: e.seq, status: outcome.status });
          return true;
        case "failing":
          this.logger.warn(`${this.name} delivery failing, will retry`, {
            url: this.target.display,
            sequence: e.seq,
            attempts: this.maxAttempts,
            retryInMs: this.retryPauseMs,
            error: this.lastError,
          });
          await sleep(this.retryPauseMs, signal);
          if (signal.aborted) return false;
      }
    }
  }

  /** persistCursor saves the cursor (after the channel's memory): always when forced, else at most once a second. */
  private async persistCursor(force: boolean): Promise<void> {
    const cursor = this.cursor;
    if (cursor === undefined || cursor === this.persisted) return;
    if (!force && Date.now() - this.persistedAt < SKIP_PERSIST_EVERY_MS) return;
    const memory = this.channel.memory;
    if (memory !== undefined) {
      const text = memory.save();
      if (text !== this.savedMemory) {
        await this.store.set(memory.key, text);
        this.savedMemory = text;
      }
    }
    await this.store.set(this.channel.cursorKey, String(cursor));
    this.persisted = cursor;
    this.persistedAt = Date.now();
  }

  private reportGap(from: number, to: number): void {
    this.fail(
      `${this.name} events pruned before delivery`,
      `events ${from}..${to} were pruned before they could be delivered`,
    );
  }

  private recordError(error: string): void {
    this.counts.failures += 1;
    this.lastError = this.target.redact(error);
    this.lastErrorAt = Date.now();
  }

  private fail(message: string, error: string, fields: Record<string, unknown> = {}): void {
    this.recordError(error);
    this.logger.error(message, { url: this.target.display, ...fields, error: this.lastError });
  }
}
