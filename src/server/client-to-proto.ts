import type { MessageInitShape } from "@bufbuild/protobuf";
import {
  ClientLimitKind,
  type ClientLimitSchema,
  type ClientStatusSchema,
} from "../../gen/authpool/v1/auth_pool_pb.js";
import type { ClientLimitHit, PoolSettings, PoolState } from "../domain/index.js";
import { usd } from "./proto-values.js";
import {
  EXTERNAL_CLIENT,
  FIVE_HOURS_MS,
  HOUR_MS,
  WEEK_MS,
  clientLimitHit,
  clientSettingsOf,
  clientSpend,
  floorHour,
} from "../domain/index.js";

const limitKindToProto: Record<ClientLimitHit["kind"], ClientLimitKind> = {
  weekly_usd: ClientLimitKind.WEEKLY_USD,
  five_hour_usd: ClientLimitKind.FIVE_HOUR_USD,
  max_sessions: ClientLimitKind.MAX_SESSIONS,
  share: ClientLimitKind.SHARE,
  model: ClientLimitKind.MODEL,
};

/** clientLimitToProto names the client limit a call ran into. */
export function clientLimitToProto(hit: ClientLimitHit): MessageInitShape<typeof ClientLimitSchema> {
  return { client: hit.client, kind: limitKindToProto[hit.kind], detail: hit.detail };
}

/**
 * clientsToProto lists every configured client and every client that holds
 * sessions or spent in the last 7 days, with its limits and standing.
 */
export function clientsToProto(
  state: PoolState,
  settings: PoolSettings,
  now: number,
  waiting: (client: string) => number,
): MessageInitShape<typeof ClientStatusSchema>[] {
  const names = new Set<string>([
    ...Object.keys(settings.clients ?? {}),
    ...state.clientSessions.keys(),
    ...state.clientSpend.keys(),
  ]);
  names.delete(EXTERNAL_CLIENT);
  const end = floorHour(now) + HOUR_MS;
  return [...names].sort().map((name) => {
    const c = clientSettingsOf(settings, name);
    const hit = clientLimitHit(state, settings, name, "", now);
    return {
      name,
      sessions: state.clientSessions.get(name) ?? 0,
      maxSessions: c?.maxSessions ?? 0,
      weeklyUsd: usd(clientSpend(state, name, end - WEEK_MS, end)),
      weeklyLimitUsd: c?.weeklyUsd ?? 0,
      fiveHourUsd: usd(clientSpend(state, name, now - FIVE_HOURS_MS, end)),
      fiveHourLimitUsd: c?.fiveHourUsd ?? 0,
      share: c?.share ?? 0,
      weight: c?.weight ?? 1,
      waiting: waiting(name),
      ...(hit !== undefined ? { limitedBy: clientLimitToProto(hit) } : {}),
    };
  });
}
