import * as http2 from "node:http2";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterEach, describe, expect, it } from "vitest";
import {
  type AuthPoolClient,
  type Event,
  EventType,
  SessionEventKind,
  SubscriptionState,
  createAuthPoolClient,
} from "../../src/client/index.js";
import { DAY_MS } from "../../src/domain/index.js";
import { type TestPool, fixture, startTestPool } from "../support/test-server.js";

let pool: TestPool | undefined;
afterEach(async () => {
  await pool?.close();
  pool = undefined;
});

/** Subscription reads a stream in the background and lets a test wait for what it expects. */
class Subscription {
  readonly events: Event[] = [];
  error: ConnectError | undefined;
  private readonly abort = new AbortController();
  private waiters: (() => void)[] = [];
  readonly done: Promise<void>;

  constructor(client: AuthPoolClient, request: Parameters<AuthPoolClient["streamEvents"]>[0]) {
    this.done = (async () => {
      try {
        for await (const res of client.streamEvents(request, { signal: this.abort.signal })) {
          if (res.event !== undefined) this.events.push(res.event);
          for (const w of this.waiters) w();
        }
      } catch (e) {
        if (!this.abort.signal.aborted) this.error = ConnectError.from(e);
      }
      for (const w of this.waiters) w();
    })();
  }

  /** until waits (event-driven, no sleeps) for a condition on the events received. */
  async until(cond: (events: Event[]) => boolean): Promise<void> {
    while (!cond(this.events)) {
      if (this.error !== undefined) throw this.error;
      await new Promise<void>((resolve) => this.waiters.push(resolve));
      this.waiters = [];
    }
  }

  async close(): Promise<void> {
    this.abort.abort();
    await this.done;
  }
}

function sessionEvents(events: Event[]): [string, SessionEventKind][] {
  return events.flatMap((e) =>
    e.payload.case === "session"
      ? [[e.payload.value.sessionId, e.payload.value.kind] as [string, SessionEventKind]]
      : [],
  );
}

describe("StreamEvents", () => {
  it("resumes from the last sequence with exactly the missed events, in order, then live ones", async () => {
    pool = await startTestPool();
    const c = pool.grpc;
    const first = new Subscription(c, { afterSequence: 0n, types: [EventType.SESSION] });
    await c.allocate({ sessionId: "a" });
    await c.release({ sessionId: "a" });
    await first.until((ev) => ev.length === 2);
    expect(sessionEvents(first.events)).toEqual([
      ["a", SessionEventKind.ALLOCATED],
      ["a", SessionEventKind.RELEASED],
    ]);
    const last = first.events[1]!.sequence;
    await first.close();

    // While disconnected.
    await c.allocate({ sessionId: "b" });
    await c.allocate({ sessionId: "c" });
    await c.release({ sessionId: "b" });

    const second = new Subscription(c, { afterSequence: last, types: [EventType.SESSION] });
    await second.until((ev) => ev.length === 3);
    await c.allocate({ sessionId: "d" });
    await second.until((ev) => ev.length === 4);
    expect(sessionEvents(second.events)).toEqual([
      ["b", SessionEventKind.ALLOCATED],
      ["c", SessionEventKind.ALLOCATED],
      ["b", SessionEventKind.RELEASED],
      ["d", SessionEventKind.ALLOCATED],
    ]);
    const seqs = second.events.map((e) => e.sequence);
    expect(seqs.every((s, i) => i === 0 || s > seqs[i - 1]!)).toBe(true);
    expect(seqs[0]! > last).toBe(true);
    await second.close();
  });

  it("resumes across a restart of the pool", async () => {
    pool = await startTestPool();
    await pool.grpc.allocate({ sessionId: "before" });
    const history = new Subscription(pool.grpc, { types: [EventType.SESSION] });
    await history.until((ev) => ev.length === 1);
    const last = history.events[0]!.sequence;
    await history.close();
    await pool.grpc.allocate({ sessionId: "missed" });
    await pool.restart();
    const resumed = new Subscription(pool.grpc, { afterSequence: last, types: [EventType.SESSION] });
    await resumed.until((ev) => ev.length === 1);
    expect(sessionEvents(resumed.events)).toEqual([["missed", SessionEventKind.ALLOCATED]]);
    await resumed.close();
  });

  it("ends open streams with UNAVAILABLE and their cursor when the pool shuts down", async () => {
    pool = await startTestPool();
    const open = new Subscription(pool.grpc, { types: [EventType.SESSION] });
    await pool.grpc.allocate({ sessionId: "s" });
    await open.until((ev) => ev.length === 1);
    await pool.restart();
    await open.done;
    expect(open.error?.code).toBe(Code.Unavailable);
    const cursor = BigInt(/resume with after_sequence (\d+)/.exec(open.error?.rawMessage ?? "")?.[1] ?? "-1");
    expect(cursor >= open.events[0]!.sequence).toBe(true);
  });

  it.each([
    ["a subscription id with spaces", { subscriptionIds: ["a b"] }, /subscription_ids/],
    ["an unknown event type", { types: [99 as EventType] }, /types/],
  ])("answers INVALID_ARGUMENT for %s", async (_, request, message) => {
    pool = await startTestPool();
    const s = new Subscription(pool.grpc, request);
    await s.done;
    expect(s.error?.code).toBe(Code.InvalidArgument);
    expect(s.error?.rawMessage).toMatch(message);
  });

  it("filters by type and by subscription", async () => {
    pool = await startTestPool();
    const c = pool.grpc;
    const onlySub2 = new Subscription(c, { subscriptionIds: ["sub2"], types: [EventType.SESSION] });
    const statuses = new Subscription(c, { types: [EventType.STATUS_CHANGED, EventType.LIMIT_REACHED] });
    const grants = [];
    for (const id of ["x1", "x2", "x3"]) grants.push(await c.allocate({ sessionId: id }));
    const onSub2 = grants.find((g) => g.outcome.case === "subscription" && g.outcome.value.subscriptionId === "sub2")!;
    await c.reportUsage({
      sessionId: onSub2.sessionId,
      source: { case: "claudeOutput", value: await fixture("claude-cli/stream-limit.ndjson") },
    });
    await onlySub2.until((ev) => ev.length === 1);
    await statuses.until((ev) => ev.length === 2);
    expect(sessionEvents(onlySub2.events)).toEqual([[onSub2.sessionId, SessionEventKind.ALLOCATED]]);
    const [limit, status] = statuses.events;
    expect(limit?.payload).toMatchObject({ case: "limitReached", value: { subscriptionId: "sub2", kind: "upstream" } });
    expect(status?.payload).toMatchObject({
      case: "statusChanged",
      value: { subscriptionId: "sub2", from: SubscriptionState.AVAILABLE, to: SubscriptionState.COOLDOWN },
    });
    expect(onlySub2.events.every((e) => e.payload.case === "session")).toBe(true);
    await onlySub2.close();
    await statuses.close();
  });

  it("announces a cooldown ending at its reset time", async () => {
    pool = await startTestPool();
    const c = pool.grpc;
    const g = await c.allocate({ sessionId: "s" });
    await c.reportUsage({
      sessionId: "s",
      source: { case: "claudeOutput", value: await fixture("claude-cli/stream-limit.ndjson") },
    });
    const sub = g.outcome.case === "subscription" ? g.outcome.value.subscriptionId : "";
    const changes = new Subscription(c, { types: [EventType.STATUS_CHANGED], subscriptionIds: [sub] });
    await changes.until((ev) => ev.length === 1);
    pool.clock.set(1795456800 * 1000 + 1);
    await pool.server.runJobs();
    await changes.until((ev) => ev.length === 2);
    expect(changes.events[1]?.payload).toMatchObject({
      case: "statusChanged",
      value: { from: SubscriptionState.COOLDOWN, to: SubscriptionState.AVAILABLE, reason: "cooldown ended" },
    });
    await changes.close();
  });

  it("announces a cooldown's end at its reset time, not a sweep interval later", async () => {
    pool = await startTestPool({ config: { sessions: { sweepIntervalSeconds: 86_400 } } });
    const c = pool.grpc;
    await c.allocate({ sessionId: "s" });
    const resetsAt = pool.clock.now() + 10 * 60_000;
    await c.reportUsage({
      sessionId: "s",
      source: {
        case: "usage",
        value: {
          rateLimits: [{ window: 1, status: 3, utilization: 1, resetsAt: { seconds: BigInt(resetsAt / 1000) } }],
        },
      },
    });
    const changes = new Subscription(c, { types: [EventType.STATUS_CHANGED] });
    await changes.until((ev) => ev.length === 1);
    pool.clock.advance(5 * 60_000);
    await pool.server.runJobs();
    pool.clock.set(resetsAt);
    await pool.server.runJobs();
    await changes.until((ev) => ev.length === 2);
    const ended = changes.events[1]!;
    expect(ended.payload).toMatchObject({ case: "statusChanged", value: { to: SubscriptionState.AVAILABLE } });
    expect(Number(ended.time!.seconds) * 1000).toBe(resetsAt);
    await changes.close();
  });

  it("answers OUT_OF_RANGE, naming the oldest sequence, for a cursor older than retention", async () => {
    pool = await startTestPool({
      config: { events: { retentionDays: 1 }, snapshot: { everyRecords: 1, everySeconds: 1 } },
    });
    const c = pool.grpc;
    for (const id of ["old1", "old2", "old3"]) await c.allocate({ sessionId: id });
    pool.clock.advance(2 * DAY_MS);
    await c.allocate({ sessionId: "new1" });
    await c.allocate({ sessionId: "new2" });
    const s = new Subscription(c, { afterSequence: 1n });
    await s.done;
    expect(s.error?.code).toBe(Code.OutOfRange);
    expect(s.error?.rawMessage).toMatch(/oldest available is \d+/);
    // The oldest available cursor itself is accepted.
    const oldest = Number(/oldest available is (\d+)/.exec(s.error?.rawMessage ?? "")?.[1]);
    const ok = new Subscription(c, { afterSequence: BigInt(oldest - 1), types: [EventType.SESSION] });
    await ok.until((ev) => ev.length === 2);
    expect(sessionEvents(ok.events).map(([id]) => id)).toEqual(["new1", "new2"]);
    await ok.close();
  });

  it("ends a subscriber that falls too far behind with RESOURCE_EXHAUSTED and its cursor", async () => {
    pool = await startTestPool({ streamBufferEvents: 20 });
    const c = pool.grpc;
    // Its own connection: a stream that is not read holds HTTP/2
    // connection-level flow control, which would stall calls sharing it.
    const subscriber = createAuthPoolClient(pool.server.url);
    const abort = new AbortController();
    const it = subscriber
      .streamEvents({ types: [EventType.SESSION] }, { signal: abort.signal })
      [Symbol.asyncIterator]();
    const firstRead = it.next();
    await c.allocate({ sessionId: "s0" });
    await firstRead;
    // Stop reading while the pool keeps going: far more than the transport's
    // flow-control windows and the 20-event buffer hold.
    const total = 1501;
    for (let i = 1; i < total; i += 2) {
      const sessionId = `s${i}-${"x".repeat(240)}`;
      await c.allocate({ sessionId });
      await c.release({ sessionId });
    }
    let error: ConnectError | undefined;
    let received = 1;
    try {
      for (;;) {
        const r = await it.next();
        if (r.done) break;
        received++;
      }
    } catch (e) {
      error = ConnectError.from(e);
    }
    abort.abort();
    expect(error?.code).toBe(Code.ResourceExhausted);
    expect(received).toBeLessThan(total);

    // The cursor it names resumes with nothing lost.
    const cursor = BigInt(/resume with after_sequence (\d+)/.exec(error?.rawMessage ?? "")![1]!);
    const resumed = new Subscription(c, { afterSequence: cursor, types: [EventType.SESSION] });
    await resumed.until((ev) => ev.length === total - received);
    const last = sessionEvents(resumed.events).at(-1)!;
    expect([last[0].split("-")[0], last[1]]).toEqual([`s${total - 2}`, SessionEventKind.RELEASED]);
    await resumed.close();
  });

  it("does not let a subscriber that never reads slow Allocate", async () => {
    pool = await startTestPool({ streamBufferEvents: 50 });
    const c = pool.grpc;
    const timeAllocations = async (prefix: string) => {
      const started = performance.now();
      for (let i = 0; i < 150; i++) {
        await c.allocate({ sessionId: `${prefix}${i}` });
        await c.release({ sessionId: `${prefix}${i}` });
      }
      return performance.now() - started;
    };
    await timeAllocations("warm");
    const baseline = await timeAllocations("base");

    // Raw HTTP/2 subscribers that send the request and never read a byte.
    const session = http2.connect(pool.server.url);
    const stalled = Array.from({ length: 5 }, () => {
      const req = session.request({
        ":method": "POST",
        ":path": "/authpool.v1.AuthPoolService/StreamEvents",
        "content-type": "application/connect+json",
      });
      req.end(Buffer.concat([Buffer.from([0, 0, 0, 0, 2]), Buffer.from("{}")]));
      req.pause();
      return req;
    });
    const withStalled = await timeAllocations("stalled");
    for (const req of stalled) req.destroy();
    session.destroy();

    // Same run, same machine: a ratio, generous enough for CI noise.
    expect(withStalled / baseline).toBeLessThan(3);
  });
});
