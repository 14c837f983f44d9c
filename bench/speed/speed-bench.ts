import { type ChildProcess, fork } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseConfig } from "../../src/config/index.js";
import { type AuthPoolServer, startAuthPoolServer } from "../../src/server/start-server.js";
import { writeFakeLogin } from "../fake-login.js";
import { type FreshSchema, cpuBetween, freshSchema, postgresBackendCpuMs } from "../fresh-postgres.js";
import { machineLine } from "../machine.js";
import { formatTable } from "../table.js";
import type { CellRequest, CellResult, LoadInit, Method } from "./load-process.js";
import type { Protocol } from "./raw-rpc.js";
import type { StandbyCpu, StandbyReady, StandbyStart } from "./standby-process.js";

/**
 * ServerKind: which server a round's load goes to.
 * - sqlite: one server on a SQLite file (WAL, synchronous=FULL);
 * - postgres: the leader of a PostgreSQL store (a fresh schema), alone;
 * - standby: a second server on that store, in a process of its own, which
 *   stands by and forwards every write to the leader.
 */
export type ServerKind = "sqlite" | "postgres" | "standby";

/** SpeedOptions: how long each cell runs, on which servers, at which concurrencies, over which protocols. */
export interface SpeedOptions {
  durationMs: number;
  inFlight: number[];
  protocols: Protocol[];
  /** Servers to measure, in this order (default all three). */
  servers: ServerKind[];
  /** Methods to measure (default: each server's own list); the floor always runs. */
  methods?: Method[];
  markdown: boolean;
}

/** The pool: 10 subscriptions holding 15 sessions each. */
const SUBSCRIPTIONS = 10;
const HELD_PER_SUBSCRIPTION = 15;

const LOAD_PROCESS = fileURLToPath(new URL("./load-process.js", import.meta.url));
const STANDBY_PROCESS = fileURLToPath(new URL("./standby-process.js", import.meta.url));

/** LABELS, in the order each round runs them; the floor runs first and last and its mean is the baseline. */
const LABELS: Record<Exclude<Method, "floor">, string> = {
  allocate: "Allocate (new session)",
  resume: "Allocate (resume)",
  report: "ReportUsage (claude_output)",
  status: "GetPoolStatus",
  release: "Release",
};

/**
 * SERVER_METHODS: everything on SQLite; on PostgreSQL the two calls on a
 * gateway's request path, which both write (a round of every method on
 * each store would take three times as long).
 */
const SERVER_METHODS: Record<ServerKind, Method[]> = {
  sqlite: ["allocate", "resume", "report", "status", "release"],
  postgres: ["allocate", "report"],
  standby: ["allocate", "report"],
};

const SERVER_NAMES: Record<ServerKind, string> = {
  sqlite: "sqlite",
  postgres: "pg leader",
  standby: "pg via standby",
};

interface Row {
  server: ServerKind;
  protocol: Protocol;
  inFlight: number;
  label: string;
  method: Method;
  rate: number;
  ratio: number;
  r: CellResult;
  /** Server CPU per call: this process (the leader), and for the standby rows the standby's process. */
  leaderCpuUs: number;
  standbyCpuUs: number;
  /** CPU per call of the PostgreSQL backends serving our connections (NaN on SQLite, which runs in this process). */
  dbCpuUs: number;
  /** Submit to durable answer in the leader's writer (NaN for the floor, which never reaches it). */
  poolP50: number;
  poolP99: number;
  /** Journal records the leader wrote during the cell (one commit each). */
  records: number;
}

/** Target: where a round sends its load, and how to read what the servers spent. */
interface Target {
  kind: ServerKind;
  url: string;
  /** The leader's URL, for untimed clean-up. */
  leaderUrl: string;
  /** The standby's CPU time so far in µs (0 when the load goes to the leader). */
  standbyCpuUs: () => Promise<number>;
  /** The PostgreSQL backends' CPU time by pid (undefined on SQLite). */
  dbCpuMs: () => Promise<Map<number, number> | undefined>;
}

/**
 * runSpeed starts the real server in this process, seeds 10 subscriptions
 * x 15 held sessions, forks the load generator, and runs one cell per
 * method, concurrency and protocol on each server: SQLite; the leader of
 * a PostgreSQL store; and a standby of that store (a process of its own)
 * that forwards each write to the leader. Each round is framed by two cells
 * of the empty-RPC floor (grpc.health.v1 Check, through the same listener,
 * adapter and interceptors of the server the load goes to), and every
 * method's throughput is given as a ratio to their mean. Besides
 * client-side latency it records the servers' CPU time per call (and the
 * PostgreSQL backends'), which stays meaningful when other processes share
 * the machine.
 */
export async function runSpeed(options: SpeedOptions): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "authpool-bench-"));
  // Logged in (fake tokens): the pool offers only subscriptions with a usable login (configInput's dirs).
  for (let i = 0; i < SUBSCRIPTIONS; i++) await writeFakeLogin(path.join(dir, `sub${i}`));
  // The load generator must not inherit a --cpu-prof given to this process.
  const load = fork(LOAD_PROCESS, [], { stdio: ["ignore", "inherit", "inherit", "ipc"], execArgv: [] });
  const rows: Row[] = [];
  try {
    console.log(
      `speed: ${machineLine()}; load average ${os
        .loadavg()
        .map((x) => x.toFixed(1))
        .join(" ")}`,
    );
    console.log(
      `servers: ${options.servers.map((s) => SERVER_NAMES[s]).join(", ")}; the leader runs in this process, the load in a separate one ` +
        `(and the standby in a third; all share the ${os.availableParallelism()} cores with PostgreSQL); ` +
        `${SUBSCRIPTIONS} subscriptions x ${HELD_PER_SUBSCRIPTION} held sessions, SQLite synchronous=${process.env.BENCH_SYNC === "normal" ? "NORMAL" : "FULL"}; ` +
        `${options.durationMs} ms per cell\n`,
    );
    if (options.servers.includes("sqlite")) {
      // BENCH_SYNC=normal: no fsync per commit, to see what the durable write costs.
      const uri = `sqlite://${path.join(dir, "authpool.sqlite")}${process.env.BENCH_SYNC === "normal" ? "?synchronous=normal" : ""}`;
      const server = await startAuthPoolServer({ config: parseConfig(configInput(dir, uri), "<bench>") });
      try {
        const target: Target = {
          kind: "sqlite",
          url: server.url,
          leaderUrl: server.url,
          standbyCpuUs: async () => 0,
          dbCpuMs: async () => undefined,
        };
        rows.push(...(await measure(load, server, target, options)));
      } finally {
        await server.close();
      }
    }
    if (options.servers.includes("postgres") || options.servers.includes("standby")) {
      try {
        rows.push(...(await measurePostgres(load, dir, options)));
      } catch (error) {
        // The SQLite rounds still count: say why PostgreSQL has no rows.
        console.error(`PostgreSQL rounds not run: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  } finally {
    load.send({ kind: "stop" });
    await rm(dir, { recursive: true, force: true });
  }
  printRows(rows, options.markdown);
  printTargets(rows);
  console.log(
    `\nload average at the end: ${os
      .loadavg()
      .map((x) => x.toFixed(1))
      .join(" ")} (other processes on the machine inflate wall-clock rates; CPU per call less)`,
  );
}

/**
 * measurePostgres runs the PostgreSQL rounds on a fresh schema: the leader
 * alone first (no standby following it), then a standby started on the
 * same store, with the load sent to the standby.
 */
async function measurePostgres(load: ChildProcess, dir: string, options: SpeedOptions): Promise<Row[]> {
  const schema = await freshSchema("bench_speed");
  const input = configInput(dir, schema.uri);
  const rows: Row[] = [];
  let leader: AuthPoolServer | undefined;
  let standby: ChildProcess | undefined;
  try {
    leader = await startAuthPoolServer({ config: parseConfig(input, "<bench>") });
    if (leader.writer.role !== "leader") throw new Error("the PostgreSQL bench server did not take the store's lease");
    const dbCpuMs = () => postgresBackendCpuMs(schema.applicationName);
    if (options.servers.includes("postgres")) {
      rows.push(
        ...(await measure(
          load,
          leader,
          { kind: "postgres", url: leader.url, leaderUrl: leader.url, standbyCpuUs: async () => 0, dbCpuMs },
          options,
        )),
      );
    }
    if (options.servers.includes("standby")) {
      // BENCH_STANDBY_ARGV="--cpu-prof": Node options for the standby's process, to profile it.
      const execArgv = (process.env.BENCH_STANDBY_ARGV ?? "").split(" ").filter((s) => s !== "");
      standby = fork(STANDBY_PROCESS, [], { stdio: ["ignore", "inherit", "inherit", "ipc"], execArgv });
      const ready = (await ask(
        standby,
        { kind: "start", config: input } satisfies StandbyStart,
        "ready",
      )) as StandbyReady;
      if (ready.role !== "standby") throw new Error(`the second server is ${ready.role}, expected a standby`);
      const child = standby;
      const standbyCpuUs = async () => ((await ask(child, { kind: "cpu" }, "cpu")) as StandbyCpu).us;
      rows.push(
        ...(await measure(
          load,
          leader,
          { kind: "standby", url: ready.url, leaderUrl: leader.url, standbyCpuUs, dbCpuMs },
          options,
        )),
      );
    }
  } finally {
    if (standby !== undefined) await stopChild(standby);
    await leader?.close();
    await dropSchema(schema);
  }
  return rows;
}

/**
 * measure seeds the held sessions on `leader` (unless a previous round on
 * this pool did) and runs the rounds on `target`: per protocol, a warm-up,
 * then per concurrency the floor, the methods, and the floor again.
 */
async function measure(
  load: ChildProcess,
  leader: AuthPoolServer,
  target: Target,
  options: SpeedOptions,
): Promise<Row[]> {
  const heldSessions = Array.from({ length: SUBSCRIPTIONS * HELD_PER_SUBSCRIPTION }, (_, i) => `held-${i}`);
  const pool = leader.writer.currentPool;
  for (const sessionId of heldSessions) {
    if (!pool.state.sessions.has(sessionId)) {
      await leader.writer.submit({
        kind: "allocate",
        sessionId,
        priority: "normal",
        model: "sonnet",
        estimatedTokens: 0,
      });
    }
  }
  await ask(load, { kind: "init", heldSessions } satisfies LoadInit, "ready");
  // Time each command from submit to its durable answer: the pool's own share of a call's latency
  // (the writer's queue, the decision, the group-committed write). Forwarded calls reach the same writer.
  const inPool: number[] = [];
  const submit = leader.writer.submit;
  leader.writer.submit = ((command) => {
    const t = performance.now();
    const answer = submit.call(leader.writer, command);
    answer.then(
      () => inPool.push(performance.now() - t),
      () => {},
    );
    return answer;
  }) as typeof leader.writer.submit;
  let records = 0;
  const unsubscribe = leader.writer.subscribe(() => records++);
  const cell = async (
    protocol: Protocol,
    method: Method,
    inFlight: number,
    durationMs = options.durationMs,
    url = target.url,
  ) => {
    inPool.length = 0;
    const recordsBefore = records;
    const [standbyBefore, dbBefore] = [await target.standbyCpuUs(), await target.dbCpuMs()];
    const cpu = process.cpuUsage();
    const r = (await ask(
      load,
      { kind: "cell", url, protocol, method, inFlight, durationMs } satisfies CellRequest,
      "result",
    )) as CellResult;
    const used = process.cpuUsage(cpu);
    const [standbyAfter, dbAfter] = [await target.standbyCpuUs(), await target.dbCpuMs()];
    const times = [...inPool].sort((a, b) => a - b);
    const at = (q: number) => times[Math.min(times.length - 1, Math.floor(times.length * q))] ?? Number.NaN;
    const perCall = (us: number) => (r.calls > 0 ? us / r.calls : Number.NaN);
    return {
      r,
      leaderCpuUs: perCall(used.user + used.system),
      standbyCpuUs: perCall(standbyAfter - standbyBefore),
      dbCpuUs: perCall(cpuBetween(dbBefore, dbAfter) * 1000),
      poolP50: at(0.5),
      poolP99: at(0.99),
      records: records - recordsBefore,
    };
  };
  const methods = SERVER_METHODS[target.kind].filter(
    (m) => options.methods === undefined || options.methods.includes(m),
  );
  // Sessions the allocate cells made go again before the next cell: measured by the release cell
  // where the round has one, else untimed through the leader (the pool stays at its size).
  const cleanUp = async () => {
    if (!methods.includes("release")) await cell("connect", "release", 64, 600_000, target.leaderUrl);
  };
  const rows: Row[] = [];
  try {
    for (const protocol of options.protocols) {
      // Warm-up (discarded): connections, JIT, the store's first pages.
      await cell(protocol, "floor", 16, 1_000);
      await cell(protocol, "allocate", 16, 500);
      await cell(protocol, "release", 16, 500);
      await cleanUp();
      for (const inFlight of options.inFlight) {
        const before = await cell(protocol, "floor", inFlight);
        const measured: (Awaited<ReturnType<typeof cell>> & { method: Method })[] = [];
        for (const method of methods) {
          measured.push({ method, ...(await cell(protocol, method, inFlight)) });
          if (method === "allocate") await cleanUp();
        }
        const after = await cell(protocol, "floor", inFlight);
        const floorRate = (rateOf(before.r) + rateOf(after.r)) / 2;
        const row = (m: Awaited<ReturnType<typeof cell>>, method: Method, label: string): Row => ({
          server: target.kind,
          protocol,
          inFlight,
          label,
          method,
          rate: rateOf(m.r),
          ratio: rateOf(m.r) / floorRate,
          ...m,
        });
        rows.push(row(before, "floor", "floor: Health.Check (before)"));
        for (const m of measured) rows.push(row(m, m.method, LABELS[m.method as Exclude<Method, "floor">]));
        rows.push(row(after, "floor", "floor: Health.Check (after)"));
        process.stdout.write(`${SERVER_NAMES[target.kind]} ${protocol} ${inFlight} in flight done\n`);
      }
    }
  } finally {
    leader.writer.submit = submit;
    unsubscribe();
  }
  return rows;
}

/** configInput is the pool's config (before parseConfig) on the store at `uri`. */
function configInput(dir: string, uri: string): object {
  return {
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
    store: { uri },
    // Fake logins: polling them would ask api.anthropic.com and time the network, not the pool.
    upstream: { enabled: false },
  };
}

function printRows(rows: Row[], markdown: boolean): void {
  const us = (x: number) => (Number.isNaN(x) ? "–" : x.toFixed(0));
  console.log(
    "\n" +
      formatTable(
        [
          "server",
          "protocol",
          "in flight",
          "method",
          "calls/s",
          "x floor",
          "p50 ms",
          "p99 ms",
          "in pool p50 / p99 ms",
          "calls/commit",
          "server CPU µs/call",
          "db CPU µs/call",
          "errors",
        ],
        rows.map((x) => [
          SERVER_NAMES[x.server],
          x.protocol,
          String(x.inFlight),
          x.label + (x.r.exhausted ? " *" : "") + (x.r.fallbacks > 0 ? ` (${x.r.fallbacks} fallbacks)` : ""),
          x.rate.toFixed(0),
          x.ratio.toFixed(2),
          x.r.p50Ms.toFixed(2),
          x.r.p99Ms.toFixed(2),
          Number.isNaN(x.poolP50) ? "–" : `${x.poolP50.toFixed(2)} / ${x.poolP99.toFixed(2)}`,
          x.records > 0 && x.method !== "floor" ? (x.r.calls / x.records).toFixed(1) : "–",
          x.server === "standby"
            ? `${us(x.leaderCpuUs + x.standbyCpuUs)} (${us(x.standbyCpuUs)} standby)`
            : us(x.leaderCpuUs),
          us(x.dbCpuUs),
          String(x.r.errors),
        ]),
        markdown,
      ),
  );
  if (rows.some((x) => x.r.exhausted))
    console.log("* ran out of sessions to release before the time was up; the rate is over the time it ran");
  const firstError = rows.find((x) => x.r.firstError !== undefined);
  if (firstError !== undefined)
    console.log(`first error: ${SERVER_NAMES[firstError.server]} ${firstError.label}: ${firstError.r.firstError}`);
}

/** printTargets checks the targets at 64 calls in flight over gRPC. */
function printTargets(rows: Row[]): void {
  const at = (server: ServerKind, method: Method) =>
    rows.find((x) => x.server === server && x.protocol === "grpc" && x.inFlight === 64 && x.method === method);
  const check = (ok: boolean, text: string) => console.log(`${ok ? "PASS" : "MISS"}  ${text}`);
  const lines: (() => void)[] = [];
  const allocate = at("sqlite", "allocate");
  const report = at("sqlite", "report");
  if (allocate !== undefined) {
    lines.push(() =>
      check(
        allocate.ratio >= 0.8,
        `SQLite: Allocate ${allocate.ratio.toFixed(3)} x the empty-RPC floor (target >= 0.800)`,
      ),
    );
  }
  if (report !== undefined) {
    lines.push(() =>
      check(
        report.ratio >= 0.7,
        `SQLite: ReportUsage ${report.ratio.toFixed(3)} x the empty-RPC floor (target >= 0.700)`,
      ),
    );
  }
  if (allocate !== undefined) {
    lines.push(() => {
      check(allocate.r.p99Ms < 5, `SQLite: Allocate p99 ${allocate.r.p99Ms.toFixed(2)} ms (target < 5 ms)`);
      const floor = at("sqlite", "floor");
      if (floor === undefined || allocate.r.p99Ms < 5) return;
      console.log(
        `      the empty RPC's own p99 at 64 in flight is ${floor.r.p99Ms.toFixed(2)} ms (p50 ${floor.r.p50Ms.toFixed(2)} ms): ` +
          `64 calls queued on ${os.availableParallelism()} shared cores wait for each other whatever they do;`,
      );
      console.log(
        `      Allocate's time in the pool itself (writer queue, decision, durable write): p50 ${allocate.poolP50.toFixed(2)} ms, p99 ${allocate.poolP99.toFixed(2)} ms`,
      );
    });
  }
  /** The mean of a server's two floor cells at 64 in flight over gRPC. */
  const floorOf = (server: ServerKind) => {
    const floors = rows.filter(
      (x) => x.server === server && x.protocol === "grpc" && x.inFlight === 64 && x.method === "floor",
    );
    const mean = (f: (x: Row) => number) => floors.reduce((sum, x) => sum + f(x), 0) / floors.length;
    return { leaderCpuUs: mean((x) => x.leaderCpuUs), standbyCpuUs: mean((x) => x.standbyCpuUs) };
  };
  for (const method of ["allocate", "report"] as const) {
    const name = method === "allocate" ? "Allocate" : "ReportUsage";
    const leader = at("postgres", method);
    if (leader !== undefined) {
      lines.push(() => {
        check(
          leader.ratio >= 0.8,
          `PostgreSQL leader: ${name} ${leader.ratio.toFixed(3)} x its empty-RPC floor (target >= 0.800)`,
        );
        const floor = floorOf("postgres");
        console.log(
          `      CPU per call: the leader ${leader.leaderCpuUs.toFixed(0)} µs and PostgreSQL ${leader.dbCpuUs.toFixed(0)} µs against the empty RPC's ${floor.leaderCpuUs.toFixed(0)} µs ` +
            `(x ${(floor.leaderCpuUs / (leader.leaderCpuUs + leader.dbCpuUs)).toFixed(2)}); ${(leader.r.calls / leader.records).toFixed(1)} calls per commit`,
        );
      });
    }
    const forwarded = at("standby", method);
    if (forwarded !== undefined) {
      lines.push(() => {
        check(
          forwarded.ratio >= 0.5,
          `PostgreSQL, forwarded by a standby: ${name} ${forwarded.ratio.toFixed(3)} x the standby's empty-RPC floor (target >= 0.500)`,
        );
        const floor = floorOf("standby");
        const all = forwarded.leaderCpuUs + forwarded.standbyCpuUs + forwarded.dbCpuUs;
        const floorAll = floor.leaderCpuUs + floor.standbyCpuUs;
        console.log(
          `      CPU per call: standby ${forwarded.standbyCpuUs.toFixed(0)} + leader ${forwarded.leaderCpuUs.toFixed(0)} + PostgreSQL ${forwarded.dbCpuUs.toFixed(0)} = ${all.toFixed(0)} µs ` +
            `against the empty RPC's ${floorAll.toFixed(0)} (x ${(floorAll / all).toFixed(2)}): on one machine the call is served twice, and all share the cores;`,
        );
        console.log(
          `      the standby's own CPU per call is x ${(floor.standbyCpuUs / forwarded.standbyCpuUs).toFixed(2)} of its empty RPC's: about the ratio a standby with cores of its own would reach`,
        );
      });
    }
  }
  if (lines.length === 0) return;
  console.log("\ntargets (gRPC, 64 in flight):");
  for (const line of lines) line();
}

function rateOf(r: CellResult): number {
  return r.calls / (r.elapsedMs / 1000);
}

async function dropSchema(schema: FreshSchema): Promise<void> {
  await schema
    .drop()
    .catch((error: unknown) => console.error(`could not drop schema ${schema.schema}: ${String(error)}`));
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.send({ kind: "stop" });
  await exited;
}

function ask(child: ChildProcess, message: object, reply: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: { kind: string; result?: unknown }) => {
      if (m.kind !== reply) return;
      child.off("message", onMessage);
      child.off("exit", onExit);
      resolve("result" in m ? m.result : m);
    };
    const onExit = (code: number | null) => reject(new Error(`child process exited with ${code}`));
    child.on("message", onMessage);
    child.once("exit", onExit);
    child.send(message);
  });
}
