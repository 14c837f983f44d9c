import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import { type AuthPoolClient, createAuthPoolClient } from "../../src/client/index.js";
import { EventWatch } from "./event-watch.js";
import { Ledger, type LedgerOptions, type ReportRecord, type Tokens, checkStatus } from "./ledger.js";
import { Prng, weighted } from "./prng.js";
import { type ServerProcess, defaultCliPath, spawnServer } from "./server-process.js";
import { type StoreKind, createStoreTarget } from "./store-target.js";
import { writeFakeLogin } from "../fake-login.js";

/**
 * runCrashTorture: the pool as its own process over a real SQLite file (or
 * a PostgreSQL schema), busy with concurrent Allocate / ReportUsage /
 * Release from several clients, killed with SIGKILL at moments drawn from
 * a seeded generator and restarted, again and again. After every restart, and at the end, the
 * pool's books must match the clients' ledger exactly; while it runs, every
 * status read must be within what was in flight. Calls whose connection
 * died are retried with the same ids after the restart and must count once.
 *
 * The seed fixes the kill delays and every operation each client lane
 * draws; the interleaving between lanes still depends on timing, so a seed
 * reproduces the run's shape, not each byte of it.
 */
export interface CrashTortureOptions {
  /** SIGKILLs in the run (default 200). */
  kills?: number;
  seed?: number;
  /** Client connections (default 8), each with `lanes` calls in flight (default 3). */
  clients?: number;
  lanes?: number;
  /** How long the pool runs under load before a kill, ms (default 30..400). */
  runMs?: [number, number];
  /** Share of kills aimed at start-up and recovery instead (default 0.1), within this many ms of spawn (default 400). */
  startupKillShare?: number;
  startupKillWindowMs?: number;
  /** A start-up (spawn to "serving") slower than this is a violation (default 10000). */
  maxStartupMs?: number;
  /** Sessions one lane holds at most (default 2); capacity is subscriptions × maxSessions. */
  heldPerLane?: number;
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
export interface CrashTortureResult {
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
  acknowledged: Ledger["acknowledged"];
  outcomes: Ledger["outcomes"];
  retries: Ledger["retries"];
  /** Calls that were in flight when a kill came, summed over kills, and the most at once. */
  inFlightAtKill: { total: number; max: number };
  /** Calls a restarted pool answered UNAVAILABLE while the killed one's lease still ran (retried; a violation after it). */
  unavailableWhileLeaseRan: number;
  startupMs: { count: number; median: number; p95: number; max: number };
  replayedRecords: { median: number; max: number };
  events: { seen: number; lastSequence: number; streams: number };
  totals: { usd: number; reports: number; tokens: Tokens };
  durationMs: number;
  dir: string;
  violations: string[];
}

type Pending =
  | { kind: "allocate"; sessionId: string }
  | { kind: "report"; record: ReportRecord }
  | { kind: "release"; sessionId: string };

interface Epoch {
  server: ServerProcess;
  clients: AuthPoolClient[];
  /** What the lanes may do now (setPhase wakes them). */
  phase: "recover" | "check" | "run" | "down";
}

const LEDGER: LedgerOptions = { sessionsStay: true };
const CALL_TIMEOUT_MS = 15_000;
const RECOVER_TIMEOUT_MS = 30_000;

/** Codes a dying server's calls end with: the call's fate is unknown. */
function isConnectionLoss(error: unknown): boolean {
  const code = ConnectError.from(error).code;
  return (
    code === Code.Unavailable ||
    code === Code.Unknown ||
    code === Code.Internal ||
    code === Code.Canceled ||
    code === Code.Aborted ||
    code === Code.DeadlineExceeded
  );
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** withTimeout rejects with `message` if p has not settled after ms (and leaves no timer behind). */
async function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

/**
 * crashTortureConfig is the pool the run uses: big budgets (capacity is
 * what binds), no expiry, frequent snapshots; a SQLite file in `dir` unless
 * `storeUri` says otherwise, and `cluster` as given.
 */
export function crashTortureConfig(
  dir: string,
  o: {
    subscriptions: number;
    maxSessions: number;
    snapshotEveryRecords: number;
    storeUri?: string;
    cluster?: { leaseTtlSeconds: number; followPollMs: number };
  },
) {
  return {
    subscriptions: Array.from({ length: o.subscriptions }, (_, i) => ({
      id: `sub${i + 1}`,
      email: `sub${i + 1}@example.com`,
      type: "claude-max",
      configDir: path.join(dir, `sub${i + 1}`),
      weeklyBudgetUsd: 1_000_000,
      fiveHourBudgetUsd: 100_000,
      maxSessions: o.maxSessions,
    })),
    // A week: no session may expire during the run, so every acknowledged one must still be held.
    sessions: { activeMinutes: 5, staleMinutes: 7 * 24 * 60 },
    snapshot: { everyRecords: o.snapshotEveryRecords, everySeconds: 3600 },
    server: { host: "127.0.0.1", port: 0 },
    store: { uri: o.storeUri ?? `sqlite://${path.join(dir, "authpool.sqlite")}` },
    ...(o.cluster !== undefined ? { cluster: o.cluster } : {}),
  };
}

export async function runCrashTorture(options: CrashTortureOptions = {}): Promise<CrashTortureResult> {
  const started = performance.now();
  const seed = (options.seed ?? Date.now() % 2 ** 31) >>> 0;
  const killsWanted = options.kills ?? 200;
  const clientCount = options.clients ?? 8;
  const lanesPerClient = options.lanes ?? 3;
  const [runMin, runMax] = options.runMs ?? [30, 400];
  const startupKillShare = options.startupKillShare ?? 0.1;
  const startupKillWindowMs = options.startupKillWindowMs ?? 400;
  const maxStartupMs = options.maxStartupMs ?? 10_000;
  const heldPerLane = options.heldPerLane ?? 2;
  const log = options.log ?? (() => undefined);
  const cli = options.cli ?? defaultCliPath();

  const leaseTtlMs = (options.leaseTtlSeconds ?? 2) * 1000;
  // A restarted pool may answer UNAVAILABLE until the killed one's lease ran
  // out and it took over: at most the TTL after the kill, plus the second a
  // forwarded call waits for a leader, plus 500 ms for a busy CI machine.
  const takeoverBoundMs = leaseTtlMs + 1000 + 500;

  const dir = await mkdtemp(path.join(os.tmpdir(), "authpool-torture-"));
  const target = await createStoreTarget(options.store ?? "sqlite", dir);
  const configFile = path.join(dir, "pool.json");
  const config = crashTortureConfig(dir, {
    subscriptions: options.subscriptions ?? 3,
    maxSessions: options.maxSessions ?? 10,
    snapshotEveryRecords: options.snapshotEveryRecords ?? 64,
    storeUri: target.uri,
    cluster: { leaseTtlSeconds: leaseTtlMs / 1000, followPollMs: 50 },
  });
  // Logged in (fake tokens): the pool offers only subscriptions with a usable login.
  for (const s of config.subscriptions) await writeFakeLogin(s.configDir);
  await writeFile(configFile, JSON.stringify(config, null, 2));

  const rng = new Prng(seed);
  const killRng = rng.fork(1);
  const ledger = new Ledger(LEDGER);
  const watch = new EventWatch();
  const violations: string[] = [];
  const startupSamples: number[] = [];
  const replayedSamples: number[] = [];
  let kills = 0;
  let startupKills = 0;
  let starts = 0;
  let checksPassed = 0;
  let checksFailed = 0;
  let liveReads = 0;
  const inFlightAtKill = { total: 0, max: 0 };
  let unavailableWhileLeaseRan = 0;
  /** When the last kill came (performance.now()); -Infinity before the first. */
  let lastKillAt = Number.NEGATIVE_INFINITY;
  let epoch: Epoch | undefined;
  let stopping = false;
  let inFlight = 0;
  /** Wakes lanes waiting for a phase change. */
  let wake: () => void = () => undefined;
  let phaseChanged = new Promise<void>((r) => (wake = r));
  const setPhase = (e: Epoch | undefined, phase: Epoch["phase"]) => {
    if (e !== undefined) e.phase = phase;
    wake();
    phaseChanged = new Promise<void>((r) => (wake = r));
  };

  let violationCount = 0;
  const violation = (text: string) => {
    // A broken pool breaks the books at every check from then on: keep the first ones, count the rest.
    if (++violationCount <= 200) {
      violations.push(text);
      log(`VIOLATION ${text}`);
    }
  };

  /** call runs one RPC, counting it as in flight, and returns its reply or its error. */
  async function call<T>(run: () => Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
    inFlight++;
    try {
      return { ok: true, value: await run() };
    } catch (error) {
      return { ok: false, error };
    } finally {
      inFlight--;
    }
  }

  /** Lane: one sequence of calls on one client connection; owns its sessions. */
  const lanes = Array.from({ length: clientCount * lanesPerClient }, (_, i) => {
    const client = Math.floor(i / lanesPerClient);
    return {
      name: `c${client}l${i % lanesPerClient}`,
      client,
      rng: rng.fork(100 + i),
      held: [] as string[],
      next: 0,
      pending: undefined as Pending | undefined,
      busy: false,
    };
  });
  type Lane = (typeof lanes)[number];

  /**
   * attempt sends one call (a new one, or the retry of a pending one) and
   * settles it in the ledger: "ok". "lost" when the server died under it
   * (the call stays pending for the next server); "retry" when a restarted
   * server answered UNAVAILABLE while the killed one's lease still ran (the
   * call stays pending and is sent again shortly).
   */
  async function attempt(lane: Lane, e: Epoch, op: Pending, retry: boolean): Promise<"ok" | "lost" | "retry"> {
    const c = e.clients[lane.client]!;
    const lost = (error: unknown): "lost" | "retry" => {
      lane.pending = op;
      if (e.server.killed && isConnectionLoss(error)) return "lost";
      const err = ConnectError.from(error);
      if (err.code === Code.Unavailable && performance.now() - lastKillAt < takeoverBoundMs) {
        unavailableWhileLeaseRan++;
        return "retry";
      }
      violation(`${op.kind} (${lane.name}) failed on a live server: ${Code[err.code]} ${err.rawMessage}`);
      return "lost";
    };
    switch (op.kind) {
      case "allocate": {
        ledger.allocateSent(op.sessionId, retry);
        const r = await call(() => c.allocate({ sessionId: op.sessionId }));
        if (!r.ok) return lost(r.error);
        lane.pending = undefined;
        if (r.value.outcome.case === "subscription") {
          ledger.allocateGranted(
            op.sessionId,
            r.value.outcome.value.subscriptionId,
            r.value.outcome.value.resumed,
            retry,
          );
          if (!lane.held.includes(op.sessionId)) lane.held.push(op.sessionId);
        } else {
          ledger.allocateFallback(op.sessionId);
        }
        return "ok";
      }
      case "report": {
        const rec = op.record;
        if (retry) ledger.reportSent(rec.sessionId, rec.requestId, rec.costUsd, rec.tokens);
        const r = await call(() =>
          c.reportUsage({
            sessionId: rec.sessionId,
            requestId: rec.requestId,
            source: {
              case: "usage",
              value: {
                costUsd: rec.costUsd,
                inputTokens: BigInt(rec.tokens.input),
                outputTokens: BigInt(rec.tokens.output),
                cacheCreationInputTokens: BigInt(rec.tokens.cacheCreation),
                cacheReadInputTokens: BigInt(rec.tokens.cacheRead),
              },
            },
          }),
        );
        if (!r.ok) return lost(r.error);
        lane.pending = undefined;
        ledger.reportAcked(rec, {
          duplicate: r.value.duplicate,
          countedCostUsd: r.value.countedCostUsd,
          subscriptionId: r.value.subscription?.id ?? "",
        });
        return "ok";
      }
      case "release": {
        ledger.releaseSent(op.sessionId, retry);
        const r = await call(() => c.release({ sessionId: op.sessionId }));
        if (!r.ok) return lost(r.error);
        lane.pending = undefined;
        ledger.releaseAcked(op.sessionId, r.value.released, retry);
        lane.held = lane.held.filter((id) => id !== op.sessionId);
        return "ok";
      }
    }
  }

  /** step draws the lane's next operation. */
  function draw(lane: Lane): Pending {
    const kind = weighted(lane.rng, {
      allocate: lane.held.length < heldPerLane ? 3 : 0,
      report: lane.held.length > 0 ? 6 : 0,
      release: lane.held.length > 0 ? 1.5 : 0,
    });
    if (kind === "allocate") return { kind, sessionId: `${lane.name}-s${lane.next++}` };
    const sessionId = lane.rng.pick(lane.held);
    if (kind === "release") return { kind, sessionId };
    // Multiples of 1/64 USD: exact in binary, so the sums compare exactly.
    const costUsd = lane.rng.int(1, 256) / 64;
    const tokens: Tokens = {
      input: lane.rng.int(1, 5000),
      output: lane.rng.int(1, 2000),
      cacheCreation: lane.rng.int(0, 1000),
      cacheRead: lane.rng.int(0, 20_000),
    };
    return { kind, record: ledger.reportSent(sessionId, `${sessionId}-r${lane.next++}`, costUsd, tokens) };
  }

  async function runLane(lane: Lane): Promise<void> {
    while (!stopping) {
      const e = epoch;
      if (
        e === undefined ||
        e.phase === "down" ||
        e.phase === "check" ||
        (e.phase === "recover" && lane.pending === undefined)
      ) {
        await phaseChanged;
        continue;
      }
      lane.busy = true;
      const op = lane.pending ?? draw(lane);
      const outcome = await attempt(lane, e, op, lane.pending !== undefined);
      lane.busy = false;
      // The server died under the call: wait for the next one.
      if (outcome === "lost") while (!stopping && epoch === e) await phaseChanged;
      else if (outcome === "retry") await sleep(25);
    }
  }

  /** observe reads status under load and checks it against the ledger's bounds. */
  async function runObserver(): Promise<void> {
    const observerRng = rng.fork(7);
    while (!stopping) {
      const e = epoch;
      if (e === undefined || e.phase !== "run") {
        await phaseChanged;
        continue;
      }
      const before = ledger.capture();
      const r = await call(() => e.clients[0]!.getPoolStatus({ includeSessions: true }));
      const after = ledger.capture();
      if (r.ok) {
        liveReads++;
        ledger.acknowledged.status++;
        for (const p of checkStatus(r.value, before, after, LEDGER)) violation(`status under load: ${p}`);
      } else if (!e.server.killed) {
        const err = ConnectError.from(r.error);
        violation(`status failed on a live server: ${Code[err.code]} ${err.rawMessage}`);
      }
      await sleep(observerRng.int(5, 40));
    }
  }

  async function killNow(e: Epoch, when: string): Promise<void> {
    if (e.server.killed) return;
    const busy = inFlight;
    e.server.kill();
    lastKillAt = performance.now();
    kills++;
    inFlightAtKill.total += busy;
    inFlightAtKill.max = Math.max(inFlightAtKill.max, busy);
    log(`kill ${kills}/${killsWanted} (${when}, ${busy} calls in flight)`);
  }

  /** check compares the pool with the quiet ledger: status equality and the event stream. */
  async function check(e: Epoch, label: string): Promise<void> {
    const before = ledger.capture();
    const r = await call(() => e.clients[0]!.getPoolStatus({ includeSessions: true }));
    if (!r.ok) {
      if (!e.server.killed) violation(`${label}: status failed: ${ConnectError.from(r.error).rawMessage}`);
      return;
    }
    ledger.acknowledged.status++;
    const problems = checkStatus(r.value, before, ledger.capture(), { ...LEDGER, exact: true });
    problems.push(...(await watch.caughtUp(ledger, 5000)));
    if (e.server.killed) return;
    if (problems.length === 0) {
      checksPassed++;
    } else {
      checksFailed++;
      for (const p of problems.slice(0, 20)) violation(`${label}: ${p}`);
    }
  }

  const workers = [...lanes.map(runLane), runObserver()];
  try {
    for (;;) {
      const last = kills >= killsWanted;
      const server = spawnServer(cli, configFile);
      starts++;
      const e: Epoch = { server, clients: [], phase: "down" };
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
        url = await withTimeout(server.ready, maxStartupMs * 3, `no "serving" line after ${maxStartupMs * 3} ms`);
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
      e.clients = Array.from({ length: clientCount }, (_, i) =>
        // Half the connections speak gRPC over HTTP/2, half Connect over HTTP/1.1.
        createAuthPoolClient(
          url,
          i % 2 === 0
            ? { timeoutMs: CALL_TIMEOUT_MS }
            : { timeoutMs: CALL_TIMEOUT_MS, protocol: "connect", httpVersion: "1.1" },
        ),
      );
      watch.follow(url, () => server.killed);
      epoch = e;

      // Recover: the lanes retry their unknown-fate calls with the same ids.
      setPhase(e, "recover");
      const recoverBy = performance.now() + RECOVER_TIMEOUT_MS;
      while (!server.killed && lanes.some((l) => l.pending !== undefined || l.busy)) {
        if (performance.now() > recoverBy) break;
        await sleep(2);
      }
      if (!server.killed && lanes.some((l) => l.pending !== undefined || l.busy)) {
        // A retry failed on a live server (reported above) or hangs: the books cannot be settled.
        violation(`start ${starts}: unknown-fate retries did not settle within ${RECOVER_TIMEOUT_MS} ms`);
        break;
      }
      // Check: nothing in flight, so the books must match exactly.
      if (!server.killed) {
        setPhase(e, "check");
        await check(e, last ? "final check" : `check after start ${starts}`);
      }
      if (server.killed) {
        startupKills++;
      } else if (last) {
        clearTimeout(startupTimer);
        break;
      } else {
        clearTimeout(startupTimer);
        setPhase(e, "run");
        await sleep(killRng.int(runMin, runMax));
        await killNow(e, "under load");
      }
      setPhase(e, "down");
      await server.exited;
      while (lanes.some((l) => l.busy)) await sleep(2);
      await watch.stop();
    }
  } finally {
    stopping = true;
    const e = epoch;
    setPhase(e, "down");
    await Promise.all(workers);
    await watch.stop();
    if (e !== undefined && !e.server.killed) {
      // The last server stops gracefully: SIGTERM must end it with code 0.
      e.server.proc.kill("SIGTERM");
      const { code } = await e.server.exited;
      if (code !== 0) violation(`graceful shutdown exited with code ${code}`);
    }
    for (const v of watch.violations) violation(`events: ${v}`);
    for (const v of ledger.violations) violation(`replies: ${v}`);
    if (violationCount > violations.length) violations.push(`... and ${violationCount - violations.length} more`);
    if (options.keepDir !== true) {
      await rm(dir, { recursive: true, force: true });
      await target.drop().catch((error: unknown) => violation(`could not drop the store: ${(error as Error).message}`));
    }
  }

  const sortedStartup = [...startupSamples].sort((a, b) => a - b);
  const sortedReplay = [...replayedSamples].sort((a, b) => a - b);
  return {
    seed,
    kills,
    startupKills,
    starts,
    checksPassed,
    checksFailed,
    liveReads,
    acknowledged: ledger.acknowledged,
    outcomes: ledger.outcomes,
    retries: ledger.retries,
    inFlightAtKill,
    unavailableWhileLeaseRan,
    startupMs: {
      count: sortedStartup.length,
      median: percentile(sortedStartup, 0.5),
      p95: percentile(sortedStartup, 0.95),
      max: sortedStartup[sortedStartup.length - 1] ?? 0,
    },
    replayedRecords: { median: percentile(sortedReplay, 0.5), max: sortedReplay[sortedReplay.length - 1] ?? 0 },
    events: { seen: watch.events, lastSequence: watch.lastSeq, streams: watch.streams },
    totals: ledger.totals(),
    durationMs: performance.now() - started,
    dir,
    violations,
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
    `counted                 ${r.totals.reports} reports, $${r.totals.usd.toFixed(4)}, ${r.totals.tokens.input + r.totals.tokens.output + r.totals.tokens.cacheCreation + r.totals.tokens.cacheRead} tokens`,
    `events                  ${r.events.seen} seen, last sequence ${r.events.lastSequence}, ${r.events.streams} streams`,
    `start-up                median ${ms(r.startupMs.median)}, p95 ${ms(r.startupMs.p95)}, max ${ms(r.startupMs.max)} over ${r.startupMs.count} starts; journal records replayed median ${r.replayedRecords.median}, max ${r.replayedRecords.max}`,
    `duration                ${(r.durationMs / 1000).toFixed(1)} s`,
    `violations              ${r.violations.length}`,
  ];
}
