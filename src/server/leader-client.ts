import http2 from "node:http2";
import {
  type DescMessage,
  type DescMethod,
  type DescMethodServerStreaming,
  type DescMethodUnary,
  type MessageShape,
  fromBinary,
  toBinary,
} from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { Http2SessionManager } from "@connectrpc/connect-node";

/**
 * LeaderClient makes the calls a standby forwards to the leader: the
 * Connect protocol with binary messages, over one HTTP/2 connection per
 * leader address. The connection is connect-node's Http2SessionManager (it
 * connects, reconnects after a GOAWAY or a failure, and does not keep an
 * idle process alive); each call is a plain HTTP/2 stream: one POST of the
 * encoded request, the reply's bytes decoded, or the error's code and
 * message read from its JSON. A server stream's messages are enveloped
 * (https://connectrpc.com/docs/protocol#streaming-rpcs) and its status is
 * the JSON of the last envelope.
 *
 * Why not connect-node's createConnectTransport: a forwarded call is all
 * a standby does for a write, and the transport's general machinery
 * (interceptors, async iterables for a one-message body, linked abort
 * controllers, header conversions) cost about 300 µs of CPU per call in
 * bench/speed (where the whole empty RPC costs the server 500), against
 * under 100 µs for this.
 */
export interface LeaderClient {
  /**
   * unary calls `method` on the leader at `address` (a base URL) with
   * `header` added, and resolves with the reply. It rejects with a
   * ConnectError: the leader's code and message; Canceled when `signal`
   * aborts; Unavailable (with the Node error as cause) when the connection
   * fails, so a refused connection can be told apart.
   */
  unary<I extends DescMessage, O extends DescMessage>(
    address: string,
    method: DescMethodUnary<I, O>,
    message: MessageShape<I>,
    header: Headers,
    signal: AbortSignal,
  ): Promise<MessageShape<O>>;
  /**
   * serverStream calls the server-streaming `method` on the leader at
   * `address` with `header` added, and yields the leader's messages as they
   * come. It ends when the leader ends the stream with OK, and throws what
   * `unary` would otherwise (the leader's code and message; Canceled when
   * `signal` aborts; Unavailable when the connection fails or the leader
   * resets the stream). Aborting `signal`, or leaving the iteration early,
   * cancels the call on the leader.
   */
  serverStream<I extends DescMessage, O extends DescMessage>(
    address: string,
    method: DescMethodServerStreaming<I, O>,
    message: MessageShape<I>,
    header: Headers,
    signal: AbortSignal,
  ): AsyncGenerator<MessageShape<O>, void, undefined>;
}

/** LeaderClientOptions configures createLeaderClient. */
export interface LeaderClientOptions {
  /** Trusted CA for an https leader address (PEM), when the certificate is not publicly trusted. */
  ca?: string | Buffer;
}

interface Leader {
  sessions: Http2SessionManager;
  /** The base URL's path, without a trailing slash ("" for most). */
  prefix: string;
}

export function createLeaderClient(options: LeaderClientOptions = {}): LeaderClient {
  const leaders = new Map<string, Leader>();
  const leaderAt = (address: string): Leader => {
    let leader = leaders.get(address);
    if (leader === undefined) {
      const url = new URL(address);
      leader = {
        sessions: new Http2SessionManager(
          url.origin,
          undefined,
          options.ca !== undefined && url.protocol === "https:" ? { ca: options.ca } : undefined,
        ),
        prefix: url.pathname.replace(/\/+$/, ""),
      };
      leaders.set(address, leader);
    }
    return leader;
  };
  /** open starts the call of `method` on `leader`: an HTTP/2 stream with the request headers sent. */
  const open = async (
    leader: Leader,
    method: DescMethod,
    contentType: string,
    header: Headers,
  ): Promise<http2.ClientHttp2Stream> => {
    const headers: http2.OutgoingHttpHeaders = {
      "content-type": contentType,
      "connect-protocol-version": "1",
    };
    header.forEach((value, name) => {
      headers[name] = value;
    });
    try {
      return await leader.sessions.request(
        "POST",
        `${leader.prefix}/${method.parent.typeName}/${method.name}`,
        headers,
        {},
      );
    } catch (error) {
      // The session manager's failures are ConnectErrors already (a refused connection: Unavailable, caused by ECONNREFUSED).
      throw fromNodeError(error);
    }
  };
  return {
    async unary<I extends DescMessage, O extends DescMessage>(
      address: string,
      method: DescMethodUnary<I, O>,
      message: MessageShape<I>,
      header: Headers,
      signal: AbortSignal,
    ): Promise<MessageShape<O>> {
      if (signal.aborted) throw ConnectError.from(signal.reason, Code.Canceled);
      const leader = leaderAt(address);
      const body = toBinary(method.input, message);
      const stream = await open(leader, method, "application/proto", header);
      return new Promise<MessageShape<O>>((resolve, reject) => {
        let status = 0;
        const chunks: Buffer[] = [];
        let settled = false;
        const settle = (answer: () => MessageShape<O>) => {
          if (settled) return;
          settled = true;
          signal.removeEventListener("abort", onAbort);
          try {
            resolve(answer());
          } catch (error) {
            reject(error);
          }
        };
        const onAbort = () => {
          settle(() => {
            throw ConnectError.from(signal.reason, Code.Canceled);
          });
          if (!stream.closed) stream.close(http2.constants.NGHTTP2_CANCEL);
        };
        signal.addEventListener("abort", onAbort, { once: true });
        stream.on("response", (h) => {
          status = Number(h[":status"]);
        });
        stream.on("data", (chunk: Buffer) => {
          chunks.push(chunk);
          leader.sessions.notifyResponseByteRead(stream);
        });
        stream.on("error", (error) =>
          settle(() => {
            throw fromNodeError(error);
          }),
        );
        stream.on("end", () =>
          settle(() => {
            const data = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
            if (status !== 200) throw errorFromReply(status, data);
            try {
              return fromBinary(method.output, data);
            } catch (error) {
              throw new ConnectError(
                `the leader's reply to ${method.name} does not decode: ${String(error)}`,
                Code.Internal,
              );
            }
          }),
        );
        // A stream reset before its end (the leader went away mid-call): the call's fate is unknown.
        stream.on("close", () =>
          settle(() => {
            throw new ConnectError(
              `the leader closed the call without an answer (HTTP/2 code ${stream.rstCode})`,
              Code.Unavailable,
            );
          }),
        );
        stream.end(body);
      });
    },

    async *serverStream<I extends DescMessage, O extends DescMessage>(
      address: string,
      method: DescMethodServerStreaming<I, O>,
      message: MessageShape<I>,
      header: Headers,
      signal: AbortSignal,
    ): AsyncGenerator<MessageShape<O>, void, undefined> {
      if (signal.aborted) throw ConnectError.from(signal.reason, Code.Canceled);
      const leader = leaderAt(address);
      const body = envelope(toBinary(method.input, message));
      const stream = await open(leader, method, "application/connect+proto", header);
      const frames = readFrames(stream, () => leader.sessions.notifyResponseByteRead(stream), signal);
      try {
        stream.end(body);
        for (;;) {
          const frame = await frames.next();
          if ((frame.flags & END_STREAM) !== 0) {
            const error = endStreamError(frame.data);
            if (error !== undefined) throw error;
            return;
          }
          if ((frame.flags & COMPRESSED) !== 0) {
            // We never offer an encoding (no connect-accept-encoding), so the leader has none to use.
            throw new ConnectError(`the leader compressed a message of ${method.name} unasked`, Code.Internal);
          }
          let decoded: MessageShape<O>;
          try {
            decoded = fromBinary(method.output, frame.data);
          } catch (error) {
            throw new ConnectError(
              `the leader's message in ${method.name} does not decode: ${String(error)}`,
              Code.Internal,
            );
          }
          yield decoded;
        }
      } finally {
        // Left early (the caller went, or an error above): the leader's call is cancelled.
        frames.close();
      }
    },
  };
}

// Envelope flags: https://connectrpc.com/docs/protocol#streaming-request
const COMPRESSED = 0b01;
const END_STREAM = 0b10;

/** Frames buffered before the stream is paused, so a slow caller holds the leader back rather than our memory. */
const MAX_BUFFERED_FRAMES = 16;

/** envelope frames one message of a stream: flags, big-endian length, bytes. */
function envelope(data: Uint8Array): Buffer {
  const frame = Buffer.alloc(5 + data.length);
  frame.writeUInt32BE(data.length, 1);
  frame.set(data, 5);
  return frame;
}

/** Frame is one envelope of a stream's response. */
interface Frame {
  flags: number;
  data: Buffer;
}

/** FrameReader hands out a stream response's envelopes as they arrive. */
interface FrameReader {
  /**
   * next resolves with the next envelope; it rejects with Canceled once
   * the signal aborts, and with the failure once the stream ends or breaks
   * with no envelope left (after the end-stream envelope nobody asks).
   */
  next(): Promise<Frame>;
  /** close stops reading; a call whose end-stream envelope was not handed out is cancelled on the leader. */
  close(): void;
}

function readFrames(stream: http2.ClientHttp2Stream, onRead: () => void, signal: AbortSignal): FrameReader {
  let status = 0;
  // Bytes not yet a whole envelope (all of the body, for a reply that is not 200).
  let pending: Buffer = Buffer.alloc(0);
  const frames: Frame[] = [];
  let failure: ConnectError | undefined;
  let complete = false;
  let wake: (() => void) | undefined;
  const fail = (error: ConnectError) => {
    failure ??= error;
    wake?.();
  };
  const cancel = () => {
    if (!stream.closed) stream.close(http2.constants.NGHTTP2_CANCEL);
  };
  const onAbort = () => {
    cancel();
    wake?.();
  };
  signal.addEventListener("abort", onAbort, { once: true });
  stream.on("response", (h) => {
    status = Number(h[":status"]);
  });
  stream.on("data", (chunk: Buffer) => {
    onRead();
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    if (status !== 200) return;
    while (pending.length >= 5) {
      const size = pending.readUInt32BE(1);
      if (pending.length < 5 + size) break;
      frames.push({ flags: pending[0]!, data: pending.subarray(5, 5 + size) });
      pending = pending.subarray(5 + size);
    }
    if (frames.length >= MAX_BUFFERED_FRAMES) stream.pause();
    wake?.();
  });
  stream.on("end", () => {
    // Read after the envelopes already in: the end-stream envelope, when it came, is the answer.
    if (status !== 200) fail(errorFromReply(status, pending));
    else fail(new ConnectError("the leader ended the call without its status", Code.Unavailable));
  });
  stream.on("error", (error) => fail(fromNodeError(error)));
  // A stream reset before its end (the leader went away mid-call): the call's fate is unknown.
  stream.on("close", () =>
    fail(
      new ConnectError(
        `the leader closed the call without an answer (HTTP/2 code ${stream.rstCode})`,
        Code.Unavailable,
      ),
    ),
  );
  return {
    async next(): Promise<Frame> {
      for (;;) {
        if (signal.aborted) throw ConnectError.from(signal.reason, Code.Canceled);
        const frame = frames.shift();
        if (frame !== undefined) {
          if (stream.isPaused() && frames.length < MAX_BUFFERED_FRAMES / 2) stream.resume();
          if ((frame.flags & END_STREAM) !== 0) complete = true;
          return frame;
        }
        if (failure !== undefined) throw failure;
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        wake = undefined;
      }
    },
    close() {
      signal.removeEventListener("abort", onAbort);
      if (!complete) cancel();
    },
  };
}

/**
 * endStreamError reads a stream's end-stream envelope, `{ "error": {
 * "code": "not_found", "message": "..." }, "metadata": {...} }`: the
 * leader's error, or undefined when it ended with OK.
 */
function endStreamError(data: Buffer): ConnectError | undefined {
  let json: unknown;
  try {
    json = JSON.parse(data.toString("utf8"));
  } catch (error) {
    return new ConnectError(`the leader's end of stream is not JSON: ${String(error)}`, Code.Internal);
  }
  if (typeof json !== "object" || json === null) {
    return new ConnectError("the leader's end of stream is not a JSON object", Code.Internal);
  }
  const error = (json as { error?: { code?: unknown; message?: unknown } | null }).error;
  if (error === undefined || error === null) return undefined;
  const code = typeof error.code === "string" ? codeFromName(error.code) : undefined;
  return new ConnectError(typeof error.message === "string" ? error.message : "", code ?? Code.Unknown);
}

/**
 * errorFromReply reads a Connect unary error: `{ "code": "not_found",
 * "message": "..." }` in the body, the HTTP status when the body is not
 * that (a proxy's page).
 */
function errorFromReply(status: number, data: Buffer): ConnectError {
  try {
    const json = JSON.parse(data.toString("utf8")) as { code?: unknown; message?: unknown };
    const code = typeof json.code === "string" ? codeFromName(json.code) : undefined;
    if (code !== undefined) return new ConnectError(typeof json.message === "string" ? json.message : "", code);
  } catch {
    // Not JSON: fall through to the status.
  }
  // https://connectrpc.com/docs/protocol#http-to-error-code
  const byStatus: Record<number, Code> = {
    400: Code.Internal,
    401: Code.Unauthenticated,
    403: Code.PermissionDenied,
    404: Code.Unimplemented,
    429: Code.Unavailable,
    502: Code.Unavailable,
    503: Code.Unavailable,
    504: Code.Unavailable,
  };
  return new ConnectError(`the leader answered HTTP ${status}`, byStatus[status] ?? Code.Unknown);
}

/** codeFromName: "invalid_argument" -> Code.InvalidArgument; undefined for a name Connect does not have. */
function codeFromName(name: string): Code | undefined {
  const key = name.replace(/(^|_)([a-z])/g, (_, __: string, c: string) => c.toUpperCase());
  const code = (Code as unknown as Record<string, unknown>)[key];
  return typeof code === "number" ? (code as Code) : undefined;
}

/**
 * fromNodeError makes a failure of the connection or the stream a
 * ConnectError that keeps the Node error as its cause (forwardWrites looks
 * for ECONNREFUSED there): Unavailable, since the leader may have gone.
 */
function fromNodeError(error: unknown): ConnectError {
  if (error instanceof ConnectError) return error;
  return new ConnectError(
    error instanceof Error ? error.message : String(error),
    Code.Unavailable,
    undefined,
    undefined,
    error,
  );
}
