import { rm } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { Code } from "@connectrpc/connect";
import type { AuthPoolClient } from "../../src/client/index.js";
import {
  ClientLanes,
  LANE_LEDGER,
  formatWaits,
  type LaneCounts,
  type LaneFigures,
  SETTLE_TIMEOUT_MS,
  isConnectionLoss,
} from "./client-lanes.js";
import { EventWatch } from "./event-watch.js";
import { checkStatus } from "./ledger.js";
import { spread } from "./percentile.js";
import { writePoolFiles } from "./pool-config.js";
import { Prng } from "./prng.js";
import { type ServerProcess, defaultCliPath, serving, spawnServer } from "./server-process.js";
import type { StoreKind } from "./store-target.js";
import { Violations } from "./violations.js";

/**
 * runCrashTorture: the pool as its own process over a real SQLite file (or
 * a PostgreSQL schema), busy with concurrent Allocate / ReportUsage /
 * Release from several clients, killed with SIGKILL at moments drawn from
 * a seeded generator and restarted, again and again. After every restart, and at the end, the
 * pool's books must match the clients' ledger exactly; while it runs, every
 * status read must be within what was in flight. Calls whose connection
 * died are retried with the same ids after the restart and must count once.
 * A share of the allocates wait for a slot (the lanes want more than the
 * pool holds): a kill while they wait must lose no slot the queue granted.
 *
 * The seed fixes the kill delays and every operation each client lane
 * draws; the interleaving between lanes still depends on timing, so a seed
 * reproduces the run's shape, not each byte of it.
 */
export interface CrashTortureOptions extends LaneCounts {
  /** SIGKILLs in the run (default 200). */
  kills?: number;
  seed?: number;
  /** How long the pool runs under load before a kill, ms (default 30..400). */
  runMs?: [number, number];
  /** Share of kills aimed at start-up and recovery instead (default 0.1), within this many ms of spawn (default 400). */
  startupKillShare?: number;
  startupKillWindowMs?: number;
  /** A start-up (spawn to "serving") slower than this is a violation (default 10000). */
  maxStartupMs?: number;
  subscriptions?: number;
  maxSessions?: number;
  /** Snapshot every this many journal records (default 64): kills land before, during and after snapshots. */
  snapshotEveryRecords?: number;
  /** dist/src/cli/main.js; found from this module by default. */
  cli?: string;
  /** The store (default sqlite: a file in the run's directory; postgres: a fresh schema on bench/fresh-postgres.ts's server, dropped at the end). */
  store?: StoreKind;
  /**
   * cluster.leaseTtlSeconds (default 2). A restarted pool finds the killed
   * one's lease still running and stands by until it expires; writes sent
   * meanwhile wait for it (or answer UNAVAILABLE, which is retried).
   */
  leaseTtlSeconds?: number;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
  /** Keep the temp dir (its path is in the result). */
  keepDir?: boolean;
}

/** CrashTortureResult holds the figures of a run and every violation found. */
export interface CrashTortureResult extends LaneFigures {
  seed: number;
  kills: number;
  /** Kills that hit a server before it was serving, or while it was recovering or being checked. */
  startupKills: number;
  /** Servers started (kills + the last one). */
  starts: number;
  checksPassed: number;
  checksFailed: number;
  /** Status reads checked while the pool was under load (bounds, not equality). */
  liveReads: number;
  /** Calls a restarted pool answered UNAVAILABLE while the killed one's lease still ran (retried; a violation after it). */
  unavailableWhileLeaseRan: number;
  startupMs: { count: number; median: number; p95: number; max: number };
  replayedRecords: { median: number; max: number };
  events: { seen: number; lastSequence: number; streams: number };
  durationMs: number;
  dir: string;
  violations: string[];
}

interface Epoch {
  server: ServerProcess;
  clients: AuthPoolClient[];
}

export async function runCrashTorture(options: CrashTortureOptions = {}): Promise<CrashTortureResult> {
  const started = performance.now();
  const seed = (options.seed ?? Date.now() % 2 ** 31) >>> 0;
  const killsWanted = options.kills ?? 200;
  const [runMin, runMax] = options.runMs ?? [30, 400];
  const startupKillShare = options.startupKillShare ?? 0.1;
  const startupKillWindowMs = options.startupKillWindowMs ?? 400;
  const maxStartupMs = options.maxStartupMs ?? 10_000;
  const log = options.log ?? (() => undefined);
  const cli = options.cli ?? defaultCliPath();

  const leaseTtlMs = (options.leaseTtlSeconds ?? 2) * 1000;
  // A restarted pool may answer UNAVAILABLE until the killed one's lease ran
  // out and it took over: at most the TTL after the kill, plus the second a
  // forwarded call waits for a leader, plus 500 ms for a busy CI machine.
  const takeoverBoundMs = leaseTtlMs + 1000 + 500;

  const { dir, target, configFile } = await writePoolFiles("authpool-torture-", options.store ?? "sqlite", {
    subscriptions: options.subscriptions ?? 3,
    maxSessions: options.maxSessions ?? 10,
    snapshotEveryRecords: options.snapshotEveryRecords ?? 64,
    cluster: { leaseTtlSeconds: leaseTtlMs / 1000, followPollMs: 50 },
  });

  const rng = new Prng(seed);
  const killRng = rng.fork(1);
  const watch = new EventWatch();
  const violations = new Violations(log);
  const violation = (text: string) => violations.add(text);
  const startupSamples: number[] = [];
  const replayedSamples: number[] = [];
  let kills = 0;
  let startupKills = 0;
  let starts = 0;
  let checksPassed = 0;
  let checksFailed = 0;
  let liveReads = 0;
  let unavailableWhileLeaseRan = 0;
  /** When the last kill came (performance.now()); -Infinity before the first. */
  let lastKillAt = Number.NEGATIVE_INFINITY;
  let epoch: Epoch | undefined;

  const lanes = new ClientLanes<Epoch>(options, {
    rng,
    retryPauseMs: 25,
    host: {
      route: () => epoch,
      // A call that died with its server waits for the next one (besides a
      // dropped connection's codes, a killed server's call may end at its
      // deadline); one that a restarted server refused while the killed
      // one's lease still ran is sent again shortly.
      failed(lane, e, op, { error }) {
        if (e.server.killed && (isConnectionLoss(error.code) || error.code === Code.DeadlineExceeded)) return "lost";
        if (error.code === Code.Unavailable && performance.now() - lastKillAt < takeoverBoundMs) {
          unavailableWhileLeaseRan++;
          return "retry";
        }
        violation(`${op.kind} (${lane.name}) failed on a live server: ${Code[error.code]} ${error.rawMessage}`);
        return "lost";
      },
    },
  });
  const { ledger } = lanes;

  /** readUnderLoad reads status while the lanes run and checks it against the ledger's bounds. */
  async function readUnderLoad(): Promise<void> {
    const e = epoch!;
    const r = await lanes.readStatus(e.clients[0]!);
    if (r.ok) {
      liveReads++;
      for (const p of checkStatus(r.value, r.before, r.after, LANE_LEDGER)) violation(`status under load: ${p}`);
    } else if (!e.server.killed) {
      violation(`status failed on a live server: ${Code[r.error.code]} ${r.error.rawMessage}`);
    }
  }

  async function killNow(e: Epoch, when: string): Promise<void> {
    if (e.server.killed) return;
    const busy = lanes.noteKill();
    e.server.kill();
    lastKillAt = performance.now();
    kills++;
    log(
      `kill ${kills}/${killsWanted} (${when}, ${busy.calls} calls in flight, ${busy.waiting} of them waiting allocates)`,
    );
  }

  /** check compares the pool with the quiet ledger: status equality and the event stream. */
  async function check(e: Epoch, label: string): Promise<void> {
    const r = await lanes.readStatus(e.clients[0]!);
    if (!r.ok) {
      if (!e.server.killed) violation(`${label}: status failed: ${r.error.rawMessage}`);
      return;
    }
    const problems = checkStatus(r.value, r.before, r.after, { ...LANE_LEDGER, exact: true });
    problems.push(...(await watch.caughtUp(ledger, 5000)));
    if (e.server.killed) return;
    if (problems.length === 0) {
      checksPassed++;
    } else {
      checksFailed++;
      for (const p of problems.slice(0, 20)) violation(`${label}: ${p}`);
    }
  }

  lanes.start(readUnderLoad);
  try {
    for (;;) {
      const last = kills >= killsWanted;
      const server = spawnServer(cli, configFile);
      starts++;
      const e: Epoch = { server, clients: [] };
      const startupKill = !last && killRng.chance(startupKillShare);
      let startupTimer: NodeJS.Timeout | undefined;
      if (startupKill) {
        startupTimer = setTimeout(
          () => void killNow(e, "during start-up or recovery"),
          killRng.int(0, startupKillWindowMs),
        );
      }
      let url: string;
      try {
        url = await serving(server, maxStartupMs);
      } catch (error) {
        if (server.killed) {
          startupKills++;
          await server.exited;
          continue;
        }
        violation(`start-up ${starts} failed: ${(error as Error).message}`);
        server.kill();
        await server.exited;
        break;
      }
      startupSamples.push(server.startupMs!);
      if (server.replayedRecords !== undefined) replayedSamples.push(server.replayedRecords);
      if (server.startupMs! > maxStartupMs)
        violation(`start-up ${starts} took ${server.startupMs!.toFixed(0)} ms (bound ${maxStartupMs} ms)`);
      e.clients = lanes.connect(url);
      watch.follow(url, () => server.killed);
      epoch = e;

      // Settle: the lanes retry their unknown-fate calls with the same ids.
      if (!(await lanes.settle(SETTLE_TIMEOUT_MS, () => server.killed)) && !server.killed) {
        // A retry failed on a live server (reported above) or hangs: the books cannot be settled.
        violation(`start ${starts}: unknown-fate retries did not settle within ${SETTLE_TIMEOUT_MS} ms`);
        break;
      }
      // Check: nothing in flight, so the books must match exactly.
      if (!server.killed) {
        lanes.setPhase("check");
        await check(e, last ? "final check" : `check after start ${starts}`);
      }
      if (server.killed) {
        startupKills++;
      } else if (last) {
        clearTimeout(startupTimer);
        break;
      } else {
        clearTimeout(startupTimer);
        lanes.setPhase("run");
        await sleep(killRng.int(runMin, runMax));
        await killNow(e, "under load");
      }
      lanes.setPhase("down");
      await server.exited;
      await lanes.idle();
      await watch.stop();
    }
  } finally {
    await lanes.stop();
    await watch.stop();
    const e = epoch;
    if (e !== undefined && !e.server.killed) {
      // The last server stops gracefully: SIGTERM must end it with code 0.
      e.server.proc.kill("SIGTERM");
      const { code } = await e.server.exited;
      if (code !== 0) violation(`graceful shutdown exited with code ${code}`);
    }
    for (const v of watch.violations) violation(`events: ${v}`);
    for (const v of ledger.violations) violation(`replies: ${v}`);
    violations.noteDropped();
    if (options.keepDir !== true) {
      await rm(dir, { recursive: true, force: true });
      await target.drop().catch((error: unknown) => violation(`could not drop the store: ${(error as Error).message}`));
    }
  }

  const replayed = spread(replayedSamples);
  return {
    seed,
    kills,
    startupKills,
    starts,
    checksPassed,
    checksFailed,
    liveReads,
    ...lanes.figures(),
    unavailableWhileLeaseRan,
    startupMs: spread(startupSamples),
    replayedRecords: { median: replayed.median, max: replayed.max },
    events: { seen: watch.events, lastSequence: watch.lastSeq, streams: watch.streams },
    durationMs: performance.now() - started,
    dir,
    violations: violations.list,
  };
}

/** formatFigures renders a result as the lines `npm run torture` prints. */
export function formatFigures(r: CrashTortureResult): string[] {
  const ms = (n: number) => `${n.toFixed(0)} ms`;
  const retried = (k: keyof CrashTortureResult["retries"]) =>
    `${r.retries[k].sent} (${r.retries[k].landed} had landed)`;
  return [
    `seed                    ${r.seed}`,
    `kills                   ${r.kills} (${r.startupKills} during start-up or recovery), ${r.starts} starts`,
    `checks passed           ${r.checksPassed} exact after restarts, ${r.checksFailed} failed; ${r.liveReads} status reads checked under load`,
    `calls acknowledged      allocate ${r.acknowledged.allocate} (${r.outcomes.granted} granted, ${r.outcomes.fallback} fallback), report ${r.acknowledged.report}, release ${r.acknowledged.release}, status ${r.acknowledged.status}`,
    `unknown-fate retries    allocate ${retried("allocate")}, report ${retried("report")}, release ${retried("release")}`,
    `in flight at kills      ${r.inFlightAtKill.total} in total, ${r.inFlightAtKill.max} at most; ${r.unavailableWhileLeaseRan} UNAVAILABLE answers while the killed pool's lease ran (retried)`,
    formatWaits(r.waits),
    `counted                 ${r.totals.reports} reports, $${r.totals.usd.toFixed(4)}, ${r.totals.tokens.input + r.totals.tokens.output + r.totals.tokens.cacheCreation + r.totals.tokens.cacheRead} tokens`,
    `events                  ${r.events.seen} seen, last sequence ${r.events.lastSequence}, ${r.events.streams} streams`,
    `start-up                median ${ms(r.startupMs.median)}, p95 ${ms(r.startupMs.p95)}, max ${ms(r.startupMs.max)} over ${r.startupMs.count} starts; journal records replayed median ${r.replayedRecords.median}, max ${r.replayedRecords.max}`,
    `duration                ${(r.durationMs / 1000).toFixed(1)} s`,
    `violations              ${r.violations.length}`,
  ];
}
