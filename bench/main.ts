import { runScale } from "./scale/scale-bench.js";
import { runSpeed } from "./speed/speed-bench.js";
import type { Method } from "./speed/load-process.js";
import type { Protocol } from "./speed/raw-rpc.js";

/**
 * npm run bench                 throughput and latency of the real server, as ratios to its own empty-RPC floor
 * npm run bench -- --scale      decision cost, start-up, memory and store size at 10, 100 and 1,000 subscriptions
 *
 * Options: --markdown (tables for docs/BENCHMARKS.md); speed: BENCH_MS (per cell,
 * default 2000), --in-flight 1,16,64,256, --protocols grpc,connect, --methods
 * allocate,resume,report,status,release (to profile one: node --cpu-prof
 * dist/bench/main.js --methods report; the server runs in this process),
 * BENCH_SYNC=normal (SQLite without an fsync per commit, to see what durability costs); scale:
 * --sizes 10,100,1000.
 */
const args = process.argv.slice(2);
const option = (name: string): string | undefined => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const list = (text: string) => text.split(",").map((s) => s.trim()).filter((s) => s !== "");
const markdown = args.includes("--markdown");

if (args.includes("--scale")) {
  await runScale({ sizes: list(option("sizes") ?? "10,100,1000").map(Number), markdown });
} else {
  await runSpeed({
    durationMs: Number(process.env.BENCH_MS ?? 2000),
    inFlight: list(option("in-flight") ?? "1,16,64,256").map(Number),
    protocols: list(option("protocols") ?? "grpc,connect") as Protocol[],
    ...(option("methods") !== undefined ? { methods: list(option("methods")!) as Method[] } : {}),
    markdown,
  });
}
