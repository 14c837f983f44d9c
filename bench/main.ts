import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Health } from "../gen/grpc/health/v1/health_pb.js";
import { createAuthPoolClient } from "../src/client/index.js";
import { parseConfig } from "../src/config/index.js";
import { startAuthPoolServer } from "../src/server/start-server.js";

/**
 * npm run bench: throughput of the pool's RPCs as ratios against a baseline
 * measured in the same run on the same server and connection (a
 * grpc.health.v1 Check, which does no pool work). Absolute numbers depend
 * on the machine; the ratios say what the pool's own work costs.
 */
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 64);
const DURATION_MS = Number(process.env.BENCH_MS ?? 3000);

async function measure(name: string, call: (i: number) => Promise<unknown>): Promise<number> {
  let done = 0;
  let next = 0;
  const deadline = performance.now() + DURATION_MS;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (performance.now() < deadline) {
        await call(next++);
        done++;
      }
    }),
  );
  const rate = done / ((performance.now() - start) / 1000);
  console.log(`${name.padEnd(44)} ${rate.toFixed(0).padStart(8)} calls/s`);
  return rate;
}

async function run(storeUri: (dir: string) => string, label: string, key: string): Promise<Record<string, number>> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "authpool-bench-"));
  const config = parseConfig(
    {
      subscriptions: Array.from({ length: 10 }, (_, i) => ({
        id: `sub${i}`,
        type: "claude-max",
        configDir: path.join(dir, `sub${i}`),
        weeklyBudgetUsd: 1e9,
        maxSessions: 100_000,
      })),
      server: { host: "127.0.0.1", port: 0 },
      store: { uri: storeUri(dir) },
    },
    "<bench>",
  );
  const server = await startAuthPoolServer({ config });
  const transport = createGrpcTransport({ baseUrl: server.url });
  const health = createClient(Health, transport);
  const pool = createAuthPoolClient(server.url);
  const output = await readFile(new URL("../../test/fixtures/claude-cli/success.json", import.meta.url), "utf8");
  console.log(`\n${label} (${CONCURRENCY} calls in flight, ${DURATION_MS} ms each)`);
  await measure("warm-up (discarded)", () => health.check({}));
  const baseline = await measure("baseline: Health.Check", () => health.check({}));
  const allocate = await measure("Allocate (new session)", (i) => pool.allocate({ sessionId: `${key}-a${i}` }));
  const resume = await measure("Allocate (resume)", (i) => pool.allocate({ sessionId: `${key}-a${i % 1000}` }));
  const report = await measure("ReportUsage (claude_output)", (i) =>
    pool.reportUsage({ sessionId: `${key}-a${i % 1000}`, requestId: `r${i}`, source: { case: "claudeOutput", value: output } }),
  );
  const status = await measure("GetPoolStatus", () => pool.getPoolStatus({}));
  await server.close();
  await rm(dir, { recursive: true, force: true });
  return { baseline, allocate, resume, report, status };
}

const sqlite = await run((dir) => `sqlite://${path.join(dir, "bench.sqlite")}`, "sqlite (synchronous=FULL)", "sq");
const memory = await run(() => "memory://", "memory store", "mem");

console.log("\nratios (1.0 = as fast as the baseline on the same run)");
for (const key of ["allocate", "resume", "report", "status"] as const) {
  console.log(
    `${key.padEnd(10)} sqlite/baseline ${(sqlite[key]! / sqlite.baseline!).toFixed(2)}   memory/baseline ${(memory[key]! / memory.baseline!).toFixed(2)}   sqlite/memory ${(sqlite[key]! / memory[key]!).toFixed(2)}`,
  );
}
