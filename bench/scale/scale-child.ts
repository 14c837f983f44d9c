import { readdir, stat, writeFile, readFile } from "node:fs/promises";
import path from "node:path";
import { create, toBinary } from "@bufbuild/protobuf";
import pg from "pg";
import { GetPoolStatusResponseSchema } from "../../gen/authpool/v1/auth_pool_pb.js";
import type { PoolConfig } from "../../src/config/index.js";
import {
  type Command,
  DAY_MS,
  HOUR_MS,
  MINUTE_MS,
  Pool,
  type UsageReport,
  applyEvent,
  ensureSubscriptions,
} from "../../src/domain/index.js";
import { PoolWriter } from "../../src/runtime/pool-writer.js";
import { subscriptionToProto } from "../../src/server/to-proto.js";
import {
  Journal,
  type JournalRecord,
  type PoolStore,
  applyRecord,
  decodeState,
  openStore,
} from "../../src/store/index.js";
import { createRng } from "../sim/prng.js";
import { SteppedClock } from "../stepped-clock.js";
import { HISTORY_DAYS, HISTORY_START, REPORTS_PER_SUBSCRIPTION, SCALE_SESSIONS, scaleConfig } from "./scale-config.js";

/**
 * One size of the scale benchmark on one store, in a process of its own:
 *   scale-child.js build <dir> <subscriptions> <store uri> [minute|history]
 *                                                            writes 30 days of history through the real writer
 *   scale-child.js startup <dir> <subscriptions> <store uri>  starts from that store phase by phase, timing each
 *   scale-child.js measure <dir> <subscriptions> <store uri>  starts from that store as the server does and measures
 * Each sends its figures to the parent over IPC (and prints them when run by hand).
 */

/** Tail: what the build leaves after its last snapshot (see build). */
export type Tail = "minute" | "history";

/** BuildResult is what the build reports (and leaves in <dir>/meta.json for the measurement). */
export interface BuildResult {
  end: number;
  reports: number;
  allocations: number;
  releases: number;
  records: number;
  recordsSinceSnapshot: number;
  buildMs: number;
}

/**
 * StartupResult: start-up phase by phase, the steps of PoolHost's load
 * (Journal.open, then the Pool) taken one at a time in a fresh process.
 */
export interface StartupResult {
  /** openStore: connect, create the tables if missing. */
  openStoreMs: number;
  leaseMs: number;
  /** readSnapshot: the query and the transfer of the snapshot's bytes. */
  readSnapshotMs: number;
  snapshotMb: number;
  /** decodeState, including the derived indexes it builds. */
  decodeMs: number;
  /** readPage of the records after the snapshot: each page comes with the journal's bounds, as Journal.open reads them. */
  readPagesMs: number;
  /** Parsing those records and applying their events. */
  replayMs: number;
  replayedRecords: number;
  /** Journal.open's last step: an entry for every configured subscription. */
  subscriptionsMs: number;
  poolMs: number;
  totalMs: number;
  /** Process CPU time of it all. */
  cpuMs: number;
}

/** MeasureResult is what one size measured. */
export interface MeasureResult {
  startupMs: number;
  /** Process CPU time of the start-up (garbage collector threads included). */
  startupCpuMs: number;
  journalOpenMs: number;
  replayedRecords: number;
  sessions: number;
  rssMb: number;
  heapMb: number;
  storeMb: number;
  allocate: Micros;
  resume: Micros;
  report: Micros;
  statusMs: number;
  statusBytes: number;
  rebalanceMs: number;
  rebalanceMoves: number;
}

/** Micros: a decision's cost in µs: wall-clock mean and percentiles, and process CPU time per decision. */
export interface Micros {
  mean: number;
  p50: number;
  p99: number;
  /** Process CPU time per decision: includes the garbage collector's helper threads. */
  cpu: number;
}

const STEP_MS = 10 * MINUTE_MS;
/** Records per read, as Journal.open reads them. */
const PAGE = 1_000;

async function openWriter(
  config: PoolConfig,
  clock: SteppedClock,
  store: PoolStore,
  onLoad?: (replayed: number, ms: number) => void,
) {
  // The one writer of this store for the run: a lease long enough to never lapse.
  const lease = await store.log.acquireLease("scale-bench", "", Date.now(), 24 * HOUR_MS);
  return PoolWriter.open({
    clock,
    load: async () => {
      const t = performance.now();
      const { journal, state, replayed } = await Journal.open(
        store.log,
        config.subscriptions.map((s) => s.id),
        { epoch: lease.epoch, legacyKv: store },
      );
      onLoad?.(replayed, performance.now() - t);
      return { pool: new Pool(state, config), journal };
    },
    snapshot: config.snapshot,
    retentionMs: config.events.retentionDays * DAY_MS,
  });
}

/**
 * build writes the history through the real PoolWriter (group commit,
 * journal records, periodic snapshots, pruning) with the clock moving in
 * 10-minute steps: 100 sessions per subscription allocated on day one;
 * then each step's share of the reports, each on the next session in turn
 * (a claude_output-shaped report: cost, tokens by model, the Claude
 * session, a result uuid, and upstream readings on one in ten); a session
 * that has made its reports is released and a new one allocated in its
 * place; a sweep every hour prunes dedupe keys and ended sessions.
 *
 * Then it crashes: it stops without a final snapshot, so start-up replays
 * the records written since the last one. Which records those are is the
 * `tail`:
 * - "minute" (the default): the snapshot a server would have written (it
 *   snapshots every `snapshot.everySeconds`, 60 s by default, as well as
 *   every 1,000 records; the history's records are 10 minutes apart, so
 *   the build turns the timer off), then one more minute of reports at the
 *   history's mean rate, each its own record as reports that far apart are:
 *   what a server with default settings replays after a crash.
 * - "history": nothing more; start-up replays every record since the last
 *   snapshot of 1,000 records, up to 1,000 records of 10 minutes each
 *   (days of traffic), a tail no server with the time trigger on has.
 */
async function build(dir: string, subscriptions: number, uri: string, tail: Tail): Promise<BuildResult> {
  const started = performance.now();
  const config = scaleConfig(dir, uri, subscriptions, SCALE_SESSIONS);
  const clock = new SteppedClock(HISTORY_START);
  // No flush per commit, only to build faster; what is stored is the same.
  const store = await openStore(
    uri.startsWith("sqlite:") ? `${uri}?synchronous=normal` : `${uri}&options=-c%20synchronous_commit%3Doff`,
  );
  const writer = await openWriter(config, clock, store);
  const rng = createRng(subscriptions);
  const lanes = subscriptions * SCALE_SESSIONS;
  const totalReports = subscriptions * REPORTS_PER_SUBSCRIPTION;
  const open: { id: string; left: number }[] = [];
  let sessionSeq = 0;
  let reports = 0;
  let allocations = 0;
  let releases = 0;
  const newSession = () => ({ id: `s${++sessionSeq}`, left: rng.int(2, 8) });
  const allocate = (id: string): Command => ({
    kind: "allocate",
    sessionId: id,
    priority: "normal",
    model: "sonnet",
    estimatedTokens: 0,
  });

  for (let i = 0; i < lanes; i += 512) {
    const chunk = Array.from({ length: Math.min(512, lanes - i) }, newSession);
    open.push(...chunk);
    await Promise.all(chunk.map((s) => writer.submit(allocate(s.id))));
    allocations += chunk.length;
  }
  const steps = (HISTORY_DAYS * DAY_MS) / STEP_MS;
  let cursor = 0;
  for (let step = 0; step < steps; step++) {
    const now = HISTORY_START + step * STEP_MS;
    clock.set(now);
    const due = Math.floor((totalReports * (step + 1)) / steps) - Math.floor((totalReports * step) / steps);
    const commands: Command[] = [];
    for (let k = 0; k < due; k++) {
      const lane = cursor++ % lanes;
      const s = open[lane]!;
      commands.push({
        kind: "report",
        sessionId: s.id,
        requestId: `r${reports}`,
        report: usageReport(rng, s.id, reports, now),
      });
      reports++;
      if (--s.left === 0) {
        commands.push({ kind: "release", sessionId: s.id });
        const next = newSession();
        open[lane] = next;
        commands.push(allocate(next.id));
        releases++;
        allocations++;
      }
    }
    if (now % HOUR_MS === 0) commands.push({ kind: "sweep" });
    await Promise.all(commands.map((c) => writer.submit(c)));
  }
  if (tail === "minute") {
    await writer.currentJournal.snapshot(writer.currentPool.state);
    const perMinute = Math.max(1, Math.round(totalReports / ((HISTORY_DAYS * DAY_MS) / MINUTE_MS)));
    const from = clock.now();
    for (let k = 0; k < perMinute; k++) {
      const now = from + Math.floor(((k + 1) * MINUTE_MS) / (perMinute + 1));
      clock.set(now);
      const s = open[cursor++ % lanes]!;
      await writer.submit({
        kind: "report",
        sessionId: s.id,
        requestId: `r${reports}`,
        report: usageReport(rng, s.id, reports, now),
      });
      reports++;
    }
  }
  const journal = writer.currentJournal;
  const result: BuildResult = {
    end: clock.now(),
    reports,
    allocations,
    releases,
    records: journal.headRecord,
    recordsSinceSnapshot: journal.recordsSinceSnapshot,
    buildMs: performance.now() - started,
  };
  await store.close();
  await writeFile(path.join(dir, "meta.json"), JSON.stringify(result));
  return result;
}

function usageReport(rng: ReturnType<typeof createRng>, sessionId: string, n: number, now: number): UsageReport {
  const costUsd = Math.round(rng.logNormal(0.2, 0.8) * 10_000) / 10_000;
  const tokens = {
    inputTokens: Math.round(costUsd * 2_000),
    outputTokens: Math.round(costUsd * 4_000),
    cacheCreationInputTokens: Math.round(costUsd * 20_000),
    cacheReadInputTokens: Math.round(costUsd * 200_000),
  };
  return {
    costUsd,
    tokens,
    models: { "claude-sonnet-4-5-20250929": { ...tokens, costUsd } },
    durationMs: rng.int(5_000, 120_000),
    resultUuid: `00000000-0000-4000-8000-${String(n).padStart(12, "0")}`,
    claudeSessionId: sessionId,
    readings:
      n % 10 === 0
        ? [
            {
              window: "five_hour",
              source: "stream",
              status: "allowed",
              utilization: rng.uniform(0, 0.6),
              resetsAt: wholeSeconds(now + rng.uniform(0.5, 5) * HOUR_MS),
            },
            {
              window: "seven_day",
              source: "stream",
              status: "allowed",
              utilization: rng.uniform(0, 0.5),
              resetsAt: wholeSeconds(now + rng.uniform(1, 7) * DAY_MS),
            },
          ]
        : [],
  };
}

/**
 * measure starts a pool on the built store the way the server does
 * (PoolWriter.open: Journal.open reads the snapshot and replays the
 * records after it), then measures in process: resident memory after a
 * full GC, the cost of allocation decisions (Pool.run, no I/O) for new and
 * resumed sessions and of a usage report, a GetPoolStatus (the status
 * decision, rendering every subscription and encoding the reply), and a
 * rebalance plan (dry run) over every idle session. Costs are process CPU
 * time, which other processes on the machine do not inflate.
 */
async function measure(dir: string, subscriptions: number, uri: string): Promise<MeasureResult> {
  const meta = JSON.parse(await readFile(path.join(dir, "meta.json"), "utf8")) as BuildResult;
  const config = scaleConfig(dir, uri, subscriptions, Math.round(SCALE_SESSIONS * 1.5));
  const clock = new SteppedClock(meta.end + MINUTE_MS);
  let replayedRecords = 0;
  let journalOpenMs = 0;
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const store = await openStore(config.store.uri);
  const writer = await openWriter(config, clock, store, (replayed, ms) => {
    replayedRecords = replayed;
    journalOpenMs = ms;
  });
  const startupMs = performance.now() - t0;
  const startupCpu = process.cpuUsage(cpu0);
  fullGc();
  const memory = process.memoryUsage();
  const pool = writer.currentPool;
  const sessions = [...pool.state.sessions.keys()];

  let now = clock.now();
  /**
   * time runs count commands one at a time, a millisecond of simulated time
   * apart (a busy server), in rounds of at most `round` with `between` run
   * (untimed) after each, and returns the wall-clock mean and percentiles
   * and the process CPU time per command.
   */
  const time = (count: number, command: () => Command, round = count, between?: () => void): Micros => {
    const samples: number[] = [];
    let cpuUs = 0;
    for (let done = 0; done < count; done += round) {
      const commands = Array.from({ length: Math.min(round, count - done) }, command);
      const cpu = process.cpuUsage();
      for (const c of commands) {
        now += 1;
        const t = performance.now();
        pool.run(c, now);
        samples.push((performance.now() - t) * 1000);
      }
      const used = process.cpuUsage(cpu);
      cpuUs += used.user + used.system;
      between?.();
    }
    samples.sort((a, b) => a - b);
    return {
      mean: samples.reduce((sum, x) => sum + x, 0) / samples.length,
      p50: samples[Math.floor(samples.length / 2)]!,
      p99: samples[Math.floor(samples.length * 0.99)]!,
      cpu: cpuUs / samples.length,
    };
  };
  const rng = createRng(7);
  // Warm-up: the measurement allows more sessions than the build did, so every subscription's
  // first decision announces "limited -> available"; get those (and the JIT) out of the way.
  for (const cfg of pool.settings.subscriptions) {
    const sessionId = pool.state.bySubscription.get(cfg.id)?.values().next().value;
    if (sessionId !== undefined)
      pool.run(
        { kind: "report", sessionId, requestId: "warm", report: usageReport(rng, sessionId, 20_000_000, now) },
        (now += 1),
      );
  }
  // New sessions stay under the measurement's 150 per subscription: rounds of at most 40 per
  // subscription, each released again (untimed) before the next.
  const round = Math.min(3_000, subscriptions * 40);
  let made = 0;
  const allocateNew = (): Command => ({
    kind: "allocate",
    sessionId: `new${made++}`,
    priority: "normal",
    model: "sonnet",
    estimatedTokens: 0,
  });
  const releaseAll = () => {
    for (let i = 0; i < made; i++) pool.run({ kind: "release", sessionId: `new${i}` }, (now += 1));
    made = 0;
  };
  time(1_000, allocateNew, round, releaseAll); // warm-up
  const allocate = time(3_000, allocateNew, round, releaseAll);
  const resume = time(3_000, () => ({
    kind: "allocate",
    sessionId: sessions[rng.int(0, sessions.length - 1)]!,
    priority: "normal",
    model: "sonnet",
    estimatedTokens: 0,
  }));
  let reports = 0;
  const report = time(3_000, () => {
    const sessionId = sessions[rng.int(0, sessions.length - 1)]!;
    const i = reports++;
    return { kind: "report", sessionId, requestId: `m${i}`, report: usageReport(rng, sessionId, 10_000_000 + i, now) };
  });

  // Process CPU time, like the decisions: the writer's queue is idle here, so it is the status's own work.
  const status = async () => {
    const cpu = process.cpuUsage();
    const result = await writer.submit({ kind: "status", includeSessions: false });
    const reply = create(GetPoolStatusResponseSchema, {
      subscriptions: result.views.map((v) => subscriptionToProto(v, { warnings: [] })),
      totalSessions: result.totalSessions,
    });
    const bytes = toBinary(GetPoolStatusResponseSchema, reply).length;
    const used = process.cpuUsage(cpu);
    return { ms: (used.user + used.system) / 1000, bytes };
  };
  await status();
  const statuses = [await status(), await status(), await status()];
  const rebalances = [0, 1, 2].map(() => {
    const cpu = process.cpuUsage();
    const { result } = pool.run({ kind: "rebalance", dryRun: true, trigger: "on_demand" }, (now += 1));
    const used = process.cpuUsage(cpu);
    return { ms: (used.user + used.system) / 1000, moves: result.moves.length };
  });

  await store.close();
  const storeBytes = await storeSize(dir, uri);
  return {
    startupMs,
    startupCpuMs: (startupCpu.user + startupCpu.system) / 1000,
    journalOpenMs,
    replayedRecords,
    sessions: sessions.length,
    rssMb: memory.rss / 2 ** 20,
    heapMb: memory.heapUsed / 2 ** 20,
    storeMb: storeBytes / 2 ** 20,
    allocate,
    resume,
    report,
    statusMs: median(statuses.map((s) => s.ms)),
    statusBytes: statuses[0]!.bytes,
    rebalanceMs: median(rebalances.map((r) => r.ms)),
    rebalanceMoves: rebalances[0]!.moves,
  };
}

/**
 * startup takes PoolHost's load apart (Journal.open on the store, then the
 * Pool) and times each step, cold, in a fresh process: opening the store,
 * the lease, reading the snapshot, decoding it, reading (a page at a time,
 * with the bounds) and replaying the records after it, the subscriptions,
 * the Pool. Its total should match the start-up that measure times on the
 * real path; a change to Journal.open's reads belongs here too.
 */
async function startup(dir: string, subscriptions: number, uri: string): Promise<StartupResult> {
  const config = scaleConfig(dir, uri, subscriptions, Math.round(SCALE_SESSIONS * 1.5));
  const ids = config.subscriptions.map((s) => s.id);
  const lap = (() => {
    let t = performance.now();
    return () => {
      const now = performance.now();
      const ms = now - t;
      t = now;
      return ms;
    };
  })();
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const store = await openStore(uri);
  const openStoreMs = lap();
  await store.log.acquireLease("scale-bench", "", Date.now(), 24 * HOUR_MS);
  const leaseMs = lap();
  const snap = await store.log.readSnapshot();
  const readSnapshotMs = lap();
  if (snap === undefined) throw new Error(`${store.description}: no snapshot`);
  const state = decodeState(snap.data, ids);
  const decodeMs = lap();
  let readPagesMs = 0;
  let replayMs = 0;
  let record = snap.record;
  let replayedRecords = 0;
  for (;;) {
    const page = await store.log.readPage(record, PAGE);
    readPagesMs += lap();
    for (const stored of page.records) {
      // Journal.open would load a newer snapshot; the bench's store is still and has no hole.
      if (stored.n !== record + 1) throw new Error(`${store.description}: record ${record + 1} is missing`);
      applyRecord(state, JSON.parse(stored.data) as JournalRecord, applyEvent);
      record = stored.n;
      replayedRecords++;
    }
    replayMs += lap();
    if (page.records.length < PAGE || record >= page.last) break;
  }
  ensureSubscriptions(state, ids);
  const subscriptionsMs = lap();
  new Pool(state, config);
  const poolMs = lap();
  const totalMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  await store.close();
  return {
    openStoreMs,
    leaseMs,
    readSnapshotMs,
    snapshotMb: snap.data.byteLength / 2 ** 20,
    decodeMs,
    readPagesMs,
    replayMs,
    replayedRecords,
    subscriptionsMs,
    poolMs,
    totalMs,
    cpuMs: (cpu.user + cpu.system) / 1000,
  };
}

/** storeSize: the SQLite file with its WAL and shared memory, or the PostgreSQL schema's tables (with TOAST and indexes). */
async function storeSize(dir: string, uri: string): Promise<number> {
  if (uri.startsWith("sqlite:")) {
    let bytes = 0;
    for (const f of await readdir(dir))
      if (f.startsWith("authpool.sqlite")) bytes += (await stat(path.join(dir, f))).size;
    return bytes;
  }
  const schema = /[?&]schema=([^&]+)/.exec(uri)?.[1] ?? "authpool";
  const client = new pg.Client({ connectionString: uri.replace(/\?.*$/, "") });
  await client.connect();
  try {
    const { rows } = await client.query<{ bytes: string | null }>(
      `SELECT sum(pg_total_relation_size(c.oid)) AS bytes FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = $1 AND c.relkind = 'r'`,
      [schema.toLowerCase()],
    );
    return Number(rows[0]?.bytes ?? 0);
  } finally {
    await client.end();
  }
}

/** wholeSeconds: Claude reports reset times in epoch seconds. */
function wholeSeconds(ms: number): number {
  return Math.round(ms / 1000) * 1000;
}

function fullGc(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) return;
  gc();
  gc();
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

const [mode, dir, size, uri, tail = "minute"] = process.argv.slice(2);
if (mode !== undefined && dir !== undefined && size !== undefined && uri !== undefined) {
  const n = Number(size);
  const result =
    mode === "build"
      ? await build(dir, n, uri, tail as Tail)
      : mode === "startup"
        ? await startup(dir, n, uri)
        : await measure(dir, n, uri);
  if (process.send !== undefined) process.send(result);
  else console.log(JSON.stringify(result, null, 1));
}
