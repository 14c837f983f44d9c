/**
 * Fuzzing StreamEvents, Rebalance, GetPoolStatus, SetPaused, SetDrained and
 * ReloadConfig against one real server (with a config file to reload).
 */
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AuthPoolClient, type Event, EventType } from "../../src/client/index.js";
import { ConfigError, loadConfigFile, parseConfig } from "../../src/config/index.js";
import { type TestPool, startTestPool, testConfigRaw } from "../support/test-server.js";
import { idArb, int64Arb, isSubscriptionId, nastyString } from "./arbitraries.js";
import { invalidConfigArb } from "./config-arbitraries.js";
import {
  CaseCounter,
  FreshClients,
  type Outcome,
  StateProbe,
  expectServing,
  judge,
  outcome,
  replacer,
  reportCases,
  timeoutFor,
} from "./fuzz-support.js";

let pool: TestPool;
const counter = new CaseCounter();
const probe = new StateProbe(() => pool);
const SUBS = ["sub1", "sub2", "sub3"];

beforeAll(async () => {
  pool = await startTestPool({ configFile: true });
  // Some history to stream: sessions, a report, a pause and its end.
  for (let i = 0; i < 6; i++) await pool.grpc.allocate({ sessionId: `adm-${i}` });
  await pool.grpc.reportUsage({
    sessionId: "adm-0",
    source: { case: "usage", value: { costUsd: 1, inputTokens: 10n } },
  });
  await pool.grpc.setPaused({ subscriptionId: "sub2", paused: true });
  await pool.grpc.setPaused({ subscriptionId: "sub2", paused: false });
  await pool.grpc.release({ sessionId: "adm-5" });
});

afterAll(async () => {
  await pool?.close();
  await reportCases("admin-rpcs", counter);
});

const protocolArb = fc.constantFrom<"grpc" | "connect">("grpc", "grpc", "connect");
const client = (protocol: "grpc" | "connect"): AuthPoolClient => pool[protocol];

const subscriptionIdArb = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...SUBS) },
  { weight: 2, arbitrary: fc.constantFrom("sub4", "SUB1", "sub1.", "a".repeat(64), "a".repeat(65), "x_y-z.0") },
  { weight: 4, arbitrary: nastyString },
  { weight: 1, arbitrary: idArb },
);

const PAYLOAD_TYPES: Record<string, EventType> = {
  rotation: EventType.ROTATION,
  failover: EventType.FAILOVER,
  usageThreshold: EventType.USAGE_THRESHOLD,
  limitReached: EventType.LIMIT_REACHED,
  statusChanged: EventType.STATUS_CHANGED,
  rebalanceCompleted: EventType.REBALANCE_COMPLETED,
  session: EventType.SESSION,
};

/** subscriptionOf is the one subscription a simple event is about (undefined for moves, failovers). */
function subscriptionOf(e: Event): string | undefined {
  const p = e.payload;
  switch (p.case) {
    case "usageThreshold":
    case "limitReached":
    case "statusChanged":
    case "session":
      return p.value.subscriptionId;
    default:
      return undefined;
  }
}

/**
 * openStream reads a stream for a moment: a refusal comes at once, an
 * accepted stream stays open (history, then live) until we hang up.
 */
async function openStream(
  c: AuthPoolClient,
  req: Parameters<AuthPoolClient["streamEvents"]>[0],
  refusalExpected: boolean,
): Promise<{ out: Outcome; events: Event[] }> {
  const abort = new AbortController();
  // A refusal must come however busy the machine is; an accepted stream is sampled briefly.
  const timer = setTimeout(() => abort.abort(), refusalExpected ? 5000 : 25);
  const events: Event[] = [];
  try {
    for await (const res of c.streamEvents(req, { signal: abort.signal })) {
      if (res.event !== undefined) events.push(res.event);
    }
    return { out: { ok: true, value: events }, events };
  } catch (error) {
    const e = ConnectError.from(error);
    if (abort.signal.aborted && e.code === Code.Canceled) return { out: { ok: true, value: events }, events };
    return { out: { ok: false, code: e.code, message: e.rawMessage }, events };
  } finally {
    clearTimeout(timer);
  }
}

describe("StreamEvents", () => {
  const arb = fc.record({
    protocol: protocolArb,
    afterSequence: fc.oneof(
      { weight: 4, arbitrary: fc.bigInt({ min: 0n, max: 40n }) },
      { weight: 1, arbitrary: fc.constantFrom(2n ** 53n + 1n, 2n ** 63n, 2n ** 64n - 1n, 10n ** 12n) },
      { weight: 1, arbitrary: int64Arb.map((n) => (n < 0n ? -n : n)) },
    ),
    types: fc.array(
      fc.oneof(
        { weight: 5, arbitrary: fc.integer({ min: 0, max: 7 }) },
        { weight: 1, arbitrary: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }) },
      ),
      { maxLength: 4 },
    ),
    subscriptionIds: fc.array(subscriptionIdArb, { maxLength: 3 }),
    tail: fc.boolean(),
  });

  it(
    "streams what the filter asks for, or names the field; never INTERNAL",
    async () => {
      await counter.check(
        "StreamEvents",
        arb,
        async ({ protocol, ...req }) => {
          const head = BigInt(pool.server.feed.headSeq);
          const must: string[] = [];
          if (req.subscriptionIds.some((id) => !isSubscriptionId(id))) must.push("subscription_ids");
          if (req.types.some((t) => EventType[t] === undefined)) must.push("types");
          const ahead = !req.tail && req.afterSequence > head;
          const before = await probe.before();
          const { out, events } = await openStream(client(protocol), req, must.length > 0 || ahead);
          await probe.after(out, before, req);
          // A cursor past the newest event cannot come from this pool: OUT_OF_RANGE, not a silent wait.
          judge(out, { must, codes: [Code.OutOfRange], ok: !ahead || must.length > 0 }, req);
          if (!out.ok && out.code === Code.OutOfRange)
            expect(out.message.startsWith("after_sequence"), out.message).toBe(true);
          const types = new Set(req.types.filter((t) => t !== EventType.UNSPECIFIED));
          let last = req.tail ? head : req.afterSequence;
          for (const e of events) {
            const context = JSON.stringify({ req, e }, replacer);
            expect(e.sequence > last, `out of order or not after the cursor: ${context}`).toBe(true);
            last = e.sequence;
            if (types.size > 0) expect(types.has(PAYLOAD_TYPES[e.payload.case ?? ""]!), context).toBe(true);
            const sub = subscriptionOf(e);
            if (req.subscriptionIds.length > 0 && sub !== undefined)
              expect(req.subscriptionIds, context).toContain(sub);
          }
        },
        100,
      );
      await expectServing(pool);
    },
    timeoutFor(100, 150),
  );
});

describe("GetPoolStatus and Rebalance", () => {
  it(
    "GetPoolStatus is OK and changes nothing, whatever it is asked",
    async () => {
      await counter.check(
        "GetPoolStatus",
        fc.record({ protocol: protocolArb, includeSessions: fc.boolean() }),
        async ({ protocol, includeSessions }) => {
          const before = await probe.read();
          const out = await outcome(client(protocol).getPoolStatus({ includeSessions }));
          judge(out, { must: [] }, { includeSessions });
          const after = await probe.read();
          expect(after.head).toBe(before.head);
          expect(Buffer.from(after.bytes).equals(Buffer.from(before.bytes))).toBe(true);
        },
        60,
      );
    },
    timeoutFor(60),
  );

  it(
    "Rebalance is OK; a dry run moves no session",
    async () => {
      await counter.check(
        "Rebalance",
        fc.record({ protocol: protocolArb, dryRun: fc.boolean() }),
        async ({ protocol, dryRun }) => {
          const sessions = async () =>
            (await pool.grpc.getPoolStatus({ includeSessions: true })).sessions.map(
              (s) => `${s.sessionId}@${s.subscriptionId}`,
            );
          const before = await sessions();
          const out = await outcome(client(protocol).rebalance({ dryRun }));
          probe.forget();
          judge(out, { must: [] }, { dryRun });
          if (out.ok) {
            expect(out.value.dryRun).toBe(dryRun);
            const d = out.value.duration!;
            expect(d.seconds >= 0n && d.nanos >= 0 && d.nanos < 1e9).toBe(true);
          }
          if (dryRun) expect(await sessions()).toEqual(before);
        },
        40,
      );
    },
    timeoutFor(40),
  );
});

describe("SetPaused and SetDrained", () => {
  const arb = fc.record({
    protocol: protocolArb,
    rpc: fc.constantFrom<"setPaused" | "setDrained">("setPaused", "setDrained"),
    subscriptionId: subscriptionIdArb,
    on: fc.boolean(),
  });

  it(
    "answers OK for a configured subscription, NOT_FOUND for an unknown one, INVALID_ARGUMENT subscription_id for a malformed one",
    async () => {
      await counter.check(
        "SetPaused/SetDrained",
        arb,
        async ({ protocol, rpc, subscriptionId, on }) => {
          const must = isSubscriptionId(subscriptionId) ? [] : ["subscription_id"];
          const known = SUBS.includes(subscriptionId);
          const before = await probe.before();
          const c = client(protocol);
          const out = await outcome<unknown>(
            rpc === "setPaused"
              ? c.setPaused({ subscriptionId, paused: on })
              : c.setDrained({ subscriptionId, drained: on }),
          );
          const context = { rpc, subscriptionId, on };
          await probe.after(out, before, context);
          judge(out, { must, codes: known ? [] : [Code.NotFound], ok: known }, context);
        },
        150,
      );
      for (const id of SUBS) {
        await pool.grpc.setPaused({ subscriptionId: id, paused: false });
        await pool.grpc.setDrained({ subscriptionId: id, drained: false });
      }
      probe.forget();
      await expectServing(pool);
    },
    timeoutFor(150),
  );
});

describe("ReloadConfig", () => {
  it(
    "refuses an invalid file with INVALID_ARGUMENT naming the file, and keeps the running config",
    async () => {
      const file = path.join(pool.dir, "config.json");
      const base = () => testConfigRaw(pool.dir);
      const arb = fc.record({ protocol: protocolArb, bad: invalidConfigArb(base), asText: fc.boolean() });
      await counter.check(
        "ReloadConfig(invalid)",
        arb,
        async ({ protocol, bad, asText }) => {
          const text = asText ? (JSON.stringify(bad.raw, null, 2) ?? "") : `${JSON.stringify(bad.raw) ?? ""}\n`;
          // The oracle: the loader itself, on what the file will hold (config.test.ts checks the loader).
          let valid = true;
          try {
            parseConfig(JSON.parse(text) as unknown, file);
          } catch (error) {
            if (!(error instanceof ConfigError)) throw error;
            valid = false;
          }
          fc.pre(!valid);
          await writeFile(file, text);
          const before = await probe.before();
          const out = await outcome(client(protocol).reloadConfig({}));
          const context = { notes: bad.notes };
          await probe.after(out, before, context);
          judge(out, { must: [file], ok: false }, context);
        },
        80,
      );
      // Broken syntax: refused with the file and the line.
      for (const text of ["{", "", "\u0000", '{"subscriptions": [}', "null", "[]", '{"a": 1} trailing']) {
        counter.count("ReloadConfig(invalid)");
        await writeFile(file, text);
        const before = await probe.before();
        const out = await outcome(pool.grpc.reloadConfig({}));
        await probe.after(out, before, { text });
        judge(out, { must: [file], ok: false }, { text });
      }
      // The original file again: reloads with nothing changed.
      await writeFile(file, JSON.stringify(base(), null, 2));
      const out = await outcome(pool.connect.reloadConfig({}));
      judge(out, { must: [] }, "original file");
      if (out.ok) expect(out.value.changed).toBe(false);
      counter.count("ReloadConfig(valid)");
      expect((await loadConfigFile(file)).subscriptions.length).toBe(3);
      await expectServing(pool);
    },
    timeoutFor(80, 200),
  );

  // KNOWN DEFECT (reported, src/config: formatPath/describeValue echo a key in
  // full, and the ConfigError text becomes the gRPC error unbounded): a file
  // with a 100k-character key is refused with a message too large for the
  // grpc-message trailer; the peer answers FRAME_SIZE_ERROR and the caller's
  // whole HTTP/2 connection is gone (every later call: REFUSED_STREAM). Flip
  // to `it` once error texts are capped.
  it("refuses a file with a 100k-character key and keeps the connection", async () => {
    counter.count("ReloadConfig(invalid)");
    const file = path.join(pool.dir, "config.json");
    const c = new FreshClients();
    try {
      const own = c.client(pool.server.url, "grpc");
      await writeFile(file, JSON.stringify({ ...testConfigRaw(pool.dir), ["k".repeat(100_000)]: 1 }));
      const out = await outcome(own.reloadConfig({}));
      judge(out, { must: [file], ok: false }, "100k-character key");
      expect((await outcome(own.getPoolStatus({}))).ok).toBe(true);
    } finally {
      c.close();
      await writeFile(file, JSON.stringify(testConfigRaw(pool.dir), null, 2));
    }
  });
});
