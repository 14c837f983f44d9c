import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { NotificationChannel } from "../../gen/authpool/v1/auth_pool_pb.js";

/** NotificationSnapshot is a delivery dispatcher's state as status shows it (never a secret). */
export interface NotificationSnapshot {
  deliveredSequence: number;
  pending: number;
  lastError?: string;
  lastErrorAt?: number;
  lastDeliveredAt?: number;
}

/** DeliveryChannelName names a channel an EventDispatcher delivers to. */
export type DeliveryChannelName = "webhook" | "slack";

/** ChannelSnapshot is one named channel's snapshot. */
export interface ChannelSnapshot extends NotificationSnapshot {
  channel: DeliveryChannelName;
}

const CHANNELS: Record<DeliveryChannelName, NotificationChannel> = {
  webhook: NotificationChannel.WEBHOOK,
  slack: NotificationChannel.SLACK,
};

/**
 * notificationsToProto renders the running channels, each on its own and
 * summed up in the fields clients older than `channels` read; none (no
 * webhook or Slack) stays unset.
 */
export function notificationsToProto(channels: readonly ChannelSnapshot[] | undefined) {
  const summary = combineSnapshots(channels ?? []);
  if (summary === undefined || channels === undefined) return undefined;
  return {
    ...snapshotToProto(summary),
    channels: channels.map((c) => ({ channel: CHANNELS[c.channel], ...snapshotToProto(c) })),
  };
}

function snapshotToProto(s: NotificationSnapshot) {
  return {
    deliveredSequence: BigInt(s.deliveredSequence),
    pending: s.pending,
    lastError: s.lastError ?? "",
    lastErrorAt: s.lastErrorAt === undefined ? undefined : timestampFromMs(s.lastErrorAt),
    lastDeliveredAt: s.lastDeliveredAt === undefined ? undefined : timestampFromMs(s.lastDeliveredAt),
  };
}

/**
 * combineSnapshots folds the channels into the one summary old clients
 * show: delivered up to the slowest, pending as the most behind, the latest
 * error and delivery; undefined for none. With more than one channel the
 * error names its channel, or an old client could not tell which failed.
 */
function combineSnapshots(channels: readonly ChannelSnapshot[]): NotificationSnapshot | undefined {
  if (channels.length === 0) return undefined;
  const latest = (pick: (s: NotificationSnapshot) => number | undefined) =>
    channels.reduce<ChannelSnapshot | undefined>(
      (best, s) => ((pick(s) ?? -1) > ((best && pick(best)) ?? -1) ? s : best),
      undefined,
    );
  const failed = latest((s) => s.lastErrorAt);
  const delivered = latest((s) => s.lastDeliveredAt);
  const named = channels.length > 1 ? `${failed?.channel}: ` : "";
  return {
    deliveredSequence: Math.min(...channels.map((s) => s.deliveredSequence)),
    pending: Math.max(...channels.map((s) => s.pending)),
    ...(failed?.lastError !== undefined ? { lastError: `${named}${failed.lastError}` } : {}),
    ...(failed?.lastErrorAt !== undefined ? { lastErrorAt: failed.lastErrorAt } : {}),
    ...(delivered?.lastDeliveredAt !== undefined ? { lastDeliveredAt: delivered.lastDeliveredAt } : {}),
  };
}
