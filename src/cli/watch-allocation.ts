import { type MessageInitShape, create } from "@bufbuild/protobuf";
import { type CallOptions, Code, ConnectError } from "@connectrpc/connect";
import {
  AllocateRequestSchema,
  type AllocateResponse,
  type QueuePosition,
} from "../../gen/authpool/v1/auth_pool_pb.js";
import type { AuthPoolClient } from "../client/index.js";

/**
 * watchAllocation allocates through AllocateWatch and tells `say` where the
 * call stands while it waits in the pool's queue ("waiting: 3rd in line of
 * 7 (no eligible subscription: ...)"; the reason only when it changes); it
 * resolves with the answer Allocate would have given, or throws its error.
 * A pool that does not know AllocateWatch (an older version) is asked with
 * Allocate instead, without the positions.
 */
export async function watchAllocation(
  client: AuthPoolClient,
  request: MessageInitShape<typeof AllocateRequestSchema>,
  options: CallOptions | undefined,
  say: (line: string) => void,
): Promise<AllocateResponse> {
  let heard = false;
  let reason: string | undefined;
  let answer: AllocateResponse | undefined;
  try {
    // Read to the stream's end (the answer is its last message): a call left
    // half-read keeps its deadline timer, and the process, alive.
    for await (const res of client.allocateWatch({ request: create(AllocateRequestSchema, request) }, options)) {
      heard = true;
      const u = res.update;
      if (u.case === "allocated") answer = u.value;
      else if (u.case === "queued") {
        say(positionLine(u.value, u.value.reason !== reason));
        reason = u.value.reason;
      }
    }
  } catch (error) {
    if (!heard && ConnectError.from(error).code === Code.Unimplemented) return client.allocate(request, options);
    throw error;
  }
  if (answer === undefined) throw new ConnectError("the pool ended AllocateWatch without an answer", Code.Internal);
  return answer;
}

/** positionLine: "waiting: 3rd in line of 7", with why when `withReason`. */
export function positionLine(p: QueuePosition, withReason: boolean): string {
  const line = `waiting: ${ordinal(p.position)} in line of ${p.waiting}`;
  return withReason && p.reason !== "" ? `${line} (${p.reason})` : line;
}

/** ordinal: 1st, 2nd, 3rd, 4th, 11th, 12th, 13th, 21st... */
export function ordinal(n: number): string {
  const tens = n % 100;
  const suffix = tens >= 11 && tens <= 13 ? "th" : (["th", "st", "nd", "rd"][n % 10] ?? "th");
  return `${n}${suffix}`;
}
