import { describe, expect, it } from "vitest";
import type { NotificationRule } from "../../src/config/index.js";
import type { PoolEvent } from "../../src/domain/index.js";
import { ruleMatches } from "../../src/notify/rules.js";
import { webhookChannel } from "../../src/notify/webhook-channel.js";

/** A client refused by its own limit (client_limited) goes where a `client_limited` rule sends it, and nowhere else. */

const refused: PoolEvent = {
  type: "client_limited",
  seq: 42,
  at: Date.parse("2026-11-23T10:00:00Z"),
  sessionId: "s9",
  clientLimit: { client: "ci", kind: "weekly_usd", detail: "client ci: spent $41.20 in 7 days, its limit is $40.00" },
};

const hook = { url: "http://127.0.0.1:9/hook", timeoutMs: 1000, maxAttempts: 1, retryPauseSeconds: 1 };

const rule = (type: NotificationRule["type"]): NotificationRule => ({ type, channels: ["webhook"], enabled: true });

describe("client_limited notifications", () => {
  it("are routed by a client_limited rule only", () => {
    expect(ruleMatches(rule("client_limited"), refused, "webhook")).toBe(true);
    expect(ruleMatches(rule("failover"), refused, "webhook")).toBe(false);
    expect(ruleMatches({ ...rule("client_limited"), enabled: false }, refused, "webhook")).toBe(false);
  });

  it("reach the webhook as {type: client_limited, sequence, event} naming the client and the limit", () => {
    const delivery = webhookChannel(hook, [rule("client_limited")]).render(refused);
    expect(delivery?.id).toBe("42");
    expect(JSON.parse(delivery!.body)).toEqual({
      type: "client_limited",
      sequence: "42",
      event: {
        sequence: "42",
        time: "2026-11-23T10:00:00Z",
        clientLimited: {
          sessionId: "s9",
          client: "ci",
          clientLimit: {
            client: "ci",
            kind: "CLIENT_LIMIT_KIND_WEEKLY_USD",
            detail: "client ci: spent $41.20 in 7 days, its limit is $40.00",
          },
        },
      },
    });
    expect(webhookChannel(hook, [rule("failover")]).render(refused)).toBeUndefined();
  });
});
