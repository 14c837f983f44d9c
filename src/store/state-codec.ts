import type { CountedRow, PoolState, SessionState, SubscriptionState } from "../domain/index.js";
import { createPoolState, ensureSubscriptions } from "../domain/index.js";

/**
 * The snapshot's encoding of PoolState: plain JSON with maps as entry
 * arrays. Derived indexes are not written; decodeState rebuilds them.
 * JSON rather than protobuf: the state is the domain's own shape, not the
 * wire contract, and it has no int64 or bytes fields.
 */
interface EncodedState {
  v: 1;
  eventSeq: number;
  subscriptions: SubscriptionState[];
  sessions: SessionState[];
  dedupe: [string, number][];
  ended: [string, { subscriptionId: string; endedAt: number }][];
  /** Absent in snapshots written before transcripts were read. */
  claudeSessions?: [string, number][];
  transcriptRows?: [string, CountedRow][];
}

/** encodeState serialises the state for a snapshot. */
export function encodeState(state: PoolState): string {
  const encoded: EncodedState = {
    v: 1,
    eventSeq: state.eventSeq,
    subscriptions: [...state.subscriptions.values()],
    sessions: [...state.sessions.values()],
    dedupe: [...state.dedupe],
    ended: [...state.ended],
    claudeSessions: [...state.claudeSessions],
    transcriptRows: [...state.transcriptRows],
  };
  return JSON.stringify(encoded);
}

/** decodeState reads a snapshot back and rebuilds the derived indexes. */
export function decodeState(text: string, subscriptionIds: readonly string[]): PoolState {
  const encoded = JSON.parse(text) as EncodedState;
  if (encoded.v !== 1) throw new Error(`snapshot version ${String(encoded.v)} is not supported`);
  const state = createPoolState([]);
  state.eventSeq = encoded.eventSeq;
  for (const sub of encoded.subscriptions) state.subscriptions.set(sub.id, sub);
  for (const session of encoded.sessions) state.sessions.set(session.id, session);
  for (const [k, t] of encoded.dedupe) state.dedupe.set(k, t);
  for (const [k, e] of encoded.ended) state.ended.set(k, e);
  for (const [k, t] of encoded.claudeSessions ?? []) state.claudeSessions.set(k, t);
  for (const [k, r] of encoded.transcriptRows ?? []) {
    state.transcriptRows.set(k, r);
    if (r.sessionId !== undefined && r.pool !== true) {
      let keys = state.externalBySession.get(r.sessionId);
      if (keys === undefined) state.externalBySession.set(r.sessionId, (keys = new Set()));
      keys.add(k);
    }
  }
  rebuildIndexes(state, subscriptionIds);
  return state;
}

/** rebuildIndexes recomputes sessions-by-subscription from the sessions. */
export function rebuildIndexes(state: PoolState, subscriptionIds: readonly string[]): void {
  state.bySubscription.clear();
  const ids = new Set([...subscriptionIds, ...state.subscriptions.keys()]);
  for (const s of state.sessions.values()) ids.add(s.subscriptionId);
  ensureSubscriptions(state, [...ids]);
  for (const s of state.sessions.values()) state.bySubscription.get(s.subscriptionId)!.add(s.id);
}
