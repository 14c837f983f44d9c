import type { PoolEvent } from "./events.js";
import type { PoolSettings } from "./settings.js";
import { type PoolState, type SessionState, sessionsOf } from "./state.js";
import { MINUTE_MS } from "./time.js";

/** ActivityCounts: how many of a subscription's sessions are active and idle, and the latest active one's activity. */
export interface ActivityCounts {
  active: number;
  idle: number;
  /** -Infinity when none is active. */
  lastActiveAt: number;
}

interface Counts extends ActivityCounts {
  /** Counted at this instant; they hold until `until`, when some session turns idle or stale. */
  at: number;
  until: number;
}

interface Holder {
  sessions: SessionState[];
  /** Each session's lastActivityAt as last counted, so a change can be taken out of the counts. */
  seen: number[];
  index: Map<string, number>;
  counts?: Counts;
}

/**
 * SessionLists keeps, per subscription, the session objects it holds and
 * how many are active and idle, following the events that change them. A
 * view needs those counts on every derivation; walking 100 sessions (ids in
 * a set, each looked up among 100,000) costs more than the rest of the view.
 * Here an event updates the counts in O(1) and a full count runs only when
 * time has turned some session idle or stale. The state's `bySubscription`
 * stays the index of record: a list whose size disagrees with it is rebuilt.
 */
export class SessionLists {
  private readonly holders = new Map<string, Holder>();

  /** activity returns the counts at now. */
  activity(state: PoolState, subscriptionId: string, now: number, settings: PoolSettings): ActivityCounts {
    const h = this.holder(state, subscriptionId);
    const c = h.counts;
    if (c !== undefined && now >= c.at && now < c.until) return c;
    const { activeMs, staleMs } = thresholds(settings);
    const counts: Counts = { at: now, until: Infinity, active: 0, idle: 0, lastActiveAt: -Infinity };
    h.sessions.forEach((s, i) => {
      const at = s.lastActivityAt;
      h.seen[i] = at;
      const quiet = now - at;
      if (quiet < activeMs) {
        counts.active++;
        if (at > counts.lastActiveAt) counts.lastActiveAt = at;
        counts.until = Math.min(counts.until, at + activeMs);
      } else if (quiet < staleMs) {
        counts.idle++;
        counts.until = Math.min(counts.until, at + staleMs);
      }
    });
    h.counts = counts;
    return counts;
  }

  /** follow updates the lists and counts for an event just applied to state. */
  follow(state: PoolState, event: PoolEvent, settings: PoolSettings): void {
    switch (event.type) {
      case "session_allocated":
        this.add(state, event.subscriptionId, event.sessionId, event.at, settings);
        return;
      case "session_released":
        this.remove(event.subscriptionId, event.sessionId, event.at, settings);
        return;
      case "session_rotated":
        if (!state.sessions.has(event.sessionId)) return;
        this.remove(event.from, event.sessionId, event.at, settings);
        this.add(state, event.to, event.sessionId, event.at, settings);
        return;
      case "session_resumed":
        this.touch(state, event.subscriptionId, event.sessionId, event.at, settings);
        return;
      case "usage_recorded":
        if (event.sessionOpen) this.touch(state, event.subscriptionId, event.sessionId, event.at, settings);
        return;
      default:
        return;
    }
  }

  private holder(state: PoolState, subscriptionId: string): Holder {
    const ids = sessionsOf(state, subscriptionId);
    let h = this.holders.get(subscriptionId);
    if (h === undefined || h.sessions.length !== ids.size) {
      h = { sessions: [], seen: [], index: new Map() };
      for (const id of ids) {
        const s = state.sessions.get(id);
        if (s === undefined) continue;
        h.index.set(id, h.sessions.length);
        h.sessions.push(s);
        h.seen.push(s.lastActivityAt);
      }
      this.holders.set(subscriptionId, h);
    }
    return h;
  }

  private add(state: PoolState, subscriptionId: string, sessionId: string, at: number, settings: PoolSettings): void {
    const h = this.holders.get(subscriptionId);
    const s = state.sessions.get(sessionId);
    if (h === undefined || s === undefined || h.index.has(sessionId)) return;
    h.index.set(sessionId, h.sessions.length);
    h.sessions.push(s);
    h.seen.push(s.lastActivityAt);
    this.count(h, undefined, s.lastActivityAt, at, settings);
  }

  private remove(subscriptionId: string, sessionId: string, at: number, settings: PoolSettings): void {
    const h = this.holders.get(subscriptionId);
    const i = h?.index.get(sessionId);
    if (h === undefined || i === undefined) return;
    this.count(h, h.seen[i], undefined, at, settings);
    // Swap with the last: the order means nothing.
    const last = h.sessions.length - 1;
    if (i !== last) {
      h.sessions[i] = h.sessions[last]!;
      h.seen[i] = h.seen[last]!;
      h.index.set(h.sessions[i]!.id, i);
    }
    h.sessions.pop();
    h.seen.pop();
    h.index.delete(sessionId);
  }

  private touch(state: PoolState, subscriptionId: string, sessionId: string, at: number, settings: PoolSettings): void {
    const h = this.holders.get(subscriptionId);
    const i = h?.index.get(sessionId);
    const s = state.sessions.get(sessionId);
    if (h === undefined || i === undefined || s === undefined) return;
    this.count(h, h.seen[i], s.lastActivityAt, at, settings);
    h.seen[i] = s.lastActivityAt;
  }

  /**
   * count moves one session in the counts from the activity it was counted
   * with (before; undefined: it was not there) to its new one (after;
   * undefined: it left), as seen at `at`. Counts that no longer hold at
   * `at` are dropped: the next read counts afresh.
   */
  private count(
    h: Holder,
    before: number | undefined,
    after: number | undefined,
    at: number,
    settings: PoolSettings,
  ): void {
    const c = h.counts;
    if (c === undefined) return;
    if (at < c.at || at >= c.until) {
      delete h.counts;
      return;
    }
    const { activeMs, staleMs } = thresholds(settings);
    const take = (last: number, sign: 1 | -1): void => {
      const quiet = at - last;
      if (quiet < activeMs) {
        c.active += sign;
        if (sign === 1) {
          c.lastActiveAt = Math.max(c.lastActiveAt, last);
          c.until = Math.min(c.until, last + activeMs);
        }
      } else if (quiet < staleMs) {
        c.idle += sign;
        if (sign === 1) c.until = Math.min(c.until, last + staleMs);
      }
    };
    if (before !== undefined) take(before, -1);
    if (after !== undefined) take(after, 1);
    // The latest active session may be the one that left or went quiet: count afresh then.
    if (before !== undefined && before === c.lastActiveAt && (after === undefined || after < before)) delete h.counts;
  }
}

function thresholds(settings: PoolSettings): { activeMs: number; staleMs: number } {
  return { activeMs: settings.sessions.activeMinutes * MINUTE_MS, staleMs: settings.sessions.staleMinutes * MINUTE_MS };
}
