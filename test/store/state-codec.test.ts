import { encodeFormat1 } from "../../bench/codec/format1.js";
import { describe, expect, it } from "vitest";
import {
  type Command,
  type PoolState,
  type SessionState,
  type TranscriptUsageRow,
  HOUR_MS,
  MINUTE_MS,
  Pool,
  createPoolState,
} from "../../src/domain/index.js";
import {
  STATE_FORMAT_VERSION,
  StateFormatError,
  decodeLegacyState,
  decodeState,
  encodeState,
} from "../../src/store/state-codec.js";
import { usage } from "../support/pool-driver.js";
import { poolSettings, subscriptionSettings } from "../support/settings.js";

const T0 = Date.parse("2025-06-02T10:00:00Z");
const WEEK_RESET = T0 + 3 * 24 * HOUR_MS;
const CONFIGURED = ["a", "b", "c"];

const allocate = (sessionId: string, model = "claude-sonnet-4-5"): Command => ({
  kind: "allocate",
  sessionId,
  priority: "normal",
  model,
  estimatedTokens: 0,
});

function row(key: string | undefined, at: number, output: number, sessionId?: string): TranscriptUsageRow {
  return {
    kind: "usage",
    ...(key !== undefined ? { key } : {}),
    ...(sessionId !== undefined ? { sessionId } : {}),
    at,
    model: "claude-sonnet-4-5-20250929",
    tokens: { inputTokens: 10, outputTokens: output, cacheCreationInputTokens: 0, cacheReadInputTokens: 0 },
    costUsd: output * 15e-6,
    costSource: "priced",
    sidechain: false,
  };
}

/**
 * poolState runs real commands through Pool until every part of PoolState
 * holds something: buckets (some with external cost), a 5-hour window,
 * cooldowns (one model-scoped), paused, drained by an operator and by a
 * reload, upstream readings with and without reset times, calibration,
 * crossed thresholds, statuses, sessions (one rotated), dedupe keys, ended
 * sessions, Claude sessions and transcript rows (external, the pool's own,
 * limits).
 */
function poolState(): PoolState {
  const subs = [...CONFIGURED, "d"].map((id) => subscriptionSettings(id, { fiveHourBudgetUsd: 50 }));
  const settings = poolSettings(subs, {
    notifications: { rules: [{ type: "usage_threshold", threshold: 0.5, enabled: true }] },
    clients: { strict: { weight: 1, fallback: false, denyModels: ["haiku"] } },
    rebalancing: { enabled: true, intervalSeconds: 300, costGapThreshold: 1, maxMovesPerCycle: 1 },
  });
  const pool = new Pool(createPoolState(settings.subscriptions.map((s) => s.id)), settings);
  let now = T0;
  const run = (c: Command) => pool.run(c, (now += MINUTE_MS));
  const on = (sub: string, ...commands: Command[]) => {
    // Pause the others so allocations land on `sub`.
    const others = subs.map((s) => s.id).filter((id) => id !== sub && !pool.state.subscriptions.get(id)!.paused);
    for (const id of others) run({ kind: "set_paused", subscriptionId: id, paused: true });
    for (const c of commands) run(c);
    for (const id of others) run({ kind: "set_paused", subscriptionId: id, paused: false });
  };
  on("a", allocate("s1"), allocate("s2", "claude-opus-4-1"));
  on("b", allocate("s3"), allocate("s4"));
  on("c", allocate("s5"));
  on("d", allocate("s6"));
  // Every subscription paused: a run for the paid API (ledger fallbacks).
  for (const s of subs) run({ kind: "set_paused", subscriptionId: s.id, paused: true });
  run({ ...allocate("paid"), client: "bob" } as Command);
  // A limit of a client with fallback off refuses it (clientsLimited).
  run({ ...allocate("refused", "claude-haiku-4-5"), client: "strict" } as Command);
  for (const s of subs) run({ kind: "set_paused", subscriptionId: s.id, paused: false });

  run({
    kind: "observe",
    subscriptionId: "a",
    source: "usage endpoint",
    readings: [
      { window: "five_hour", source: "oauth", status: "allowed", utilization: 0.1, resetsAt: T0 + 3 * HOUR_MS },
      { window: "seven_day", source: "oauth", status: "allowed", utilization: 0.2, resetsAt: WEEK_RESET },
      { window: "seven_day_opus", status: "allowed_warning", utilization: 0.3 },
    ],
  });
  run({
    kind: "report",
    sessionId: "s1",
    requestId: "1",
    report: usage(2.5, { resultUuid: "u-1", claudeSessionId: "claude-1" }),
  });
  run({ kind: "report", sessionId: "s2", requestId: "", report: usage(60, { resultUuid: "u-2" }) });
  run({
    kind: "observe",
    subscriptionId: "a",
    source: "usage endpoint",
    readings: [{ window: "seven_day", source: "oauth", status: "allowed", utilization: 0.8, resetsAt: WEEK_RESET }],
  });
  // Nothing of the pool's ran since, yet a's week moved: use outside the pool (bucket outsideUse).
  run({
    kind: "observe",
    subscriptionId: "a",
    source: "usage endpoint",
    readings: [{ window: "seven_day", source: "oauth", status: "allowed", utilization: 0.85, resetsAt: WEEK_RESET }],
  });
  run({
    kind: "report",
    sessionId: "s3",
    requestId: "1",
    report: usage(0.25, {
      limit: {
        window: "seven_day_opus",
        resetsAt: WEEK_RESET,
        estimated: false,
        message: "Opus weekly limit reached",
        modelScope: "opus",
      },
    }),
  });
  run({
    kind: "report",
    sessionId: "s4",
    requestId: "1",
    report: usage(0.5, {
      limit: { window: "five_hour", resetsAt: now + 2 * HOUR_MS, estimated: true, message: "5-hour limit reached" },
    }),
  });
  run({
    kind: "reconcile",
    subscriptionId: "a",
    rows: [
      row("m1:r1", now - 30 * MINUTE_MS, 1000, "outside-1"),
      row("m2:r2", now - 20 * MINUTE_MS, 2000, "claude-late"),
      row("m3:r3", now - 10 * MINUTE_MS, 500),
      row(undefined, now - 5 * MINUTE_MS, 300, "outside-1"),
      // A model the table does not know, and the CLI's own figures for another: an estimate and a learned price.
      { ...row("m4:r4", now - 4 * MINUTE_MS, 100), model: "claude-nova-1" },
      {
        kind: "costs",
        sessionId: "outside-2",
        at: now - 3 * MINUTE_MS,
        totalCostUsd: 0.01,
        models: {
          "claude-sonnet-5-5": {
            inputTokens: 10,
            outputTokens: 100,
            cacheCreationInputTokens: 0,
            cacheReadInputTokens: 0,
            costUsd: 0.01,
          },
        },
      },
      {
        kind: "limit",
        key: "limit-1",
        at: now - 2 * MINUTE_MS,
        signal: { window: "five_hour", estimated: true, message: "limit in transcript" },
      },
    ],
  });
  // A late report naming a Claude session whose rows were counted as external takes them back.
  run({ kind: "report", sessionId: "s1", requestId: "2", report: usage(0.1, { claudeSessionId: "claude-late" }) });
  run({ kind: "release", sessionId: "s2" });
  // Ten minutes on, sessions are idle: rebalancing moves one (rotatedFrom stays set until its next Allocate).
  now += 10 * MINUTE_MS;
  run({ kind: "rebalance", dryRun: false, trigger: "on_demand" });
  run({ kind: "set_drained", subscriptionId: "b", drained: true });
  run({ kind: "set_paused", subscriptionId: "c", paused: true });
  // d leaves the config while it holds s6: drained, its settings remembered.
  run({ kind: "reconfigure", settings: { ...settings, subscriptions: subs.filter((s) => s.id !== "d") } });
  return pool.state;
}

/** session builds a session directly, for states too small to be worth driving a Pool. */
function session(id: string, over: Partial<SessionState>): SessionState {
  return {
    id,
    subscriptionId: "a",
    allocatedAt: T0,
    lastActivityAt: T0,
    costUsd: 0,
    tokens: { inputTokens: 0, outputTokens: 0, cacheCreationInputTokens: 0, cacheReadInputTokens: 0 },
    requests: 0,
    priority: "normal",
    model: "",
    estimatedTokens: 0,
    client: "default",
    ...over,
  };
}

/** mapOrders lists every map's keys in order: pruning relies on insertion order. */
function mapOrders(state: PoolState): Record<string, string[]> {
  return Object.fromEntries(
    Object.entries(state)
      .filter((e): e is [string, Map<string, unknown>] => e[1] instanceof Map)
      .map(([name, map]) => [name, [...map.keys()]]),
  );
}

describe("poolState() (the fixture)", () => {
  it("fills every part of PoolState, so the round trip covers it", () => {
    const state = poolState();
    const subs = [...state.subscriptions.values()];
    expect(state.eventSeq).toBeGreaterThan(0);
    expect(subs.some((s) => s.buckets.some((b) => b.externalCostUsd !== undefined))).toBe(true);
    expect(subs.some((s) => s.window !== undefined)).toBe(true);
    expect(subs.flatMap((s) => s.cooldowns).map((c) => c.modelScope)).toEqual(
      expect.arrayContaining(["opus", undefined]),
    );
    expect(subs.map((s) => s.paused)).toContain(true);
    expect(subs.map((s) => s.drain?.cause)).toEqual(expect.arrayContaining(["operator", "removed"]));
    expect(subs.find((s) => s.drain?.cause === "removed")?.drain?.settings).toBeDefined();
    const upstream = subs.flatMap((s) => Object.values(s.upstream));
    expect(upstream.map((o) => o?.resetsAt === undefined)).toEqual(expect.arrayContaining([true, false]));
    expect(subs.some((s) => (s.calibration?.seven_day?.samples ?? 0) > 0)).toBe(true);
    expect(subs.some((s) => s.calibration?.five_hour?.anchor?.resetsAt !== undefined)).toBe(true);
    expect(subs.some((s) => s.lastUsedAt !== undefined)).toBe(true);
    expect(subs.some((s) => s.status !== undefined)).toBe(true);
    expect(subs.some((s) => (s.crossed ?? []).length > 0)).toBe(true);
    expect(subs.some((s) => s.externalSeenAt !== undefined)).toBe(true);
    expect([...state.sessions.values()].some((s) => s.rotatedFrom !== undefined)).toBe(true);
    expect(state.dedupe.size).toBeGreaterThan(0);
    expect(state.ended.size).toBeGreaterThan(0);
    expect(state.claudeSessions.size).toBeGreaterThan(0);
    const rows = [...state.transcriptRows.values()];
    expect(rows.map((r) => r.pool)).toEqual(expect.arrayContaining([true, undefined]));
    expect(rows.some((r) => r.sessionId === undefined)).toBe(true);
    expect(state.externalBySession.size).toBeGreaterThan(0);
    expect(rows.some((r) => r.estimated === true)).toBe(true);
    expect(subs.some((s) => s.buckets.some((b) => (b.externalEstimatedUsd ?? 0) > 0))).toBe(true);
    expect(state.prices.size).toBeGreaterThan(0);
    expect(subs.some((s) => s.buckets.some((b) => (b.outsideUse ?? 0) > 0))).toBe(true);
    const ledger = [...state.ledger.values()];
    expect(ledger.some((e) => (e.limits ?? 0) > 0)).toBe(true);
    expect(ledger.some((e) => (e.fallbacks ?? 0) > 0)).toBe(true);
    expect(state.clientsLimited).toEqual(new Map([["strict", "model"]]));
  });
});

describe("encodeState() and decodeState()", () => {
  it("round-trips every field of a state built by real commands, maps in order", () => {
    const state = poolState();
    const decoded = decodeState(encodeState(state), CONFIGURED);
    expect(decoded).toEqual(state);
    expect(mapOrders(decoded)).toEqual(mapOrders(state));
  });

  it("writes the same bytes again for the decoded state", () => {
    const bytes = encodeState(poolState());
    expect(encodeState(decodeState(bytes, CONFIGURED))).toEqual(bytes);
  });

  it("rebuilds the derived indexes from the state rather than reading them", () => {
    const state = poolState();
    const expected = { bySubscription: state.bySubscription, externalBySession: state.externalBySession };
    const stale: PoolState = {
      ...state,
      bySubscription: new Map([["a", new Set(["gone"])]]),
      externalBySession: new Map(),
    };
    const decoded = decodeState(encodeState(stale), CONFIGURED);
    expect({ bySubscription: decoded.bySubscription, externalBySession: decoded.externalBySession }).toEqual(expected);
  });

  it("adds an empty entry for a configured subscription the snapshot does not know", () => {
    const decoded = decodeState(encodeState(poolState()), [...CONFIGURED, "new"]);
    expect(decoded.subscriptions.get("new")).toEqual({
      id: "new",
      buckets: [],
      cooldowns: [],
      paused: false,
      upstream: {},
    });
    expect(decoded.bySubscription.get("new")).toEqual(new Set());
  });

  it("adds state for a subscription only a session names", () => {
    const state = createPoolState(["a"]);
    state.sessions.set("x", session("x", { subscriptionId: "z" }));
    const decoded = decodeState(encodeState(state), ["a"]);
    expect([...decoded.subscriptions.keys()]).toEqual(["a", "z"]);
    expect(decoded.bySubscription).toEqual(
      new Map([
        ["a", new Set()],
        ["z", new Set(["x"])],
      ]),
    );
  });

  it.each([
    { name: "a fraction JSON would print in 17 digits", value: 0.1 + 0.2 },
    { name: "the largest safe integer", value: Number.MAX_SAFE_INTEGER },
    { name: "a number past it", value: 2 ** 60 + 2 ** 10 },
    { name: "negative zero", value: -0 },
    { name: "the smallest subnormal", value: Number.MIN_VALUE },
    { name: "infinity (JSON writes null)", value: Infinity },
    { name: "NaN (JSON writes null)", value: NaN },
  ])("keeps $name exactly", ({ value }) => {
    const state = createPoolState(["a"]);
    state.sessions.set("x", session("x", { costUsd: value }));
    state.dedupe.set("k", value);
    const decoded = decodeState(encodeState(state), ["a"]);
    expect(Object.is(decoded.sessions.get("x")!.costUsd, value)).toBe(true);
    expect(Object.is(decoded.dedupe.get("k"), value)).toBe(true);
  });

  it.each([
    { name: "an empty string", id: "" },
    { name: "quotes and backslashes", id: `say "hi" \\ there` },
    { name: "control characters", id: "a\u0000b\nc\u001f" },
    { name: "non-ASCII text", id: "sesión-日本語-🚀" },
    { name: "a lone surrogate (not valid UTF-8)", id: "x\ud800y" },
  ])("keeps $name in strings exactly", ({ id }) => {
    const state = createPoolState(["a"]);
    state.sessions.set(id, session(id, { model: id }));
    state.claudeSessions.set(id, T0);
    const decoded = decodeState(encodeState(state), ["a"]);
    expect([...decoded.sessions.keys()]).toEqual([id]);
    expect(decoded.sessions.get(id)!.model).toBe(id);
    expect([...decoded.claudeSessions.keys()]).toEqual([id]);
  });

  it("decodes bytes at any offset of a larger buffer", () => {
    const state = poolState();
    const bytes = encodeState(state);
    for (const offset of [1, 3, 8]) {
      const larger = new Uint8Array(bytes.length + offset + 5);
      larger.set(bytes, offset);
      expect(decodeState(larger.subarray(offset, offset + bytes.length), CONFIGURED)).toEqual(state);
    }
  });

  it("puts the format version in the bytes", () => {
    const bytes = encodeState(createPoolState([]));
    expect(new DataView(bytes.buffer, bytes.byteOffset).getUint32(4, true)).toBe(STATE_FORMAT_VERSION);
  });

  const withVersion = (version: number) => {
    const bytes = encodeState(poolState()).slice();
    new DataView(bytes.buffer, bytes.byteOffset).setUint32(4, version, true);
    return bytes;
  };
  const corrupt = (edit: (bytes: Uint8Array) => Uint8Array) => edit(encodeState(poolState()).slice());

  it("reads format 4, which had no clients' refusing limits", () => {
    const state = poolState();
    const four = encodeState(state, { format: 4 });
    expect(new DataView(four.buffer, four.byteOffset).getUint32(4, true)).toBe(4);
    state.clientsLimited.clear();
    expect(decodeState(four, CONFIGURED)).toEqual(state);
  });

  it("reads format 3, which had no outside use in buckets", () => {
    const state = poolState();
    const three = encodeState(state, { format: 3 });
    expect(new DataView(three.buffer, three.byteOffset).getUint32(4, true)).toBe(3);
    state.clientsLimited.clear();
    for (const sub of state.subscriptions.values()) for (const b of sub.buckets) delete b.outsideUse;
    for (const e of state.ledger.values()) {
      delete e.limits;
      delete e.fallbacks;
    }
    expect(decodeState(three, CONFIGURED)).toEqual(state);
  });

  it("reads format 2, which had no clients, ledger, learned prices nor estimated parts", () => {
    const state = poolState();
    const two = encodeState(state, { format: 2 });
    expect(new DataView(two.buffer, two.byteOffset).getUint32(4, true)).toBe(2);
    // What format 2 cannot hold comes back empty or as the default.
    state.clientsLimited.clear();
    state.prices.clear();
    state.ledger.clear();
    state.clientSpend.clear();
    for (const sub of state.subscriptions.values())
      for (const b of sub.buckets) {
        delete b.externalEstimatedUsd;
        delete b.outsideUse;
      }
    for (const r of state.transcriptRows.values()) {
      delete r.estimated;
      delete r.model;
    }
    for (const e of state.ended.values()) delete e.client;
    for (const s of state.sessions.values()) s.client = "default";
    state.clientSessions.clear();
    state.clientSessions.set("default", state.sessions.size);
    expect(decodeState(two, CONFIGURED)).toEqual(state);
  });
  it.each([
    {
      name: "a newer format version",
      bytes: () => withVersion(STATE_FORMAT_VERSION + 1),
      reason: "unsupported_version",
    },
    { name: "format 1 in a binary header", bytes: () => withVersion(1), reason: "unsupported_version" },
    {
      name: "a format 1 (JSON) snapshot",
      bytes: () => new TextEncoder().encode(encodeFormat1(poolState())),
      reason: "not_a_snapshot",
    },
    { name: "no bytes", bytes: () => new Uint8Array(0), reason: "not_a_snapshot" },
    { name: "truncated bytes", bytes: () => corrupt((b) => b.subarray(0, b.length - 1)), reason: "corrupt" },
    { name: "a trailing byte", bytes: () => corrupt((b) => Uint8Array.of(...b, 0)), reason: "corrupt" },
    {
      name: "a stream one number short",
      bytes: () =>
        corrupt((b) => {
          const view = new DataView(b.buffer, b.byteOffset);
          const count = view.getUint32(8, true);
          view.setUint32(8, count - 1, true);
          // Drop the last number, keep the strings.
          return Uint8Array.of(...b.subarray(0, 16 + (count - 1) * 8), ...b.subarray(16 + count * 8));
        }),
      reason: "corrupt",
    },
    {
      name: "a string stream that is not JSON",
      bytes: () => corrupt((b) => b.fill(0x7b, b.length - 1)),
      reason: "corrupt",
    },
    {
      name: "a number the layout does not read",
      bytes: () =>
        corrupt((b) => {
          const view = new DataView(b.buffer, b.byteOffset);
          const count = view.getUint32(8, true);
          view.setUint32(8, count + 1, true);
          return Uint8Array.of(...b.subarray(0, 16 + count * 8), ...new Uint8Array(8), ...b.subarray(16 + count * 8));
        }),
      reason: "corrupt",
    },
  ])("refuses $name", ({ bytes, reason }) => {
    const data = bytes();
    expect(() => decodeState(data, CONFIGURED)).toThrow(StateFormatError);
    expect(() => decodeState(data, CONFIGURED)).toThrow(expect.objectContaining({ reason }));
  });

  it("names both versions when the snapshot is newer", () => {
    expect(() => decodeState(withVersion(7), CONFIGURED)).toThrowErrorMatchingInlineSnapshot(
      `[StateFormatError: state snapshot format 7 is not supported: this version of Auth Pool reads formats 2-5 (the snapshot was written by a newer version)]`,
    );
  });
});

describe("decodeLegacyState()", () => {
  it("reads a full state as format 1 wrote it, maps in order", () => {
    const state = poolState();
    // Format 1 came before learned prices, the ledger and the clients' refusing limits.
    state.clientsLimited.clear();
    state.prices.clear();
    state.ledger.clear();
    state.clientSpend.clear();
    const decoded = decodeLegacyState(encodeFormat1(state), CONFIGURED);
    expect(decoded).toEqual(state);
    expect(mapOrders(decoded)).toEqual(mapOrders(state));
  });

  it("reads a snapshot written before transcripts were kept", () => {
    // Format 1 as written before claudeSessions and transcriptRows existed.
    const text = JSON.stringify({
      v: 1,
      eventSeq: 7,
      subscriptions: [{ id: "a", buckets: [], cooldowns: [], paused: false, upstream: {} }],
      sessions: [session("s1", { subscriptionId: "a" })],
      dedupe: [["r:s1:1", T0]],
      ended: [["s0", { subscriptionId: "a", endedAt: T0 }]],
    });
    const decoded = decodeLegacyState(text, CONFIGURED);
    expect(decoded.eventSeq).toBe(7);
    expect([...decoded.sessions.keys()]).toEqual(["s1"]);
    expect(decoded.bySubscription.get("a")).toEqual(new Set(["s1"]));
    expect(decoded.claudeSessions.size + decoded.transcriptRows.size).toBe(0);
    expect([...decoded.subscriptions.keys()]).toEqual(CONFIGURED);
  });

  it("gives the same state through the binary format once re-encoded", () => {
    const state = decodeLegacyState(encodeFormat1(poolState()), CONFIGURED);
    expect(decodeState(encodeState(state), CONFIGURED)).toEqual(state);
  });

  it("refuses an unknown format 1 version", () => {
    expect(() => decodeLegacyState(JSON.stringify({ v: 2 }), CONFIGURED)).toThrow(
      expect.objectContaining({ reason: "unsupported_version" }),
    );
  });
});
