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
 * be retried), and every message is cut to MAX_STATUS_MESSAGE characters and
 * made well-formed, whoever wrote it. A lone surrogate (half of an emoji a
 * caller sent, or a JSON request's "\ud800") makes the gRPC handler's
 * percent-encoding of grpc-message throw, and connect-node then never sends
 * the trailers: the call hung until the caller's deadline.
 */
export const edgeErrors: Interceptor = (next) => async (req) => {
  let res: Awaited<ReturnType<typeof next>>;
  try {
    res = await next(req);
  } catch (error) {
    throw atEdge(error);
  }
  // A server stream's handler runs as it is read (AllocateWatch submits to the writer there): its errors too.
  return res.stream ? { ...res, message: mapped(res.message) } : res;
};

/** atEdge is an error as the caller is to get it. */
function atEdge(error: unknown): unknown {
  if (error instanceof WriterUnavailableError) return new ConnectError(capMessage(error.message), Code.Unavailable);
  if (error instanceof ConnectError && !sendable(error.rawMessage)) {
    // Our handlers send no details; metadata and cause go along.
    return new ConnectError(capMessage(error.rawMessage), error.code, error.metadata, undefined, error.cause);
  }
  if (!(error instanceof ConnectError) && error instanceof Error && !sendable(error.message)) {
    // What connect-node would answer for an unexpected error, with a message it can send.
    return new ConnectError(capMessage(error.message), Code.Internal, undefined, undefined, error);
  }
  return error;
}

async function* mapped<T>(messages: AsyncIterable<T>): AsyncGenerator<T> {
  try {
    yield* messages;
  } catch (error) {
    throw atEdge(error);
  }
}

// A high surrogate without its low half, or a low one without its high half.
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

function sendable(message: string): boolean {
  LONE_SURROGATE.lastIndex = 0;
  return !LONE_SURROGATE.test(message) && [...message].length <= MAX_STATUS_MESSAGE;
}

function capMessage(message: string): string {
  const chars = [...message.replace(LONE_SURROGATE, "\ufffd")];
  return chars.length <= MAX_STATUS_MESSAGE ? chars.join("") : `${chars.slice(0, MAX_STATUS_MESSAGE - 1).join("")}…`;
}
