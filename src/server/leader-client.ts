import http2 from "node:http2";
import { type DescMessage, type DescMethodUnary, type MessageShape, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { Http2SessionManager } from "@connectrpc/connect-node";

/**
 * LeaderClient makes the unary calls a standby forwards to the leader: the
 * Connect protocol with binary messages, over one HTTP/2 connection per
 * leader address. The connection is connect-node's Http2SessionManager (it
 * connects, reconnects after a GOAWAY or a failure, and does not keep an
 * idle process alive); each call is a plain HTTP/2 stream: one POST of the
 * encoded request, the reply's bytes decoded, or the error's code and
 * message read from its JSON.
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
      const headers: http2.OutgoingHttpHeaders = {
        "content-type": "application/proto",
        "connect-protocol-version": "1",
      };
      header.forEach((value, name) => {
        headers[name] = value;
      });
      const body = toBinary(method.input, message);
      let stream: http2.ClientHttp2Stream;
      try {
        stream = await leader.sessions.request(
          "POST",
          `${leader.prefix}/${method.parent.typeName}/${method.name}`,
          headers,
          {},
        );
      } catch (error) {
        // The session manager's failures are ConnectErrors already (a refused connection: Unavailable, caused by ECONNREFUSED).
        throw fromNodeError(error);
      }
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
  };
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
