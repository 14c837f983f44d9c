import { mkdtemp, rm } from "node:fs/promises";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type ConnectRouter } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { afterEach, describe, expect, it } from "vitest";
import { AllocateRequestSchema, AuthPoolService } from "../../gen/authpool/v1/auth_pool_pb.js";
import { createLeaderClient } from "../../src/server/leader-client.js";
import { makeTestCertificate } from "../support/tls-cert.js";

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
  const handler = connectNodeAdapter({
    routes: (router: ConnectRouter) =>
      router.rpc(AuthPoolService.method.allocate, async (req, ctx) => {
        const { subscriptionId } = await allocate(req.sessionId, ctx.requestHeader);
        return { outcome: { case: "subscription", value: { subscriptionId } } };
      }),
  });
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
