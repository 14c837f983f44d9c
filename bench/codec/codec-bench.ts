import { fork } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { decodeLegacyState, decodeState, encodeState } from "../../src/store/state-codec.js";
import { formatTable } from "../table.js";
import { encodeFormat1 } from "./format1.js";
import { type ScaleStateOptions, buildScaleState } from "./scale-state.js";

/**
 * The snapshot codec at scale: encode and decode time and size of format 1
 * (the JSON snapshots were before) and the binary format (state-codec.ts).
 *
 *   npm run build && node dist/bench/codec/codec-bench.js [--runs 5] [--markdown]
 *     [--subscriptions 1000] [--sessions 100000] [--dedupe 1000000] [--ended 100000] [--transcript-rows 100000]
 *
 * Encoding runs in this process, which holds the state as a server does
 * (the garbage collector has that heap to mark while the encoder
 * allocates); encoding is synchronous, so its time is how long the event
 * loop stalls. Each decode runs in a fresh process, as at start-up, from
 * the bytes in a file, and includes rebuilding the derived indexes; JSON is
 * parsed once (no journal or Keyv wrapping around it). "Maps floor" is the
 * part of decoding no encoding avoids: in a fresh process, after decoding,
 * inserting every entry of the state's maps (keys and values already built)
 * into new Maps. "Heap MB" is the decoding process's heap after a
 * full collection, with the state in it. Figures are medians over the runs,
 * and the worst run, in wall-clock time ("cpu": process CPU time, garbage
 * collector threads included, which load from other processes inflates
 * less).
 */

const DECODE = "--decode";
const FLOOR = "--floor";

type Format = "json" | "binary";

/** ChildResult is what a decode process reports. */
interface ChildResult {
  ms: number;
  /** Process CPU time (user + system, garbage collector threads included). */
  cpuMs: number;
  heapMb: number;
}

/** retained keeps what a decode process built alive until its heap is measured. */
let retained: unknown;

async function child(mode: string, format: Format, file: string, subscriptions: number): Promise<void> {
  const ids = Array.from({ length: subscriptions }, (_, i) => `sub${i}`);
  const data = format === "json" ? await readFile(file, "utf8") : await readFile(file);
  let t = performance.now();
  let cpu = process.cpuUsage();
  const state = typeof data === "string" ? decodeLegacyState(data, ids) : decodeState(data, ids);
  let ms = performance.now() - t;
  let cpuUsed = process.cpuUsage(cpu);
  retained = state;
  if (mode === FLOOR) {
    const maps: Map<string, unknown>[] = [
      state.subscriptions,
      state.sessions,
      state.dedupe,
      state.ended,
      state.claudeSessions,
      state.transcriptRows,
    ];
    t = performance.now();
    cpu = process.cpuUsage();
    retained = maps.map((m) => {
      const copy = new Map<string, unknown>();
      m.forEach((v, k) => {
        copy.set(k, v);
      });
      return copy;
    });
    ms = performance.now() - t;
    cpuUsed = process.cpuUsage(cpu);
  }
  (globalThis as { gc?: () => void }).gc?.();
  const result: ChildResult = {
    ms,
    cpuMs: (cpuUsed.user + cpuUsed.system) / 1000,
    heapMb: process.memoryUsage().heapUsed / 2 ** 20,
  };
  process.send?.(result);
}

function runChild(mode: string, format: Format, file: string, subscriptions: number): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const p = fork(fileURLToPath(import.meta.url), [mode, format, file, String(subscriptions)], {
      execArgv: ["--expose-gc"],
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    let result: ChildResult | undefined;
    p.on("message", (m) => (result = m as ChildResult));
    p.on("error", reject);
    p.on("exit", (code) =>
      result !== undefined ? resolve(result) : reject(new Error(`decode process exited with ${code}`)),
    );
  });
}

interface Row {
  name: string;
  encode?: number[];
  encodeCpu?: number[];
  decode: number[];
  decodeCpu: number[];
  bytes?: number;
  heapMb?: number;
}

async function main(args: string[]): Promise<void> {
  const option = (name: string, fallback: number): number => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? Number(args[i + 1]) : fallback;
  };
  const runs = option("runs", 5);
  const sizes: ScaleStateOptions = {
    subscriptions: option("subscriptions", 1_000),
    sessions: option("sessions", 100_000),
    dedupeKeys: option("dedupe", 1_000_000),
    ended: option("ended", 100_000),
    transcriptRows: option("transcript-rows", 100_000),
    bucketDays: 8,
  };
  const state = buildScaleState(sizes);
  const dir = await mkdtemp(path.join(os.tmpdir(), "authpool-codec-"));
  try {
    const formats: { format: Format; name: string; encode: () => string | Uint8Array }[] = [
      { format: "json", name: "format 1 (JSON)", encode: () => encodeFormat1(state) },
      { format: "binary", name: "format 3 (binary)", encode: () => encodeState(state) },
    ];
    const rows: Row[] = formats.map((f) => ({ name: f.name, encode: [], encodeCpu: [], decode: [], decodeCpu: [] }));
    const floor: Row = { name: "maps floor", decode: [], decodeCpu: [] };
    // Formats take turns in every round, so load from elsewhere on the machine falls on both alike.
    for (let i = 0; i < runs; i++) {
      for (const [k, f] of formats.entries()) {
        const t = performance.now();
        const cpu = process.cpuUsage();
        const data = f.encode();
        rows[k]!.encode!.push(performance.now() - t);
        const used = process.cpuUsage(cpu);
        rows[k]!.encodeCpu!.push((used.user + used.system) / 1000);
        if (i === 0) {
          rows[k]!.bytes = typeof data === "string" ? Buffer.byteLength(data) : data.length;
          await writeFile(path.join(dir, f.format), data);
        }
      }
    }
    const heaps: number[][] = formats.map(() => []);
    for (let i = 0; i < runs; i++) {
      for (const [k, f] of formats.entries()) {
        const d = await runChild(DECODE, f.format, path.join(dir, f.format), sizes.subscriptions);
        rows[k]!.decode.push(d.ms);
        rows[k]!.decodeCpu.push(d.cpuMs);
        heaps[k]!.push(d.heapMb);
      }
      const d = await runChild(FLOOR, "binary", path.join(dir, "binary"), sizes.subscriptions);
      floor.decode.push(d.ms);
      floor.decodeCpu.push(d.cpuMs);
    }
    for (const [k, row] of rows.entries()) row.heapMb = median(heaps[k]!);
    rows.push(floor);

    const ms = (xs: number[] | undefined) => (xs === undefined ? "-" : `${Math.round(median(xs))}`);
    const worst = (xs: number[] | undefined) => (xs === undefined ? "-" : `${Math.round(Math.max(...xs))}`);
    console.log(
      `${sizes.subscriptions} subscriptions, ${sizes.sessions} sessions, ${sizes.bucketDays} days of hourly buckets, ` +
        `${sizes.dedupeKeys} dedupe keys, ${sizes.ended} ended, ${sizes.transcriptRows} transcript rows; ${runs} runs, Node ${process.version}\n`,
    );
    console.log(
      formatTable(
        ["", "encode ms", "worst", "cpu", "decode ms", "worst", "cpu", "MB", "heap MB"],
        rows.map((r) => [
          r.name,
          ms(r.encode),
          worst(r.encode),
          ms(r.encodeCpu),
          ms(r.decode),
          worst(r.decode),
          ms(r.decodeCpu),
          r.bytes === undefined ? "-" : (r.bytes / 1e6).toFixed(1),
          r.heapMb === undefined ? "-" : r.heapMb.toFixed(0),
        ]),
        args.includes("--markdown"),
      ),
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

const [mode, format, file, subscriptions] = process.argv.slice(2);
if ((mode === DECODE || mode === FLOOR) && file !== undefined)
  await child(mode, format as Format, file, Number(subscriptions));
else await main(process.argv.slice(2));
