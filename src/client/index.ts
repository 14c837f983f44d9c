import { type Client, type Interceptor, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { AuthPoolService } from "../../gen/authpool/v1/auth_pool_pb.js";

/**
 * The client entry point for gateways: `import { createAuthPoolClient } from
 * "auth-pool"`. The generated messages and enums are re-exported so a
 * gateway needs no second import path.
 */
export * from "../../gen/authpool/v1/auth_pool_pb.js";

/** AuthPoolClient is the typed client of AuthPoolService. */
export type AuthPoolClient = Client<typeof AuthPoolService>;

/** AuthPoolClientOptions tune the transport. */
export interface AuthPoolClientOptions {
  /**
   * "grpc" (default, HTTP/2), "connect" (HTTP/1.1 or HTTP/2, JSON-friendly)
   * or "grpc-web".
   */
  protocol?: "grpc" | "connect" | "grpc-web";
  /** Per-call deadline in ms for unary calls (default 5000). Streams (StreamEvents, AllocateWatch) have none. */
  timeoutMs?: number;
  /** Sent as `authorization: Bearer <token>` when set. */
  token?: string;
  /** HTTP version for the connect and grpc-web protocols (default "2"). */
  httpVersion?: "1.1" | "2";
  /**
   * PEM certificate(s) to trust for an https:// URL, in place of the system
   * roots: the pool's own certificate when it is self-signed, or the CA that
   * signed it. Absent: Node's default trust store.
   */
  ca?: string | Buffer;
}

/**
 * createAuthPoolClient returns a client for the pool at `url`
 * (e.g. "http://127.0.0.1:50051", or "https://pool.example:50051" when the
 * pool serves TLS).
 */
export function createAuthPoolClient(url: string, options: AuthPoolClientOptions = {}): AuthPoolClient {
  const interceptors: Interceptor[] = [];
  const { token } = options;
  if (token !== undefined && token !== "") {
    interceptors.push((next) => (req) => {
      req.header.set("authorization", `Bearer ${token}`);
      return next(req);
    });
  }
  const timeoutMs = options.timeoutMs ?? 5000;
  const httpVersion = options.httpVersion ?? "2";
  // Passed to http2.connect or https.request alike; both take `ca`.
  const nodeOptions = options.ca !== undefined ? { nodeOptions: { ca: options.ca } } : {};
  const transport = (defaultTimeoutMs: number | undefined) => {
    const common = {
      baseUrl: url,
      interceptors,
      ...nodeOptions,
      ...(defaultTimeoutMs !== undefined ? { defaultTimeoutMs } : {}),
    };
    return options.protocol === "connect"
      ? createConnectTransport({ ...common, httpVersion })
      : options.protocol === "grpc-web"
        ? createGrpcWebTransport({ ...common, httpVersion })
        : createGrpcTransport({ ...common });
  };
  // A deadline suits unary calls; an event stream is meant to stay open, and
  // a watched allocation as long as its wait, so they get a transport of
  // their own without one (pass timeoutMs per call to bound them).
  const unary = createClient(AuthPoolService, transport(timeoutMs));
  const streaming = createClient(AuthPoolService, transport(undefined));
  return { ...unary, streamEvents: streaming.streamEvents, allocateWatch: streaming.allocateWatch };
}

/** Webhook receivers verify deliveries with these (see the README). */
export { verifyWebhook, signWebhook, SIGNATURE_HEADER } from "../notify/signature.js";
