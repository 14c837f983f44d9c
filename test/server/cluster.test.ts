import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterEach, describe, expect, it } from "vitest";
import { InstanceRole } from "../../gen/authpool/v1/auth_pool_pb.js";
import { Health, HealthCheckResponse_ServingStatus } from "../../gen/grpc/health/v1/health_pb.js";
import { type AuthPoolClient, createAuthPoolClient } from "../../src/client/index.js";
import { parseConfig } from "../../src/config/index.js";
import { type AuthPoolServer, startAuthPoolServer } from "../../src/server/start-server.js";
import { ManualClock } from "../support/manual-clock.js";
import { freshPostgresUri } from "../support/postgres.js";
import { testConfigRaw } from "../support/test-server.js";

/**
 * Two servers on one store (a SQLite file, a PostgreSQL schema), as a
 * second `authpool serve` started by mistake or a rolling update would
 * run them: the second stands by and says who leads, every call works
 * through either (writes forwarded, reads from the replica, the same event
 * sequence), a graceful stop hands the lease over at once, and every
 * acknowledged call is there after both restart.
 */

const clock = new ManualClock("2026-11-23T10:00:00Z");
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

type Backend = "sqlite" | "postgres";

async function storeUri(backend: Backend, dir: string): Promise<string> {
  if (backend === "sqlite") return `sqlite://${path.join(dir, "authpool.sqlite")}`;
  const fresh = await freshPostgresUri();
  cleanups.push(fresh.drop);
  return fresh.uri;
}

async function cluster(backend: Backend) {
  const dir = await mkdtemp(path.join(os.tmpdir(), "authpool-cluster-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const uri = await storeUri(backend, dir);
  const config = parseConfig(
    { ...testConfigRaw(dir), store: { uri }, cluster: { leaseTtlSeconds: 1, followPollMs: 20 } },
    path.join(dir, "config.json"),
  );
  const start = async (): Promise<AuthPoolServer> => {
    const server = await startAuthPoolServer({ config, clock, schedulerPollMs: 0 });
    cleanups.push(() => server.close());
    return server;
  };
  return { start };
}

async function until(cond: () => Promise<boolean> | boolean, what: string, ms = 5_000): Promise<number> {
  const started = Date.now();
  while (!(await cond())) {
    if (Date.now() - started > ms) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return Date.now() - started;
}

describe.each(["sqlite", "postgres"] as const)("two instances on one %s store", (backend) => {
  it("the second stands by, forwards writes, serves reads, and nothing acknowledged is lost", async () => {
    const c = await cluster(backend);
    const a = await c.start();
    const b = await c.start();
    expect(a.writer.role).toBe("leader");
    expect(b.writer.role).toBe("standby");
    const viaA = createAuthPoolClient(a.url);
    const viaB = createAuthPoolClient(b.url);
    const viaBConnect = createAuthPoolClient(b.url, { protocol: "connect", httpVersion: "1.1" });

    const statusB = await viaB.getPoolStatus({});
    expect(statusB.cluster).toMatchObject({
      role: InstanceRole.STANDBY,
      instanceId: b.instanceId,
      leaderId: a.instanceId,
      leaderAddress: a.url.replace(/\/$/, ""),
    });
    expect((await viaA.getPoolStatus({})).cluster?.role).toBe(InstanceRole.LEADER);

    // Writes through the standby, over gRPC and over Connect/HTTP 1.1.
    const granted: string[] = [];
    for (let i = 0; i < 6; i++) {
      const client = i % 2 === 0 ? viaB : viaBConnect;
      const res = await client.allocate({ sessionId: `s${i}` });
      expect(res.outcome.case).toBe("subscription");
      granted.push(`s${i}`);
    }
    // A retried report (same request id) through the other instance counts once.
    const report = {
      sessionId: "s0",
      requestId: "r-1",
      source: { case: "usage" as const, value: { costUsd: 1.5, inputTokens: 100n, outputTokens: 10n } },
    };
    await viaB.reportUsage(report);
    await viaA.reportUsage(report);
    // Errors come back as the leader gave them.
    const err = await viaB.release({ sessionId: "" }).catch((e: unknown) => e);
    expect(ConnectError.from(err).code).toBe(Code.InvalidArgument);

    // The standby's replica catches up: same sessions, same event sequence.
    await until(() => b.writer.durableSeq === a.writer.durableSeq, "the standby follows the leader");
    const sessionsOf = async (client: AuthPoolClient) =>
      (await client.getPoolStatus({ includeSessions: true })).sessions.map((s) => s.sessionId).sort();
    expect(await sessionsOf(viaB)).toEqual(granted);
    const spentB = (await viaB.getPoolStatus({})).subscriptions.reduce((sum, s) => sum + s.weeklyUsedUsd, 0);
    expect(spentB).toBeCloseTo(1.5, 9);
    // History and live events alike: what the stream holds within half a second of asking.
    const seqs = async (client: AuthPoolClient) => {
      const out: bigint[] = [];
      const ac = new AbortController();
      const timer = setTimeout(() => ac.abort(), 500);
      try {
        for await (const res of client.streamEvents({ afterSequence: 0n }, { signal: ac.signal }))
          out.push(res.event!.sequence);
      } catch (error) {
        if (ConnectError.from(error).code !== Code.Canceled) throw error;
      } finally {
        clearTimeout(timer);
      }
      return out;
    };
    const fromA = await seqs(viaA);
    expect(fromA.length).toBeGreaterThanOrEqual(6);
    expect(await seqs(viaB)).toEqual(fromA);

    // Health: the standby answers every call, so it is SERVING.
    const health = createClient(Health, createGrpcTransport({ baseUrl: b.url }));
    expect((await health.check({})).status).toBe(HealthCheckResponse_ServingStatus.SERVING);
    // Metrics from the replica: the same event sequence as the leader's.
    const scrape = async (url: string) => {
      const text = await (await fetch(new URL("/metrics", url))).text();
      return Number(/^authpool_event_sequence (\d+)/m.exec(text)?.[1]);
    };
    expect(await scrape(b.url)).toBe(a.writer.durableSeq);
    expect(await scrape(a.url)).toBe(a.writer.durableSeq);

    // A graceful stop hands the lease over at once: no waiting for it to expire.
    const stoppedAt = Date.now();
    await a.close();
    const waited = await until(() => b.writer.role === "leader", "the standby takes over after a graceful stop");
    expect(Date.now() - stoppedAt).toBeLessThan(1_000 + 1_000);
    expect(waited).toBeLessThan(1_000);
    const after = await viaB.allocate({ sessionId: "s-after" });
    expect(after.outcome.case).toBe("subscription");
    granted.push("s-after");

    // Both stopped and started again: every acknowledged call is there.
    await b.close();
    const c2 = await c.start();
    expect(c2.writer.role).toBe("leader");
    const viaC = createAuthPoolClient(c2.url);
    expect(await sessionsOf(viaC)).toEqual([...granted].sort());
    const spent = (await viaC.getPoolStatus({})).subscriptions.reduce((sum, s) => sum + s.weeklyUsedUsd, 0);
    expect(spent).toBeCloseTo(1.5, 9);
  });
});
