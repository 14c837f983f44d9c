import { DEFAULT_CLIENT, type PoolEvent, WEEK_MS } from "../domain/index.js";

/**
 * AlertGate keeps a burst of one alert to one message: at most one alert
 * per (subscription, window, kind) until that window resets, and for alerts
 * with no reset to wait for, until their condition clears or the cool-off
 * passes. It decides by event times, never the wall clock, so replaying the
 * same events decides the same way, and it is small enough to be saved
 * beside the Slack cursor (see ChannelMemory): a restart does not forget
 * what it already said.
 */
export class AlertGate {
  private readonly coolOffMs: number;
  /** Alert key -> the event time until which a repeat is held back. */
  private readonly holds = new Map<string, number>();

  constructor(coolOffMs: number) {
    this.coolOffMs = coolOffMs;
  }

  /** admits says whether an event may be sent: it is no alert, or no earlier one of its kind still holds. */
  admits(e: PoolEvent): boolean {
    const alert = alertOf(e, this.coolOffMs);
    return alert === undefined || !((this.holds.get(alert.key) ?? Number.NEGATIVE_INFINITY) > e.at);
  }

  /** passed records an event the cursor moved past: what it clears, and, when sent, the hold it starts. */
  passed(e: PoolEvent, sent: boolean): void {
    const cleared = clearedBy(e);
    for (const [key, until] of this.holds) {
      if (until <= e.at || cleared.some((prefix) => key.startsWith(prefix))) this.holds.delete(key);
    }
    const alert = sent ? alertOf(e, this.coolOffMs) : undefined;
    if (alert !== undefined) this.holds.set(alert.key, alert.until);
  }

  /** save renders the holds for the store. */
  save(): string {
    return JSON.stringify([...this.holds].sort(([a], [b]) => a.localeCompare(b)));
  }

  /** restore replaces the holds with saved ones; unreadable text leaves none (a repeat or two, never a lost alert). */
  restore(saved: string | undefined): void {
    this.holds.clear();
    if (saved === undefined) return;
    try {
      const entries: unknown = JSON.parse(saved);
      if (!Array.isArray(entries)) return;
      for (const entry of entries) {
        if (Array.isArray(entry) && typeof entry[0] === "string" && typeof entry[1] === "number") {
          this.holds.set(entry[0], entry[1]);
        }
      }
    } catch {
      // Garbage in the store: start afresh.
    }
  }
}

/** Alert is which alert an event is and until when a repeat of it is held back. */
interface Alert {
  key: string;
  until: number;
}

/** alertOf names the alert an event raises; undefined for events that are no alert. */
function alertOf(e: PoolEvent, coolOffMs: number): Alert | undefined {
  const coolOff = e.at + coolOffMs;
  switch (e.type) {
    case "limit_reached":
      return {
        key: `${limitPrefix(e.subscriptionId, e.modelScope, e.kind)}${e.window}`,
        until: e.resetsAt !== undefined && e.resetsAt > e.at ? e.resetsAt : coolOff,
      };
    case "usage_threshold":
      // Re-armed when use drops back below (usage_threshold_cleared); a week at most, when the window has reset anyway.
      return { key: thresholdKey(e.subscriptionId, e.threshold), until: e.at + WEEK_MS };
    case "status_changed":
      return { key: `status:${e.subscriptionId}:${e.to}`, until: coolOff };
    case "fallback_used":
      return { key: `failover:${e.client ?? DEFAULT_CLIENT}:${e.clientLimit?.kind ?? "pool"}`, until: coolOff };
    case "client_limited":
      return { key: `client_limited:${e.clientLimit.client}:${e.clientLimit.kind}`, until: coolOff };
    case "session_rotated":
      return { key: `rotation:${e.from}:${e.reason}`, until: coolOff };
    case "rebalance_completed":
      return { key: `rebalance:${e.trigger}`, until: coolOff };
    case "session_allocated":
    case "session_released":
      return { key: `${e.type}:${e.subscriptionId}`, until: coolOff };
    default:
      return undefined;
  }
}

/** clearedBy lists the key prefixes of alerts whose condition an event ends before their hold runs out. */
function clearedBy(e: PoolEvent): string[] {
  switch (e.type) {
    // A cooldown over (at its reset, cleared by an operator or healed by a reading): the next limit is news.
    case "cooldown_ended":
      return [limitPrefix(e.subscriptionId, e.modelScope, "upstream")];
    case "cooldown_cleared":
      return e.target === "cooldown" ? [limitPrefix(e.subscriptionId, e.modelScope, "upstream")] : [];
    case "usage_threshold_cleared":
      return [thresholdKey(e.subscriptionId, e.threshold)];
    default:
      return [];
  }
}

function limitPrefix(subscriptionId: string, scope: string | undefined, kind: string): string {
  return `limit:${subscriptionId}:${scope ?? "all"}:${kind}:`;
}

function thresholdKey(subscriptionId: string, threshold: number): string {
  return `threshold:${subscriptionId}:${threshold}`;
}
