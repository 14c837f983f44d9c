import { timestampFromMs } from "@bufbuild/protobuf/wkt";

/** NotificationSnapshot is a delivery dispatcher's state as status shows it (never a secret). */
export interface NotificationSnapshot {
  deliveredSequence: number;
  pending: number;
  lastError?: string;
  lastErrorAt?: number;
  lastDeliveredAt?: number;
}

/** notificationsToProto renders a snapshot; undefined (no webhook or Slack) stays unset. */
export function notificationsToProto(s: NotificationSnapshot | undefined) {
  if (s === undefined) return undefined;
  return {
    deliveredSequence: BigInt(s.deliveredSequence),
    pending: s.pending,
    lastError: s.lastError ?? "",
    lastErrorAt: s.lastErrorAt === undefined ? undefined : timestampFromMs(s.lastErrorAt),
    lastDeliveredAt: s.lastDeliveredAt === undefined ? undefined : timestampFromMs(s.lastDeliveredAt),
  };
}

/**
 * combineSnapshots folds several dispatchers' snapshots into the one status
 * shows: delivered up to the slowest, pending as the most behind, the
 * latest error and delivery; undefined for none.
 */
export function combineSnapshots(snapshots: readonly NotificationSnapshot[]): NotificationSnapshot | undefined {
  if (snapshots.length <= 1) return snapshots[0];
  const latest = (pick: (s: NotificationSnapshot) => number | undefined) =>
    snapshots.reduce<NotificationSnapshot | undefined>(
      (best, s) => ((pick(s) ?? -1) > ((best && pick(best)) ?? -1) ? s : best),
      undefined,
    );
  const failed = latest((s) => s.lastErrorAt);
  const delivered = latest((s) => s.lastDeliveredAt);
  return {
    deliveredSequence: Math.min(...snapshots.map((s) => s.deliveredSequence)),
    pending: Math.max(...snapshots.map((s) => s.pending)),
    ...(failed?.lastError !== undefined ? { lastError: failed.lastError } : {}),
    ...(failed?.lastErrorAt !== undefined ? { lastErrorAt: failed.lastErrorAt } : {}),
    ...(delivered?.lastDeliveredAt !== undefined ? { lastDeliveredAt: delivered.lastDeliveredAt } : {}),
  };
}
