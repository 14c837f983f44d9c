import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { retryAfterMs } from "../../src/notify/retry.js";
import { signWebhook, verifyWebhook } from "../../src/notify/signature.js";
import { postWebhook, webhookTarget } from "../../src/notify/webhook-request.js";
import { createAuthPoolClient } from "../../src/client/index.js";
import { parseConfig } from "../../src/config/index.js";
import { startAuthPoolServer } from "../../src/server/start-server.js";
import { Receiver } from "../support/http-receiver.js";
import { ManualClock } from "../support/manual-clock.js";
import { type TestPool, collectingLogger, startTestPool, testConfigRaw } from "../support/test-server.js";

const SECRET = "s3cret";

let pool: TestPool | undefined;
let receiver: Receiver | undefined;
afterEach(async () => {
  await pool?.close();
  await receiver?.close();
  pool = undefined;
  receiver = undefined;
});

async function startWithReceiver(
  webhook: Record<string, unknown> = {},
): Promise<{ pool: TestPool; receiver: Receiver }> {
  receiver = new Receiver();
  const url = await receiver.listen();
  pool = await startTestPool({
    config: {
      notifications: {
        rules: [
          { type: "session", channels: ["webhook"] },
          { type: "failover", channels: ["webhook"] },
        ],
        webhook: { url, secret: SECRET, timeoutMs: 1000, maxAttempts: 5, retryPauseSeconds: 0.05, ...webhook },
      },
    },
    webhookBackoff: { baseMs: 5, maxMs: 50 },
  });
  return { pool, receiver };
}

/** sessionSeqs lists the sequences of the session events the pool has written, from its own feed. */
async function sessionSeqs(p: TestPool): Promise<string[]> {
  const out: string[] = [];
  for await (const e of p.server.feed.history(0, p.server.feed.headSeq)) {
    if (e.type === "session_allocated" || e.type === "session_released") out.push(String(e.seq));
  }
  return out;
}

describe("webhook signatures", () => {
  const body = '{"type":"session","sequence":"7"}';
  const now = 1_800_000_000;

  it("verifies what it signs", () => {
    const header = signWebhook(SECRET, now, body);
    expect(header).toMatch(/^t=1800000000,v1=[0-9a-f]{64}$/);
    expect(verifyWebhook(SECRET, header, body, { nowSeconds: now + 10 })).toBe(true);
    expect(verifyWebhook(SECRET, header, Buffer.from(body), { nowSeconds: now })).toBe(true);
  });

  it("rejects a tampered body, a wrong secret, a stale timestamp and junk", () => {
    const header = signWebhook(SECRET, now, body);
    expect(verifyWebhook(SECRET, header, body.replace("7", "8"), { nowSeconds: now })).toBe(false);
    expect(verifyWebhook("other", header, body, { nowSeconds: now })).toBe(false);
    expect(verifyWebhook(SECRET, header, body, { nowSeconds: now + 301 })).toBe(false);
    expect(verifyWebhook(SECRET, header, body, { nowSeconds: now + 3600, toleranceSeconds: 7200 })).toBe(true);
    expect(verifyWebhook(SECRET, header.replace(`t=${now}`, `t=${now + 1}`), body, { nowSeconds: now })).toBe(false);
    expect(verifyWebhook(SECRET, undefined, body)).toBe(false);
    expect(verifyWebhook(SECRET, "t=1,v1=zz", body, { nowSeconds: 1 })).toBe(false);
    expect(verifyWebhook(SECRET, `t=${now},v1=abcd`, body, { nowSeconds: now })).toBe(false);
  });

  it("accepts any of several v1 values (secret rotation)", () => {
    const good = signWebhook(SECRET, now, body).split(",")[1]!;
    expect(verifyWebhook(SECRET, `t=${now},v1=${"0".repeat(64)},${good}`, body, { nowSeconds: now })).toBe(true);
  });
});

describe("retryAfterMs()", () => {
  it("reads Retry-After as seconds or a date", () => {
    expect(retryAfterMs("3", 0)).toBe(3000);
    expect(retryAfterMs(new Date(10_000).toUTCString(), 4_000)).toBe(6000);
    expect(retryAfterMs("soon", 0)).toBeUndefined();
    expect(retryAfterMs(null, 0)).toBeUndefined();
  });
});

describe("postWebhook", () => {
  it("keeps the secret, the signature and URL credentials out of its errors", async () => {
    receiver = new Receiver();
    const url = await receiver.listen();
    let echoed = "";
    receiver.answer = () => ({ status: 400, body: echoed });
    const target = webhookTarget({ url: `${url}?token=tok123`, secret: SECRET, timeoutMs: 1000 });
    echoed = `bad signature, secret ${SECRET}`;
    const closing = new AbortController().signal;
    const out = await postWebhook(target, { id: "1", body: "{}" }, closing, 1_800_000_000_000);
    expect(out.kind).toBe("refused");
    const sig = receiver.requests[0]!.signature!;
    expect(verifyWebhook(SECRET, sig, "{}", { nowSeconds: 1_800_000_000 })).toBe(true);
    expect(receiver.requests[0]!.userAgent).toBe("auth-pool-webhook/1");

    receiver.answer = () => ({ status: 503, body: `you sent ${sig} to ${url}?token=tok123` });
    const again = await postWebhook(target, { id: "1", body: "{}" }, closing, 1_800_000_000_000);
    expect(again.kind).toBe("retry");
    for (const o of [out, again]) {
      const error = o.kind === "delivered" ? "" : o.error;
      expect(error).toContain(new URL(url).pathname);
      expect(error).not.toContain(SECRET);
      expect(error).not.toContain(sig.split("v1=")[1]);
      expect(error).not.toContain("tok123");
    }
  });

  it("honours Retry-After on 429 and refuses redirects", async () => {
    receiver = new Receiver();
    const url = await receiver.listen();
    const target = webhookTarget({ url, timeoutMs: 1000 });
    const closing = new AbortController().signal;
    receiver.answer = () => ({ status: 429, headers: { "retry-after": "2" } });
    expect(await postWebhook(target, { id: "1", body: "{}" }, closing)).toMatchObject({
      kind: "retry",
      retryAfterMs: 2000,
    });
    receiver.answer = () => ({ status: 302, headers: { location: "http://example.com/" } });
    expect(await postWebhook(target, { id: "1", body: "{}" }, closing)).toMatchObject({ kind: "refused", status: 302 });
    expect(receiver.requests[0]!.signature).toBeUndefined();
  });
});

describe("webhook delivery", () => {
  it("retries failures and delivers signed events in sequence order", async () => {
    const { pool: p, receiver: r } = await startWithReceiver();
    r.answer = (n) => (n < 2 ? 500 : 200);
    await p.grpc.allocate({ sessionId: "a" });
    await p.grpc.release({ sessionId: "a" });
    await r.until(() => r.delivered().length >= 2);

    const delivered = r.delivered();
    expect(delivered.map((d) => d.type)).toEqual(["session", "session"]);
    expect(delivered.map((d) => (d.event.session as { kind: string }).kind)).toEqual([
      "SESSION_EVENT_KIND_ALLOCATED",
      "SESSION_EVENT_KIND_RELEASED",
    ]);
    expect(delivered.map((d) => d.sequence)).toEqual(await sessionSeqs(p));
    expect(Number(delivered[0]!.sequence)).toBeLessThan(Number(delivered[1]!.sequence));
    // The first event was tried three times (two 500s), with the same id each time.
    expect(r.requests.map((q) => q.status)).toEqual([500, 500, 200, 200]);
    expect(new Set(r.requests.slice(0, 3).map((q) => q.id))).toEqual(new Set([delivered[0]!.sequence]));
    for (const q of r.requests) {
      expect(verifyWebhook(SECRET, q.signature, q.body)).toBe(true);
      expect(q.signature).toContain(`t=${q.timestamp},`);
      expect(q.id).toBe(JSON.parse(q.body).sequence);
    }
    const status = await p.grpc.getPoolStatus({});
    expect(status.notifications?.pending).toBe(0);
    expect(status.notifications?.deliveredSequence).toBe(BigInt(delivered[1]!.sequence));
    expect(status.notifications?.lastDeliveredAt).toBeDefined();
  });

  it("loses no event across a restart while the receiver is failing", async () => {
    const { pool: p, receiver: r } = await startWithReceiver();
    let up = false;
    r.answer = () => (up ? 200 : 503);
    await p.grpc.allocate({ sessionId: "a" });
    await p.grpc.allocate({ sessionId: "b" });
    await p.grpc.release({ sessionId: "a" });
    await r.until(() => r.requests.length >= 3);
    await p.restart();
    await p.grpc.allocate({ sessionId: "c" });
    const expected = await sessionSeqs(p);
    expect(expected).toHaveLength(4);
    up = true;
    await r.until(() => expected.every((s) => r.delivered().some((d) => d.sequence === s)));
    expect(r.requests.filter((q) => q.status === 503).length).toBeGreaterThanOrEqual(3);
  });

  it("shows failures in GetPoolStatus without ever showing the secret", async () => {
    const { pool: p, receiver: r } = await startWithReceiver();
    // A receiver that echoes what it got must not get the secret or a signature into status.
    r.answer = (_n, body) => ({ status: 503, body: `nope: secret=${SECRET} body=${body}` });
    await p.grpc.allocate({ sessionId: "a" });
    await p.grpc.allocate({ sessionId: "b" });
    await r.until(() => r.requests.length >= 2);
    await vi.waitFor(
      async () => {
        const s = await p.grpc.getPoolStatus({});
        expect(s.notifications?.lastError).toMatch(/HTTP 503/);
      },
      { timeout: 10_000, interval: 20 },
    );
    const status = await p.grpc.getPoolStatus({});
    const n = status.notifications!;
    expect(n.pending).toBeGreaterThanOrEqual(2);
    expect(n.lastError).toContain("/hook");
    expect(n.lastErrorAt).toBeDefined();
    const json = JSON.stringify(status, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v));
    expect(json).not.toContain(SECRET);
    const signature = r.requests[0]!.signature!.split("v1=")[1]!;
    expect(json).not.toContain(signature);
  });

  it("does not slow Allocate while the receiver hangs", async () => {
    const { pool: p, receiver: r } = await startWithReceiver({ timeoutMs: 60_000 });
    r.answer = () => "hang";
    await p.grpc.allocate({ sessionId: "s0" });
    await r.until(() => r.hanging >= 1);
    for (let i = 1; i < 50; i++) {
      await p.grpc.allocate({ sessionId: `s${i}` });
      if (i % 2 === 0) await p.grpc.release({ sessionId: `s${i}` });
    }
    // Every allocation completed while the first delivery was still held open.
    expect(r.hanging).toBe(1);
    expect(r.requests).toHaveLength(0);
    const status = await p.grpc.getPoolStatus({});
    expect(status.notifications?.pending).toBeGreaterThan(0);
    // close() aborts the request in flight rather than waiting out its 60 s timeout.
    const started = Date.now();
    await p.close();
    pool = undefined;
    expect(Date.now() - started).toBeLessThan(10_000);
  }, 30_000);

  it("pauses retryPauseSeconds after maxAttempts failures in a row, then tries the same event again", async () => {
    receiver = new Receiver();
    const url = await receiver.listen();
    const r = receiver;
    r.answer = (n) => (n < 3 ? 503 : 200);
    const lines: string[] = [];
    pool = await startTestPool({
      config: {
        notifications: {
          rules: [{ type: "session", channels: ["webhook"] }],
          webhook: { url, maxAttempts: 2, retryPauseSeconds: 0.2 },
        },
      },
      webhookBackoff: { baseMs: 1, maxMs: 5 },
      logLines: lines,
    });
    await pool.grpc.allocate({ sessionId: "a" });
    await r.until(() => r.delivered().length >= 1);
    expect(r.requests.map((q) => q.status)).toEqual([503, 503, 503, 200]);
    expect(new Set(r.requests.map((q) => q.id)).size).toBe(1);
    const pauses = lines
      .map((l) => JSON.parse(l) as { message: string; retryInMs?: number })
      .filter((l) => l.message === "webhook delivery failing, will retry");
    expect(pauses.map((l) => l.retryInMs)).toEqual([200]);
    // The pause is real time (a timer, not the pool's clock): the third attempt came at least that much later.
    expect(r.requests[2]!.at - r.requests[1]!.at).toBeGreaterThanOrEqual(190);
  });

  it("starts a new webhook at the head instead of sending history", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "authpool-webhook-"));
    try {
      const before = await startTestPool({ dir });
      await before.grpc.allocate({ sessionId: "old" });
      await before.close();
      receiver = new Receiver();
      const url = await receiver.listen();
      pool = await startTestPool({
        dir,
        config: { notifications: { rules: [{ type: "session", channels: ["webhook"] }], webhook: { url } } },
        webhookBackoff: { baseMs: 5, maxMs: 50 },
      });
      await pool.grpc.allocate({ sessionId: "new" });
      const r = receiver;
      await r.until(() => r.delivered().length >= 1);
      expect(r.delivered().map((d) => (d.event.session as { sessionId: string }).sessionId)).toEqual(["new"]);
      expect(r.requests[0]!.signature).toBeUndefined();
      await pool.close();
      pool = undefined;
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("never logs the secret, a signature or URL credentials", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "authpool-webhook-"));
    receiver = new Receiver();
    const url = await receiver.listen();
    const r = receiver;
    const lines: string[] = [];
    // Refuse the first event (echoing the secret and signature back), fail the rest.
    r.answer = (n, body) => ({ status: n === 0 ? 401 : 503, body: `secret ${SECRET} sig ${body}` });
    const config = parseConfig(
      {
        ...testConfigRaw(dir),
        notifications: {
          rules: [{ type: "session", channels: ["webhook"] }],
          webhook: {
            url: `${url}?token=tok123`,
            secret: SECRET,
            timeoutMs: 1000,
            maxAttempts: 2,
            retryPauseSeconds: 0.005,
          },
        },
      },
      path.join(dir, "config.json"),
    );
    const server = await startAuthPoolServer({
      config,
      clock: new ManualClock("2026-11-23T10:00:00Z"),
      schedulerPollMs: 0,
      logger: collectingLogger(lines),
      webhookBackoff: { baseMs: 1, maxMs: 5 },
    });
    try {
      const client = createAuthPoolClient(server.url);
      await client.allocate({ sessionId: "a" });
      await client.allocate({ sessionId: "b" });
      await r.until(() => r.requests.length >= 4);
    } finally {
      await server.close();
      await rm(dir, { recursive: true, force: true });
    }
    const text = lines.join("\n");
    expect(text).toContain("webhook refused event");
    expect(text).toContain("webhook delivery failing");
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain("tok123");
    for (const q of r.requests) expect(text).not.toContain(q.signature!.split("v1=")[1]!);
  });
});
