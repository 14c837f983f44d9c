import { fork } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { freshSchema } from "../fresh-postgres.js";
import { machineLine } from "../machine.js";
import { formatTable } from "../table.js";
import type { BuildResult, MeasureResult, StartupResult, Tail } from "./scale-child.js";
import { HISTORY_DAYS, SCALE_SESSIONS } from "./scale-config.js";

/** ScaleStore: the stores the scale benchmark builds its history in. */
export type ScaleStore = "sqlite" | "postgres";

/** ScaleOptions: which pool sizes to build and measure, on which stores. */
export interface ScaleOptions {
  sizes: number[];
  stores: ScaleStore[];
  /** What the build leaves after its last snapshot, to be replayed at start-up (default "minute"; see scale-child.ts build). */
  tail: Tail;
  markdown: boolean;
}

const CHILD = fileURLToPath(new URL("./scale-child.js", import.meta.url));

/** TARGETS at the largest size: allocation decision, start-up, resident memory. */
const TARGETS = { allocateUs: 50, startupMs: 1_000, rssMb: 300 };

interface Row {
  store: ScaleStore;
  size: number;
  built: BuildResult;
  phases: StartupResult;
  m: MeasureResult;
}

/**
 * runScale builds each size's history on each store in one child process,
 * takes start-up apart phase by phase in a second, and measures start-up
 * on the server's path and everything else in a third (so each start is
 * cold, and resident memory is the loaded pool's, not the builder's); then
 * prints one row per store and size and the targets at the largest.
 */
export async function runScale(options: ScaleOptions): Promise<void> {
  console.log(
    `scale: ${machineLine()}; load average ${os
      .loadavg()
      .map((x) => x.toFixed(1))
      .join(" ")}`,
  );
  console.log(
    `each size: ${SCALE_SESSIONS} open sessions per subscription, ${HISTORY_DAYS} days of history through the real writer; ` +
      `stores: ${options.stores.join(", ")} (SQLite: WAL, synchronous=FULL to measure; PostgreSQL: a fresh schema on the local server)\n`,
  );
  const rows: Row[] = [];
  for (const store of options.stores) {
    for (const size of options.sizes) {
      const schema =
        store === "postgres" ? await freshSchema("bench_scale").catch((error: unknown) => error as Error) : undefined;
      if (schema instanceof Error) {
        console.error(`PostgreSQL not measured: ${schema.message}`);
        break;
      }
      const dir = await mkdtemp(path.join(os.tmpdir(), "authpool-scale-"));
      const uri = schema?.uri ?? `sqlite://${path.join(dir, "authpool.sqlite")}`;
      try {
        process.stdout.write(`${store}, ${size} subscriptions: building history... `);
        const built = await child<BuildResult>("build", dir, size, uri, options.tail);
        process.stdout.write(`${built.reports} reports in ${(built.buildMs / 1000).toFixed(0)} s; measuring... `);
        const phases = await child<StartupResult>("startup", dir, size, uri);
        const m = await child<MeasureResult>("measure", dir, size, uri);
        console.log("done");
        rows.push({ store, size, built, phases, m });
      } finally {
        await rm(dir, { recursive: true, force: true });
        await schema
          ?.drop()
          .catch((error: unknown) => console.error(`could not drop schema ${schema.schema}: ${String(error)}`));
      }
    }
  }
  const us = (x: { mean: number; p50: number; p99: number; cpu: number }) =>
    `${x.mean.toFixed(1)} · ${x.p50.toFixed(1)} / ${x.p99.toFixed(1)} · ${x.cpu.toFixed(1)}`;
  console.log(
    "\ndecisions (µs): mean · p50 / p99 (wall clock) · process CPU per decision (includes GC helper threads)",
  );
  console.log(
    formatTable(
      [
        "store",
        "subscriptions",
        "sessions",
        "reports",
        "store size",
        "start-up",
        "start-up CPU",
        "replayed",
        "RSS",
        "heap",
        "allocate µs",
        "resume µs",
        "report µs",
        "GetPoolStatus",
        "rebalance",
      ],
      rows.map(({ store, size, built, m }) => [
        store,
        String(size),
        String(m.sessions),
        String(built.reports),
        `${m.storeMb.toFixed(0)} MB`,
        `${m.startupMs.toFixed(0)} ms`,
        `${m.startupCpuMs.toFixed(0)} ms`,
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
  const ms = (x: number) => `${x.toFixed(0)} ms`;
  console.log("\nstart-up phase by phase (a fresh process each; the steps of Journal.open, then the Pool):");
  console.log(
    formatTable(
      [
        "store",
        "subscriptions",
        "snapshot",
        "open store",
        "lease",
        "read snapshot",
        "decode",
        "read pages",
        "replay",
        "subscriptions",
        "Pool",
        "total",
        "CPU",
        "server path",
      ],
      rows.map(({ store, size, phases: p, m }) => [
        store,
        String(size),
        `${p.snapshotMb.toFixed(1)} MB`,
        ms(p.openStoreMs),
        ms(p.leaseMs),
        ms(p.readSnapshotMs),
        ms(p.decodeMs),
        ms(p.readPagesMs),
        `${ms(p.replayMs)} (${p.replayedRecords} rec)`,
        ms(p.subscriptionsMs),
        ms(p.poolMs),
        ms(p.totalMs),
        ms(p.cpuMs),
        ms(m.startupMs),
      ]),
      options.markdown,
    ),
  );
  for (const store of options.stores) {
    const of = rows.filter((r) => r.store === store);
    if (of.length > 1) {
      const first = of[0]!.m;
      const last = of[of.length - 1]!.m;
      const k = of[of.length - 1]!.size / of[0]!.size;
      console.log(
        `\n${store}: growth ${of[0]!.size} -> ${of[of.length - 1]!.size} subscriptions (x${k}): allocate x${(last.allocate.mean / first.allocate.mean).toFixed(1)}, ` +
          `start-up x${(last.startupMs / first.startupMs).toFixed(1)}, RSS x${(last.rssMb / first.rssMb).toFixed(1)}, ` +
          `store x${(last.storeMb / first.storeMb).toFixed(1)}, GetPoolStatus x${(last.statusMs / first.statusMs).toFixed(1)}, rebalance x${(last.rebalanceMs / first.rebalanceMs).toFixed(1)}`,
      );
    }
  }
  const check = (ok: boolean, text: string) => console.log(`${ok ? "PASS" : "MISS"}  ${text}`);
  for (const store of options.stores) {
    const of = rows.filter((r) => r.store === store);
    const top = of[of.length - 1];
    if (top === undefined) continue;
    console.log(`\ntargets at ${top.size} subscriptions, ${store}:`);
    check(
      top.m.allocate.mean < TARGETS.allocateUs,
      `allocation decision ${top.m.allocate.mean.toFixed(1)} µs mean per Pool.run allocate (p50 ${top.m.allocate.p50.toFixed(1)}, p99 ${top.m.allocate.p99.toFixed(1)}, ` +
        `CPU ${top.m.allocate.cpu.toFixed(1)}; target < ${TARGETS.allocateUs} µs)`,
    );
    check(
      top.m.startupMs < TARGETS.startupMs,
      `start-up ${top.m.startupMs.toFixed(0)} ms (process CPU ${top.m.startupCpuMs.toFixed(0)} ms; replayed ${top.m.replayedRecords} records; target < ${TARGETS.startupMs} ms)`,
    );
    check(top.m.rssMb < TARGETS.rssMb, `resident memory ${top.m.rssMb.toFixed(0)} MB (target < ${TARGETS.rssMb} MB)`);
  }
}

function child<T>(
  mode: "build" | "startup" | "measure",
  dir: string,
  size: number,
  uri: string,
  tail?: Tail,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const p = fork(CHILD, [mode, dir, String(size), uri, ...(tail !== undefined ? [tail] : [])], {
      execArgv: ["--expose-gc"],
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    let result: T | undefined;
    p.on("message", (m) => {
      result = m as T;
    });
    p.on("error", reject);
    p.on("exit", (code) =>
      result !== undefined ? resolve(result) : reject(new Error(`scale ${mode} for ${size} exited with ${code}`)),
    );
  });
}
