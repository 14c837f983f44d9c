import { rm } from "node:fs/promises";
import os from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import { Code } from "@connectrpc/connect";
import {
  type AuthPoolClient,
  type GetPoolStatusResponse,
  InstanceRole,
  createAuthPoolClient,
} from "../../src/client/index.js";
import {
  CALL_TIMEOUT_MS,
  type CallFailure,
  ClientLanes,
  LANE_LEDGER,
  type Lane,
  type LaneCounts,
  type LaneFigures,
  SETTLE_TIMEOUT_MS,
  ackReport,
  formatWaits,
  isConnectionLoss,
  reportRequest,
} from "./client-lanes.js";
import { EventWatch, compareWatches } from "./event-watch.js";
import { Ledger, type LedgerCapture, checkStatus } from "./ledger.js";
import { percentile, spread } from "./percentile.js";
import { writePoolFiles } from "./pool-config.js";
import { Prng } from "./prng.js";
import { type ServerProcess, defaultCliPath, serving, spawnServer } from "./server-process.js";
import type { StoreKind } from "./store-target.js";
import { Violations } from "./violations.js";

/**
 * runFailoverTorture: several `authpool serve` processes on one store (a
 * SQLite file or a PostgreSQL schema), busy with Allocate / ReportUsage /
 * Release from clients spread over all of them, while the current leader is
 * killed with SIGKILL at moments drawn from a seeded generator and started
 * again (it comes back as a standby). A call whose connection died, or that
 * an instance answered UNAVAILABLE during a takeover, has an unknown fate:
 * it is retried with the same ids, possibly through another instance, and
 * must count once. A share of the allocates wait for a slot in the leader's
 * queue: a kill while they wait must lose no slot the queue granted.
 *
 * Checked: after every takeover, with nothing in flight, every instance's
 * books equal the clients' ledger (each report counted once to the cent,
 * every acknowledged allocation held, no session twice, capacity kept); every
 * status read under load, from the leader or a standby, is within bounds;
 * every instance's event stream has each event exactly once, with the same
 * sequence numbers as every other instance's; no two instances lead under
 * one epoch; and a write succeeds again through a surviving instance within
 * the lease TTL + 1 s (+ `slackMs`) of each kill.
 */
export interface FailoverTortureOptions extends LaneCounts {
  /** serve processes on the store (default 3; at least 2). */
  instances?: number;
  /** Leader kills in the run (default 200). */
  kills?: number;
  seed?: number;
  /** Default sqlite (a file in the run's directory); postgres: a fresh schema on bench/fresh-postgres.ts's server, dropped at the end. */
  store?: StoreKind;
  /** How long the pool runs under load before a kill, ms (default 200..1200). */
  runMs?: [number, number];
  /** Share of kills that come 0..100 ms after the previous check instead (default 0.15): a leader that took over about a second ago. */
  quickKillShare?: number;
  /** cluster.leaseTtlSeconds (default 2) and cluster.followPollMs (default 50). */
  leaseTtlSeconds?: number;
  followPollMs?: number;
  /**
   * Allowance over the takeover bound (lease TTL + 1 s) for a busy machine,
   * ms (default 500). A takeover slower than TTL + 1 s + slack is a violation.
   */
  slackMs?: number;
  subscriptions?: number;
  maxSessions?: number;
  snapshotEveryRecords?: number;
  /** A start-up (spawn to "serving") slower than this is a violation (default 10000). */
  maxStartupMs?: number;
  cli?: string;
  log?: (line: string) => void;
  keepDir?: boolean;
}

/** FailoverTortureResult holds the figures of a run and every violation found. */
export interface FailoverTortureResult extends LaneFigures {
  seed: number;
  instances: number;
  store: StoreKind;
  kills: number;
  /** Processes started (the N first ones, one per kill, and the cold restart at the end). */
  starts: number;
  /** From each SIGKILL of the leader until a write succeeded through a surviving instance. */
  takeoverMs: {
    count: number;
    p50: number;
    p99: number;
    max: number;
    boundMs: number;
    leaseTtlMs: number;
    slackMs: number;
  };
  checksPassed: number;
  checksFailed: number;
  /** Status reads checked under load, by the role of the instance that answered. */
  liveReads: { leader: number; standby: number };
  /** Calls whose answer was lost with a killed leader or refused during a takeover (each retried with the same ids). */
  unknownFate: number;
  startupMs: { count: number; median: number; p95: number; max: number };
  events: { seen: number; lastSequence: number; streams: number; comparedUpTo: number };
  durationMs: number;
  dir: string;
  violations: string[];
}

/** Slot is one of the N instances, across its restarts. */
interface Slot {
  index: number;
  name: string;
  server: ServerProcess | undefined;
  /** Serving and not killed: lanes may send to it. */
  up: boolean;
  /** Its lane connections (ClientLanes.connect()). */
  clients: AuthPoolClient[];
  /** The harness's own connection (probes, checks, status reads). */
  admin: AuthPoolClient | undefined;
  watch: EventWatch;
}

function newSlot(index: number, name: string): Slot {
  return { index, name, server: undefined, up: false, clients: [], admin: undefined, watch: new EventWatch(name) };
}

/** Route is a lane's call through a slot, to the process that serves it when the call is sent. */
interface Route {
  slot: Slot;
  server: ServerProcess | undefined;
  clients: readonly AuthPoolClient[];
}

/** A kill's window: from the SIGKILL until `graceMs` after the takeover; unknown fates inside it are expected. */
interface Disturbance {
  killAt: number;
  until: number;
}

/** How long after a takeover a stale view of the lease may still turn a call away (a standby's next look at the lease). */
const GRACE_MS = 1_000;
const PROBE_SESSION = "probe";

export async function runFailoverTorture(options: FailoverTortureOptions = {}): Promise<FailoverTortureResult> {
  const started = performance.now();
  const seed = (options.seed ?? Date.now() % 2 ** 31) >>> 0;
  const instances = options.instances ?? 3;
  if (instances < 2) throw new Error("the failover torture needs at least 2 instances (runCrashTorture covers one)");
  const killsWanted = options.kills ?? 200;
  const [runMin, runMax] = options.runMs ?? [200, 1200];
  const quickKillShare = options.quickKillShare ?? 0.15;
  const leaseTtlMs = (options.leaseTtlSeconds ?? 2) * 1000;
  const slackMs = options.slackMs ?? 500;
  const takeoverBoundMs = leaseTtlMs + 1000 + slackMs;
  const maxStartupMs = options.maxStartupMs ?? 10_000;
  const storeKind = options.store ?? "sqlite";
  const log = options.log ?? (() => undefined);
  const cli = options.cli ?? defaultCliPath();

  const { dir, target, configFile } = await writePoolFiles("authpool-failover-", storeKind, {
    subscriptions: options.subscriptions ?? 3,
    maxSessions: options.maxSessions ?? 10,
    snapshotEveryRecords: options.snapshotEveryRecords ?? 64,
    cluster: { leaseTtlSeconds: leaseTtlMs / 1000, followPollMs: options.followPollMs ?? 50 },
  });

  const rng = new Prng(seed);
  const killRng = rng.fork(1);
  const nothing = new Ledger(LANE_LEDGER).capture();
  const violations = new Violations(log);
  const violation = (text: string) => violations.add(text);
  const startupSamples: number[] = [];
  const takeoverSamples: number[] = [];
  const windows: Disturbance[] = [];
  /** Leader reads: the journal record the leader was at, and the ledger captured before the read was sent. */
  const leaderReads: { record: number; before: LedgerCapture }[] = [];
  /** Who said it led under each epoch, and the newest epoch each process has shown. */
  const leaderOfEpoch = new Map<bigint, string>();
  const epochOf = new Map<string, bigint>();
  let kills = 0;
  let starts = 0;
  let checksPassed = 0;
  let checksFailed = 0;
  const liveReads = { leader: 0, standby: 0 };
  let unknownFate = 0;
  let comparedUpTo = 0;

  const slots = Array.from({ length: instances }, (_, index) => newSlot(index, `instance ${index}`));
  const upSlots = () => slots.filter((s) => s.up);

  /**
   * unknown decides what a failed call means: true when its fate is unknown
   * for a reason the run caused (its instance was killed, or it overlapped a
   * takeover). Anything else is a violation; a connection-loss code is then
   * still retried (true), so the books can settle, any other code is final.
   */
  function unknown(what: string, slot: Slot, server: ServerProcess | undefined, r: CallFailure): boolean {
    const code = r.error.code;
    const expected =
      isConnectionLoss(code) &&
      (server?.killed === true || windows.some((w) => r.sentAt <= w.until && r.at >= w.killAt));
    if (expected) {
      unknownFate++;
      return true;
    }
    violation(`${what} through ${slot.name} failed outside any takeover: ${Code[code]} ${r.error.rawMessage}`);
    return isConnectionLoss(code);
  }

  /** noteCluster checks what a status says of the cluster: one leader per epoch, epochs that never go back. */
  function noteCluster(status: GetPoolStatusResponse, where: string): void {
    const c = status.cluster;
    if (c === undefined) {
      violation(`${where}: status has no cluster section`);
      return;
    }
    if (c.role !== InstanceRole.LEADER && c.role !== InstanceRole.STANDBY) violation(`${where}: role ${c.role}`);
    const last = epochOf.get(c.instanceId);
    if (last !== undefined && c.epoch < last) violation(`${where}: epoch went back from ${last} to ${c.epoch}`);
    epochOf.set(c.instanceId, c.epoch);
    if (c.role === InstanceRole.LEADER) {
      const other = leaderOfEpoch.get(c.epoch);
      if (other !== undefined && other !== c.instanceId)
        violation(`${where}: ${c.instanceId} and ${other} both lead under epoch ${c.epoch}`);
      leaderOfEpoch.set(c.epoch, c.instanceId);
    }
  }

  /** Where a lane whose call had an unknown fate sends it again: the instance after the one that failed it. */
  const retryFrom = new Map<Lane, number>();
  const lanes = new ClientLanes<Route>(options, {
    rng,
    retryPauseMs: 20,
    host: {
      // Connection c is bound to instance c mod N while it is up, else to the next one that is.
      route(lane) {
        const home = lane.client % instances;
        const from = lane.pending === undefined ? home : (retryFrom.get(lane) ?? home);
        for (let i = 0; i < instances; i++) {
          const slot = slots[(from + i) % instances]!;
          if (slot.up) return { slot, server: slot.server, clients: slot.clients };
        }
        return undefined;
      },
      failed(lane, { slot, server }, op, failure) {
        if (!unknown(`${op.kind} (${lane.name})`, slot, server, failure)) return "refused";
        retryFrom.set(lane, (slot.index + 1) % instances);
        return "retry";
      },
    },
  });
  const { ledger } = lanes;

  /**
   * readStatus reads one instance's status and checks it against the
   * ledger. A leader's must hold everything acknowledged before the read; a
   * standby's may lag, so it is held to the last leader read whose journal
   * record it has reached (it holds at least what that leader held).
   */
  async function readStatus(slot: Slot, label: string, exact: boolean): Promise<GetPoolStatusResponse | undefined> {
    const server = slot.server;
    const r = await lanes.readStatus(slot.admin!);
    if (!r.ok) {
      unknown(`${label}: status`, slot, server, r);
      return undefined;
    }
    const status = r.value;
    noteCluster(status, `${label} (${slot.name})`);
    const record = Number(status.cluster?.journalRecord ?? 0n);
    let lower = r.before;
    if (status.cluster?.role === InstanceRole.LEADER) {
      leaderReads.push({ record, before: r.before });
      if (leaderReads.length > 1000) leaderReads.splice(0, 500);
    } else if (!exact) {
      lower = nothing;
      for (let i = leaderReads.length - 1; i >= 0; i--) {
        if (leaderReads[i]!.record <= record) {
          lower = leaderReads[i]!.before;
          break;
        }
      }
    }
    const problems = checkStatus(status, lower, r.after, { ...LANE_LEDGER, exact });
    for (const p of problems.slice(0, 20))
      violation(
        `${label} (${slot.name}, ${status.cluster?.role === InstanceRole.LEADER ? "leader" : "standby"}): ${p}`,
      );
    if (exact && problems.length > 0) checksFailed++;
    return status;
  }

  let nextRead = 0;
  /** readUnderLoad reads the instances that are up in turn. */
  async function readUnderLoad(): Promise<void> {
    const up = upSlots();
    const slot = up[nextRead++ % Math.max(1, up.length)];
    if (slot === undefined) return;
    const status = await readStatus(slot, "status under load", false);
    if (status === undefined) return;
    if (status.cluster?.role === InstanceRole.LEADER) liveReads.leader++;
    else liveReads.standby++;
  }

  /** findLeader asks every instance that is up until one says it leads. */
  async function findLeader(timeoutMs: number): Promise<Slot | undefined> {
    const deadline = performance.now() + timeoutMs;
    while (performance.now() < deadline) {
      for (const slot of upSlots()) {
        const before = ledger.capture();
        const r = await lanes.call(() => slot.admin!.getPoolStatus({}));
        if (r.ok && r.value.cluster !== undefined) {
          noteCluster(r.value, `status of ${slot.name}`);
          // A leader's journal record covers everything acknowledged before the read: a lower bound for standby reads.
          if (r.value.cluster.role === InstanceRole.LEADER)
            leaderReads.push({ record: Number(r.value.cluster.journalRecord), before });
          if (r.value.cluster.role === InstanceRole.LEADER && slot.up) return slot;
        }
      }
      await sleep(20);
    }
    return undefined;
  }

  /** start spawns the slot's process and, once it serves, lets lanes use it. False if it did not start. */
  async function start(slot: Slot): Promise<boolean> {
    const server = spawnServer(cli, configFile);
    starts++;
    slot.server = server;
    let url: string;
    try {
      url = await serving(server, maxStartupMs);
    } catch (error) {
      // Its last log lines say why (a test prints only the thrown error).
      violation(
        `${slot.name}: start-up failed: ${(error as Error).message}; its log: ${server.tail.slice(-8).join(" | ")}`,
      );
      server.kill();
      return false;
    }
    startupSamples.push(server.startupMs!);
    if (server.startupMs! > maxStartupMs)
      violation(`${slot.name}: start-up took ${server.startupMs!.toFixed(0)} ms (bound ${maxStartupMs} ms)`);
    slot.clients = lanes.connect(url);
    slot.admin = createAuthPoolClient(url, { timeoutMs: CALL_TIMEOUT_MS });
    slot.watch.follow(url, () => server.killed);
    slot.up = true;
    return true;
  }

  /** restart waits for the killed process to be gone and starts the slot again. */
  async function restart(slot: Slot): Promise<boolean> {
    await slot.server?.exited;
    await slot.watch.stop();
    return start(slot);
  }

  /**
   * probe sends one report on the harness's own session through the
   * instances that survived `killed` until one is acknowledged, and returns
   * when (performance.now()).
   */
  async function probe(killed: Slot, requestId: string): Promise<number | undefined> {
    const rec = ledger.reportSent(PROBE_SESSION, requestId, 1 / 64, {
      input: 1,
      output: 1,
      cacheCreation: 0,
      cacheRead: 0,
    });
    const giveUpAt = performance.now() + 4 * takeoverBoundMs + CALL_TIMEOUT_MS;
    for (let n = 0; ; n++) {
      const surviving = upSlots().filter((s) => s !== killed);
      const slot = surviving[n % Math.max(1, surviving.length)];
      if (slot === undefined) {
        await sleep(10);
        continue;
      }
      if (n > 0) ledger.reportSent(rec.sessionId, rec.requestId, rec.costUsd, rec.tokens);
      const server = slot.server;
      const r = await lanes.call(() => slot.admin!.reportUsage(reportRequest(rec)));
      if (r.ok) {
        ackReport(ledger, rec, r.value);
        return r.at;
      }
      if (!unknown("takeover probe", slot, server, r)) {
        ledger.reportRejected(rec);
        return undefined;
      }
      if (performance.now() > giveUpAt) {
        violation(`takeover probe ${requestId}: no write succeeded through a surviving instance`);
        return undefined;
      }
      await sleep(10);
    }
  }

  /**
   * check: with every lane quiet, every instance's books must equal the
   * ledger (standbys once they reached the leader's journal record), all
   * must agree on who leads, and every instance's event stream must hold
   * the same events under the same numbers.
   */
  async function check(label: string, resume = true): Promise<void> {
    if (!(await lanes.settle(SETTLE_TIMEOUT_MS))) {
      violation(`${label}: unknown-fate retries did not settle within ${SETTLE_TIMEOUT_MS} ms`);
      return;
    }
    lanes.setPhase("check");
    const failedBefore = checksFailed;
    const leader = await findLeader(2 * takeoverBoundMs);
    if (leader === undefined) {
      violation(`${label}: no instance leads`);
      checksFailed++;
      return;
    }
    const status = await readStatus(leader, label, true);
    const record = Number(status?.cluster?.journalRecord ?? 0n);
    const leaderId = status?.cluster?.instanceId;
    for (const slot of upSlots()) {
      if (slot === leader) continue;
      // The standby follows the journal: wait until it has read what the leader wrote, and names the leader.
      const deadline = performance.now() + 5_000;
      for (;;) {
        const r = await lanes.call(() => slot.admin!.getPoolStatus({}));
        const c = r.ok ? r.value.cluster : undefined;
        if (c !== undefined && Number(c.journalRecord) >= record && c.leaderId === leaderId) break;
        if (performance.now() > deadline) {
          violation(
            `${label}: ${slot.name} did not catch up with the leader within 5 s (at record ${c?.journalRecord}, leader ${c?.leaderId}; want ${record}, ${leaderId})`,
          );
          checksFailed++;
          break;
        }
        await sleep(10);
      }
      const s = await readStatus(slot, label, true);
      if (s?.cluster !== undefined) {
        if (s.cluster.role !== InstanceRole.STANDBY) violation(`${label}: ${slot.name} says it leads too`);
        if (s.cluster.storeError !== "")
          violation(`${label}: ${slot.name} reports a store error: ${s.cluster.storeError}`);
      }
    }
    if (status?.cluster !== undefined && status.cluster.storeError !== "")
      violation(`${label}: the leader reports a store error: ${status.cluster.storeError}`);
    // Events: each stream has what the ledger says, and all streams the same numbers.
    const watches = slots.filter((s) => s.up).map((s) => s.watch);
    for (const w of watches)
      for (const p of (await w.caughtUp(ledger, 5_000)).slice(0, 10)) violation(`${label}: ${w.name}: ${p}`);
    const upTo = Math.max(...watches.map((w) => w.lastSeq));
    await reach(() => Math.min(...watches.map((w) => w.lastSeq)), upTo);
    for (const p of compareWatches(watches, comparedUpTo, upTo)) violation(`${label}: ${p}`);
    comparedUpTo = upTo;
    if (checksFailed === failedBefore) checksPassed++;
    if (resume) lanes.setPhase("run");
  }

  lanes.start(readUnderLoad);
  let cold: ServerProcess | undefined;
  try {
    // All instances at once: they race for the lease, one wins.
    const startedAll = await Promise.all(slots.map(start));
    if (startedAll.includes(false)) throw new Error(`start-up failed: ${violations.list.join("; ")}`);
    // The harness's own session, for takeover probes: held for the whole run.
    for (;;) {
      const slot = upSlots()[0]!;
      ledger.allocateSent(PROBE_SESSION, false);
      const r = await lanes.call(() => slot.admin!.allocate({ sessionId: PROBE_SESSION }));
      if (r.ok && r.value.outcome.case === "subscription") {
        ledger.allocateGranted(
          PROBE_SESSION,
          r.value.outcome.value.subscriptionId,
          r.value.outcome.value.resumed,
          false,
        );
        break;
      }
      violation(`the probe session was not granted: ${r.ok ? r.value.outcome.case : r.error.rawMessage}`);
      throw new Error("no probe session");
    }
    await check("check at start");

    while (kills < killsWanted && !violations.full()) {
      const quick = killRng.chance(quickKillShare);
      await sleep(quick ? killRng.int(0, 100) : killRng.int(runMin, runMax));
      const leader = await findLeader(2 * takeoverBoundMs);
      if (leader === undefined) {
        violation(`before kill ${kills + 1}: no instance leads`);
        break;
      }
      const busy = lanes.noteKill();
      const victim = leader.server!;
      leader.up = false;
      victim.kill();
      const killAt = performance.now();
      const killWall = Date.now();
      const window: Disturbance = { killAt, until: Number.POSITIVE_INFINITY };
      windows.push(window);
      kills++;
      const restarted = restart(leader);
      const ackAt = await probe(leader, `probe-k${kills}`);
      window.until = performance.now() + GRACE_MS;
      if (ackAt !== undefined) {
        const ms = ackAt - killAt;
        takeoverSamples.push(ms);
        if (ms > takeoverBoundMs) {
          violation(
            `kill ${kills}: takeover took ${ms.toFixed(0)} ms (bound: lease TTL ${leaseTtlMs} + 1000 + slack ${slackMs} = ${takeoverBoundMs} ms)`,
          );
          // What the instances logged meanwhile (lease taken when, takeover trouble) and how busy the
          // machine was; after a moment, for their log lines to arrive through the pipes.
          await sleep(500);
          log(
            `  load average ${os
              .loadavg()
              .map((l) => l.toFixed(2))
              .join(" ")}; logs since 3 s before the kill, ms from the kill:`,
          );
          for (const line of logsSince([victim, ...slots.map((s) => s.server)], killWall - 3_000, killWall))
            log(`  ${line}`);
        }
        log(
          `kill ${kills}/${killsWanted} of ${leader.name} (${quick ? "right after the last check, " : ""}${busy.calls} calls in flight, ${busy.waiting} of them waiting allocates): writes again after ${ms.toFixed(0)} ms`,
        );
      }
      if (!(await restarted)) break;
      await check(`check after kill ${kills}`);
    }
    // The last check leaves the lanes stopped: the cold restart below must find the ledger quiet.
    await check("final check", false);
  } finally {
    await lanes.stop();
    for (const slot of slots) await slot.watch.stop();
    // Every instance stops gracefully: SIGTERM must end each with code 0.
    await Promise.all(
      slots.map(async (slot) => {
        const server = slot.server;
        slot.up = false;
        if (server === undefined || server.killed) return;
        server.proc.kill("SIGTERM");
        const { code } = await server.exited;
        if (code !== 0) violation(`${slot.name}: graceful shutdown exited with code ${code}`);
      }),
    );
  }

  // A cold start after everything stopped: the books and the whole event history are still there.
  if (violations.count === 0) {
    try {
      const slot = newSlot(instances, "cold restart");
      if (await start(slot)) {
        const server = slot.server!;
        cold = server;
        await readStatus(slot, "after a cold restart", true);
        // The whole history streams from the start: give it as long as it keeps coming.
        await reach(() => slot.watch.lastSeq, comparedUpTo);
        for (const p of compareWatches([...slots.map((s) => s.watch), slot.watch], 0, comparedUpTo))
          violation(`after a cold restart: ${p}`);
        await slot.watch.stop();
        for (const v of slot.watch.violations) violation(`events: ${v}`);
        server.proc.kill("SIGTERM");
        const { code } = await server.exited;
        if (code !== 0) violation(`cold restart: graceful shutdown exited with code ${code}`);
      }
    } finally {
      if (cold !== undefined && cold.proc.exitCode === null && cold.proc.signalCode === null) cold.kill();
    }
  }

  for (const slot of slots) for (const v of slot.watch.violations) violation(`events: ${v}`);
  for (const v of ledger.violations) violation(`replies: ${v}`);
  violations.noteDropped();
  if (options.keepDir !== true) {
    await rm(dir, { recursive: true, force: true });
    await target
      .drop()
      .catch((error: unknown) => violations.list.push(`could not drop the store: ${(error as Error).message}`));
  }

  const sortedTakeover = [...takeoverSamples].sort((a, b) => a - b);
  const watchMax = slots.reduce((best, s) => (s.watch.lastSeq > best.lastSeq ? s.watch : best), slots[0]!.watch);
  return {
    seed,
    instances,
    store: storeKind,
    kills,
    starts,
    takeoverMs: {
      count: sortedTakeover.length,
      p50: percentile(sortedTakeover, 0.5),
      p99: percentile(sortedTakeover, 0.99),
      max: sortedTakeover[sortedTakeover.length - 1] ?? 0,
      boundMs: takeoverBoundMs,
      leaseTtlMs,
      slackMs,
    },
    checksPassed,
    checksFailed,
    liveReads,
    ...lanes.figures(),
    unknownFate,
    startupMs: spread(startupSamples),
    events: {
      seen: watchMax.events,
      lastSequence: watchMax.lastSeq,
      streams: slots.reduce((n, s) => n + s.watch.streams, 0),
      comparedUpTo,
    },
    durationMs: performance.now() - started,
    dir,
    violations: violations.list,
  };
}

/** reach waits until `value()` reaches `target`, or until it has not moved for `idleMs` (default 5 s). */
async function reach(value: () => number, target: number, idleMs = 5_000): Promise<void> {
  let last = value();
  let movedAt = performance.now();
  while (value() < target && performance.now() - movedAt < idleMs) {
    await sleep(10);
    if (value() !== last) {
      last = value();
      movedAt = performance.now();
    }
  }
}

/** logsSince: the log lines the servers kept (their tails) from `since` on, by time, each as "+ms pid message fields" relative to `zero`. */
function logsSince(servers: (ServerProcess | undefined)[], since: number, zero: number): string[] {
  const lines: { at: number; text: string }[] = [];
  for (const server of new Set(servers)) {
    if (server === undefined) continue;
    for (const raw of server.tail) {
      let entry: { time?: unknown; message?: unknown; level?: unknown };
      try {
        entry = JSON.parse(raw) as typeof entry;
      } catch {
        continue;
      }
      const at = typeof entry.time === "string" ? Date.parse(entry.time) : Number.NaN;
      if (!(at >= since)) continue;
      const { time: _time, message, level: _level, ...rest } = entry;
      lines.push({
        at,
        text: `${at - zero >= 0 ? "+" : ""}${at - zero} ms pid ${server.proc.pid}: ${String(message)} ${JSON.stringify(rest)}`,
      });
    }
  }
  return lines.sort((a, b) => a.at - b.at).map((l) => l.text);
}

/** formatFailoverFigures renders a result as the lines `npm run torture -- --instances N` prints. */
export function formatFailoverFigures(r: FailoverTortureResult): string[] {
  const ms = (n: number) => `${n.toFixed(0)} ms`;
  const retried = (k: keyof FailoverTortureResult["retries"]) =>
    `${r.retries[k].sent} (${r.retries[k].landed} had landed)`;
  const t = r.takeoverMs;
  return [
    `seed                    ${r.seed}`,
    `cluster                 ${r.instances} instances on ${r.store}, lease TTL ${t.leaseTtlMs / 1000} s`,
    `leader kills            ${r.kills}, ${r.starts} process starts`,
    `takeover                p50 ${ms(t.p50)}, p99 ${ms(t.p99)}, max ${ms(t.max)} over ${t.count} kills (bound ${ms(t.boundMs)} = TTL + 1 s + ${t.slackMs} ms slack)`,
    `checks passed           ${r.checksPassed} exact on every instance, ${r.checksFailed} failed; status reads checked under load: ${r.liveReads.leader} on the leader, ${r.liveReads.standby} on standbys`,
    `calls acknowledged      allocate ${r.acknowledged.allocate} (${r.outcomes.granted} granted, ${r.outcomes.fallback} fallback), report ${r.acknowledged.report}, release ${r.acknowledged.release}, status ${r.acknowledged.status}`,
    `unknown-fate retries    allocate ${retried("allocate")}, report ${retried("report")}, release ${retried("release")}; ${r.unknownFate} failed attempts in all`,
    `in flight at kills      ${r.inFlightAtKill.total} in total, ${r.inFlightAtKill.max} at most`,
    formatWaits(r.waits),
    `counted                 ${r.totals.reports} reports, $${r.totals.usd.toFixed(4)}, ${r.totals.tokens.input + r.totals.tokens.output + r.totals.tokens.cacheCreation + r.totals.tokens.cacheRead} tokens`,
    `events                  ${r.events.seen} seen per instance, last sequence ${r.events.lastSequence}, ${r.events.streams} streams; identical on every instance up to ${r.events.comparedUpTo}`,
    `start-up                median ${ms(r.startupMs.median)}, p95 ${ms(r.startupMs.p95)}, max ${ms(r.startupMs.max)} over ${r.startupMs.count} starts`,
    `duration                ${(r.durationMs / 1000).toFixed(1)} s`,
    `violations              ${r.violations.length}`,
  ];
}
