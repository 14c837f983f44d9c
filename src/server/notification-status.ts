import { timestampFromMs } from "@bufbuild/protobuf/wkt";

/** NotificationSnapshot is the webhook dispatcher's state as status shows it (never the secret). */
export interface NotificationSnapshot {
  deliveredSequence: number;
  pending: number;
  lastError?: string;
  lastErrorAt?: number;
  lastDeliveredAt?: number;
}

/** notificationsToProto renders a snapshot; undefined (no webhook) stays unset. */
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
