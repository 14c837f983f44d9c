import type { DescMethodServerStreaming, DescMethodUnary, DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import type { Lease } from "../store/index.js";
import { createLeaderClient } from "./leader-client.js";

/**
 * forwardWrites makes any instance answer every call: on a standby, a call
 * that writes the pool is sent on to the leader (the lease holder's
 * address) and its answer, or its error, comes back unchanged; a server
 * stream that writes (AllocateWatch) is relayed message by message, so the
 * caller sees its place in the leader's queue. Reads (status, events) are
 * answered locally from the replica. A caller never needs to know who leads.
 * The caller's deadline goes on to the leader, and a caller that leaves
 * cancels the forwarded call (the leader's queue lets it go).
 *
 * It wraps the service's handlers, so it runs after authentication (the
 * caller's token is checked here and again by the leader, which shares the
 * tokens) and the protocol the caller speaks is answered by this instance's
 * own framing. It forwards one hop only:
 * a forwarded call that reaches an instance that is no longer the leader
 * fails with UNAVAILABLE, to be retried, rather than bounce around while
 * the lease moves. A leader that refuses connections (its process died and
 * its lease has not run out yet) is waited out like a missing one, for up to
 * waitForLeaderMs, so a takeover costs callers a delay, not an error.
 */
export interface ForwardWritesOptions {
  /** Methods (by name) that only read and are always answered here. */
  reads: ReadonlySet<string>;
  /** Whether this instance writes the pool now. */
  leading: () => boolean;
  /** This instance's id, so its own stale lease is never a forwarding target. */
  self: string;
  /** The lease as this instance last saw it. */
  leader: () => Lease | undefined;
  /** How long a call waits for a leader to appear (a takeover in progress): lease TTL + 1 s. */
  waitForLeaderMs: number;
  /** Real time in ms (default Date.now). */
  now?: () => number;
  /** Trusted CA for an https leader address (PEM), when the certificate is not publicly trusted. */
  ca?: string | Buffer;
}

/** FORWARDED_HEADER marks a call one instance forwarded to another. */
export const FORWARDED_HEADER = "x-authpool-forwarded";

const PASSED_HEADERS = ["authorization"];

export function forwardWrites<S extends DescService>(
  service: S,
  impl: ServiceImpl<S>,
  options: ForwardWritesOptions,
): ServiceImpl<S> {
  const now = options.now ?? Date.now;
  // Connect's binary protocol over HTTP/2: one connection per leader.
  const client = createLeaderClient(options.ca !== undefined ? { ca: options.ca } : {});
  /** A lease whose holder refused the connection is dead to us until the lease changes hands. */
  const liveLeader = (refused: Lease | undefined): Lease | undefined => {
    const lease = options.leader();
    if (lease === undefined || lease.holder === options.self || lease.address === "") return undefined;
    if (refused !== undefined && lease.holder === refused.holder && lease.epoch === refused.epoch) return undefined;
    return lease.expiresAt > now() ? lease : undefined;
  };
  /** waitForLeader resolves with the lease to forward to (not `refused`), or undefined once this instance leads. */
  const waitForLeader = async (signal: AbortSignal, refused?: Lease): Promise<Lease | undefined> => {
    const deadline = now() + options.waitForLeaderMs;
    for (;;) {
      if (options.leading()) return undefined;
      const lease = liveLeader(refused);
      if (lease !== undefined) return lease;
      if (now() >= deadline || signal.aborted) {
        throw new ConnectError(
          refused !== undefined
            ? `the pool's leader at ${refused.address} is down and no instance has taken over yet; retry`
            : "no instance holds the pool store's lease (a takeover is in progress or the leader is down); retry",
          Code.Unavailable,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  };

  /** forwardedHeader is what goes to the leader with a call: the caller's token, the mark, the time left. */
  const forwardedHeader = (ctx: HandlerContext): Headers => {
    if (ctx.requestHeader.get(FORWARDED_HEADER) !== null) {
      throw new ConnectError(
        "this instance no longer writes the pool (the lease moved while the call was forwarded); retry",
        Code.Unavailable,
      );
    }
    const header = new Headers();
    for (const name of PASSED_HEADERS) {
      const value = ctx.requestHeader.get(name);
      if (value !== null) header.set(name, value);
    }
    header.set(FORWARDED_HEADER, options.self);
    // The caller's deadline holds on the leader too (this instance's own
    // timer also aborts ctx.signal then, whichever fires first).
    const timeoutMs = ctx.timeoutMs();
    if (timeoutMs !== undefined) header.set("connect-timeout-ms", String(Math.max(1, Math.ceil(timeoutMs))));
    return header;
  };
  /**
   * neverSeen: the leader refused the connection, so it never saw the call:
   * it died with its lease still running. The call waits for the next
   * leader (perhaps this instance) and is tried again.
   */
  const neverSeen = (error: unknown): boolean =>
    ConnectError.from(error).code === Code.Unavailable && connectionRefused(error);
  /**
   * relayed is a forwarded call's error as its caller gets it: the leader's
   * code and message, without its response headers: they describe its
   * framing (content-type, length), not ours, and sent on as trailers they
   * break the caller's HTTP/2 stream.
   */
  const relayed = (error: unknown): ConnectError => {
    const e = ConnectError.from(error);
    return new ConnectError(e.rawMessage, e.code);
  };

  /** forward answers a unary call from the leader; undefined when this instance took the lease meanwhile. */
  const forward = async (method: DescMethodUnary, message: unknown, ctx: HandlerContext): Promise<unknown> => {
    const header = forwardedHeader(ctx);
    let refused: Lease | undefined;
    for (;;) {
      const lease = await waitForLeader(ctx.signal, refused);
      // Took the lease while waiting: answer here.
      if (lease === undefined) return undefined;
      try {
        return await client.unary(lease.address, method, message as never, header, ctx.signal);
      } catch (error) {
        if (!neverSeen(error)) throw relayed(error);
        refused = lease;
      }
    }
  };

  /**
   * forwardStream relays a server stream from the leader, or from `local`
   * when this instance took the lease meanwhile. Leaving it early (the
   * caller went) cancels the leader's call.
   */
  const forwardStream = async function* (
    method: DescMethodServerStreaming,
    message: unknown,
    ctx: HandlerContext,
    local: () => AsyncIterable<unknown>,
  ): AsyncGenerator<unknown> {
    const header = forwardedHeader(ctx);
    let refused: Lease | undefined;
    for (;;) {
      const lease = await waitForLeader(ctx.signal, refused);
      if (lease === undefined) return yield* local();
      let started = false;
      try {
        for await (const res of client.serverStream(lease.address, method, message as never, header, ctx.signal)) {
          started = true;
          yield res;
        }
        return;
      } catch (error) {
        // A refusal comes before any message; once one is relayed the call is the leader's.
        if (started || !neverSeen(error)) throw relayed(error);
        refused = lease;
      }
    }
  };

  const wrapped: Record<string, unknown> = { ...impl };
  const handlers = impl as Record<string, ((req: unknown, ctx: HandlerContext) => unknown) | undefined>;
  for (const method of service.methods) {
    const local = handlers[method.localName];
    if (options.reads.has(method.name) || local === undefined) continue;
    if (method.methodKind === "server_streaming") {
      const stream = method as DescMethodServerStreaming;
      const localStream = local as (req: unknown, ctx: HandlerContext) => AsyncIterable<unknown>;
      wrapped[method.localName] = (req: unknown, ctx: HandlerContext) =>
        options.leading() ? localStream(req, ctx) : forwardStream(stream, req, ctx, () => localStream(req, ctx));
    } else if (method.methodKind === "unary") {
      const unary = method as DescMethodUnary;
      wrapped[method.localName] = async (req: unknown, ctx: HandlerContext) => {
        if (options.leading()) return local(req, ctx);
        const answer = await forward(unary, req, ctx);
        return answer === undefined ? local(req, ctx) : answer;
      };
    }
  }
  return wrapped as ServiceImpl<S>;
}

/** connectionRefused: the error (or one of its causes) is a refused TCP connection, so no byte of the call was sent. */
function connectionRefused(error: unknown): boolean {
  let reason: unknown = error;
  for (let depth = 0; depth < 8 && typeof reason === "object" && reason !== null; depth++) {
    if ((reason as { code?: unknown }).code === "ECONNREFUSED") return true;
    reason = (reason as { cause?: unknown }).cause;
  }
  return false;
}
