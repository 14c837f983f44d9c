import { type ChildProcess, fork } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseConfig } from "../../src/config/index.js";
import { startAuthPoolServer } from "../../src/server/start-server.js";
import { machineLine } from "../machine.js";
import { formatTable } from "../table.js";
import type { CellRequest, CellResult, LoadInit, Method } from "./load-process.js";
import type { Protocol } from "./raw-rpc.js";

/** SpeedOptions: how long each cell runs, at which concurrencies, over which protocols. */
export interface SpeedOptions {
  durationMs: number;
  inFlight: number[];
  protocols: Protocol[];
  /** Methods to measure (default all); the floor always runs. */
  methods?: Method[];
  markdown: boolean;
}

/** The pool: 10 subscriptions holding 15 sessions each. */
const SUBSCRIPTIONS = 10;
const HELD_PER_SUBSCRIPTION = 15;

const LOAD_PROCESS = fileURLToPath(new URL("./load-process.js", import.meta.url));

/** METHODS, in the order each round runs them; the floor runs first and last and its mean is the baseline. */
const METHODS: { method: Method; label: string }[] = [
  { method: "allocate", label: "Allocate (new session)" },
  { method: "resume", label: "Allocate (resume)" },
  { method: "report", label: "ReportUsage (claude_output)" },
  { method: "status", label: "GetPoolStatus" },
  { method: "release", label: "Release" },
];

interface Row {
  protocol: Protocol;
  inFlight: number;
  label: string;
  method: Method | "floor";
  rate: number;
  ratio: number;
  r: CellResult;
  serverCpuUs: number;
  /** Submit to durable answer in the writer (NaN for the floor, which never reaches it). */
  poolP50: number;
  poolP99: number;
}

/**
 * runSpeed starts the real server (SQLite, WAL, synchronous=FULL, in a temp
 * dir) in this process, seeds 10 subscriptions x 15 held sessions, forks
 * the load generator, and runs one cell per method, concurrency and
 * protocol. Each round is framed by two cells of the empty-RPC floor
 * (grpc.health.v1 Check, through the same listener, adapter and
 * interceptors), and every method's throughput is given as a ratio to
 * their mean. Besides client-side latency it records the server's CPU time
 * per call, which stays meaningful when other processes share the machine.
 */
export async function runSpeed(options: SpeedOptions): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "authpool-bench-"));
  const config = parseConfig(
    {
      subscriptions: Array.from({ length: SUBSCRIPTIONS }, (_, i) => ({
        id: `sub${i}`,
        email: `sub${i}@example.com`,
        type: "claude-max",
        configDir: path.join(dir, `sub${i}`),
        weeklyBudgetUsd: 5_000,
        // Room for the sessions an Allocate cell creates: each round starts from the 15 held.
        maxSessions: 1_000,
      })),
      server: { host: "127.0.0.1", port: 0 },
      // BENCH_SYNC=normal: no fsync per commit, to see what the durable write costs.
      store: { uri: `sqlite://${path.join(dir, "authpool.sqlite")}${process.env.BENCH_SYNC === "normal" ? "?synchronous=normal" : ""}` },
    },
    "<bench>",
  );
  const server = await startAuthPoolServer({ config });
  const heldSessions = Array.from({ length: SUBSCRIPTIONS * HELD_PER_SUBSCRIPTION }, (_, i) => `held-${i}`);
  for (const sessionId of heldSessions) {
    await server.writer.submit({ kind: "allocate", sessionId, priority: "normal", model: "sonnet", estimatedTokens: 0 });
  }
  // Time each command from submit to its durable answer: the pool's own share of a call's latency
  // (the writer's queue, the decision, the group-committed write).
  const inPool: number[] = [];
  const submit = server.writer.submit.bind(server.writer);
  server.writer.submit = ((command) => {
    const t = performance.now();
    const answer = submit(command);
    answer.then(
      () => inPool.push(performance.now() - t),
      () => {},
    );
    return answer;
  }) as typeof server.writer.submit;
  // The load generator must not inherit a --cpu-prof given to this process.
  const load = fork(LOAD_PROCESS, [], { stdio: ["ignore", "inherit", "inherit", "ipc"], execArgv: [] });
  try {
    await ask(load, { kind: "init", url: server.url, heldSessions } satisfies LoadInit, "ready");
    console.log(`speed: ${machineLine()}`);
    console.log(
      `server: this process; load: a separate process (both share the ${os.availableParallelism()} cores); ` +
        `${SUBSCRIPTIONS} subscriptions x ${HELD_PER_SUBSCRIPTION} held sessions, SQLite synchronous=${process.env.BENCH_SYNC === "normal" ? "NORMAL" : "FULL"}; ${options.durationMs} ms per cell\n`,
    );
    const cell = async (protocol: Protocol, method: Method, inFlight: number, durationMs = options.durationMs) => {
      inPool.length = 0;
      const cpu = process.cpuUsage();
      const r = (await ask(load, { kind: "cell", protocol, method, inFlight, durationMs } satisfies CellRequest, "result")) as CellResult;
      const used = process.cpuUsage(cpu);
      const times = [...inPool].sort((a, b) => a - b);
      const at = (q: number) => times[Math.min(times.length - 1, Math.floor(times.length * q))] ?? Number.NaN;
      return { r, serverCpuUs: r.calls > 0 ? (used.user + used.system) / r.calls : Number.NaN, poolP50: at(0.5), poolP99: at(0.99) };
    };
    const rows: Row[] = [];
    for (const protocol of options.protocols) {
      // Warm-up (discarded): connections, JIT, the store's first pages.
      await cell(protocol, "floor", 16, 1_000);
      await cell(protocol, "allocate", 16, 500);
      await cell(protocol, "release", 16, 500);
      for (const inFlight of options.inFlight) {
        const before = await cell(protocol, "floor", inFlight);
        const measured: { label: string; method: Method; r: CellResult; serverCpuUs: number; poolP50: number; poolP99: number }[] = [];
        for (const m of METHODS.filter((x) => options.methods === undefined || options.methods.includes(x.method))) measured.push({ label: m.label, method: m.method, ...(await cell(protocol, m.method, inFlight)) });
        const after = await cell(protocol, "floor", inFlight);
        const floorRate = (rateOf(before.r) + rateOf(after.r)) / 2;
        const floorRow = (r: CellResult, serverCpuUs: number, label: string): Row => ({
          protocol, inFlight, label, method: "floor", rate: rateOf(r), ratio: rateOf(r) / floorRate, r, serverCpuUs, poolP50: Number.NaN, poolP99: Number.NaN,
        });
        rows.push(floorRow(before.r, before.serverCpuUs, "floor: Health.Check (before)"));
        for (const m of measured) rows.push({ protocol, inFlight, ...m, rate: rateOf(m.r), ratio: rateOf(m.r) / floorRate });
        rows.push(floorRow(after.r, after.serverCpuUs, "floor: Health.Check (after)"));
        process.stdout.write(`${protocol} ${inFlight} in flight done\n`);
      }
    }
    console.log(
      "\n" +
        formatTable(
          ["protocol", "in flight", "method", "calls/s", "x floor", "p50 ms", "p99 ms", "in pool p50 / p99 ms", "server CPU µs/call", "errors"],
          rows.map((x) => [
            x.protocol,
            String(x.inFlight),
            x.label + (x.r.exhausted ? " *" : "") + (x.r.fallbacks > 0 ? ` (${x.r.fallbacks} fallbacks)` : ""),
            x.rate.toFixed(0),
            x.ratio.toFixed(2),
            x.r.p50Ms.toFixed(2),
            x.r.p99Ms.toFixed(2),
            Number.isNaN(x.poolP50) ? "–" : `${x.poolP50.toFixed(2)} / ${x.poolP99.toFixed(2)}`,
            x.serverCpuUs.toFixed(0),
            String(x.r.errors),
          ]),
          options.markdown,
        ),
    );
    if (rows.some((x) => x.r.exhausted)) console.log("* ran out of sessions to release before the time was up; the rate is over the time it ran");
    const firstError = rows.find((x) => x.r.firstError !== undefined);
    if (firstError !== undefined) console.log(`first error: ${firstError.label}: ${firstError.r.firstError}`);
    printTargets(rows);
  } finally {
    load.send({ kind: "stop" });
    await server.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/** printTargets checks the targets at 64 calls in flight over gRPC. */
function printTargets(rows: Row[]): void {
  const at = (method: Method) => rows.find((x) => x.protocol === "grpc" && x.inFlight === 64 && x.method === method);
  const allocate = at("allocate");
  const report = at("report");
  if (allocate === undefined || report === undefined) return;
  const check = (ok: boolean, text: string) => console.log(`${ok ? "PASS" : "MISS"}  ${text}`);
  console.log("\ntargets (gRPC, 64 in flight):");
  check(allocate.ratio >= 0.8, `Allocate ${allocate.ratio.toFixed(2)} x the empty-RPC floor (target >= 0.80)`);
  check(report.ratio >= 0.7, `ReportUsage ${report.ratio.toFixed(2)} x the empty-RPC floor (target >= 0.70)`);
  check(allocate.r.p99Ms < 5, `Allocate p99 ${allocate.r.p99Ms.toFixed(2)} ms (target < 5 ms)`);
  const floor = rows.find((x) => x.protocol === "grpc" && x.inFlight === 64 && x.method === "floor");
  if (floor !== undefined && allocate.r.p99Ms >= 5) {
    console.log(
      `      the empty RPC's own p99 at 64 in flight is ${floor.r.p99Ms.toFixed(2)} ms (p50 ${floor.r.p50Ms.toFixed(2)} ms): ` +
        `64 calls queued on ${os.availableParallelism()} shared cores wait for each other whatever they do;`,
    );
    console.log(
      `      Allocate's time in the pool itself (writer queue, decision, durable write): p50 ${allocate.poolP50.toFixed(2)} ms, p99 ${allocate.poolP99.toFixed(2)} ms`,
    );
  }
}

function rateOf(r: CellResult): number {
  return r.calls / (r.elapsedMs / 1000);
}

function ask(child: ChildProcess, message: object, reply: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: { kind: string; result?: unknown }) => {
      if (m.kind !== reply) return;
      child.off("message", onMessage);
      child.off("exit", onExit);
      resolve(m.result);
    };
    const onExit = (code: number | null) => reject(new Error(`load generator exited with ${code}`));
    child.on("message", onMessage);
    child.once("exit", onExit);
    child.send(message);
  });
}
