import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { WriterUnavailableError } from "../runtime/pool-writer.js";

/**
 * MAX_STATUS_MESSAGE bounds an error message sent back to a caller. Over
 * gRPC it travels in the grpc-message trailer: one echoing a caller's 64 KiB
 * key (or a config file's) made a header block the HTTP/2 peer refused
 * (FRAME_SIZE_ERROR), which took the caller's whole connection down.
 */
export const MAX_STATUS_MESSAGE = 1024;

/**
 * edgeErrors is the last word on what a handler's error looks like on the
 * wire: a refused store write is UNAVAILABLE (the call had no effect and may
 * be retried), and every message is cut to MAX_STATUS_MESSAGE characters,
 * whoever wrote it.
 */
export const edgeErrors: Interceptor = (next) => async (req) => {
  try {
    return await next(req);
  } catch (error) {
    if (error instanceof WriterUnavailableError) throw new ConnectError(capMessage(error.message), Code.Unavailable);
    if (error instanceof ConnectError && [...error.rawMessage].length > MAX_STATUS_MESSAGE) {
      // Our handlers send no details; metadata and cause go along.
      throw new ConnectError(capMessage(error.rawMessage), error.code, error.metadata, undefined, error.cause);
    }
    throw error;
  }
};

function capMessage(message: string): string {
  const chars = [...message];
  return chars.length <= MAX_STATUS_MESSAGE ? message : `${chars.slice(0, MAX_STATUS_MESSAGE - 1).join("")}…`;
}
