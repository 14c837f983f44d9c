import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { followEvents } from "../../src/cli/follow-events.js";
import { createAuthPoolClient } from "../../src/client/index.js";
import { type TestPool, startTestPool } from "../support/test-server.js";
import { freePort, waitFor } from "./cli-process.js";

/**
 * followEvents through an outage in which the port answers, but not as a
 * pool: each reconnect fails a new way (a reset, a closed stream), which
 * must still be one outage, said once, and its end once.
 */

// What each test started, stopped after it in reverse order.
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** FollowingPool is a pool on a fixed port (a restart comes back where the follower reconnects) and its store dir. */
interface FollowingPool {
  dir: string;
  config: Record<string, unknown>;
  pool: TestPool;
}

async function fixedPortPool(): Promise<FollowingPool> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "authpool-outage-"));
  const config = { server: { host: "127.0.0.1", port: await freePort() } };
  const fixture = { dir, config, pool: await startTestPool({ dir, config }) };
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  cleanups.push(() => fixture.pool.close());
  return fixture;
}

/** follow starts followEvents on the pool with a short backoff; abort the signal to stop it. */
function follow(url: string, overrides: { tail: boolean; stdout: TextCollector; stderr: TextCollector }) {
  const stop = new AbortController();
  const following = followEvents({
    client: createAuthPoolClient(url),
    target: { url },
    afterSequence: 0n,
    types: [],
    subscriptionIds: [],
    json: false,
    backoff: { initialMs: 20, maxMs: 100 },
    resumedAfterMs: 300,
    signal: stop.signal,
    ...overrides,
  });
  return { stop: () => stop.abort(), following };
}

/** TextCollector collects what is written to it. */
interface TextCollector {
  write(s: string): void;
  value(): string;
}

function text(): TextCollector {
  let value = "";
  return { write: (s) => void (value += s), value: () => value };
}

/** listenResetting takes the port and drops every connection at once, as a crashing proxy would. */
function listenResetting(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer((socket) => socket.resetAndDestroy());
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve(server));
  });
}

describe("followEvents() through an outage", () => {
  it("should say the stream was lost once and resumed once, however many reconnects fail", async () => {
    const fixture = await fixedPortPool();
    const url = fixture.pool.server.url;
    const stdout = text();
    const stderr = text();
    const { stop, following } = follow(url, { tail: false, stdout, stderr });
    await fixture.pool.grpc.allocate({ sessionId: "before" });
    await waitFor("the first event", () => stdout.value().includes("before"));

    await fixture.pool.close();
    const impostor = await listenResetting(Number(new URL(url).port));
    // Long enough for many reconnects at 20-100 ms.
    await new Promise((r) => setTimeout(r, 1000));
    await new Promise((r) => impostor.close(r));
    fixture.pool = await startTestPool({ dir: fixture.dir, config: fixture.config });
    await fixture.pool.grpc.allocate({ sessionId: "after" });
    await waitFor("the event after the outage", () => stdout.value().includes("after"), {
      detail: () => stderr.value(),
    });
    stop();
    expect(await following).toBe(0);

    const lines = stderr
      .value()
      .split("\n")
      .filter((l) => l !== "");
    expect(
      lines.filter((l) => l.includes("event stream lost")),
      stderr.value(),
    ).toHaveLength(1);
    expect(
      lines.filter((l) => l.includes("event stream resumed")),
      stderr.value(),
    ).toHaveLength(1);
    expect(lines).toHaveLength(2);
  });

  it("should say an idle pool is back once the stream has held, with no event to show it", async () => {
    const fixture = await fixedPortPool();
    const stderr = text();
    const { stop, following } = follow(fixture.pool.server.url, { tail: true, stdout: text(), stderr });
    await new Promise((r) => setTimeout(r, 200));
    await fixture.pool.restart();
    await waitFor("the resumed line", () => stderr.value().includes("event stream resumed"), {
      detail: () => stderr.value(),
    });
    stop();
    await following;
    expect(stderr.value().match(/event stream lost/g)).toHaveLength(1);
  });
});
