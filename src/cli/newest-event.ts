import { Code, ConnectError } from "@connectrpc/connect";
import type { AuthPoolClient } from "../client/index.js";

// The largest after_sequence the API takes (uint64): past any pool's newest event.
const PAST_EVERYTHING = 2n ** 64n - 1n;

/**
 * newestSequence asks the pool for the sequence of its newest event, or
 * resolves undefined when it cannot tell. The API has no call for it, but a
 * stream asked to start past the newest event is refused with OUT_OF_RANGE
 * naming it ("… is past the newest event 41; …"), and that answer comes at
 * once. A pool that answers otherwise (an older one, which would simply
 * wait) is given up on after timeoutMs. Any other error is thrown: it would
 * fail the stream that follows just the same.
 */
export async function newestSequence(client: AuthPoolClient, timeoutMs: number): Promise<bigint | undefined> {
  const signal = AbortSignal.timeout(timeoutMs);
  try {
    for await (const _ of client.streamEvents({ afterSequence: PAST_EVERYTHING }, { signal })) return undefined;
    return undefined;
  } catch (error) {
    if (signal.aborted) return undefined;
    const e = ConnectError.from(error);
    if (e.code !== Code.OutOfRange) throw error;
    const newest = /past the newest event (\d+)/.exec(e.rawMessage)?.[1];
    return newest === undefined ? undefined : BigInt(newest);
  }
}
