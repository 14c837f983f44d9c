import { setTimeout as delay } from "node:timers/promises";
import { Code, ConnectError, type ConnectRouter } from "@connectrpc/connect";
import { AuthPoolService } from "../../gen/authpool/v1/auth_pool_pb.js";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../../gen/grpc/health/v1/health_pb.js";

/** HEALTH_SERVICES are the names Health answers for; "" is the whole server. */
export const HEALTH_SERVICES: readonly string[] = ["", AuthPoolService.typeName];

/**
 * isServing is a plain function without change events, so Watch polls it.
 * Once a second is far below the cost of a call and quick enough for a load
 * balancer.
 */
const WATCH_POLL_MS = 1_000;

/**
 * registerHealth serves grpc.health.v1.Health on `router`: SERVING for the
 * names in HEALTH_SERVICES while `isServing()` is true, NOT_SERVING otherwise;
 * Check answers NOT_FOUND for other names, Watch SERVICE_UNKNOWN (as the gRPC
 * health spec asks) and streams each change until the client goes away.
 */
export function registerHealth(router: ConnectRouter, isServing: () => boolean): void {
  const statusOf = (service: string): Status | undefined => {
    if (!HEALTH_SERVICES.includes(service)) return undefined;
    return isServing() ? Status.SERVING : Status.NOT_SERVING;
  };
  router.service(Health, {
    check(req) {
      const status = statusOf(req.service);
      if (status === undefined) throw new ConnectError(`unknown service "${req.service}"`, Code.NotFound);
      return { status };
    },
    async *watch(req, ctx) {
      let last: Status | undefined;
      while (!ctx.signal.aborted) {
        const status = statusOf(req.service) ?? Status.SERVICE_UNKNOWN;
        if (status !== last) {
          last = status;
          yield { status };
        }
        try {
          await delay(WATCH_POLL_MS, undefined, { signal: ctx.signal });
        } catch {
          return; // aborted: the client left or the server is shutting down
        }
      }
    },
  });
}
