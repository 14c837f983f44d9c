/**
 * Shared machinery of the fuzz suites: run counts (FUZZ_RUNS), case
 * counting, outcome judging (a precise code, INVALID_ARGUMENT naming the
 * field) and the no-state-change check on refused calls.
 */
import { appendFile, readFile, readdir, rm, stat } from "node:fs/promises";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import {
  Http2SessionManager,
  compressionGzip,
  createConnectTransport,
  createGrpcTransport,
} from "@connectrpc/connect-node";
import fc from "fast-check";
import { expect } from "vitest";
import { type AuthPoolClient, AuthPoolService, GetPoolStatusResponseSchema } from "../../src/client/index.js";
import { Health, HealthCheckResponse_ServingStatus } from "../../gen/grpc/health/v1/health_pb.js";
import type { TestPool } from "../support/test-server.js";

/** DEFAULT_RUNS is what a plain property runs in CI; FUZZ_RUNS=N scales every property by N / DEFAULT_RUNS. */
const DEFAULT_RUNS = 100;
const requested = Number(process.env.FUZZ_RUNS ?? "");
const scale = Number.isFinite(requested) && requested > 0 ? requested / DEFAULT_RUNS : 1;

/** runs scales a property's CI run count by FUZZ_RUNS (never below the CI count). */
export function runs(base: number): number {
  return Math.max(base, Math.ceil(base * scale));
}

/**
 * timeoutFor gives an `it` enough time for its scaled run count (ms), with
 * room for a loaded machine: a timeout must mean a hang, not a busy CI box.
 */
export function timeoutFor(base: number, msPerCase = 40): number {
  return Math.max(120_000, runs(base) * msPerCase * 3);
}

/** FUZZ_SEED replays a failing run (fast-check prints the seed on failure). */
const seed = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);

/** CaseCounter counts every case a property executed in one test file. */
export class CaseCounter {
  total = 0;
  readonly byProperty = new Map<string, number>();

  /** check runs an async property numRuns (scaled) times, counting each executed case. */
  async check<T>(
    name: string,
    arb: fc.Arbitrary<T>,
    body: (value: T) => Promise<void>,
    baseRuns: number,
  ): Promise<void> {
    const property = fc.asyncProperty(arb, async (value) => {
      this.count(name);
      try {
        await body(value);
      } catch (error) {
        // A case fc.pre skipped was not tried.
        if (fc.PreconditionFailure.isFailure(error)) this.count(name, -1);
        throw error;
      }
    });
    await fc.assert(property, { numRuns: runs(baseRuns), ...(seed !== undefined ? { seed } : {}) });
  }

  /** checkSync is check for a synchronous property. */
  checkSync<T>(name: string, arb: fc.Arbitrary<T>, body: (value: T) => void, baseRuns: number): void {
    const property = fc.property(arb, (value) => {
      this.count(name);
      try {
        body(value);
      } catch (error) {
        if (fc.PreconditionFailure.isFailure(error)) this.count(name, -1);
        throw error;
      }
    });
    fc.assert(property, { numRuns: runs(baseRuns), ...(seed !== undefined ? { seed } : {}) });
  }

  /** count adds cases run outside fast-check (fixed edge cases). */
  count(name: string, n = 1): void {
    this.total += n;
    this.byProperty.set(name, (this.byProperty.get(name) ?? 0) + n);
  }
}

/**
 * The fuzz files, for the grand total: each file appends its count to a
 * ledger shared by the workers of one vitest run (keyed by the parent pid),
 * and the last one to finish prints the total.
 */
const FUZZ_FILES = ["session-rpcs", "claude-output", "admin-rpcs", "connect-json", "request-limits", "config"];

/** reportCases prints one file's count and, once every fuzz file reported, the grand total. */
export async function reportCases(file: string, counter: CaseCounter): Promise<void> {
  const detail = [...counter.byProperty].map(([name, n]) => `${name} ${n}`).join(", ");
  console.log(`[fuzz] ${file}: ${counter.total} cases (${detail})`);
  const ledger = path.join(os.tmpdir(), `authpool-fuzz-ledger-${process.ppid}.txt`);
  await appendFile(ledger, `${file} ${counter.total}\n`);
  const lines = (await readFile(ledger, "utf8")).trim().split("\n");
  const seen = new Map(lines.map((l) => l.split(" ") as [string, string]));
  const total = [...seen.values()].reduce((sum, n) => sum + Number(n), 0);
  if (FUZZ_FILES.every((f) => seen.has(f))) {
    console.log(`[fuzz] TOTAL: ${total} cases tried across ${seen.size} fuzz files`);
    await rm(ledger, { force: true });
  } else {
    console.log(`[fuzz] running total: ${total} cases (${seen.size}/${FUZZ_FILES.length} files)`);
  }
  // A run of only some fuzz files leaves its ledger behind: sweep those older than an hour.
  for (const name of await readdir(os.tmpdir())) {
    if (!name.startsWith("authpool-fuzz-ledger-")) continue;
    const file = path.join(os.tmpdir(), name);
    const info = await stat(file).catch(() => undefined);
    if (info !== undefined && Date.now() - info.mtimeMs > 3_600_000) await rm(file, { force: true });
  }
}

/** Outcome is what a call answered: OK with its value, or a Connect code with its raw message. */
export type Outcome<T = unknown> = { ok: true; value: T } | { ok: false; code: Code; message: string };

/** outcome awaits a call and captures its answer instead of throwing. */
export async function outcome<T>(call: Promise<T>): Promise<Outcome<T>> {
  try {
    return { ok: true, value: await call };
  } catch (error) {
    const e = ConnectError.from(error);
    return { ok: false, code: e.code, message: e.rawMessage };
  }
}

/**
 * Verdict is what the oracle expects of a call. `must`: fields the input
 * gets wrong, so the call must be INVALID_ARGUMENT naming one of them (or a
 * `may` field). `may`: fields the server may refuse (the oracle cannot tell
 * whether the value is used). `codes`: other codes a valid call may get.
 */
export interface Verdict {
  must: string[];
  may?: string[];
  codes?: Code[];
  /** Whether OK is acceptable when `must` is empty (default true). */
  ok?: boolean;
}

/** names says whether an INVALID_ARGUMENT message names field first ("field: ...", "field (camel): ...", "field.sub..."). */
export function names(message: string, field: string): boolean {
  if (!message.startsWith(field)) return false;
  const next = message.charAt(field.length);
  return next === ":" || next === " " || next === "." || next === "[";
}

/** judge asserts an outcome fits the verdict: never INTERNAL/UNKNOWN, a precise code, the field named. */
export function judge(out: Outcome, verdict: Verdict, context: unknown): void {
  const show = () =>
    `${JSON.stringify(context, replacer).slice(0, 600)} -> ${JSON.stringify(out, replacer).slice(0, 600)}`;
  if (!out.ok) {
    expect(out.code, `an unexpected code: ${show()}`).not.toBe(Code.Internal);
    expect(out.code, `an unexpected code: ${show()}`).not.toBe(Code.Unknown);
    // Bounded: a gRPC error text travels in a trailer, and one past the HTTP/2
    // header block limit breaks the whole connection (FRAME_SIZE_ERROR).
    expect(out.message.length, `an error text of ${out.message.length} characters: ${show()}`).toBeLessThanOrEqual(
      16_384,
    );
  }
  const fields = [...verdict.must, ...(verdict.may ?? [])];
  if (verdict.must.length > 0) {
    expect(out.ok, `expected INVALID_ARGUMENT naming ${verdict.must.join(" or ")}: ${show()}`).toBe(false);
  }
  if (out.ok) {
    expect(verdict.ok ?? true, `expected a refusal: ${show()}`).toBe(true);
    return;
  }
  if (out.code === Code.InvalidArgument) {
    expect(
      fields.some((f) => names(out.message, f)),
      `INVALID_ARGUMENT should name one of [${fields.join(", ")}]: ${show()}`,
    ).toBe(true);
    return;
  }
  expect(verdict.must, `expected INVALID_ARGUMENT, got another code: ${show()}`).toEqual([]);
  expect(verdict.codes ?? [], `unexpected code ${Code[out.code]}: ${show()}`).toContain(out.code);
}

/** replacer lets JSON.stringify show bigints, NaN and infinities in failure messages. */
export function replacer(_key: string, value: unknown): unknown {
  if (typeof value === "bigint") return `${value}n`;
  if (typeof value === "number" && !Number.isFinite(value)) return String(value);
  if (typeof value === "string" && value.length > 200) return `${value.slice(0, 200)}…(${value.length} chars)`;
  return value;
}

/**
 * StateProbe tells whether a refused call changed anything: the full
 * status (with sessions) as bytes, and the journal head. The test clock
 * does not move, so two reads with nothing in between are byte-identical.
 */
export class StateProbe {
  private last: { bytes: Uint8Array; head: number } | undefined;
  private sinceHealth = 0;

  constructor(private readonly pool: () => TestPool) {}

  /** read takes the state now (and proves status still answers). */
  async read(): Promise<{ bytes: Uint8Array; head: number }> {
    const p = this.pool();
    const status = await p.grpc.getPoolStatus({ includeSessions: true });
    // The lease's expiry moves with every renewal: the pool's state is the rest.
    status.cluster = undefined;
    return { bytes: toBinary(GetPoolStatusResponseSchema, status), head: p.server.feed.headSeq };
  }

  /** before returns the state before a call (cached while no call succeeded); take it before every call. */
  async before(): Promise<{ bytes: Uint8Array; head: number }> {
    this.last ??= await this.read();
    return this.last;
  }

  /**
   * after checks a call's effect: a refused call left the state as it was;
   * an accepted one may have changed it (the cache is dropped). Every 50
   * calls the health service must still answer SERVING.
   */
  async after(out: Outcome, before: { bytes: Uint8Array; head: number }, context: unknown): Promise<void> {
    this.last = undefined;
    if (!out.ok) {
      const now = await this.read();
      this.last = now;
      expect(now.head, `a refused call wrote events: ${JSON.stringify(context, replacer).slice(0, 400)}`).toBe(
        before.head,
      );
      expect(
        Buffer.from(now.bytes).equals(Buffer.from(before.bytes)),
        `a refused call changed the status: ${JSON.stringify(context, replacer).slice(0, 400)} -> ${JSON.stringify(out, replacer).slice(0, 300)}`,
      ).toBe(true);
    }
    if (++this.sinceHealth >= 50) {
      this.sinceHealth = 0;
      await expectServing(this.pool());
    }
  }

  /** forget drops the cached state (call after changing state outside the probe). */
  forget(): void {
    this.last = undefined;
  }
}

/** expectServing asserts the server still answers a health Check with SERVING. */
export async function expectServing(pool: TestPool): Promise<void> {
  const health = createClient(Health, createGrpcTransport({ baseUrl: pool.server.url }));
  const res = await health.check({ service: "" }, { timeoutMs: 5000 });
  expect(res.status).toBe(HealthCheckResponse_ServingStatus.SERVING);
}

/**
 * FreshClients makes clients on connections of their own (an HTTP/2 session,
 * an HTTP/1.1 agent), for calls over the request size limit: such a call
 * spoils its connection (a known transport defect, pinned in
 * request-limits.test.ts), and the shared clients of a TestPool (whose
 * HTTP/1.1 sockets come from Node's global agent) must stay usable.
 */
export class FreshClients {
  private readonly agents: http.Agent[] = [];
  private readonly sessions: Http2SessionManager[] = [];

  client(url: string, protocol: "grpc" | "connect", options: { gzip?: boolean } = {}): AuthPoolClient {
    const compression = options.gzip === true ? { sendCompression: compressionGzip, compressMinBytes: 1 } : {};
    if (protocol === "connect") {
      const agent = new http.Agent({ keepAlive: true });
      this.agents.push(agent);
      const transport = createConnectTransport({
        baseUrl: url,
        httpVersion: "1.1",
        nodeOptions: { agent },
        defaultTimeoutMs: 10_000,
        ...compression,
      });
      return createClient(AuthPoolService, transport);
    }
    const sessionManager = new Http2SessionManager(url);
    this.sessions.push(sessionManager);
    return createClient(
      AuthPoolService,
      createGrpcTransport({ baseUrl: url, sessionManager, defaultTimeoutMs: 10_000, ...compression }),
    );
  }

  /** close hangs up every connection made, so the server's shutdown need not wait for them. */
  close(): void {
    for (const agent of this.agents.splice(0)) agent.destroy();
    for (const session of this.sessions.splice(0)) session.abort();
  }
}
