import { type MessageInitShape, create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import {
  ClientLimitKind,
  EventSchema,
  LimitWindow,
  RotationReason,
  SessionEventKind,
  SubscriptionState,
} from "../../gen/authpool/v1/auth_pool_pb.js";
import { formatEvent } from "../../src/cli/event-line.js";

const time = { seconds: BigInt(Date.parse("2026-11-23T10:00:00Z") / 1000), nanos: 0 };
const at = "2026-11-23T10:00:00.000Z";

type Payload = MessageInitShape<typeof EventSchema>["payload"];

describe("formatEvent()", () => {
  it.each([
    {
      name: "a session",
      payload: {
        case: "session",
        value: { sessionId: "s1", subscriptionId: "sub1", kind: SessionEventKind.ALLOCATED },
      },
      line: `${at}  #7  session  allocated s1 on sub1`,
    },
    {
      name: "a session of a named client",
      payload: {
        case: "session",
        value: { sessionId: "s1", subscriptionId: "sub1", kind: SessionEventKind.ALLOCATED, client: "ci-bot" },
      },
      line: `${at}  #7  session  allocated s1 (client ci-bot) on sub1`,
    },
    {
      name: "a rotation",
      payload: {
        case: "rotation",
        value: {
          sessionId: "s1",
          fromSubscriptionId: "sub1",
          toSubscriptionId: "sub2",
          reason: RotationReason.COOLDOWN,
          detail: "",
        },
      },
      line: `${at}  #7  rotation  s1 sub1 → sub2 (cooldown)`,
    },
    {
      name: "a failover",
      payload: {
        case: "failover",
        value: { sessionId: "s1", provider: "anthropic-api", reason: "every subscription is paused" },
      },
      line: `${at}  #7  failover  s1 → anthropic-api: every subscription is paused`,
    },
    {
      name: "a failover a client limit made",
      payload: {
        case: "failover",
        value: {
          sessionId: "s2",
          provider: "anthropic-api",
          reason: "client ci-bot: holds 4 sessions, its most (maxSessions 4) (max_sessions limit)",
          client: "ci-bot",
          clientLimit: { client: "ci-bot", kind: ClientLimitKind.MAX_SESSIONS },
        },
      },
      line: `${at}  #7  failover  s2 (client ci-bot) → anthropic-api: client ci-bot: holds 4 sessions, its most (maxSessions 4) (max_sessions limit)`,
    },
    {
      name: "a client refused by its own limit",
      payload: {
        case: "clientLimited",
        value: {
          sessionId: "s3",
          client: "ci-bot",
          clientLimit: {
            client: "ci-bot",
            kind: ClientLimitKind.WEEKLY_USD,
            detail: "client ci-bot: spent $41.20 in 7 days, its limit is $40.00",
          },
        },
      },
      line: `${at}  #7  client_limited  s3 refused: client ci-bot: spent $41.20 in 7 days, its limit is $40.00 (weekly_usd limit)`,
    },
    {
      name: "a usage threshold",
      payload: {
        case: "usageThreshold",
        value: {
          subscriptionId: "sub1",
          value: 0.812,
          threshold: 0.8,
          basis: "weekly_budget",
          timeToExhaustion: { seconds: 7200n },
        },
      },
      line: `${at}  #7  usage_threshold  sub1 weekly_budget at 81.2% (threshold 80%), exhausted in 2h`,
    },
    {
      name: "a limit",
      payload: {
        case: "limitReached",
        value: {
          subscriptionId: "sub1",
          kind: "upstream",
          window: LimitWindow.FIVE_HOUR,
          resetsAt: { seconds: time.seconds + 3600n },
          estimated: true,
          message: "5-hour limit reached",
        },
      },
      line: `${at}  #7  limit_reached  sub1 upstream five_hour until 2026-11-23 11:00Z (estimated): 5-hour limit reached`,
    },
    {
      name: "a status change",
      payload: {
        case: "statusChanged",
        value: {
          subscriptionId: "sub1",
          from: SubscriptionState.AVAILABLE,
          to: SubscriptionState.DRAINING,
          reason: "drained by an operator",
        },
      },
      line: `${at}  #7  status_changed  sub1 available → draining: drained by an operator`,
    },
    {
      name: "a quiet rebalance",
      payload: { case: "rebalanceCompleted", value: { moves: [], dryRun: true, trigger: "on_demand" } },
      line: `${at}  #7  rebalance_completed  on_demand (dry run): no moves`,
    },
  ] satisfies { name: string; payload: Payload; line: string }[])("should render $name", ({ payload, line }) => {
    expect(formatEvent(create(EventSchema, { sequence: 7n, time, payload }))).toBe(line);
  });
});
