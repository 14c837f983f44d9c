import * as http from "node:http";
import * as http2 from "node:http2";
import * as net from "node:net";
import type { TlsCredentials } from "../config/index.js";

/**
 * RequestHandler is what both the HTTP/1.1 and the HTTP/2 server call for each
 * request; `connectNodeAdapter(...)` returns one.
 */
export type RequestHandler = (
  req: http.IncomingMessage | http2.Http2ServerRequest,
  res: http.ServerResponse | http2.Http2ServerResponse,
) => void;

/** ListenOptions says where to listen; port 0 picks a free port. */
export interface ListenOptions {
  host: string;
  port: number;
  /**
   * Serve TLS with this certificate and key: HTTP/2 and HTTP/1.1 on the same
   * port, chosen by ALPN (h2, http/1.1). Absent: cleartext, chosen by sniffing.
   */
  tls?: TlsCredentials;
}

/** CloseOptions tunes the graceful shutdown of a Listener. */
export interface CloseOptions {
  /** How long in-flight requests may run on after close(); then they are cut. Default 10 s. */
  graceMs?: number;
}

/** Listener is one TCP port serving HTTP/2 and HTTP/1.1, in cleartext or over TLS. */
export interface Listener {
  host: string;
  /** The actual port, also when 0 was asked for. */
  port: number;
  /** http://host:port (https:// with TLS), usable as a Connect `baseUrl`. */
  url: string;
  /**
   * close stops accepting connections, lets in-flight requests finish for up to
   * graceMs, then destroys what remains; it resolves once every connection is
   * closed. Calling it again returns the same promise.
   */
  close(options?: CloseOptions): Promise<void>;
  /** inFlight counts requests whose response has not closed yet. */
  inFlight(): number;
}

/** The HTTP/2 client connection preface (RFC 9113 §3.4); no HTTP/1.x request starts with it. */
const H2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");

const DEFAULT_GRACE_MS = 10_000;

/**
 * Neither server has seen a connection that is still being sniffed, so none of
 * their timeouts protect us from a client that connects and says nothing.
 */
const SNIFF_TIMEOUT_MS = 10_000;

type Protocol = "h1" | "h2";

/** classify names the protocol, or returns undefined while `head` is still a prefix of the preface. */
function classify(head: Buffer): Protocol | undefined {
  const n = Math.min(head.length, H2_PREFACE.length);
  if (!head.subarray(0, n).equals(H2_PREFACE.subarray(0, n))) return "h1";
  return n === H2_PREFACE.length ? "h2" : undefined;
}

/**
 * listen serves `handler` on one TCP port to both HTTP/2 clients (gRPC,
 * gRPC-Web, Connect) and HTTP/1.1 clients (Connect unary, gRPC-Web, curl,
 * browsers). In cleartext the protocol is told by sniffing the first bytes
 * of each connection (HTTP/2 with prior knowledge); with `tls` by ALPN
 * during the handshake, as gRPC clients expect.
 */
export async function listen(handler: RequestHandler, options: ListenOptions): Promise<Listener> {
  let inFlight = 0;
  // Set during shutdown: called when the last in-flight request has closed.
  let drained: (() => void) | undefined;
  let stopping = false;
  let closed: Promise<void> | undefined;
  const sniffing = new Set<net.Socket>();
  // Every accepted socket, whatever became of it: the last resort of close(),
  // so shutdown ends even if a session or socket slipped out of the sets below.
  const everySocket = new Set<net.Socket>();
  // HTTP/1.1 sockets and how many requests each is serving: only idle ones may
  // be closed right away on shutdown.
  const h1Sockets = new Map<net.Socket, number>();
  const h2Sessions = new Set<http2.ServerHttp2Session>();

  const onSession = (session: http2.ServerHttp2Session): void => {
    h2Sessions.add(session);
    session.once("close", () => h2Sessions.delete(session));
    if (stopping) session.close();
  };
  const serveH2 = (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse): void => {
    inFlight++;
    res.once("close", () => {
      inFlight--;
      if (stopping && inFlight === 0) drained?.();
    });
    handler(req, res);
  };
  const h2 = http2.createServer();
  h2.on("session", onSession);
  h2.on("request", serveH2);

  const serveH1 = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    inFlight++;
    const socket = req.socket;
    // Over TLS the socket is first seen here (handOver registers cleartext ones).
    if (!h1Sockets.has(socket)) socket.once("close", () => h1Sockets.delete(socket));
    h1Sockets.set(socket, (h1Sockets.get(socket) ?? 0) + 1);
    // A keep-alive client would otherwise send its next request to a server
    // that is about to hang up.
    if (stopping) res.setHeader("Connection", "close");
    res.once("close", () => {
      inFlight--;
      if (stopping && inFlight === 0) drained?.();
      const active = h1Sockets.get(socket);
      if (active === undefined) return; // the socket closed first
      h1Sockets.set(socket, active - 1);
      if (stopping && active === 1) socket.end();
    });
    handler(req, res);
  };
  const h1 = http.createServer(serveH1);

  // With TLS one secure server does both: allowHTTP1 answers clients that
  // negotiate http/1.1 (or nothing) through the same 'request' event, with
  // HTTP/1 request and response objects.
  const secure =
    options.tls === undefined
      ? undefined
      : http2.createSecureServer({
          cert: options.tls.cert,
          key: options.tls.key,
          allowHTTP1: true,
          handshakeTimeout: SNIFF_TIMEOUT_MS,
        });
  secure?.on("session", onSession);
  secure?.on(
    "request",
    (req: http2.Http2ServerRequest | http.IncomingMessage, res: http2.Http2ServerResponse | http.ServerResponse) => {
      if (req instanceof http2.Http2ServerRequest) serveH2(req, res as http2.Http2ServerResponse);
      else serveH1(req, res as http.ServerResponse);
    },
  );
  // A failed handshake (a cleartext client, an untrusted certificate)
  // concerns only that connection; the socket is destroyed by tls itself.
  secure?.on("tlsClientError", () => {});
  // The TLS socket, not the TCP one under it, is what ends the connection.
  secure?.on("secureConnection", (socket: net.Socket) => {
    everySocket.add(socket);
    socket.once("close", () => everySocket.delete(socket));
  });

  const handOver = (socket: net.Socket, protocol: Protocol, head: Buffer): void => {
    socket.unshift(head);
    if (protocol === "h2") {
      // http2 reads the unshifted bytes itself on the next tick; resuming the
      // socket would flush them as 'data' events first, so the session never
      // sees the preface and answers GOAWAY.
      h2.emit("connection", socket);
      return;
    }
    h1Sockets.set(socket, 0);
    socket.once("close", () => h1Sockets.delete(socket));
    h1.emit("connection", socket);
    // The http/1.1 server leaves a paused socket paused.
    socket.resume();
  };

  const accept = (socket: net.Socket): void => {
    if (stopping) {
      socket.destroy();
      return;
    }
    everySocket.add(socket);
    socket.once("close", () => everySocket.delete(socket));
    if (secure === undefined) sniff(socket);
    else {
      // A reset before or during the handshake concerns only this connection.
      socket.on("error", () => socket.destroy());
      secure.emit("connection", socket);
    }
  };

  const sniff = (socket: net.Socket): void => {
    sniffing.add(socket);
    let head: Buffer = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      head = head.length === 0 ? chunk : Buffer.concat([head, chunk]);
      const protocol = classify(head);
      if (protocol === undefined) return;
      socket.pause();
      detach();
      handOver(socket, protocol, head);
    };
    // A client fault (reset, garbage) before we know the protocol concerns
    // only this connection; unhandled, it would crash the process.
    const onError = (): void => void socket.destroy();
    const onTimeout = (): void => void socket.destroy();
    const onClose = (): void => detach();
    const detach = (): void => {
      sniffing.delete(socket);
      socket.setTimeout(0);
      socket.off("data", onData).off("error", onError).off("timeout", onTimeout).off("close", onClose);
    };
    socket.on("data", onData).on("error", onError).on("timeout", onTimeout).on("close", onClose);
    socket.setTimeout(SNIFF_TIMEOUT_MS);
  };

  const server = net.createServer(accept);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  // Accept failures (EMFILE and the like) are transient and the server keeps
  // listening; an unhandled 'error' event would take the process down instead.
  server.on("error", (err) => process.emitWarning(err));

  const shutdown = async (graceMs: number): Promise<void> => {
    stopping = true;
    const allClosed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const socket of sniffing) socket.destroy();
    // GOAWAY: no new streams, running ones finish, then the session closes.
    for (const session of h2Sessions) session.close();
    for (const [socket, active] of h1Sockets) if (active === 0) socket.end();
    // Server-streaming calls never finish on their own.
    const cut = setTimeout(() => {
      for (const socket of sniffing) socket.destroy();
      for (const session of h2Sessions) session.destroy();
      for (const socket of h1Sockets.keys()) socket.destroy();
      for (const socket of everySocket) socket.destroy();
    }, graceMs);
    // Once nothing is in flight there is nothing left to wait for: a session
    // whose peer never acknowledges the GOAWAY must not hold shutdown for the
    // whole grace period.
    const finish = (): void => {
      setImmediate(() => {
        for (const session of h2Sessions) session.destroy();
        for (const socket of h1Sockets.keys()) socket.destroy();
        for (const socket of everySocket) socket.destroy();
      });
    };
    drained = finish;
    if (inFlight === 0) finish();
    try {
      await allClosed;
    } finally {
      clearTimeout(cut);
    }
  };

  const address = server.address() as net.AddressInfo;
  const urlHost = net.isIPv6(options.host) ? `[${options.host}]` : options.host;
  return {
    host: options.host,
    port: address.port,
    url: `${options.tls === undefined ? "http" : "https"}://${urlHost}:${address.port}`,
    close: (opts?: CloseOptions) => (closed ??= shutdown(opts?.graceMs ?? DEFAULT_GRACE_MS)),
    inFlight: () => inFlight,
  };
}
