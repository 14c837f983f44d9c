import { type ScaleStore, runScale } from "./scale/scale-bench.js";
import { type ServerKind, runSpeed } from "./speed/speed-bench.js";
import type { Method } from "./speed/load-process.js";
import type { Protocol } from "./speed/raw-rpc.js";

/**
 * npm run bench                 throughput and latency of the real server, as ratios to its own empty-RPC floor:
 *                               on SQLite, as the leader of a PostgreSQL store, and forwarded by a standby of it
 * npm run bench -- --scale      decision cost, start-up, memory and store size at 10, 100 and 1,000 subscriptions,
 *                               on SQLite and on PostgreSQL
 *
 * Options: --markdown (tables for docs/BENCHMARKS.md); speed: BENCH_MS (per cell,
 * default 2000), --servers sqlite,postgres,standby, --in-flight 1,16,64,256,
 * --protocols grpc,connect, --methods allocate,resume,report,status,release
 * (to profile one: node --cpu-prof dist/bench/main.js --methods report; the
 * leader runs in this process; BENCH_STANDBY_ARGV="--cpu-prof" profiles the
 * standby's), BENCH_SYNC=normal (SQLite without an fsync per commit, to see
 * what durability costs); scale: --sizes 10,100,1000, --store
 * sqlite|postgres|both, --tail minute|history (what start-up replays).
 * PostgreSQL: the test server (postgres://postgres@127.0.0.1:5432/test), or
 * AUTHPOOL_BENCH_POSTGRES / AUTHPOOL_TEST_POSTGRES; each run uses a fresh
 * schema and drops it.
 */
const args = process.argv.slice(2);
const option = (name: string): string | undefined => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const list = (text: string) =>
  text
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
const markdown = args.includes("--markdown");

if (args.includes("--scale")) {
  const store = option("store") ?? "both";
  const stores: ScaleStore[] = store === "both" ? ["sqlite", "postgres"] : (list(store) as ScaleStore[]);
  const tail = option("tail") === "history" ? "history" : "minute";
  await runScale({ sizes: list(option("sizes") ?? "10,100,1000").map(Number), stores, tail, markdown });
} else {
  await runSpeed({
    durationMs: Number(process.env.BENCH_MS ?? 2000),
    inFlight: list(option("in-flight") ?? "1,16,64,256").map(Number),
    protocols: list(option("protocols") ?? "grpc,connect") as Protocol[],
    servers: list(option("servers") ?? "sqlite,postgres,standby") as ServerKind[],
    ...(option("methods") !== undefined ? { methods: list(option("methods")!) as Method[] } : {}),
    markdown,
  });
}
