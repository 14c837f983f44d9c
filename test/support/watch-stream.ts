import type { AllocateWatchResponse } from "../../gen/authpool/v1/auth_pool_pb.js";

/** queued is a place in the queue as AllocateWatch streams it. */
export const queued = (position: number) => ({
  update: { case: "queued" as const, value: { position, waiting: position } },
});

/** collect reads a stream to its end: its messages, and its error if it ends with one. */
export async function collect(stream: AsyncIterable<AllocateWatchResponse>) {
  const messages: AllocateWatchResponse[] = [];
  try {
    for await (const m of stream) messages.push(m);
    return { messages, error: undefined };
  } catch (error) {
    return { messages, error };
  }
}
