import type {
  Calibration,
  ClientLimitKind,
  CountedRow,
  Cooldown,
  EndedSession,
  LedgerEntry,
  PoolState,
  SessionState,
  SubscriptionState,
  TokenCounts,
  UpstreamObservation,
  UsageBucket,
} from "../domain/index.js";
import {
  DEFAULT_CLIENT,
  createPoolState,
  ensureSubscriptions,
  ledgerKey,
  rebuildClientIndexes,
} from "../domain/index.js";

/**
 * The snapshot's encoding of PoolState. Derived indexes (bySubscription,
 * externalBySession) are not written; decoding rebuilds them.
 *
 * Layout (format version 5; 4 is the same without the clients' last
 * refusing limits at the end; 3 also without outside use in buckets
 * and limit and paid-run counts in the ledger, which a format 3 reader
 * would misalign on, hence the new number; 2 also
 * lacks the learned prices at the end and the external-estimate parts in
 * buckets), little-endian:
 *
 *   0   "APst"             magic
 *   4   u32 version        STATE_FORMAT_VERSION
 *   8   u32 numbers        count of the float64 stream
 *   12  u32 stringBytes    byte length of the string stream
 *   16  float64[numbers]   every number of the state, in write order
 *   ..  UTF-8 JSON array   every string of the state, in write order
 *
 * The state is walked once, in map order (pruning relies on the maps'
 * insertion order), writing each number to the float64 stream and each
 * string to the string stream; decoding walks the same order back. Strings
 * with few distinct values (subscription ids in sessions, models, window
 * names) are written once and then referred to by index, so a decoded
 * state shares one copy of each. Format version 1 is the JSON of
 * decodeLegacyState.
 *
 * Why this encoding, by measurement (bench/codec/codec-bench.ts, which
 * says how to rerun it; 2-CPU machine, Node 20.20; decode in a fresh
 * process, as at start-up, rebuilding indexes included). At the scale
 * bench's largest size (1,000 subscriptions, 100,000 sessions, 8 days of
 * hourly buckets, 1M dedupe keys, 100,000 ended sessions and transcript
 * rows), encode / decode / size:
 *
 *   JSON (format 1, parsed once)       1.3 s  / 1.9-2.2 s  / 142 MB
 *   JSON per section, columnar keys    1.4 s  / 1.8-2.3 s  / 139 MB
 *   v8.serialize of the maps           0.85 s / 2.6-2.7 s  / 122 MB
 *   protobuf-es, a message per entry   3.3 s  / 3.6-4.4 s  /  80 MB
 *   this layout (format 2)             0.45 s / 1.0-1.4 s  /  78 MB
 *
 * and with the dedupe keys 48 hours of the scale bench's history leave
 * (140,000): JSON 0.42 s / 0.60 s / 75 MB, format 2 0.19 s / 0.37 s / 32 MB.
 * The decoded state also takes less heap after a full collection (223 MB
 * against 328 MB). protobuf-es reflects over every field and decodes each
 * string with its own TextDecoder call; v8.serialize is slow to rebuild
 * Maps and its format is V8's, which only promises that a newer V8 reads
 * what an older one wrote (a Node downgrade could not read the snapshot).
 * Here numbers cost a typed-array write and read each, and all strings one
 * JSON.stringify and one JSON.parse of a string array, done in C++ (V8's
 * JSON parser allocates what it parses from an input of 100 KiB or more
 * straight into the old generation: kPretenureTreshold). What decoding
 * spends beyond that is building the Maps: inserting the entries of the
 * 1M-key state into fresh Maps alone takes 0.6-0.8 s here, whatever the
 * encoding, so decoding under 0.6 s at that size needs fewer dedupe keys,
 * not another codec.
 */

/** STATE_FORMAT_VERSION is the snapshot format encodeState writes and decodeState reads. */
export const STATE_FORMAT_VERSION = 5;

/** The oldest binary format decodeState still reads (2 lacks learned prices and estimated parts). */
const OLDEST_BINARY_FORMAT = 2;

/** StateFormatError: bytes that are not a snapshot decodeState can read. Nothing was loaded. */
export class StateFormatError extends Error {
  override name = "StateFormatError";
  readonly reason: "not_a_snapshot" | "unsupported_version" | "corrupt";
  constructor(message: string, reason: StateFormatError["reason"]) {
    super(message);
    this.reason = reason;
  }
}

const MAGIC = [0x41, 0x50, 0x73, 0x74]; // "APst"
const HEADER_BYTES = 16;
/** Numbers per Writer chunk (512 KiB). */
const CHUNK = 1 << 16;
const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** encodeState serialises the state for a snapshot. */
export function encodeState(state: PoolState, options: { format?: 2 | 3 | 4 | 5 } = {}): Uint8Array {
  const format = options.format ?? STATE_FORMAT_VERSION;
  // Format 2 is what versions before clients and learned prices read: tests write it to prove it still loads.
  const v3 = format >= 3;
  const w = new Writer(format);
  w.num(state.eventSeq);
  w.num(state.subscriptions.size);
  for (const sub of state.subscriptions.values()) writeSubscription(w, sub, format);
  w.num(state.sessions.size);
  for (const s of state.sessions.values()) {
    w.str(s.id);
    w.sym(s.subscriptionId);
    w.num(s.allocatedAt);
    w.num(s.lastActivityAt);
    w.num(s.costUsd);
    w.tokens(s.tokens);
    w.num(s.requests);
    w.sym(s.priority);
    w.sym(s.model);
    w.num(s.estimatedTokens);
    if (v3) w.sym(s.client);
    if (s.rotatedFrom === undefined) w.num(0);
    else {
      w.num(1);
      w.sym(s.rotatedFrom);
    }
  }
  w.num(state.dedupe.size);
  // forEach rather than for-of: no entry array per element (3-4x faster on a million keys).
  state.dedupe.forEach((at, key) => {
    w.str(key);
    w.num(at);
  });
  w.num(state.ended.size);
  state.ended.forEach((e, id) => {
    w.str(id);
    w.sym(e.subscriptionId);
    w.num(e.endedAt);
    if (v3) w.sym(e.client ?? "");
  });
  w.num(state.claudeSessions.size);
  state.claudeSessions.forEach((at, id) => {
    w.str(id);
    w.num(at);
  });
  w.num(state.transcriptRows.size);
  state.transcriptRows.forEach((row, key) => {
    w.str(key);
    w.num(row.at);
    w.tokens(row.tokens);
    w.num(row.costUsd);
    w.num(
      (row.sessionId !== undefined ? 1 : 0) |
        (row.pool !== undefined ? 2 : 0) |
        (row.pool === true ? 4 : 0) |
        (v3 && row.estimated === true ? 8 : 0) |
        (v3 && row.model !== undefined ? 16 : 0),
    );
    if (row.sessionId !== undefined) w.str(row.sessionId);
    if (v3 && row.model !== undefined) w.sym(row.model);
  });
  if (!v3) return w.finish();
  w.num(state.prices.size);
  state.prices.forEach((price, model) => {
    w.sym(model);
    w.num(price.scale);
    w.num(price.at);
  });
  w.num(state.ledger.size);
  state.ledger.forEach((e) => {
    w.num(e.hour);
    w.sym(e.client);
    w.sym(e.subscriptionId);
    w.sym(e.model);
    w.num(e.costUsd);
    w.tokens(e.tokens);
    w.num(e.requests);
    if (format >= 4) {
      w.num(e.limits ?? 0);
      w.num(e.fallbacks ?? 0);
    }
  });
  if (format >= 5) {
    w.num(state.clientsLimited.size);
    state.clientsLimited.forEach((kind, client) => {
      w.sym(client);
      w.sym(kind);
    });
  }
  return w.finish();
}

/**
 * decodeState reads a snapshot back and rebuilds the derived indexes. It
 * throws StateFormatError for bytes that are not a snapshot of a format it
 * reads.
 */
export function decodeState(data: Uint8Array, subscriptionIds: readonly string[]): PoolState {
  const r = new Reader(data);
  const v3 = r.version >= 3;
  const state = createPoolState([]);
  state.eventSeq = r.num();
  for (let n = r.count(); n > 0; n--) {
    const sub = readSubscription(r);
    state.subscriptions.set(sub.id, sub);
  }
  // The index of sessions by subscription is built as the sessions are read
  // (one pass over them rather than two), in the order rebuildIndexes
  // gives: configured ids, then the snapshot's, then ids only sessions name.
  ensureSubscriptions(state, [...subscriptionIds, ...state.subscriptions.keys()]);
  const { bySubscription } = state;
  for (let n = r.count(); n > 0; n--) {
    const id = r.str();
    const session: SessionState = {
      id,
      subscriptionId: r.sym(),
      allocatedAt: r.num(),
      lastActivityAt: r.num(),
      costUsd: r.num(),
      tokens: r.tokens(),
      requests: r.num(),
      priority: r.sym() as SessionState["priority"],
      model: r.sym(),
      estimatedTokens: r.num(),
      client: v3 ? r.sym() : DEFAULT_CLIENT,
    };
    if (r.num() === 1) session.rotatedFrom = r.sym();
    state.sessions.set(id, session);
    let held = bySubscription.get(session.subscriptionId);
    if (held === undefined) {
      ensureSubscriptions(state, [session.subscriptionId]);
      held = bySubscription.get(session.subscriptionId)!;
    }
    held.add(id);
  }
  for (let n = r.count(); n > 0; n--) state.dedupe.set(r.str(), r.num());
  for (let n = r.count(); n > 0; n--) {
    const id = r.str();
    const ended: EndedSession = { subscriptionId: r.sym(), endedAt: r.num() };
    const client = v3 ? r.sym() : "";
    if (client !== "") ended.client = client;
    state.ended.set(id, ended);
  }
  for (let n = r.count(); n > 0; n--) state.claudeSessions.set(r.str(), r.num());
  for (let n = r.count(); n > 0; n--) {
    const key = r.str();
    const row: CountedRow = { at: r.num(), tokens: r.tokens(), costUsd: r.num() };
    const flags = r.num();
    if ((flags & 1) !== 0) row.sessionId = r.str();
    if ((flags & 2) !== 0) row.pool = (flags & 4) !== 0;
    if ((flags & 8) !== 0) row.estimated = true;
    if ((flags & 16) !== 0) row.model = r.sym();
    state.transcriptRows.set(key, row);
  }
  // Format 2 ended here: it had no learned prices.
  if (v3) {
    for (let n = r.count(); n > 0; n--) state.prices.set(r.sym(), { scale: r.num(), at: r.num() });
    for (let n = r.count(); n > 0; n--) {
      const entry: LedgerEntry = {
        hour: r.num(),
        client: r.sym(),
        subscriptionId: r.sym(),
        model: r.sym(),
        costUsd: r.num(),
        tokens: r.tokens(),
        requests: r.num(),
      };
      if (r.version >= 4) {
        const limits = r.num();
        const fallbacks = r.num();
        if (limits > 0) entry.limits = limits;
        if (fallbacks > 0) entry.fallbacks = fallbacks;
      }
      state.ledger.set(ledgerKey(entry.hour, entry.client, entry.subscriptionId, entry.model), entry);
    }
  }
  // Format 4 ended here: a client refused before it was written may be announced once more.
  if (r.version >= 5) {
    for (let n = r.count(); n > 0; n--) state.clientsLimited.set(r.sym(), r.sym() as ClientLimitKind);
  }
  r.end();
  rebuildExternal(state);
  rebuildClientIndexes(state);
  return state;
}

/** rebuildIndexes recomputes sessions-by-subscription from the sessions. */
export function rebuildIndexes(state: PoolState, subscriptionIds: readonly string[]): void {
  state.bySubscription.clear();
  const ids = new Set([...subscriptionIds, ...state.subscriptions.keys()]);
  for (const s of state.sessions.values()) ids.add(s.subscriptionId);
  ensureSubscriptions(state, [...ids]);
  for (const s of state.sessions.values()) state.bySubscription.get(s.subscriptionId)!.add(s.id);
  rebuildClientIndexes(state);
}

/** rebuildExternal recomputes the rows counted as external per Claude session. */
function rebuildExternal(state: PoolState): void {
  state.externalBySession.clear();
  state.transcriptRows.forEach((row, key) => {
    if (row.sessionId === undefined || row.pool === true) return;
    let keys = state.externalBySession.get(row.sessionId);
    if (keys === undefined) state.externalBySession.set(row.sessionId, (keys = new Set()));
    keys.add(key);
  });
}

// Presence bits of a subscription's optional parts.
const HAS_WINDOW = 1;
const HAS_DRAIN = 2;
const HAS_LAST_USED = 4;
const HAS_STATUS = 8;
const HAS_CROSSED = 16;
const HAS_CALIBRATION = 32;
const HAS_EXTERNAL_SEEN = 64;
const PAUSED = 128;
const HAS_THROTTLE = 256;
/** Format 3 on. */
const HAS_RECOVERED = 512;

function writeSubscription(w: Writer, sub: SubscriptionState, format: number): void {
  const v3 = format >= 3;
  w.str(sub.id);
  w.num(
    (sub.window !== undefined ? HAS_WINDOW : 0) |
      (sub.drain !== undefined ? HAS_DRAIN : 0) |
      (sub.lastUsedAt !== undefined ? HAS_LAST_USED : 0) |
      (sub.status !== undefined ? HAS_STATUS : 0) |
      (sub.crossed !== undefined ? HAS_CROSSED : 0) |
      (sub.calibration !== undefined ? HAS_CALIBRATION : 0) |
      (sub.externalSeenAt !== undefined ? HAS_EXTERNAL_SEEN : 0) |
      (sub.paused ? PAUSED : 0) |
      (sub.throttle !== undefined ? HAS_THROTTLE : 0) |
      (v3 && sub.recoveredAt !== undefined ? HAS_RECOVERED : 0),
  );
  w.num(sub.buckets.length);
  for (const b of sub.buckets) {
    w.num(b.hour);
    w.num(b.costUsd);
    w.tokens(b.tokens);
    w.num(b.requests);
    // Bits of what follows: 1 external cost, 2 its estimated part (format 3), 4 outside use (format 4).
    const external = b.externalCostUsd !== undefined;
    const estimated = v3 && external && b.externalEstimatedUsd !== undefined;
    const outside = format >= 4 && b.outsideUse !== undefined;
    w.num((external ? 1 : 0) | (estimated ? 2 : 0) | (outside ? 4 : 0));
    if (external) w.num(b.externalCostUsd!);
    if (estimated) w.num(b.externalEstimatedUsd!);
    if (outside) w.num(b.outsideUse!);
  }
  if (sub.window !== undefined) {
    w.num(sub.window.start);
    w.num(sub.window.end);
    w.num(sub.window.estimated ? 1 : 0);
  }
  w.num(sub.cooldowns.length);
  for (const c of sub.cooldowns) {
    w.num(c.since);
    w.num(c.until);
    w.sym(c.window);
    w.num((c.estimated ? 1 : 0) | (c.modelScope !== undefined ? 2 : 0));
    w.str(c.reason);
    if (c.modelScope !== undefined) w.sym(c.modelScope);
  }
  if (sub.drain !== undefined) {
    w.sym(sub.drain.cause);
    // The settings a removed subscription had, as the config gave them: JSON
    // keeps every field, including ones SubscriptionSettings may gain later.
    w.str(sub.drain.settings === undefined ? "" : JSON.stringify(sub.drain.settings));
  }
  const upstream = Object.entries(sub.upstream).filter((e): e is [string, UpstreamObservation] => e[1] !== undefined);
  w.num(upstream.length);
  for (const [window, o] of upstream) {
    w.sym(window);
    w.num(o.utilization);
    w.num(o.observedAt);
    w.num(o.costSinceUsd);
    w.num((o.resetsAt !== undefined ? 1 : 0) | (o.status !== undefined ? 2 : 0) | (o.source !== undefined ? 4 : 0));
    if (o.resetsAt !== undefined) w.num(o.resetsAt);
    if (o.status !== undefined) w.sym(o.status);
    if (o.source !== undefined) w.sym(o.source);
  }
  if (sub.lastUsedAt !== undefined) w.num(sub.lastUsedAt);
  if (sub.status !== undefined) w.sym(sub.status);
  if (sub.crossed !== undefined) {
    w.num(sub.crossed.length);
    for (const t of sub.crossed) w.num(t);
  }
  if (sub.calibration !== undefined) {
    const calibrations = Object.entries(sub.calibration).filter((e): e is [string, Calibration] => e[1] !== undefined);
    w.num(calibrations.length);
    for (const [window, c] of calibrations) {
      w.sym(window);
      w.num(c.deltaSum);
      w.num(c.costSum);
      w.num(c.samples);
      const a = c.anchor;
      w.num(a === undefined ? 0 : a.resetsAt === undefined ? 1 : 2);
      if (a !== undefined) {
        w.num(a.utilization);
        w.num(a.at);
        w.num(a.costUsd);
        if (a.resetsAt !== undefined) w.num(a.resetsAt);
      }
    }
  }
  if (sub.externalSeenAt !== undefined) w.num(sub.externalSeenAt);
  if (sub.throttle !== undefined) {
    w.num(sub.throttle.since);
    w.num(sub.throttle.until);
    w.str(sub.throttle.reason);
  }
  if (v3 && sub.recoveredAt !== undefined) w.num(sub.recoveredAt);
}

function readSubscription(r: Reader): SubscriptionState {
  const id = r.str();
  const flags = r.num();
  const buckets: UsageBucket[] = [];
  for (let n = r.count(); n > 0; n--) {
    const bucket: UsageBucket = { hour: r.num(), costUsd: r.num(), tokens: r.tokens(), requests: r.num() };
    const parts = r.num();
    if ((parts & 1) !== 0) bucket.externalCostUsd = r.num();
    if ((parts & 2) !== 0) bucket.externalEstimatedUsd = r.num();
    if ((parts & 4) !== 0) bucket.outsideUse = r.num();
    buckets.push(bucket);
  }
  const sub: SubscriptionState = { id, buckets, cooldowns: [], paused: (flags & PAUSED) !== 0, upstream: {} };
  if ((flags & HAS_WINDOW) !== 0) sub.window = { start: r.num(), end: r.num(), estimated: r.num() === 1 };
  for (let n = r.count(); n > 0; n--) {
    const since = r.num();
    const until = r.num();
    const window = r.sym() as Cooldown["window"];
    const bits = r.num();
    const cooldown: Cooldown = { since, until, window, estimated: (bits & 1) !== 0, reason: r.str() };
    if ((bits & 2) !== 0) cooldown.modelScope = r.sym() as Cooldown["modelScope"];
    sub.cooldowns.push(cooldown);
  }
  if ((flags & HAS_DRAIN) !== 0) {
    const cause = r.sym() as NonNullable<SubscriptionState["drain"]>["cause"];
    const settings = r.str();
    sub.drain =
      settings === ""
        ? { cause }
        : { cause, settings: JSON.parse(settings) as NonNullable<SubscriptionState["drain"]>["settings"] };
  }
  for (let n = r.count(); n > 0; n--) {
    const window = r.sym() as keyof SubscriptionState["upstream"];
    const o: UpstreamObservation = { utilization: r.num(), observedAt: r.num(), costSinceUsd: r.num() };
    const bits = r.num();
    if ((bits & 1) !== 0) o.resetsAt = r.num();
    if ((bits & 2) !== 0) o.status = r.sym() as UpstreamObservation["status"];
    if ((bits & 4) !== 0) o.source = r.sym() as UpstreamObservation["source"];
    sub.upstream[window] = o;
  }
  if ((flags & HAS_LAST_USED) !== 0) sub.lastUsedAt = r.num();
  if ((flags & HAS_STATUS) !== 0) sub.status = r.sym() as SubscriptionState["status"];
  if ((flags & HAS_CROSSED) !== 0) {
    const crossed: number[] = [];
    for (let n = r.count(); n > 0; n--) crossed.push(r.num());
    sub.crossed = crossed;
  }
  if ((flags & HAS_CALIBRATION) !== 0) {
    const calibration: NonNullable<SubscriptionState["calibration"]> = {};
    for (let n = r.count(); n > 0; n--) {
      const window = r.sym() as keyof typeof calibration;
      const c: Calibration = { deltaSum: r.num(), costSum: r.num(), samples: r.num() };
      const anchor = r.num();
      if (anchor !== 0) {
        c.anchor = { utilization: r.num(), at: r.num(), costUsd: r.num() };
        if (anchor === 2) c.anchor.resetsAt = r.num();
      }
      calibration[window] = c;
    }
    sub.calibration = calibration;
  }
  if ((flags & HAS_EXTERNAL_SEEN) !== 0) sub.externalSeenAt = r.num();
  if ((flags & HAS_THROTTLE) !== 0) sub.throttle = { since: r.num(), until: r.num(), reason: r.str() };
  if ((flags & HAS_RECOVERED) !== 0) sub.recoveredAt = r.num();
  return sub;
}

/**
 * Writer collects the two streams: numbers in fixed-size Float64Array
 * chunks (growing by copying would allocate twice the stream), strings in
 * an array that becomes one JSON text.
 */
class Writer {
  private readonly format: number;
  private readonly chunks: Float64Array[] = [];
  private chunk = new Float64Array(CHUNK);
  private n = 0;
  private readonly strs: string[] = [];
  private readonly syms = new Map<string, number>();

  constructor(format: number) {
    this.format = format;
  }

  num(x: number): void {
    if (this.n === CHUNK) {
      this.chunks.push(this.chunk);
      this.chunk = new Float64Array(CHUNK);
      this.n = 0;
    }
    this.chunk[this.n++] = x;
  }

  str(s: string): void {
    this.strs.push(s);
  }

  /** sym writes a string of few distinct values: its index, and the string itself the first time. */
  sym(s: string): void {
    const i = this.syms.get(s);
    if (i !== undefined) {
      this.num(i);
      return;
    }
    this.num(this.syms.size);
    this.syms.set(s, this.syms.size);
    this.str(s);
  }

  tokens(t: TokenCounts): void {
    this.num(t.inputTokens);
    this.num(t.outputTokens);
    this.num(t.cacheCreationInputTokens);
    this.num(t.cacheReadInputTokens);
  }

  finish(): Uint8Array {
    const text = JSON.stringify(this.strs);
    const textBytes = Buffer.byteLength(text, "utf8");
    const count = this.chunks.length * CHUNK + this.n;
    const out = Buffer.allocUnsafeSlow(HEADER_BYTES + count * 8 + textBytes);
    out.set(MAGIC, 0);
    out.writeUInt32LE(this.format, 4);
    out.writeUInt32LE(count, 8);
    out.writeUInt32LE(textBytes, 12);
    let at = HEADER_BYTES;
    for (const chunk of [...this.chunks, this.chunk.subarray(0, this.n)]) {
      const bytes = new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length * 8);
      out.set(bytes, at);
      if (!littleEndian) swap64(out.subarray(at, at + bytes.length));
      at += bytes.length;
    }
    out.write(text, at, "utf8");
    return out;
  }
}

/** Reader walks the two streams of a snapshot in the order Writer wrote them. */
class Reader {
  readonly version: number;
  private readonly nums: Float64Array;
  private n = 0;
  private readonly strs: string[];
  private s = 0;
  private readonly syms: string[] = [];

  constructor(data: Uint8Array) {
    if (data.length < HEADER_BYTES || MAGIC.some((b, i) => data[i] !== b)) {
      const hint = data[0] === 0x7b ? " (it looks like JSON: a format 1 snapshot is read by decodeLegacyState)" : "";
      throw new StateFormatError(`not a state snapshot${hint}`, "not_a_snapshot");
    }
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    const version = view.getUint32(4, true);
    if (version < OLDEST_BINARY_FORMAT || version > STATE_FORMAT_VERSION) {
      throw new StateFormatError(
        `state snapshot format ${version} is not supported: this version of Auth Pool reads formats ${OLDEST_BINARY_FORMAT}-${STATE_FORMAT_VERSION}` +
          (version > STATE_FORMAT_VERSION ? " (the snapshot was written by a newer version)" : ""),
        "unsupported_version",
      );
    }
    this.version = version;
    const count = view.getUint32(8, true);
    const textBytes = view.getUint32(12, true);
    if (data.length !== HEADER_BYTES + count * 8 + textBytes) {
      throw new StateFormatError(
        `state snapshot is ${data.length} bytes, its header says ${HEADER_BYTES + count * 8 + textBytes}`,
        "corrupt",
      );
    }
    const start = data.byteOffset + HEADER_BYTES;
    // A Float64Array needs an 8-byte aligned offset: Buffers from a pool or a driver often are not.
    const aligned = start % 8 === 0 && littleEndian;
    const nums = aligned
      ? new Uint8Array(data.buffer, start, count * 8)
      : data.slice(HEADER_BYTES, HEADER_BYTES + count * 8);
    if (!littleEndian) swap64(nums);
    this.nums = new Float64Array(nums.buffer, nums.byteOffset, count);
    const text = Buffer.from(data.buffer, start + count * 8, textBytes).toString("utf8");
    let strs: unknown;
    try {
      strs = JSON.parse(text);
    } catch {
      strs = undefined;
    }
    if (!Array.isArray(strs)) throw this.corrupt();
    this.strs = strs as string[];
  }

  num(): number {
    if (this.n >= this.nums.length) throw this.corrupt();
    return this.nums[this.n++]!;
  }

  /** count reads a length. */
  count(): number {
    const n = this.num();
    if (!Number.isInteger(n) || n < 0) throw this.corrupt();
    return n;
  }

  str(): string {
    const s = this.strs[this.s++];
    if (typeof s !== "string") throw this.corrupt();
    return s;
  }

  sym(): string {
    const i = this.num();
    const known = this.syms[i];
    if (known !== undefined) return known;
    if (i !== this.syms.length) throw this.corrupt();
    const s = this.str();
    this.syms.push(s);
    return s;
  }

  tokens(): TokenCounts {
    return {
      inputTokens: this.num(),
      outputTokens: this.num(),
      cacheCreationInputTokens: this.num(),
      cacheReadInputTokens: this.num(),
    };
  }

  /** end checks that both streams were read to their end. */
  end(): void {
    if (this.n !== this.nums.length || this.s !== this.strs.length) throw this.corrupt();
  }

  private corrupt(): StateFormatError {
    return new StateFormatError("state snapshot is corrupt: its streams do not match the state's layout", "corrupt");
  }
}

/** swap64 reverses the bytes of each 8-byte number, for a big-endian host. */
function swap64(bytes: Uint8Array): void {
  for (let i = 0; i < bytes.length; i += 8) bytes.subarray(i, i + 8).reverse();
}

/**
 * The format 1 snapshot: plain JSON with maps as entry arrays, as versions
 * before format 2 wrote it.
 */
interface LegacyState {
  v: 1;
  eventSeq: number;
  subscriptions: SubscriptionState[];
  sessions: SessionState[];
  dedupe: [string, number][];
  ended: [string, { subscriptionId: string; endedAt: number }][];
  /** Absent in snapshots written before transcripts were read. */
  claudeSessions?: [string, number][];
  transcriptRows?: [string, CountedRow][];
}

/**
 * decodeLegacyState reads a format 1 (JSON) snapshot, so a store written
 * before format 2 still loads after an upgrade.
 */
export function decodeLegacyState(text: string, subscriptionIds: readonly string[]): PoolState {
  const encoded = JSON.parse(text) as LegacyState;
  if (encoded.v !== 1)
    throw new StateFormatError(`legacy snapshot version ${String(encoded.v)} is not supported`, "unsupported_version");
  const state = createPoolState([]);
  state.eventSeq = encoded.eventSeq;
  for (const sub of encoded.subscriptions) state.subscriptions.set(sub.id, sub);
  for (const session of encoded.sessions)
    state.sessions.set(session.id, { ...session, client: session.client ?? DEFAULT_CLIENT });
  for (const [k, t] of encoded.dedupe) state.dedupe.set(k, t);
  for (const [k, e] of encoded.ended) state.ended.set(k, e);
  for (const [k, t] of encoded.claudeSessions ?? []) state.claudeSessions.set(k, t);
  for (const [k, r] of encoded.transcriptRows ?? []) state.transcriptRows.set(k, r);
  rebuildExternal(state);
  rebuildClientIndexes(state);
  rebuildIndexes(state, subscriptionIds);
  return state;
}
