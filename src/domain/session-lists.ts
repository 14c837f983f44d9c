import type { PoolEvent } from "./events.js";
import { type PoolState, type SessionState, sessionsOf } from "./state.js";

/**
 * SessionLists keeps each subscription's sessions as an array of the
 * session objects, following the events that change who holds what. A view
 * counts active and idle sessions on every derivation; reading 100 ids from
 * a set and looking each up in a map of 100,000 sessions costs several times
 * more than walking the objects themselves (cache misses on every key).
 * The state's `bySubscription` stays the index of record: a list whose length
 * disagrees with it is rebuilt from it.
 */
export class SessionLists {
  private readonly lists = new Map<string, SessionState[]>();

  /** of returns the sessions a subscription holds. */
  of(state: PoolState, subscriptionId: string): readonly SessionState[] {
    const ids = sessionsOf(state, subscriptionId);
    let list = this.lists.get(subscriptionId);
    if (list === undefined || list.length !== ids.size) {
      list = [];
      for (const id of ids) {
        const s = state.sessions.get(id);
        if (s !== undefined) list.push(s);
      }
      this.lists.set(subscriptionId, list);
    }
    return list;
  }

  /** follow updates the lists for an event just applied to state. */
  follow(state: PoolState, event: PoolEvent): void {
    switch (event.type) {
      case "session_allocated": {
        const s = state.sessions.get(event.sessionId);
        if (s !== undefined) this.lists.get(event.subscriptionId)?.push(s);
        return;
      }
      case "session_released":
        this.remove(event.subscriptionId, event.sessionId);
        return;
      case "session_rotated": {
        this.remove(event.from, event.sessionId);
        const s = state.sessions.get(event.sessionId);
        if (s !== undefined) this.lists.get(event.to)?.push(s);
        return;
      }
      default:
        return;
    }
  }

  private remove(subscriptionId: string, sessionId: string): void {
    const list = this.lists.get(subscriptionId);
    if (list === undefined) return;
    const i = list.findIndex((s) => s.id === sessionId);
    if (i >= 0) list.splice(i, 1);
  }
}
