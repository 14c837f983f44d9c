import http from "node:http";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { create, toBinary } from "@bufbuild/protobuf";
import { afterEach, describe, expect, it } from "vitest";
import { StreamEventsRequestSchema } from "../../gen/authpool/v1/auth_pool_pb.js";
import { type AuthPoolClient, createAuthPoolClient } from "../../src/client/index.js";
import { type TestPool, startTestPool } from "../support/test-server.js";

/**
 * Consumers that do not keep up must not slow the pool down: a webhook
 * endpoint that hangs or answers very slowly, and event-stream subscribers
 * that never read. Allocate + Release is timed in the same test with and
 * without them, and the ratio of the medians must stay below 3 (no
 * absolute times: machines differ, ratios much less).
 */

type Mode = "fast" | "hang" | "slow";

/** Hook is a webhook receiver whose behaviour the test switches. */
class Hook {
  mode: Mode = "fast";
  received = 0;
  hanging = 0;
  private readonly held = new Set<http.ServerResponse>();
  private readonly server = http.createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      this.received++;
      if (this.mode === "fast") res.writeHead(200).end();
      else if (this.mode === "hang") {
        this.hanging++;
        this.held.add(res);
        req.socket.once("close", () => {
          this.hanging--;
          this.held.delete(res);
        });
      } else {
        // Headers after 2 s, then a body that trickles.
        setTimeout(() => {
          if (res.destroyed) return;
          res.writeHead(200, { "content-type": "text/plain" });
          const drip = setInterval(() => (res.destroyed ? clearInterval(drip) : res.write(".")), 500);
          res.once("close", () => clearInterval(drip));
        }, 2000);
      }
    });
  });

  /** dropHung cuts the connections of requests left hanging (the sender sees a network error and retries). */
  dropHung(): void {
    for (const res of this.held) res.socket?.destroy();
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hook`;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** stalledGrpcSubscriber opens StreamEvents over HTTP/2 and never reads a byte of the answer. */
function stalledGrpcSubscriber(url: string): () => void {
  const session = http2.connect(url);
  session.on("error", () => {});
  const req = session.request({
    ":method": "POST",
    ":path": "/authpool.v1.AuthPoolService/StreamEvents",
    "content-type": "application/grpc",
    te: "trailers",
  });
  req.on("error", () => {});
  const message = toBinary(StreamEventsRequestSchema, create(StreamEventsRequestSchema, { afterSequence: 0n }));
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt32BE(message.length, 1);
  Buffer.from(message).copy(frame, 5);
  req.end(frame);
  req.pause();
  return () => session.destroy();
}

/** stalledConnectSubscriber opens StreamEvents with the Connect protocol over HTTP/1.1 and never reads. */
function stalledConnectSubscriber(url: string): () => void {
  const body = Buffer.from(JSON.stringify({ afterSequence: "0" }));
  const envelope = Buffer.alloc(5 + body.length);
  envelope.writeUInt32BE(body.length, 1);
  body.copy(envelope, 5);
  const req = http.request(`${url}/authpool.v1.AuthPoolService/StreamEvents`, {
    method: "POST",
    headers: { "content-type": "application/connect+json", "connect-protocol-version": "1" },
  });
  req.on("error", () => {});
  req.on("response", (res) => res.pause());
  req.end(envelope);
  return () => req.destroy();
}

/** timeCalls runs Allocate + Release n times in a row and returns each pair's time in ms. */
async function timeCalls(client: AuthPoolClient, label: string, n: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const started = performance.now();
    const res = await client.allocate({ sessionId: `${label}-${i}` });
    if (res.outcome.case !== "subscription") throw new Error(`${label}-${i}: ${res.outcome.case}`);
    await client.release({ sessionId: `${label}-${i}` });
    times.push(performance.now() - started);
  }
  return times;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

let pool: TestPool | undefined;
let hook: Hook | undefined;
const stops: (() => void)[] = [];
afterEach(async () => {
  // Stalled clients first: otherwise their unread answers hold shutdown for its whole grace period.
  for (const stop of stops.splice(0)) stop();
  await pool?.close();
  await hook?.close();
  pool = undefined;
  hook = undefined;
});

describe("slow consumers", () => {
  it("leave Allocate + Release latency alone: a hanging or very slow webhook, subscribers that never read", async () => {
    hook = new Hook();
    const url = await hook.listen();
    pool = await startTestPool({
      config: {
        notifications: {
          rules: [{ type: "session", channels: ["webhook"] }],
          // A timeout far beyond the test: a hanging endpoint really hangs.
          webhook: { url, timeoutMs: 600_000, maxAttempts: 3 },
        },
      },
      webhookBackoff: { baseMs: 5, maxMs: 50 },
    });
    const client = createAuthPoolClient(pool.server.url);
    const N = 120;
    await timeCalls(client, "warm", 40);

    const baseline = median(await timeCalls(client, "base", N));
    expect(hook.received).toBeGreaterThan(0);

    // The endpoint hangs; four subscribers (gRPC over HTTP/2, Connect over
    // HTTP/1.1) never read; a generated-client stream is never iterated.
    hook.mode = "hang";
    for (let i = 0; i < 3; i++) stops.push(stalledGrpcSubscriber(pool.server.url));
    stops.push(stalledConnectSubscriber(pool.server.url));
    const ignored = createAuthPoolClient(pool.server.url).streamEvents({ afterSequence: 0n });
    const abandoned = ignored[Symbol.asyncIterator]();
    void abandoned.next().catch(() => undefined);
    const hung = median(await timeCalls(client, "hang", N));
    expect(hook.hanging).toBe(1);

    // The endpoint answers, very slowly.
    hook.mode = "slow";
    const receivedBeforeSlow = hook.received;
    hook.dropHung();
    const slow = median(await timeCalls(client, "slow", N));

    const status = await client.getPoolStatus({});
    // The webhook is stuck far behind; the pool is not.
    expect(status.notifications?.pending).toBeGreaterThan(100);
    expect(status.totalSessions).toBe(0);
    // The dispatcher retried after the dropped connection and met the slow endpoint.
    expect(hook.received).toBeGreaterThan(receivedBeforeSlow);
    const report = `baseline ${baseline.toFixed(2)} ms, hanging webhook + stalled subscribers ${hung.toFixed(2)} ms, slow webhook ${slow.toFixed(2)} ms`;
    expect(hung / baseline, report).toBeLessThan(3);
    expect(slow / baseline, report).toBeLessThan(3);
    if (process.env.AUTHPOOL_TEST_FIGURES !== undefined) console.info(report);
  });
});
