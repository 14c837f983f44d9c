import { mkdtemp, rm } from "node:fs/promises";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type ConnectRouter, type ServiceImpl } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { afterEach, describe, expect, it } from "vitest";
import {
  AllocateRequestSchema,
  type AllocateWatchRequest,
  AllocateWatchRequestSchema,
  AuthPoolService,
} from "../../gen/authpool/v1/auth_pool_pb.js";
import { createLeaderClient } from "../../src/server/leader-client.js";
import { makeTestCertificate } from "../support/tls-cert.js";
import { collect, queued } from "../support/watch-stream.js";

/**
 * The standby's client for forwarded calls, against a stand-in leader (a
 * Connect router on a plain HTTP/2 server): answers and errors come back as
 * the leader gave them, headers go through, a refused connection is told
 * apart, and a cancelled call ends at once.
 */

const servers: (http2.Http2Server | http2.Http2SecureServer)[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await stop(s);
});

/** stop closes a stand-in leader and the client's sessions to it (a client keeps its idle connection open). */
function stop(server: http2.Http2Server | http2.Http2SecureServer): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  for (const session of sessionsOf.get(server) ?? []) session.destroy();
  return closed;
}

const sessionsOf = new WeakMap<http2.Http2Server | http2.Http2SecureServer, Set<http2.ServerHttp2Session>>();

/**
 * leaderAt starts a stand-in leader whose allocate handler is `allocate`
 * (over TLS with `tls`); resolves with its base URL.
 */
async function leaderAt(
  allocate: (sessionId: string, header: Headers) => Promise<{ subscriptionId: string }>,
  tls?: { cert: Buffer; key: Buffer },
): Promise<string> {
  return serve(
    (router) =>
      router.rpc(AuthPoolService.method.allocate, async (req, ctx) => {
        const { subscriptionId } = await allocate(req.sessionId, ctx.requestHeader);
        return { outcome: { case: "subscription", value: { subscriptionId } } };
      }),
    tls,
  );
}

/** watchLeaderAt starts a stand-in leader whose AllocateWatch handler is `watch`; resolves with its base URL. */
function watchLeaderAt(watch: ServiceImpl<typeof AuthPoolService>["allocateWatch"]): Promise<string> {
  return serve((router) => router.rpc(AuthPoolService.method.allocateWatch, watch));
}

/** serve starts a plain HTTP/2 server (TLS with `tls`) with `routes`; resolves with its base URL. */
async function serve(routes: (router: ConnectRouter) => void, tls?: { cert: Buffer; key: Buffer }): Promise<string> {
  const handler = connectNodeAdapter({ routes });
  const server = tls === undefined ? http2.createServer(handler) : http2.createSecureServer(tls, handler);
  servers.push(server);
  const sessions = new Set<http2.ServerHttp2Session>();
  sessionsOf.set(server, sessions);
  server.on("session", (session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `${tls === undefined ? "http" : "https"}://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const request = create(AllocateRequestSchema, { sessionId: "s1", model: "sonnet" });

describe("createLeaderClient()", () => {
  it("should return the leader's reply and pass the given headers", async () => {
    let seen: string | null = null;
    const url = await leaderAt(async (sessionId, header) => {
      seen = header.get("x-authpool-forwarded");
      return { subscriptionId: `sub-for-${sessionId}` };
    });
    const client = createLeaderClient();
    const reply = await client.unary(
      url,
      AuthPoolService.method.allocate,
      request,
      new Headers({ "x-authpool-forwarded": "b" }),
      new AbortController().signal,
    );
    expect(reply.outcome).toMatchObject({ case: "subscription", value: { subscriptionId: "sub-for-s1" } });
    expect(seen).toBe("b");
    // The second call reuses the connection and still works.
    const again = await client.unary(
      url,
      AuthPoolService.method.allocate,
      request,
      new Headers(),
      new AbortController().signal,
    );
    expect(again.outcome.case).toBe("subscription");
  });

  it("should call an https leader whose certificate the given CA vouches for", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "authpool-leader-tls-"));
    try {
      const cert = await makeTestCertificate(dir);
      const url = await leaderAt(async () => ({ subscriptionId: "over-tls" }), cert);
      const reply = await createLeaderClient({ ca: cert.cert }).unary(
        url,
        AuthPoolService.method.allocate,
        request,
        new Headers(),
        new AbortController().signal,
      );
      expect(reply.outcome).toMatchObject({ case: "subscription", value: { subscriptionId: "over-tls" } });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it.each([
    { name: "not found", code: Code.NotFound },
    { name: "invalid argument", code: Code.InvalidArgument },
    { name: "unavailable", code: Code.Unavailable },
  ])("should give back the leader's $name error with its message", async ({ code }) => {
    const url = await leaderAt(async () => {
      throw new ConnectError("the leader says no", code);
    });
    const client = createLeaderClient();
    const call = client.unary(
      url,
      AuthPoolService.method.allocate,
      request,
      new Headers(),
      new AbortController().signal,
    );
    await expect(call).rejects.toMatchObject({ code, rawMessage: "the leader says no" });
  });

  it("should fail a refused connection with UNAVAILABLE caused by ECONNREFUSED", async () => {
    const url = await leaderAt(async () => ({ subscriptionId: "x" }));
    await stop(servers.pop()!);
    const client = createLeaderClient();
    const error = await client
      .unary(url, AuthPoolService.method.allocate, request, new Headers(), new AbortController().signal)
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: Code.Unavailable });
    let cause: unknown = error;
    const codes: unknown[] = [];
    for (let i = 0; i < 8 && typeof cause === "object" && cause !== null; i++) {
      codes.push((cause as { code?: unknown }).code);
      cause = (cause as { cause?: unknown }).cause;
    }
    expect(codes).toContain("ECONNREFUSED");
  });

  it("should end a call whose signal aborts with CANCELED", async () => {
    let arrived!: () => void;
    const reached = new Promise<void>((resolve) => (arrived = resolve));
    const url = await leaderAt(async () => {
      arrived();
      return new Promise(() => {});
    });
    const client = createLeaderClient();
    const ac = new AbortController();
    const call = client.unary(url, AuthPoolService.method.allocate, request, new Headers(), ac.signal);
    await reached;
    ac.abort();
    await expect(call).rejects.toMatchObject({ code: Code.Canceled });
  });
});

const watchRequest = create(AllocateWatchRequestSchema, { request: { sessionId: "w1", wait: true } });

describe("createLeaderClient().serverStream()", () => {
  it("should yield the leader's messages in order, pass the given headers, and end with the stream", async () => {
    let seen: { header: string | null; sessionId: string } | undefined;
    const url = await watchLeaderAt(async function* (req: AllocateWatchRequest, ctx) {
      seen = { header: ctx.requestHeader.get("x-authpool-forwarded"), sessionId: req.request?.sessionId ?? "" };
      yield queued(2);
      yield queued(1);
      yield { update: { case: "allocated", value: { sessionId: "w1" } } };
    });
    const { messages, error } = await collect(
      createLeaderClient().serverStream(
        url,
        AuthPoolService.method.allocateWatch,
        watchRequest,
        new Headers({ "x-authpool-forwarded": "b" }),
        new AbortController().signal,
      ),
    );
    expect(error).toBeUndefined();
    expect(messages.map((m) => m.update)).toMatchObject([
      { case: "queued", value: { position: 2 } },
      { case: "queued", value: { position: 1 } },
      { case: "allocated", value: { sessionId: "w1" } },
    ]);
    expect(seen).toEqual({ header: "b", sessionId: "w1" });
  });

  it.each([
    { name: "resource exhausted", code: Code.ResourceExhausted },
    { name: "deadline exceeded", code: Code.DeadlineExceeded },
    { name: "permission denied", code: Code.PermissionDenied },
  ])("should end with the leader's $name error after the messages before it", async ({ code }) => {
    const url = await watchLeaderAt(async function* () {
      yield queued(1);
      throw new ConnectError("the leader says no", code);
    });
    const { messages, error } = await collect(
      createLeaderClient().serverStream(
        url,
        AuthPoolService.method.allocateWatch,
        watchRequest,
        new Headers(),
        new AbortController().signal,
      ),
    );
    expect(messages).toHaveLength(1);
    expect(error).toMatchObject({ code, rawMessage: "the leader says no" });
  });

  it("should fail a refused connection with UNAVAILABLE caused by ECONNREFUSED", async () => {
    const url = await watchLeaderAt(async function* () {});
    await stop(servers.pop()!);
    const { error } = await collect(
      createLeaderClient().serverStream(
        url,
        AuthPoolService.method.allocateWatch,
        watchRequest,
        new Headers(),
        new AbortController().signal,
      ),
    );
    expect(error).toMatchObject({ code: Code.Unavailable });
    expect(JSON.stringify(causes(error))).toContain("ECONNREFUSED");
  });

  it.each([
    { name: "the signal aborts", leave: "abort" },
    { name: "the reader stops early", leave: "return" },
  ] as const)("should cancel the leader's call when $name", async ({ leave }) => {
    let cancelled!: (reason: unknown) => void;
    const leaderSaw = new Promise<unknown>((resolve) => (cancelled = resolve));
    const url = await watchLeaderAt(async function* (_req, ctx) {
      ctx.signal.addEventListener("abort", () => cancelled(ctx.signal.reason), { once: true });
      yield queued(1);
      await new Promise(() => {});
    });
    const ac = new AbortController();
    const stream = createLeaderClient().serverStream(
      url,
      AuthPoolService.method.allocateWatch,
      watchRequest,
      new Headers(),
      ac.signal,
    );
    expect((await stream.next()).value?.update.case).toBe("queued");
    if (leave === "abort") {
      const pending = stream.next();
      ac.abort();
      await expect(pending).rejects.toMatchObject({ code: Code.Canceled });
    } else {
      await stream.return();
    }
    expect(await leaderSaw).toBeDefined();
  });

  it("should fail with UNAVAILABLE when the leader resets the stream mid-call", async () => {
    const url = await watchLeaderAt(async function* () {
      yield queued(1);
      for (const server of servers) for (const session of sessionsOf.get(server) ?? []) session.destroy();
      await new Promise(() => {});
    });
    const { messages, error } = await collect(
      createLeaderClient().serverStream(
        url,
        AuthPoolService.method.allocateWatch,
        watchRequest,
        new Headers(),
        new AbortController().signal,
      ),
    );
    expect(messages.length).toBeLessThanOrEqual(1);
    expect(error).toMatchObject({ code: Code.Unavailable });
  });
});

/** causes lists the `code` of an error and of each of its causes. */
function causes(error: unknown): unknown[] {
  const codes: unknown[] = [];
  let cause: unknown = error;
  for (let i = 0; i < 8 && typeof cause === "object" && cause !== null; i++) {
    codes.push((cause as { code?: unknown }).code);
    cause = (cause as { cause?: unknown }).cause;
  }
  return codes;
}
