import { type MessageInitShape, create } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import {
  type AllocateRequest,
  AllocateRequestSchema,
  type AllocateResponseSchema,
  type AllocateWatchRequest,
  type AllocateWatchResponseSchema,
} from "../../gen/authpool/v1/auth_pool_pb.js";
import { type Clock, DEFAULT_CLIENT } from "../domain/index.js";
import type { PoolHandle } from "../runtime/pool-handle.js";
import type { AllocationWaits, WaitUpdate } from "./allocation-waits.js";
import { CALLER, type Caller } from "./bearer-auth.js";
import { clientLimitToProto } from "./client-to-proto.js";
import { percent, wholeMs } from "./proto-values.js";
import { orThrow } from "./rejection.js";
import { exclusionsToProto, priorityFromProto } from "./to-proto.js";
import {
  check,
  clientSchema,
  estimatedTokensSchema,
  maxWaitMsSchema,
  modelSchema,
  optionalIdSchema,
} from "./validate.js";

/**
 * Allocate and AllocateWatch: one code path. Both validate the request,
 * book it to the caller's client, submit it to the one writer (a grant is
 * durable before it is answered), and when nothing is free and the call
 * asked to wait, hold it in the fair queue (AllocationWaits) until a slot
 * opens, the wait runs out or the caller leaves. AllocateWatch also tells
 * the caller its place in the queue while it waits.
 */

/** AllocateDeps are what placing a call needs of the service. */
export interface AllocateDeps {
  writer: PoolHandle;
  clock: Clock;
  newSessionId: () => string;
  /** Holds calls that asked to wait (absent: waiting is off and they fall back at once). */
  waits?: AllocationWaits;
}

/** AllocateReply is Allocate's answer as the handlers return it. */
export type AllocateReply = MessageInitShape<typeof AllocateResponseSchema>;

/** WatchedWait is a waiting call's standing, with how long it has waited so far. */
export type WatchedWait = WaitUpdate & { waitedMs: number };

/**
 * allocate answers one Allocate; `watch`, when given, is told the call's
 * place in the queue and why it waits, whenever either changes.
 */
export async function allocate(
  req: AllocateRequest,
  ctx: HandlerContext,
  deps: AllocateDeps,
  watch?: (update: WatchedWait) => void,
): Promise<AllocateReply> {
  const { writer, clock } = deps;
  const sessionId = check(optionalIdSchema, req.sessionId, "session_id") || deps.newSessionId();
  check(estimatedTokensSchema, req.estimatedTokens, "estimated_tokens");
  check(modelSchema, req.model, "model");
  const client = callerClient(check(clientSchema, req.client, "client"), ctx.values.get(CALLER));
  const maxWaitMs = req.maxWait === undefined ? undefined : check(maxWaitMsSchema, wholeMs(req.maxWait), "max_wait");
  const wait = (req.wait || (maxWaitMs ?? 0) > 0) && deps.waits !== undefined;
  const command = {
    kind: "allocate" as const,
    sessionId,
    priority: priorityFromProto(req.priority),
    model: req.model,
    estimatedTokens: Number(req.estimatedTokens),
    client,
    ...(wait ? { wait } : {}),
  };
  const startedAt = clock.now();
  const first = orThrow(await writer.submit(command));
  // Unavailable only comes back to a call that waits: it joins the queue.
  const result =
    first.kind === "unavailable"
      ? await deps.waits!.wait(command, ctx.signal, {
          ...(maxWaitMs ? { maxWaitMs } : {}),
          first,
          ...(watch !== undefined
            ? { watch: (u: WaitUpdate) => watch({ ...u, waitedMs: clock.now() - startedAt }) }
            : {}),
        })
      : first;
  const waited = first.kind === "unavailable" ? clock.now() - startedAt : 0;
  const common = { sessionId, client, ...(waited > 0 ? { waited: durationFromMs(waited) } : {}) };
  if (result.kind === "fallback") {
    return {
      ...common,
      outcome: {
        case: "fallback",
        value: {
          provider: result.provider,
          reason: result.reason,
          exclusions: exclusionsToProto(result.exclusions),
          ...(result.clientLimit !== undefined ? { clientLimit: clientLimitToProto(result.clientLimit) } : {}),
        },
      },
    };
  }
  return {
    ...common,
    outcome: {
      case: "subscription",
      value: {
        subscriptionId: result.view.cfg.id,
        configDir: result.view.cfg.configDir,
        healthScore: result.view.health.score,
        weeklyPercentUsed: percent(result.view.weekly.value),
        fiveHourPercentUsed: percent(result.view.fiveHour.value),
        resumed: result.resumed,
        rotatedFrom: result.rotatedFrom ?? "",
      },
    },
  };
}

/**
 * allocateWatch answers one AllocateWatch: the call's place in the queue
 * while it waits (only the latest, if the caller reads slower than it
 * moves), then Allocate's answer; or Allocate's error as the stream's.
 */
export async function* allocateWatch(
  req: AllocateWatchRequest,
  ctx: HandlerContext,
  deps: AllocateDeps,
): AsyncGenerator<MessageInitShape<typeof AllocateWatchResponseSchema>> {
  let pending: WatchedWait | undefined;
  let wake: (() => void) | undefined;
  let settled = false;
  const answer = allocate(req.request ?? create(AllocateRequestSchema), ctx, deps, (update) => {
    pending = update;
    wake?.();
  });
  // Attached at once, so a refusal while the caller is not reading is never unhandled.
  const ended = answer.then(
    () => {
      settled = true;
    },
    () => {
      settled = true;
    },
  );
  for (;;) {
    // Once the answer is in, a place it had is news no longer.
    if (settled) break;
    if (pending !== undefined) {
      const u = pending;
      pending = undefined;
      yield {
        update: {
          case: "queued",
          value: {
            position: u.position,
            waiting: u.waiting,
            reason: u.reason,
            exclusions: exclusionsToProto(u.exclusions),
            waited: durationFromMs(Math.max(0, Math.floor(u.waitedMs))),
          },
        },
      };
      continue;
    }
    await Promise.race([ended, new Promise<void>((resolve) => (wake = resolve))]);
    wake = undefined;
  }
  yield { update: { case: "allocated", value: await answer } };
}

/**
 * callerClient is the client a call is booked to: what it asked for when
 * its token allows (no token, an admin token, an unnamed token), else the
 * token's own name; "default" when neither says.
 */
function callerClient(asked: string, caller: Caller): string {
  if (caller.bound && asked !== "" && asked !== caller.client) {
    throw new ConnectError(
      `client: this token is client ${caller.client}'s and may not act for client ${asked}`,
      Code.PermissionDenied,
    );
  }
  return asked || caller.client || DEFAULT_CLIENT;
}
