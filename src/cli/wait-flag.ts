import { durationFromMs } from "@bufbuild/protobuf/wkt";

/** WAIT_GRACE_MS is how long past its --wait SECONDS a call waits for the pool's own answer. */
const WAIT_GRACE_MS = 5_000;

/** Wait is the --wait flag: SECONDS, or true (as long as the pool allows). */
export type Wait = number | true | undefined;

/** waitFields are the AllocateRequest fields for --wait. */
export function waitFields(wait: Wait): { wait?: boolean; maxWait?: ReturnType<typeof durationFromMs> } {
  if (wait === undefined) return {};
  return typeof wait === "number" ? { wait: true, maxWait: durationFromMs(Math.round(wait * 1000)) } : { wait: true };
}

/**
 * waitCallOptions: a wait outlives the client's 5 s deadline. The pool ends
 * it (at SECONDS, else at its own bound) and says why, which a deadline
 * here would not.
 */
export function waitCallOptions(wait: Wait): { timeoutMs?: number } {
  if (wait === undefined) return {};
  return { timeoutMs: typeof wait === "number" ? Math.round(wait * 1000) + WAIT_GRACE_MS : 0 };
}
