import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import {
  Code,
  ConnectError,
  type ConnectRouter,
  type ServiceImpl,
  createClient,
  createRouterTransport,
} from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { afterEach, describe, expect, it } from "vitest";
import { AuthPoolService } from "../../gen/authpool/v1/auth_pool_pb.js";
import { FORWARDED_HEADER, type ForwardWritesOptions, forwardWrites } from "../../src/server/forward-writes.js";
import type { Lease } from "../../src/store/index.js";
import { collect, queued } from "../support/watch-stream.js";

/**
 * forwardWrites on a standby, against a stand-in leader (a Connect router on
 * a plain HTTP/2 server), through an in-memory transport: AllocateWatch is
 * relayed message by message, and what holds for a forwarded unary call
 * holds for it (the leader's errors, the caller's deadline and token, a
 * caller who leaves, a leader that cannot be reached).
 */

type Impl = ServiceImpl<typeof AuthPoolService>;

const servers: http2.Http2Server[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) {
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const session of sessionsOf.get(server) ?? []) session.destroy();
    await closed;
  }
});
const sessionsOf = new WeakMap<http2.Http2Server, Set<http2.ServerHttp2Session>>();

/** leaderAt starts a stand-in leader with `impl`; resolves with its base URL. */
async function leaderAt(impl: Partial<Impl>): Promise<string> {
  const server = http2.createServer(
    connectNodeAdapter({ routes: (router: ConnectRouter) => router.service(AuthPoolService, impl) }),
  );
  servers.push(server);
  const sessions = new Set<http2.ServerHttp2Session>();
  sessionsOf.set(server, sessions);
  server.on("session", (session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** A closed port: connections to it are refused. */
async function refusingAddress(): Promise<string> {
  const url = await leaderAt({});
  const server = servers.pop()!;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return url;
}

const LOCAL_ANSWER = "answered-by-the-standby";

/** The standby's own handlers: they answer only once it leads. */
const local: Partial<Impl> = {
  async allocate() {
    return { sessionId: LOCAL_ANSWER };
  },
  async *allocateWatch() {
    yield { update: { case: "allocated", value: { sessionId: LOCAL_ANSWER } } };
  },
};

/** standbyFor is a client of a standby whose lease names the leader at `address`. */
function standbyFor(address: string, options: Partial<ForwardWritesOptions> = {}) {
  const lease: Lease = { holder: "leader", epoch: 1, expiresAt: Date.now() + 60_000, address };
  const service = forwardWrites(AuthPoolService, local as Impl, {
    reads: new Set(["GetPoolStatus"]),
    leading: () => false,
    self: "standby",
    leader: () => lease,
    waitForLeaderMs: 1000,
    ...options,
  });
  return createClient(
    AuthPoolService,
    createRouterTransport((router) => router.service(AuthPoolService, service)),
  );
}

const watchRequest = { request: { sessionId: "w1", wait: true } };

describe("forwardWrites() for AllocateWatch", () => {
  it("should relay each of the leader's messages, with the caller's token and the forwarded mark", async () => {
    let seen: { token: string | null; mark: string | null } | undefined;
    const url = await leaderAt({
      async *allocateWatch(_req, ctx) {
        seen = { token: ctx.requestHeader.get("authorization"), mark: ctx.requestHeader.get(FORWARDED_HEADER) };
        yield queued(2);
        yield queued(1);
        yield { update: { case: "allocated", value: { sessionId: "w1" } } };
      },
    });
    const { messages, error } = await collect(
      standbyFor(url).allocateWatch(watchRequest, { headers: { authorization: "Bearer t0ken" } }),
    );
    expect(error).toBeUndefined();
    expect(messages.map((m) => m.update)).toMatchObject([
      { case: "queued", value: { position: 2 } },
      { case: "queued", value: { position: 1 } },
      { case: "allocated", value: { sessionId: "w1" } },
    ]);
    expect(seen).toEqual({ token: "Bearer t0ken", mark: "standby" });
  });

  it("should end with the leader's code and message after the messages before it", async () => {
    const url = await leaderAt({
      async *allocateWatch() {
        yield queued(1);
        throw new ConnectError("waited 5 s and no slot opened", Code.ResourceExhausted);
      },
    });
    const { messages, error } = await collect(standbyFor(url).allocateWatch(watchRequest));
    expect(messages).toHaveLength(1);
    expect(error).toMatchObject({ code: Code.ResourceExhausted, rawMessage: "waited 5 s and no slot opened" });
  });

  it("should pass the caller's deadline on to the leader", async () => {
    let leaderTimeoutMs: number | undefined;
    const url = await leaderAt({
      async *allocateWatch(_req, ctx) {
        leaderTimeoutMs = ctx.timeoutMs();
        yield queued(1);
      },
    });
    await collect(standbyFor(url).allocateWatch(watchRequest, { timeoutMs: 4000 }));
    expect(leaderTimeoutMs).toBeGreaterThan(0);
    expect(leaderTimeoutMs).toBeLessThanOrEqual(4000);
  });

  it("should cancel the leader's call when the caller leaves", async () => {
    let cancelled!: () => void;
    const leaderSaw = new Promise<void>((resolve) => (cancelled = resolve));
    const url = await leaderAt({
      async *allocateWatch(_req, ctx) {
        ctx.signal.addEventListener("abort", () => cancelled(), { once: true });
        yield queued(1);
        await new Promise(() => {});
      },
    });
    const ac = new AbortController();
    const stream = standbyFor(url).allocateWatch(watchRequest, { signal: ac.signal })[Symbol.asyncIterator]();
    expect((await stream.next()).value?.update.case).toBe("queued");
    const pending = stream.next();
    ac.abort();
    await expect(pending).rejects.toMatchObject({ code: Code.Canceled });
    await leaderSaw;
  });

  it("should fail with UNAVAILABLE when the leader cannot be reached and no other takes over", async () => {
    const { messages, error } = await collect(
      standbyFor(await refusingAddress(), { waitForLeaderMs: 200 }).allocateWatch(watchRequest),
    );
    expect(messages).toEqual([]);
    expect(error).toMatchObject({ code: Code.Unavailable });
  });

  it("should answer here when this instance takes the lease while the leader cannot be reached", async () => {
    let leading = false;
    setTimeout(() => {
      leading = true;
    }, 100);
    const { messages, error } = await collect(
      standbyFor(await refusingAddress(), { leading: () => leading }).allocateWatch(watchRequest),
    );
    expect(error).toBeUndefined();
    expect(messages.map((m) => m.update)).toMatchObject([{ case: "allocated", value: { sessionId: LOCAL_ANSWER } }]);
  });

  it("should refuse a call another instance forwarded, with UNAVAILABLE", async () => {
    const url = await leaderAt({});
    const { error } = await collect(
      standbyFor(url).allocateWatch(watchRequest, { headers: { [FORWARDED_HEADER]: "elsewhere" } }),
    );
    expect(error).toMatchObject({ code: Code.Unavailable });
  });
});

describe("forwardWrites() for a unary call", () => {
  it("should pass the caller's deadline on to the leader", async () => {
    let leaderTimeoutMs: number | undefined;
    const url = await leaderAt({
      async allocate(_req, ctx) {
        leaderTimeoutMs = ctx.timeoutMs();
        return { sessionId: "s1" };
      },
    });
    expect((await standbyFor(url).allocate({ sessionId: "s1" }, { timeoutMs: 4000 })).sessionId).toBe("s1");
    expect(leaderTimeoutMs).toBeGreaterThan(0);
    expect(leaderTimeoutMs).toBeLessThanOrEqual(4000);
  });
});
