import { readFile } from "node:fs/promises";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  AllocateRequestSchema,
  AllocateResponseSchema,
  AuthPoolService,
  GetPoolStatusRequestSchema,
  ReleaseRequestSchema,
  ReportUsageRequestSchema,
} from "../../gen/authpool/v1/auth_pool_pb.js";
import { Health, HealthCheckRequestSchema } from "../../gen/grpc/health/v1/health_pb.js";
import { type Protocol, RawRpcClient } from "./raw-rpc.js";

/**
 * The load generator: a process of its own (forked by the speed bench) so
 * that its CPU is not the server's. It runs one cell at a time on the
 * parent's request over one HTTP/2 connection per server and protocol, keeps
 * `inFlight` calls outstanding for `durationMs`, and answers with the
 * count, errors, latency percentiles and its own CPU time.
 */

/** Method: what a cell calls. */
export type Method = "floor" | "allocate" | "resume" | "report" | "status" | "release";

/** CellRequest is the parent's order for one cell. */
export interface CellRequest {
  kind: "cell";
  /** The server to call. */
  url: string;
  protocol: Protocol;
  method: Method;
  inFlight: number;
  durationMs: number;
}

/** CellResult is what one cell measured on the client side. */
export interface CellResult {
  calls: number;
  errors: number;
  firstError?: string;
  elapsedMs: number;
  p50Ms: number;
  p99Ms: number;
  clientCpuMs: number;
  /** Allocations answered with the fallback instead of a subscription. */
  fallbacks: number;
  /** True when a release cell ran out of sessions to release before its time was up. */
  exhausted: boolean;
}

/**
 * LoadInit tells the child which sessions the pool it is about to load
 * already holds; sent again for each pool, it forgets the sessions made in
 * the previous one.
 */
export interface LoadInit {
  kind: "init";
  heldSessions: string[];
}

const svc = (name: string) => `/${AuthPoolService.typeName}/${name}`;
const PATHS: Record<Method, string> = {
  floor: `/${Health.typeName}/Check`,
  allocate: svc("Allocate"),
  resume: svc("Allocate"),
  report: svc("ReportUsage"),
  status: svc("GetPoolStatus"),
  release: svc("Release"),
};

let held: string[] = [];
/** One client (one HTTP/2 connection) per server URL and protocol. */
const clients = new Map<string, RawRpcClient>();
/** Sessions the allocate cells created, released by the release cells. */
const created: string[] = [];
let sequence = 0;
let claudeOutput: { before: string; middle: string; after: string } | undefined;

/**
 * outputTemplate splits the real `claude -p --output-format json` fixture
 * around its session_id and uuid, so each report carries its session's id
 * and a uuid of its own (a repeated uuid would be deduplicated and cost the
 * server nothing) without re-serialising the JSON per call.
 */
async function outputTemplate(): Promise<{ before: string; middle: string; after: string }> {
  const text = (
    await readFile(new URL("../../../test/fixtures/claude-cli/success.json", import.meta.url), "utf8")
  ).trim();
  const parsed = JSON.parse(text) as { session_id: string; uuid: string };
  const [before, rest] = text.split(parsed.session_id) as [string, string];
  const [middle, after] = rest.split(parsed.uuid) as [string, string];
  return { before, middle, after };
}

function body(method: Method, cell: number): Uint8Array | undefined {
  const n = ++sequence;
  switch (method) {
    case "floor":
      return toBinary(HealthCheckRequestSchema, create(HealthCheckRequestSchema));
    case "allocate": {
      const sessionId = `c${cell}-${n}`;
      created.push(sessionId);
      return toBinary(AllocateRequestSchema, create(AllocateRequestSchema, { sessionId, model: "sonnet" }));
    }
    case "resume":
      return toBinary(
        AllocateRequestSchema,
        create(AllocateRequestSchema, { sessionId: held[n % held.length]!, model: "sonnet" }),
      );
    case "report": {
      const sessionId = held[n % held.length]!;
      const t = claudeOutput!;
      const uuid = `00000000-0000-4000-8000-${String(n).padStart(12, "0")}`;
      return toBinary(
        ReportUsageRequestSchema,
        create(ReportUsageRequestSchema, {
          sessionId,
          requestId: `r${n}`,
          source: { case: "claudeOutput", value: `${t.before}${sessionId}${t.middle}${uuid}${t.after}` },
        }),
      );
    }
    case "status":
      return toBinary(GetPoolStatusRequestSchema, create(GetPoolStatusRequestSchema));
    case "release": {
      const sessionId = created.pop();
      return sessionId === undefined
        ? undefined
        : toBinary(ReleaseRequestSchema, create(ReleaseRequestSchema, { sessionId }));
    }
  }
}

let cells = 0;

async function runCell(req: CellRequest): Promise<CellResult> {
  const cell = ++cells;
  const key = `${req.protocol} ${req.url}`;
  let client = clients.get(key);
  if (client === undefined) {
    client = new RawRpcClient(req.url, req.protocol);
    clients.set(key, client);
  }
  const path = PATHS[req.method];
  const latencies: number[] = [];
  let errors = 0;
  let fallbacks = 0;
  let firstError: string | undefined;
  let exhausted = false;
  const cpu = process.cpuUsage();
  const start = performance.now();
  const deadline = start + req.durationMs;
  const worker = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const b = body(req.method, cell);
      if (b === undefined) {
        exhausted = true;
        return;
      }
      const t = performance.now();
      try {
        const reply = await client.call(path, b);
        latencies.push(performance.now() - t);
        if (req.method === "allocate" && fromBinary(AllocateResponseSchema, reply).outcome.case !== "subscription")
          fallbacks++;
      } catch (error) {
        errors++;
        firstError ??= String(error);
      }
    }
  };
  await Promise.all(Array.from({ length: req.inFlight }, worker));
  const elapsedMs = performance.now() - start;
  const used = process.cpuUsage(cpu);
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * q))] ?? Number.NaN;
  return {
    calls: latencies.length,
    errors,
    ...(firstError !== undefined ? { firstError } : {}),
    elapsedMs,
    p50Ms: at(0.5),
    p99Ms: at(0.99),
    clientCpuMs: (used.user + used.system) / 1000,
    fallbacks,
    exhausted,
  };
}

process.on("message", (m: LoadInit | CellRequest | { kind: "stop" }) => {
  void (async () => {
    if (m.kind === "init") {
      held = m.heldSessions;
      created.length = 0;
      claudeOutput ??= await outputTemplate();
      process.send?.({ kind: "ready" });
    } else if (m.kind === "cell") {
      process.send?.({ kind: "result", result: await runCell(m) });
    } else {
      for (const c of clients.values()) c.close();
      process.exit(0);
    }
  })();
});
