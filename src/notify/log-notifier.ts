import { toJson } from "@bufbuild/protobuf";
import { EventSchema, EventType } from "../../gen/authpool/v1/auth_pool_pb.js";
import type { NotificationRule } from "../config/index.js";
import type { Logger } from "../runtime/logger.js";
import type { PoolHandle } from "../runtime/pool-handle.js";
import { toPublicEvent } from "../server/event-to-proto.js";
import { routed } from "./rules.js";

/**
 * startLogNotifier writes a structured log line for each durable event a
 * rule routes to the "log" channel. Logs are best effort and live only (a
 * restart does not replay them); webhooks are the durable channel.
 */
export function startLogNotifier(writer: PoolHandle, rules: readonly NotificationRule[], logger: Logger): () => void {
  if (!rules.some((r) => r.enabled && r.channels.includes("log"))) return () => {};
  return writer.subscribe((record) => {
    for (const e of record.events) {
      if (!routed(rules, e, "log")) continue;
      const pub = toPublicEvent(e);
      if (pub === undefined) continue;
      logger.info("event", { type: EventType[pub.type]?.toLowerCase(), event: toJson(EventSchema, pub.message) });
    }
  });
}
