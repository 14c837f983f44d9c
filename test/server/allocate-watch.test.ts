import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterEach, describe, expect, it } from "vitest";
import {
  type AllocateResponse,
  type AllocateWatchResponse,
  type AuthPoolClient,
  ClientLimitKind,
  EventType,
  ExclusionReason,
  type QueuePosition,
  SessionEventKind,
  createAuthPoolClient,
} from "../../src/client/index.js";
import { formatEvent } from "../../src/cli/event-line.js";
import { type TestPool, startTestPool } from "../support/test-server.js";

/**
 * AllocateWatch end to end, over a real server and the generated clients:
 * a waiting call is told its place in the queue as it moves, then gets the
 * answer Allocate gives (or its error), through the same queue, and leaving
 * takes it out of the queue at once.
 */

let pool: TestPool | undefined;
afterEach(async () => {
  await pool?.close();
  pool = undefined;
});

const ALICE = "alice-token-0123456789abcdef";
const READER = "reader-token-0123456789abcde";

function oneSubscription(maxSessions: number) {
  return [{ id: "solo", type: "claude-max", configDir: path.join("/tmp", "solo"), weeklyBudgetUsd: 1000, maxSessions }];
}

/** Watch is one AllocateWatch call read to its end: the places it was told, and its answer or error. */
interface Watch {
  places: QueuePosition[];
  done: Promise<AllocateResponse>;
}

function watch(
  client: AuthPoolClient,
  request: Parameters<AuthPoolClient["allocate"]>[0],
  signal?: AbortSignal,
): Watch {
  const places: QueuePosition[] = [];
  const done = (async () => {
    const messages: AllocateWatchResponse[] = [];
    for await (const res of client.allocateWatch({ request }, { ...(signal !== undefined ? { signal } : {}) })) {
      messages.push(res);
      if (res.update.case === "queued") places.push(res.update.value);
    }
    const last = messages.at(-1);
    if (last?.update.case !== "allocated") throw new Error("the stream ended without an answer");
    // The answer is the last message, and the only one of its kind.
    expect(messages.filter((m) => m.update.case === "allocated")).toHaveLength(1);
    return last.update.value;
  })();
  done.catch(() => {});
  return { places, done };
}

async function code(call: Promise<unknown>): Promise<Code | "ok"> {
  try {
    await call;
    return "ok";
  } catch (error) {
    return ConnectError.from(error).code;
  }
}

async function until(check: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("timed out waiting for the condition");
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("AllocateWatch", () => {
  it.each(["grpc", "connect"] as const)(
    "over %s: tells a waiting call its place as slots free up, then answers as Allocate does",
    async (protocol) => {
      pool = await startTestPool({ config: { subscriptions: oneSubscription(1) } });
      const c = createAuthPoolClient(pool.server.url, { protocol, httpVersion: "1.1", timeoutMs: 30_000 });
      await c.allocate({ sessionId: "holder", client: "h" });
      // Three waiters of three clients holding nothing: they go in order of arrival. The second is a plain Allocate: one queue.
      const first = watch(c, { sessionId: "w1", client: "c1", wait: true });
      await until(async () => (await c.getPoolStatus({})).waiting === 1);
      const second = c.allocate({ sessionId: "w2", client: "c2", wait: true });
      await until(async () => (await c.getPoolStatus({})).waiting === 2);
      const third = watch(c, { sessionId: "w3", client: "c3", wait: true, model: "sonnet" });
      await until(() => third.places.length === 1);
      expect(third.places[0]).toMatchObject({
        position: 3,
        waiting: 3,
        reason: expect.stringContaining("no eligible subscription: solo"),
        exclusions: [expect.objectContaining({ subscriptionId: "solo", reason: ExclusionReason.SESSIONS_FULL })],
      });
      expect(first.places.map((p) => p.position)).toEqual([1]);

      pool.clock.advance(3_000);
      await c.release({ sessionId: "holder" });
      const one = await first.done;
      expect(one).toMatchObject({ sessionId: "w1", client: "c1", outcome: { case: "subscription" } });
      await until(() => third.places.length === 2);
      expect(third.places[1]).toMatchObject({ position: 2, waiting: 2, waited: { seconds: 3n } });

      await c.release({ sessionId: "w1" });
      expect((await second).sessionId).toBe("w2");
      await until(() => third.places.length === 3);
      expect(third.places[2]).toMatchObject({ position: 1, waiting: 1 });

      pool.clock.advance(2_000);
      await c.release({ sessionId: "w2" });
      const answer = await third.done;
      expect(third.places.map((p) => p.position)).toEqual([3, 2, 1]);
      expect(answer).toMatchObject({
        sessionId: "w3",
        client: "c3",
        waited: { seconds: 5n },
        outcome: {
          case: "subscription",
          value: { subscriptionId: "solo", configDir: "/tmp/solo", resumed: false, rotatedFrom: "" },
        },
      });
      // Durable and booked as the answer says.
      const status = await c.getPoolStatus({ includeSessions: true });
      expect(status.sessions.map((s) => [s.sessionId, s.subscriptionId, s.client, s.model])).toEqual([
        ["w3", "solo", "c3", "sonnet"],
      ]);
      expect(status.waiting).toBe(0);
      // Asked again, the session resumes: the same answer a unary Allocate gives.
      const [viaWatch, viaUnary] = [
        await watch(c, { sessionId: "w3", client: "c3", wait: true }).done,
        await c.allocate({ sessionId: "w3", client: "c3", wait: true }),
      ];
      expect(viaWatch).toEqual(viaUnary);
      expect(viaWatch.outcome.value).toMatchObject({ resumed: true });
    },
  );

  it("leaves the queue at once when the caller cancels, and nothing is granted to it", async () => {
    pool = await startTestPool({ config: { subscriptions: oneSubscription(1) } });
    const c = createAuthPoolClient(pool.server.url, { timeoutMs: 30_000 });
    await c.allocate({ sessionId: "holder" });
    const leaving = new AbortController();
    const gone = watch(c, { sessionId: "gone", client: "x", wait: true }, leaving.signal);
    const stays = watch(c, { sessionId: "stays", client: "y", wait: true });
    await until(() => gone.places.length === 1 && stays.places.length === 1);
    expect([gone.places[0]?.position, stays.places[0]?.position]).toEqual([1, 2]);
    leaving.abort();
    expect(await code(gone.done)).toBe(Code.Canceled);
    await until(async () => (await c.getPoolStatus({})).waiting === 1);
    const status = await c.getPoolStatus({});
    expect(status.clients.find((x) => x.name === "x")?.waiting ?? 0).toBe(0);
    // The one behind moved up.
    await until(() => stays.places.length === 2);
    expect(stays.places[1]).toMatchObject({ position: 1, waiting: 1 });
    await c.release({ sessionId: "holder" });
    expect((await stays.done).sessionId).toBe("stays");
    const sessions = (await c.getPoolStatus({ includeSessions: true })).sessions.map((s) => s.sessionId);
    expect(sessions).toEqual(["stays"]);
  });

  it("ends with the status Allocate ends with: invalid request, client limit, wait run out, queue full", async () => {
    pool = await startTestPool({
      config: {
        subscriptions: oneSubscription(1),
        clients: { strict: { denyModels: ["opus"], fallback: false } },
        queue: { maxWaitingPerClient: 1 },
      },
    });
    const c = createAuthPoolClient(pool.server.url, { timeoutMs: 30_000 });
    const both = async (request: Parameters<AuthPoolClient["allocate"]>[0]) => {
      const errors = await Promise.all([
        watch(c, request).done.catch((e: unknown) => ConnectError.from(e)),
        c.allocate(request).catch((e: unknown) => ConnectError.from(e)),
      ]);
      const [streamed, unary] = errors.map((e) => (e instanceof ConnectError ? [e.code, e.rawMessage] : e));
      expect(streamed).toEqual(unary);
      return streamed;
    };
    expect(await both({ sessionId: "bad id" })).toEqual([Code.InvalidArgument, expect.stringContaining("session_id")]);
    expect(await both({ sessionId: "s1", client: "strict", model: "opus" })).toEqual([
      Code.ResourceExhausted,
      expect.stringContaining("client strict: model opus is denied to it"),
    ]);

    await c.allocate({ sessionId: "holder" });
    const expiring = watch(c, { sessionId: "w1", client: "x", maxWait: { seconds: 5n } });
    await until(() => expiring.places.length === 1);
    // The client's one place in the queue is taken: refused at once, by either call.
    expect(await both({ sessionId: "w2", client: "x", wait: true })).toEqual([
      Code.ResourceExhausted,
      expect.stringContaining("client x already has 1 calls waiting"),
    ]);
    pool.clock.advance(5_000);
    const expired = await expiring.done.catch((e: unknown) => ConnectError.from(e));
    expect(expired).toMatchObject({
      code: Code.ResourceExhausted,
      rawMessage: expect.stringMatching(
        /^client x waited 5 s and no slot opened \(max_wait\): no eligible subscription/,
      ),
    });
    // Every refusal counts as an exhausted allocation, streamed or not: the client limit's and the full queue's twice, the wait once.
    const metrics = await (await fetch(`${pool.server.url}/metrics`)).text();
    expect(metrics).toMatch(/^authpool_allocations_total\{outcome="exhausted"\} 5$/m);
  });

  it("books the call to the caller's token as Allocate does: a client token may act only for itself", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "authpool-watch-tokens-"));
    const tokens = path.join(dir, "tokens");
    await writeFile(tokens, `client:alice:${ALICE}\nreader:${READER}\n`, { mode: 0o600 });
    pool = await startTestPool({ dir, config: { server: { host: "127.0.0.1", port: 0, authTokensFile: tokens } } });
    const alice = createAuthPoolClient(pool.server.url, { token: ALICE });
    expect((await watch(alice, { sessionId: "a1" }).done).client).toBe("alice");
    expect(await code(watch(alice, { sessionId: "a2", client: "bob" }).done)).toBe(Code.PermissionDenied);
    expect(await code(watch(createAuthPoolClient(pool.server.url), { sessionId: "x" }).done)).toBe(
      Code.Unauthenticated,
    );
    expect(await code(watch(createAuthPoolClient(pool.server.url, { token: READER }), { sessionId: "y" }).done)).toBe(
      Code.PermissionDenied,
    );
    await pool.close();
    pool = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  it("answers at once, with no place, a call that does not wait or finds a slot", async () => {
    pool = await startTestPool({ config: { subscriptions: oneSubscription(1) } });
    const c = createAuthPoolClient(pool.server.url);
    const placed = watch(c, { sessionId: "now", wait: true });
    expect((await placed.done).outcome.case).toBe("subscription");
    const fallback = watch(c, { sessionId: "paid" });
    expect((await fallback.done).outcome).toMatchObject({ case: "fallback" });
    expect([...placed.places, ...fallback.places]).toEqual([]);
  });
});

describe("client_limited events", () => {
  it("name the client and the limit once, however often the client is refused, and again after it was placed", async () => {
    pool = await startTestPool({ config: { clients: { strict: { maxSessions: 1, fallback: false } } } });
    const c = pool.grpc;
    await c.allocate({ sessionId: "s1", client: "strict" });
    for (let i = 0; i < 5; i++) {
      expect(await code(c.allocate({ sessionId: `r${i}`, client: "strict" }))).toBe(Code.ResourceExhausted);
    }
    await c.release({ sessionId: "s1" });
    await c.allocate({ sessionId: "s2", client: "strict" });
    expect(await code(c.allocate({ sessionId: "again", client: "strict" }))).toBe(Code.ResourceExhausted);
    // A marker: the stream is read up to this release.
    await c.release({ sessionId: "s2" });

    const lines: string[] = [];
    const stop = new AbortController();
    for await (const res of c.streamEvents(
      { types: [EventType.CLIENT_LIMITED, EventType.SESSION] },
      { signal: stop.signal, timeoutMs: 10_000 },
    )) {
      const p = res.event?.payload;
      if (p?.case === "clientLimited") {
        expect(p.value).toMatchObject({
          client: "strict",
          clientLimit: { client: "strict", kind: ClientLimitKind.MAX_SESSIONS },
        });
        lines.push(formatEvent(res.event!).replace(/^\S+ {2}#\d+ {2}/, ""));
      }
      if (p?.case === "session" && p.value.sessionId === "s2" && p.value.kind !== SessionEventKind.ALLOCATED) break;
    }
    expect(lines).toEqual([
      "client_limited  r0 refused: client strict: holds 1 sessions, its most (maxSessions 1) (max_sessions limit)",
      "client_limited  again refused: client strict: holds 1 sessions, its most (maxSessions 1) (max_sessions limit)",
    ]);
  });
});
