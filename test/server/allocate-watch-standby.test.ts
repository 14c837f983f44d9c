import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { type AllocateWatchResponse, createAuthPoolClient } from "../../src/client/index.js";
import { parseConfig } from "../../src/config/index.js";
import { startAuthPoolServer } from "../../src/server/start-server.js";
import { writeFakeLogins } from "../support/fake-login.js";
import { ManualClock } from "../support/manual-clock.js";

/**
 * AllocateWatch through a standby: forwarded to the leader as Allocate, so
 * the call waits in the leader's one queue and gets its answer (without
 * places: the standby relays unary calls only).
 */

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

describe("AllocateWatch on a standby", () => {
  it("waits in the leader's queue and streams the leader's answer", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "authpool-watch-standby-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const raw = {
      subscriptions: [
        { id: "solo", type: "claude-max", configDir: path.join(dir, "solo"), weeklyBudgetUsd: 1000, maxSessions: 1 },
      ],
      server: { host: "127.0.0.1", port: 0 },
      store: { uri: `sqlite://${path.join(dir, "authpool.sqlite")}` },
      cluster: { leaseTtlSeconds: 1, followPollMs: 20 },
    };
    const config = parseConfig(raw, path.join(dir, "config.json"));
    await writeFakeLogins(config.subscriptions, dir);
    const clock = new ManualClock("2026-11-23T10:00:00Z");
    const start = async () => {
      const server = await startAuthPoolServer({ config, clock, schedulerPollMs: 0 });
      cleanups.push(() => server.close());
      return server;
    };
    const leader = await start();
    const standby = await start();
    expect(standby.writer.role).toBe("standby");
    const viaLeader = createAuthPoolClient(leader.url);
    const viaStandby = createAuthPoolClient(standby.url);

    await viaLeader.allocate({ sessionId: "holder" });
    const messages: AllocateWatchResponse[] = [];
    const watching = (async () => {
      for await (const res of viaStandby.allocateWatch({ request: { sessionId: "w1", client: "c", wait: true } })) {
        messages.push(res);
      }
    })();
    const deadline = Date.now() + 10_000;
    while ((await viaLeader.getPoolStatus({})).waiting !== 1) {
      if (Date.now() > deadline) throw new Error("the forwarded call never waited on the leader");
      await new Promise((r) => setTimeout(r, 10));
    }
    await viaLeader.release({ sessionId: "holder" });
    await watching;
    expect(messages).toHaveLength(1);
    expect(messages[0]?.update).toMatchObject({
      case: "allocated",
      value: { sessionId: "w1", client: "c", outcome: { case: "subscription", value: { subscriptionId: "solo" } } },
    });
  });
});
