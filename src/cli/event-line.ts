import { toJsonString } from "@bufbuild/protobuf";
import {
  type Event,
  EventSchema,
  RotationReason,
  type RebalanceMove,
  SessionEventKind,
} from "../../gen/authpool/v1/auth_pool_pb.js";
import { DEFAULT_CLIENT } from "../domain/index.js";
import { formatDuration, formatTime, millisOf, secondsOf } from "./format-time.js";
import { limitName, stateName, windowName } from "./enum-names.js";

/** eventText is one event as `events` prints it: a readable line, or with json its protobuf JSON. */
export function eventText(event: Event, json: boolean): string {
  return json ? toJsonString(EventSchema, event) : formatEvent(event);
}

/**
 * formatEvent renders one event as a line: time, sequence, type, then the
 * fields a person scanning a log wants, e.g.
 * `2026-11-23T10:00:00.000Z  #12  session  allocated s1 on sub1`.
 */
export function formatEvent(event: Event): string {
  const ms = millisOf(event.time);
  const time = ms === undefined ? "-" : new Date(ms).toISOString();
  return `${time}  #${event.sequence}  ${describePayload(event)}`;
}

function describePayload(event: Event): string {
  const p = event.payload;
  switch (p.case) {
    case "session": {
      const kind = (SessionEventKind[p.value.kind] ?? "unknown").toLowerCase();
      const where = p.value.kind === SessionEventKind.ALLOCATED ? "on" : "from";
      return `session  ${kind} ${p.value.sessionId}${clientOf(p.value.client)} ${where} ${p.value.subscriptionId}`;
    }
    case "rotation":
      return `rotation  ${move(p.value)}`;
    case "failover":
      return `failover  ${p.value.sessionId}${clientOf(p.value.client)} → ${p.value.provider}: ${p.value.reason}`;
    case "clientLimited": {
      // The detail names the client ("client ci-bot: spent ..."), as the refusal's message does.
      const v = p.value;
      const limit = v.clientLimit;
      const what = limit === undefined ? `client ${v.client}` : `${limit.detail} (${limitName(limit.kind)} limit)`;
      return `client_limited  ${v.sessionId} refused: ${what}`;
    }
    case "usageThreshold": {
      const v = p.value;
      const exhaustion = secondsOf(v.timeToExhaustion);
      return (
        `usage_threshold  ${v.subscriptionId} ${v.basis} at ${pct(v.value)} (threshold ${pct(v.threshold)})` +
        (exhaustion > 0 ? `, exhausted in ${formatDuration(exhaustion * 1000)}` : "")
      );
    }
    case "limitReached": {
      const v = p.value;
      const resets = millisOf(v.resetsAt);
      return (
        `limit_reached  ${[v.subscriptionId, v.kind, windowName(v.window)].filter((w) => w !== "").join(" ")}` +
        (resets === undefined ? "" : ` until ${formatTime(resets)}${v.estimated ? " (estimated)" : ""}`) +
        (v.message === "" ? "" : `: ${v.message}`)
      );
    }
    case "statusChanged": {
      const v = p.value;
      return `status_changed  ${v.subscriptionId} ${stateName(v.from)} → ${stateName(v.to)}${v.reason === "" ? "" : `: ${v.reason}`}`;
    }
    case "cooldownCleared": {
      const v = p.value;
      const window = windowName(v.window);
      const what = v.throttle
        ? "throttle pause"
        : v.modelScope !== ""
          ? `${v.modelScope} cooldown`
          : window !== ""
            ? `${window} cooldown`
            : "cooldown";
      return `cooldown_cleared  ${v.subscriptionId} ${what} (${v.cause})${v.detail === "" ? "" : `: ${v.detail}`}`;
    }
    case "rebalanceCompleted": {
      const v = p.value;
      const moves = v.moves.length === 0 ? "no moves" : v.moves.map(move).join(", ");
      return `rebalance_completed  ${v.trigger}${v.dryRun ? " (dry run)" : ""}: ${moves}`;
    }
    default:
      return "unknown";
  }
}

/** move renders a session move: "s1 sub1 → sub2 (rebalance: detail)". */
export function move(
  m: Pick<RebalanceMove, "sessionId" | "fromSubscriptionId" | "toSubscriptionId" | "reason" | "detail">,
): string {
  const reason = (RotationReason[m.reason] ?? "unknown").toLowerCase();
  return `${m.sessionId} ${m.fromSubscriptionId} → ${m.toSubscriptionId} (${reason}${m.detail === "" ? "" : `: ${m.detail}`})`;
}

/** clientOf names a session's client after its id, " (client ci-bot)"; nothing for the default client (or none). */
function clientOf(client: string): string {
  return client === "" || client === DEFAULT_CLIENT ? "" : ` (client ${client})`;
}

function pct(fraction: number): string {
  return `${Math.round(fraction * 1000) / 10}%`;
}
