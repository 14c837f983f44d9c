import { type MessageInitShape, create } from "@bufbuild/protobuf";
import { durationFromMs, timestampFromMs } from "@bufbuild/protobuf/wkt";
import { type Event, EventSchema, EventType, SessionEventKind } from "../../gen/authpool/v1/auth_pool_pb.js";
import { type PoolEvent, subscriptionsOf } from "../domain/index.js";
import { DEFAULT_CLIENT } from "../domain/index.js";
import { clientLimitToProto } from "./client-to-proto.js";
import { exclusionsToProto, moveToProto, rotationReasonToProto, statusToProto, windowToProto } from "./to-proto.js";

/**
 * Which domain events subscribers see, and as what. Bookkeeping events
 * (usage recorded, upstream readings, pauses, pruning...) change state but
 * are not part of the public stream; their effects show up as the public
 * events they cause (a status change, a threshold crossed).
 */

/** PublicEvent is a domain event as subscribers see it, with what filters need. */
export interface PublicEvent {
  type: EventType;
  subscriptionIds: string[];
  message: Event;
}

/** toPublicEvent maps a domain event; undefined for bookkeeping events. */
export function toPublicEvent(e: PoolEvent): PublicEvent | undefined {
  const base = { sequence: BigInt(e.seq), time: timestampFromMs(e.at) };
  const make = (type: EventType, payload: MessageInitShape<typeof EventSchema>["payload"]): PublicEvent => ({
    type,
    subscriptionIds: subscriptionsOf(e),
    message: create(EventSchema, { ...base, payload }),
  });
  switch (e.type) {
    case "session_rotated":
      return make(EventType.ROTATION, {
        case: "rotation",
        value: {
          sessionId: e.sessionId,
          fromSubscriptionId: e.from,
          toSubscriptionId: e.to,
          reason: rotationReasonToProto[e.reason],
          detail: e.detail,
        },
      });
    case "fallback_used":
      return make(EventType.FAILOVER, {
        case: "failover",
        value: {
          sessionId: e.sessionId,
          provider: e.provider,
          reason: e.reason,
          exclusions: exclusionsToProto(e.exclusions),
          client: e.client ?? DEFAULT_CLIENT,
          ...(e.clientLimit !== undefined ? { clientLimit: clientLimitToProto(e.clientLimit) } : {}),
        },
      });
    case "client_limited":
      return make(EventType.CLIENT_LIMITED, {
        case: "clientLimited",
        value: {
          sessionId: e.sessionId,
          client: e.clientLimit.client,
          clientLimit: clientLimitToProto(e.clientLimit),
        },
      });
    case "usage_threshold":
      return make(EventType.USAGE_THRESHOLD, {
        case: "usageThreshold",
        value: {
          subscriptionId: e.subscriptionId,
          value: e.value,
          threshold: e.threshold,
          basis: e.basis,
          timeToExhaustion: e.timeToExhaustionMs === undefined ? undefined : durationFromMs(e.timeToExhaustionMs),
        },
      });
    case "limit_reached":
      return make(EventType.LIMIT_REACHED, {
        case: "limitReached",
        value: {
          subscriptionId: e.subscriptionId,
          kind: e.kind,
          window: windowToProto[e.window],
          resetsAt: e.resetsAt === undefined ? undefined : timestampFromMs(e.resetsAt),
          estimated: e.estimated,
          message: e.message,
        },
      });
    case "status_changed":
      return make(EventType.STATUS_CHANGED, {
        case: "statusChanged",
        value: {
          subscriptionId: e.subscriptionId,
          from: statusToProto[e.from],
          to: statusToProto[e.to],
          reason: e.reason,
        },
      });
    case "rebalance_completed":
      return make(EventType.REBALANCE_COMPLETED, {
        case: "rebalanceCompleted",
        value: {
          trigger: e.trigger,
          dryRun: false,
          moves: e.moves.map(moveToProto),
        },
      });
    case "session_allocated":
      return make(EventType.SESSION, {
        case: "session",
        value: {
          sessionId: e.sessionId,
          subscriptionId: e.subscriptionId,
          kind: SessionEventKind.ALLOCATED,
          client: e.client ?? DEFAULT_CLIENT,
        },
      });
    case "cooldown_cleared":
      return make(EventType.COOLDOWN_CLEARED, {
        case: "cooldownCleared",
        value: {
          subscriptionId: e.subscriptionId,
          window: windowToProto[e.window],
          modelScope: e.modelScope ?? "",
          cause: e.cause,
          detail: e.detail,
          throttle: e.target === "throttle",
        },
      });
    case "session_released":
      return make(EventType.SESSION, {
        case: "session",
        value: {
          sessionId: e.sessionId,
          subscriptionId: e.subscriptionId,
          kind: e.reason === "expired" ? SessionEventKind.EXPIRED : SessionEventKind.RELEASED,
        },
      });
    default:
      return undefined;
  }
}

/** EventFilter selects events by type and subscription (empty lists match all). */
export interface EventFilter {
  types: ReadonlySet<EventType>;
  subscriptionIds: ReadonlySet<string>;
}

/** matches applies a filter; an event about no subscription (a failover) matches only without a subscription filter. */
export function matches(e: PublicEvent, filter: EventFilter): boolean {
  if (filter.types.size > 0 && !filter.types.has(e.type)) return false;
  if (filter.subscriptionIds.size > 0 && !e.subscriptionIds.some((id) => filter.subscriptionIds.has(id))) return false;
  return true;
}
