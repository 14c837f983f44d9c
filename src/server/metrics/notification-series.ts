import { Counter, Gauge, type Registry } from "prom-client";
import type { DeliveryCounts } from "../../notify/index.js";
import type { ChannelSnapshot, DeliveryChannelName } from "../notification-status.js";
import { PREFIX, finite } from "./exposition.js";

/** NotificationFigures are what the notification series read at scrape time. */
export interface NotificationFigures {
  /** The running channels' progress. */
  status(): readonly ChannelSnapshot[];
  /** Each channel's tally since start, a channel a reload stopped included. */
  counts(): ReadonlyMap<DeliveryChannelName, Readonly<DeliveryCounts>>;
}

const OUTCOMES = ["delivered", "refused"] as const;

/**
 * registerNotificationSeries registers the event delivery series of every
 * channel (webhook, Slack), labelled by channel. They are there whatever the
 * config at start, since a reload may add a channel; a channel has samples
 * from its first start (its counters at 0, so rate() works from its first
 * delivery). The webhook's older unlabelled series are hook gauges.
 */
export function registerNotificationSeries(registers: Registry[], figures: NotificationFigures): void {
  const pending: Gauge<"channel"> = new Gauge({
    name: `${PREFIX}notification_pending_events`,
    help: "Events after the channel's delivered cursor (webhook, slack; running channels only).",
    labelNames: ["channel"] as const,
    registers,
    collect() {
      pending.reset();
      for (const s of figures.status()) pending.set({ channel: s.channel }, finite(s.pending));
    },
  });
  // The tallies are kept by the notifications; these mirror them rather than keep a second count.
  const deliveries: Counter<"channel" | "outcome"> = new Counter({
    name: `${PREFIX}notification_deliveries_total`,
    help: "Events delivered by channel and outcome: delivered (the receiver took it) or refused (a non-retryable answer: skipped).",
    labelNames: ["channel", "outcome"] as const,
    registers,
    collect() {
      deliveries.reset();
      for (const [channel, counts] of figures.counts()) {
        for (const outcome of OUTCOMES) deliveries.inc({ channel, outcome }, finite(counts[outcome]));
      }
    },
  });
  const failures: Counter<"channel"> = new Counter({
    name: `${PREFIX}notification_failures_total`,
    help: "Delivery errors by channel: each failed attempt (retried), each refusal, events pruned before delivery, store trouble.",
    labelNames: ["channel"] as const,
    registers,
    collect() {
      failures.reset();
      for (const [channel, counts] of figures.counts()) failures.inc({ channel }, finite(counts.failures));
    },
  });
}
