import type { PoolState } from "../../src/domain/index.js";

/**
 * encodeFormat1 is the snapshot encoder state-codec.ts had before format 2
 * (JSON, maps as entry arrays), kept here only so the benchmark can measure
 * what format 2 replaced; decodeLegacyState still reads its output.
 */
export function encodeFormat1(state: PoolState): string {
  return JSON.stringify({
    v: 1,
    eventSeq: state.eventSeq,
    subscriptions: [...state.subscriptions.values()],
    sessions: [...state.sessions.values()],
    dedupe: [...state.dedupe],
    ended: [...state.ended],
    claudeSessions: [...state.claudeSessions],
    transcriptRows: [...state.transcriptRows],
  });
}
