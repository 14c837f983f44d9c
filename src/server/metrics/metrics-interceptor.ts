import { Code, ConnectError, type Interceptor, type StreamRequest, type UnaryRequest } from "@connectrpc/connect";
import { type Counter, Histogram, type Registry } from "prom-client";
import { AuthPoolService } from "../../../gen/authpool/v1/auth_pool_pb.js";
import type { ClientLimitHit } from "../../domain/index.js";
import { rejectionOf } from "../rejection.js";
import { PREFIX } from "./exposition.js";

// Unary calls take milliseconds; event streams last minutes to hours, so the
// tail buckets are there to keep their durations from all landing in +Inf.
const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60, 600, 3600];

/**
 * RpcInstruments are the series metricsInterceptor feeds: the duration
 * histogram, the allocation counter (for outcome="exhausted") and the
 * client limit refusals (for outcome="refused"). Neither refusal has an
 * event of its own: a refused allocation writes none, or one
 * client_limited for a run of refusals.
 */
export interface RpcInstruments {
  rpcDuration: Histogram<"method" | "code">;
  allocations: Counter<"outcome">;
  /** Told of an allocation a client limit refused with RESOURCE_EXHAUSTED. */
  clientLimitRefused(hit: ClientLimitHit): void;
}

/** createRpcDuration registers rpc_duration_seconds, the histogram metricsInterceptor observes. */
export function createRpcDuration(registers: Registry[]): Histogram<"method" | "code"> {
  return new Histogram({
    name: `${PREFIX}rpc_duration_seconds`,
    help: "RPC duration by method and code (ok or the Connect code); for server streams, until the handler ends.",
    labelNames: ["method", "code"] as const,
    buckets: DURATION_BUCKETS,
    registers,
  });
}

/**
 * metricsInterceptor times each RPC into rpc_duration_seconds{method, code}
 * and counts Allocate (and AllocateWatch) calls answered RESOURCE_EXHAUSTED,
 * and among them those a client limit refused. Put it first in the
 * interceptor list so the time and code include authentication and the
 * error mapping of the interceptors after it.
 */
export function metricsInterceptor(metrics: RpcInstruments): Interceptor {
  return (next) => async (req) => {
    const done = startRpc(metrics, req);
    let res: Awaited<ReturnType<typeof next>>;
    try {
      res = await next(req);
    } catch (error) {
      done(error);
      throw error;
    }
    if (!res.stream) {
      done(undefined);
      return res;
    }
    return { ...res, message: timed(res.message, done) };
  };
}

/** The methods that allocate: their RESOURCE_EXHAUSTED is an allocation refused. */
const ALLOCATING = new Set(["Allocate", "AllocateWatch"]);

/** startRpc starts an RPC's clock; the function it returns records how the RPC ended. */
function startRpc(metrics: RpcInstruments, req: UnaryRequest | StreamRequest): (error: unknown) => void {
  const started = performance.now();
  const method = req.method.name;
  return (error) => {
    const code = error === undefined ? undefined : error instanceof ConnectError ? error.code : Code.Internal;
    metrics.rpcDuration.observe({ method, code: codeLabel(code) }, (performance.now() - started) / 1000);
    if (
      code === Code.ResourceExhausted &&
      ALLOCATING.has(method) &&
      req.service.typeName === AuthPoolService.typeName
    ) {
      metrics.allocations.inc({ outcome: "exhausted" });
      // Also when the call waited first: the queue's retry throws the same rejection.
      const hit = rejectionOf(error)?.clientLimit;
      if (hit !== undefined) metrics.clientLimitRefused(hit);
    }
  };
}

/** timed passes a server stream through and reports how it ended, once. */
async function* timed<T>(messages: AsyncIterable<T>, done: (error: unknown) => void): AsyncGenerator<T> {
  let ended = false;
  try {
    yield* messages;
    ended = true;
    done(undefined);
  } catch (error) {
    ended = true;
    done(error);
    throw error;
  } finally {
    // The protocol stopped reading early (the client went away).
    if (!ended) done(new ConnectError("stream abandoned", Code.Canceled));
  }
}

/** codeLabel is "ok" or the Connect code name in snake_case ("resource_exhausted"). */
function codeLabel(code: Code | undefined): string {
  if (code === undefined) return "ok";
  return (Code[code] ?? "unknown").replace(/[A-Z]/g, (c, i: number) => (i === 0 ? "" : "_") + c.toLowerCase());
}
