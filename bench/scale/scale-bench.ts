import { fork } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { machineLine } from "../machine.js";
import { formatTable } from "../table.js";
import type { BuildResult, MeasureResult } from "./scale-child.js";
import { HISTORY_DAYS, SCALE_SESSIONS } from "./scale-config.js";

/** ScaleOptions: which pool sizes to build and measure. */
export interface ScaleOptions {
  sizes: number[];
  markdown: boolean;
}

const CHILD = fileURLToPath(new URL("./scale-child.js", import.meta.url));

/** TARGETS at the largest size: allocation decision, start-up, resident memory. */
const TARGETS = { allocateUs: 50, startupMs: 3_000, rssMb: 300 };

/**
 * runScale builds each size's history in one child process and measures it
 * in a fresh one (so resident memory is the loaded pool's, not the
 * builder's), then prints one row per size and the targets at the largest.
 */
export async function runScale(options: ScaleOptions): Promise<void> {
  console.log(`scale: ${machineLine()}`);
  console.log(
    `each size: ${SCALE_SESSIONS} open sessions per subscription, ${HISTORY_DAYS} days of history through the real writer, SQLite (WAL, synchronous=FULL to measure)\n`,
  );
  const rows: { size: number; built: BuildResult; m: MeasureResult }[] = [];
  for (const size of options.sizes) {
    const dir = await mkdtemp(path.join(os.tmpdir(), "authpool-scale-"));
    try {
      process.stdout.write(`${size} subscriptions: building history... `);
      const built = await child<BuildResult>("build", dir, size);
      process.stdout.write(`${built.reports} reports in ${(built.buildMs / 1000).toFixed(0)} s; measuring... `);
      const m = await child<MeasureResult>("measure", dir, size);
      console.log("done");
      rows.push({ size, built, m });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
  const us = (x: { mean: number; p50: number; p99: number; cpu: number }) =>
    `${x.mean.toFixed(1)} · ${x.p50.toFixed(1)} / ${x.p99.toFixed(1)} · ${x.cpu.toFixed(1)}`;
  console.log("\ndecisions (µs): mean · p50 / p99 (wall clock) · process CPU per decision (includes GC helper threads)");
  console.log(
    formatTable(
        [
          "subscriptions",
          "sessions",
          "reports",
          "store",
          "start-up",
          "replayed",
          "RSS",
          "heap",
          "allocate µs",
          "resume µs",
          "report µs",
          "GetPoolStatus",
          "rebalance",
        ],
        rows.map(({ size, built, m }) => [
          String(size),
          String(m.sessions),
          String(built.reports),
          `${m.storeMb.toFixed(0)} MB`,
          `${m.startupMs.toFixed(0)} ms`,
          `${m.replayedRecords} rec`,
          `${m.rssMb.toFixed(0)} MB`,
          `${m.heapMb.toFixed(0)} MB`,
          us(m.allocate),
          us(m.resume),
          us(m.report),
          `${m.statusMs.toFixed(1)} ms`,
          `${m.rebalanceMs.toFixed(1)} ms`,
        ]),
        options.markdown,
      ),
  );
  if (rows.length > 1) {
    const first = rows[0]!;
    const last = rows[rows.length - 1]!;
    const k = last.size / first.size;
    console.log(
      `\ngrowth ${first.size} -> ${last.size} subscriptions (x${k}): allocate x${(last.m.allocate.mean / first.m.allocate.mean).toFixed(1)}, ` +
        `start-up x${(last.m.startupMs / first.m.startupMs).toFixed(1)}, RSS x${(last.m.rssMb / first.m.rssMb).toFixed(1)}, ` +
        `store x${(last.m.storeMb / first.m.storeMb).toFixed(1)}, GetPoolStatus x${(last.m.statusMs / first.m.statusMs).toFixed(1)}, rebalance x${(last.m.rebalanceMs / first.m.rebalanceMs).toFixed(1)}`,
    );
  }
  const top = rows[rows.length - 1];
  if (top !== undefined) {
    const check = (ok: boolean, text: string) => console.log(`${ok ? "PASS" : "MISS"}  ${text}`);
    console.log(`\ntargets at ${top.size} subscriptions:`);
    check(
      top.m.allocate.mean < TARGETS.allocateUs,
      `allocation decision ${top.m.allocate.mean.toFixed(1)} µs mean per Pool.run allocate (p50 ${top.m.allocate.p50.toFixed(1)}, p99 ${top.m.allocate.p99.toFixed(1)}, ` +
        `CPU ${top.m.allocate.cpu.toFixed(1)}; target < ${TARGETS.allocateUs} µs)`,
    );
    check(top.m.startupMs < TARGETS.startupMs, `start-up ${top.m.startupMs.toFixed(0)} ms (target < ${TARGETS.startupMs} ms)`);
    check(top.m.rssMb < TARGETS.rssMb, `resident memory ${top.m.rssMb.toFixed(0)} MB (target < ${TARGETS.rssMb} MB)`);
  }
}

function child<T>(mode: "build" | "measure", dir: string, size: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const p = fork(CHILD, [mode, dir, String(size)], { execArgv: ["--expose-gc"], stdio: ["ignore", "inherit", "inherit", "ipc"] });
    let result: T | undefined;
    p.on("message", (m) => {
      result = m as T;
    });
    p.on("error", reject);
    p.on("exit", (code) => (result !== undefined ? resolve(result) : reject(new Error(`scale ${mode} for ${size} exited with ${code}`))));
  });
}
