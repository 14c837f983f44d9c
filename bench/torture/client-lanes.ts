import { setTimeout as sleep } from "node:timers/promises";
import { durationFromMs, durationMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  type AuthPoolClient,
  type GetPoolStatusResponse,
  type ReportUsageResponse,
  createAuthPoolClient,
} from "../../src/client/index.js";
import { Ledger, type LedgerCapture, type LedgerOptions, type ReportRecord, type Tokens } from "./ledger.js";
import { type Prng, weighted } from "./prng.js";

/**
 * LaneCall is one call of a lane; a report carries its ledger record, so a
 * retry sends the same request id. An allocate that `waits` asks to wait for
 * a slot (wait, max_wait) instead of falling back; its retry asks the same.
 */
export type LaneCall =
  | { kind: "allocate"; sessionId: string; waits: boolean }
  | { kind: "report"; record: ReportRecord }
  | { kind: "release"; sessionId: string };

/** Lane is one sequence of calls on one client connection; it owns its sessions. */
export interface Lane {
  readonly name: string;
  /** Its connection: index c of what connect() opens. */
  readonly client: number;
  readonly rng: Prng;
  /** Sessions granted to it and not released. */
  held: string[];
  /** Numbers its session and request ids. */
  next: number;
  /** The call whose fate is unknown, sent again before anything new. */
  pending: LaneCall | undefined;
  /** A call of it is out. */
  busy: boolean;
}

/**
 * LanePhase says what lanes may do: "run", call freely; "settle", only a
 * lane with a pending call sends it again (so every fate becomes known);
 * "check" and "down", nothing.
 */
export type LanePhase = "run" | "settle" | "check" | "down";

/** CallFailure is a call's error, with when it was sent and when it failed (performance.now()). */
export interface CallFailure {
  error: ConnectError;
  sentAt: number;
  at: number;
}

/** CallResult is a call's reply or its failure. */
export type CallResult<T> = { ok: true; value: T; sentAt: number; at: number } | ({ ok: false } & CallFailure);

/** StatusRead is a status read with the ledger captured before it was sent and after it settled. */
export type StatusRead = CallResult<GetPoolStatusResponse> & { before: LedgerCapture; after: LedgerCapture };

/**
 * LaneVerdict is what a failed call means to its lane: "lost", its server
 * died under it (sent again once the host routes the lane elsewhere);
 * "retry", its fate is unknown (sent again after `retryPauseMs`);
 * "refused", nothing happened (the books move on).
 */
export type LaneVerdict = "lost" | "retry" | "refused";

/** LaneTarget is where a lane's call goes: a server's lane connections. */
export interface LaneTarget {
  readonly clients: readonly AuthPoolClient[];
}

/** LaneHost is the harness as the lanes see it. */
export interface LaneHost<T extends LaneTarget> {
  /** route names where the lane's next call goes; undefined: nowhere yet (the lane looks again shortly). */
  route(lane: Lane): T | undefined;
  /** failed judges a failed call, and reports it if it is a violation. */
  failed(lane: Lane, target: T, call: LaneCall, failure: CallFailure): LaneVerdict;
}

/** LaneCounts size the lanes (both harnesses' options carry them). */
export interface LaneCounts {
  /** Client connections (default 8), each with `lanes` lanes, so as many calls in flight (default 3). */
  clients?: number;
  lanes?: number;
  /** Sessions one lane holds at most (default 2); capacity is subscriptions × maxSessions. */
  heldPerLane?: number;
  /** Share of new allocates that ask to wait for a slot (default 1/3), and the max_wait they ask for, ms (default 1000). */
  waitShare?: number;
  maxWaitMs?: number;
}

/** LaneDriver is what drives the lanes. */
export interface LaneDriver<T extends LaneTarget> {
  /** The run's generator: lane i draws from fork(100 + i), the observer from fork(7). */
  rng: Prng;
  /** Pause before a "retry" is sent again, ms. */
  retryPauseMs: number;
  host: LaneHost<T>;
}

/** KillTally sums a count taken at each kill, and keeps the most at once. */
export interface KillTally {
  total: number;
  max: number;
}

/** WaitFigures are what the allocates that asked to wait came to. */
export interface WaitFigures {
  /** Allocates sent that asked to wait (a retry is not a new one). */
  asked: number;
  /** Granted after waiting in the queue: the reply's `waited` is more than zero. */
  grantedAfterWait: number;
  /** Granted without waiting: a slot was free, or a retry found the grant its lost attempt had made. */
  grantedAtOnce: number;
  /** Answered RESOURCE_EXHAUSTED: the wait ran out, or could only have run out (nothing granted). */
  ranOut: number;
  /** Retries of a waiting allocate answered "resumed": its lost attempt had been granted before it was lost. */
  resumedAfterLoss: number;
  /**
   * Waiting allocates in flight when a kill came, summed over kills, and the
   * most at once. A wait lasts up to max_wait while an allocate that finds a
   * slot takes milliseconds, so nearly all of them were in the queue.
   */
  inFlightAtKill: KillTally;
}

/** LaneFigures are what the lanes' calls came to, as both harnesses report them. */
export interface LaneFigures {
  acknowledged: Ledger["acknowledged"];
  outcomes: Ledger["outcomes"];
  retries: Ledger["retries"];
  /** Calls that were in flight when a kill came, summed over kills, and the most at once. */
  inFlightAtKill: KillTally;
  waits: WaitFigures;
  totals: { usd: number; reports: number; tokens: Tokens };
}

/** KillNote is what was in flight as a kill came: calls, and the waiting allocates among them. */
export interface KillNote {
  calls: number;
  waiting: number;
}

/** formatWaits renders the waits as the figures line both harnesses print. */
export function formatWaits(w: WaitFigures): string {
  return `waiting allocates       ${w.asked} asked: ${w.grantedAfterWait} granted after a wait, ${w.grantedAtOnce} at once, ${w.ranOut} ran out; ${w.resumedAfterLoss} resumed on retry after a lost grant; ${w.inFlightAtKill.total} in flight at kills, ${w.inFlightAtKill.max} at most`;
}

/** No rebalance or rotation in a torture run: a session stays on the subscription it was granted. */
export const LANE_LEDGER: LedgerOptions = { sessionsStay: true };
export const CALL_TIMEOUT_MS = 15_000;
/** How long lanes get to learn the fate of their pending calls before a check. */
export const SETTLE_TIMEOUT_MS = 30_000;

/** isConnectionLoss: codes a dying server's calls end with, so the call's fate is unknown. */
export function isConnectionLoss(code: Code): boolean {
  return (
    code === Code.Unavailable ||
    code === Code.Unknown ||
    code === Code.Internal ||
    code === Code.Canceled ||
    code === Code.Aborted
  );
}

/** reportRequest is the ReportUsage of a ledger record; a retry sends it unchanged. */
export function reportRequest(rec: ReportRecord) {
  return {
    sessionId: rec.sessionId,
    requestId: rec.requestId,
    source: {
      case: "usage" as const,
      value: {
        costUsd: rec.costUsd,
        inputTokens: BigInt(rec.tokens.input),
        outputTokens: BigInt(rec.tokens.output),
        cacheCreationInputTokens: BigInt(rec.tokens.cacheCreation),
        cacheReadInputTokens: BigInt(rec.tokens.cacheRead),
      },
    },
  };
}

/** ackReport settles a ReportUsage reply in the ledger. */
export function ackReport(ledger: Ledger, rec: ReportRecord, reply: ReportUsageResponse): void {
  ledger.reportAcked(rec, {
    duplicate: reply.duplicate,
    countedCostUsd: reply.countedCostUsd,
    subscriptionId: reply.subscription?.id ?? "",
  });
}

/**
 * ClientLanes are the clients of a torture run: `clients` connections with
 * `lanesPerClient` lanes each, a lane being one sequence of Allocate /
 * ReportUsage / Release calls drawn from its own seeded generator, every
 * call and reply kept in the run's ledger. A call whose fate is unknown
 * stays the lane's pending call and is sent again, with the same ids,
 * before the lane draws anything new: it must count once.
 *
 * A share of the allocates ask to wait for a slot (the pool is smaller than
 * what the lanes want, so the queue fills): one that runs out is answered
 * RESOURCE_EXHAUSTED, a definite "nothing granted"; one whose connection
 * dies while it waits has an unknown fate like any other call, and its
 * retry must come back "resumed" if the queue had granted it before.
 *
 * The harness is the LaneHost: it says where a lane's call goes and what a
 * failed call means, since that is what differs between one server killed
 * and restarted and a leader killed among replicas. The phase says when
 * lanes may call, so the books can be checked with nothing in flight.
 */
export class ClientLanes<T extends LaneTarget> {
  readonly ledger = new Ledger(LANE_LEDGER);
  readonly lanes: readonly Lane[];
  readonly inFlightAtKill: KillTally = { total: 0, max: 0 };
  readonly waits: WaitFigures = {
    asked: 0,
    grantedAfterWait: 0,
    grantedAtOnce: 0,
    ranOut: 0,
    resumedAfterLoss: 0,
    inFlightAtKill: { total: 0, max: 0 },
  };
  private readonly clients: number;
  private readonly heldPerLane: number;
  private readonly waitShare: number;
  private readonly maxWaitMs: number;
  private readonly driver: LaneDriver<T>;
  private inFlight = 0;
  /** Allocates that asked to wait and are out. */
  private waitingInFlight = 0;
  private phase: LanePhase = "down";
  private wake: () => void = () => undefined;
  private phaseChanged = new Promise<void>((r) => (this.wake = r));
  private stopping = false;
  private workers: Promise<void>[] = [];

  constructor(counts: LaneCounts, driver: LaneDriver<T>) {
    this.clients = counts.clients ?? 8;
    this.heldPerLane = counts.heldPerLane ?? 2;
    this.waitShare = counts.waitShare ?? 1 / 3;
    this.maxWaitMs = counts.maxWaitMs ?? 1000;
    this.driver = driver;
    const lanesPerClient = counts.lanes ?? 3;
    this.lanes = Array.from({ length: this.clients * lanesPerClient }, (_, i) => {
      const client = Math.floor(i / lanesPerClient);
      return {
        name: `c${client}l${i % lanesPerClient}`,
        client,
        rng: driver.rng.fork(100 + i),
        held: [],
        next: 0,
        pending: undefined,
        busy: false,
      };
    });
  }

  /** connect opens the lanes' connections to the server at `url`: half gRPC over HTTP/2, half Connect over HTTP/1.1. */
  connect(url: string): AuthPoolClient[] {
    return Array.from({ length: this.clients }, (_, i) =>
      createAuthPoolClient(
        url,
        i % 2 === 0
          ? { timeoutMs: CALL_TIMEOUT_MS }
          : { timeoutMs: CALL_TIMEOUT_MS, protocol: "connect", httpVersion: "1.1" },
      ),
    );
  }

  /** start sets the lanes going, and `observe` (a status read under load) every 5..40 ms while the phase is "run". */
  start(observe: () => Promise<void>): void {
    this.workers = [...this.lanes.map((lane) => this.runLane(lane)), this.runObserver(observe)];
  }

  /** stop ends the lanes and the observer once their calls are back. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.setPhase("down");
    await Promise.all(this.workers);
  }

  /** setPhase changes what the lanes may do, and wakes those waiting for it. */
  setPhase(next: LanePhase): void {
    this.phase = next;
    this.wake();
    this.phaseChanged = new Promise<void>((r) => (this.wake = r));
  }

  /** settled: no lane has a call out or a fate unknown. */
  settled(): boolean {
    return !this.lanes.some((l) => l.pending !== undefined || l.busy);
  }

  /**
   * settle turns to phase "settle", so that only pending calls go out, and
   * waits until settled(), `timeoutMs` passed or `interrupted()`; it returns settled().
   */
  async settle(timeoutMs: number, interrupted: () => boolean = () => false): Promise<boolean> {
    this.setPhase("settle");
    const by = performance.now() + timeoutMs;
    while (!interrupted() && !this.settled()) {
      if (performance.now() > by) break;
      await sleep(2);
    }
    return this.settled();
  }

  /** idle waits until no lane has a call out. */
  async idle(): Promise<void> {
    while (this.lanes.some((l) => l.busy)) await sleep(2);
  }

  /** noteKill counts the calls in flight as a kill comes, and the waiting allocates among them. */
  noteKill(): KillNote {
    const note = { calls: this.inFlight, waiting: this.waitingInFlight };
    tally(this.inFlightAtKill, note.calls);
    tally(this.waits.inFlightAtKill, note.waiting);
    return note;
  }

  /** call runs one RPC, counting it as in flight. */
  async call<R>(run: () => Promise<R>): Promise<CallResult<R>> {
    this.inFlight++;
    const sentAt = performance.now();
    try {
      const value = await run();
      return { ok: true, value, sentAt, at: performance.now() };
    } catch (error) {
      return { ok: false, error: ConnectError.from(error), sentAt, at: performance.now() };
    } finally {
      this.inFlight--;
    }
  }

  /** readStatus reads GetPoolStatus(include_sessions) between the two ledger captures checkStatus bounds it by. */
  async readStatus(client: AuthPoolClient): Promise<StatusRead> {
    const before = this.ledger.capture();
    const r = await this.call(() => client.getPoolStatus({ includeSessions: true }));
    const after = this.ledger.capture();
    if (r.ok) this.ledger.acknowledged.status++;
    return { ...r, before, after };
  }

  /** figures: what the calls came to so far. */
  figures(): LaneFigures {
    const { acknowledged, outcomes, retries } = this.ledger;
    return {
      acknowledged,
      outcomes,
      retries,
      inFlightAtKill: this.inFlightAtKill,
      waits: this.waits,
      totals: this.ledger.totals(),
    };
  }

  private async runLane(lane: Lane): Promise<void> {
    const { host, retryPauseMs } = this.driver;
    while (!this.stopping) {
      if (this.phase === "down" || this.phase === "check" || (this.phase === "settle" && lane.pending === undefined)) {
        await this.phaseChanged;
        continue;
      }
      const target = host.route(lane);
      if (target === undefined) {
        await sleep(10);
        continue;
      }
      lane.busy = true;
      const retry = lane.pending !== undefined;
      const verdict = await this.attempt(lane, target, lane.pending ?? this.draw(lane), retry);
      lane.busy = false;
      if (verdict === "lost") while (!this.stopping && host.route(lane) === target) await this.phaseChanged;
      else if (verdict === "retry") await sleep(retryPauseMs);
    }
  }

  private async runObserver(observe: () => Promise<void>): Promise<void> {
    const rng = this.driver.rng.fork(7);
    while (!this.stopping) {
      if (this.phase !== "run") {
        await this.phaseChanged;
        continue;
      }
      await observe();
      await sleep(rng.int(5, 40));
    }
  }

  private draw(lane: Lane): LaneCall {
    const kind = weighted(lane.rng, {
      allocate: lane.held.length < this.heldPerLane ? 3 : 0,
      report: lane.held.length > 0 ? 6 : 0,
      release: lane.held.length > 0 ? 1.5 : 0,
    });
    if (kind === "allocate") {
      const waits = lane.rng.chance(this.waitShare);
      if (waits) this.waits.asked++;
      return { kind, sessionId: `${lane.name}-s${lane.next++}`, waits };
    }
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
    return { kind, record: this.ledger.reportSent(sessionId, `${sessionId}-r${lane.next++}`, costUsd, tokens) };
  }

  /** attempt sends one call (a new one, or `retry`: the pending one again) and settles it in the ledger. */
  private async attempt(lane: Lane, target: T, op: LaneCall, retry: boolean): Promise<"ok" | LaneVerdict> {
    const { ledger } = this;
    const c = target.clients[lane.client]!;
    const failed = (failure: CallFailure): LaneVerdict => {
      const verdict = this.driver.host.failed(lane, target, op, failure);
      lane.pending = verdict === "refused" ? undefined : op;
      if (verdict === "refused") this.refused(lane, op);
      return verdict;
    };
    switch (op.kind) {
      case "allocate": {
        ledger.allocateSent(op.sessionId, retry);
        const r = await this.call(() => this.allocate(c, op));
        if (!r.ok) {
          if (!op.waits || r.error.code !== Code.ResourceExhausted) return failed(r);
          // The wait ran out (or could only run out): a definite answer, nothing granted.
          lane.pending = undefined;
          this.waits.ranOut++;
          this.refused(lane, op);
          return "refused";
        }
        lane.pending = undefined;
        if (r.value.outcome.case === "subscription") {
          const grant = r.value.outcome.value;
          if (op.waits) {
            const waited = r.value.waited !== undefined && durationMs(r.value.waited) > 0;
            if (waited) this.waits.grantedAfterWait++;
            else this.waits.grantedAtOnce++;
            if (retry && grant.resumed && ledger.sessionStatus(op.sessionId) !== "held") this.waits.resumedAfterLoss++;
          }
          ledger.allocateGranted(op.sessionId, grant.subscriptionId, grant.resumed, retry);
          if (!lane.held.includes(op.sessionId)) lane.held.push(op.sessionId);
        } else {
          ledger.allocateFallback(op.sessionId);
        }
        return "ok";
      }
      case "report": {
        const rec = op.record;
        if (retry) ledger.reportSent(rec.sessionId, rec.requestId, rec.costUsd, rec.tokens);
        const r = await this.call(() => c.reportUsage(reportRequest(rec)));
        if (!r.ok) return failed(r);
        lane.pending = undefined;
        ackReport(ledger, rec, r.value);
        return "ok";
      }
      case "release": {
        ledger.releaseSent(op.sessionId, retry);
        const r = await this.call(() => c.release({ sessionId: op.sessionId }));
        if (!r.ok) return failed(r);
        lane.pending = undefined;
        ledger.releaseAcked(op.sessionId, r.value.released, retry);
        lane.held = lane.held.filter((id) => id !== op.sessionId);
        return "ok";
      }
    }
  }

  /** allocate sends an Allocate, asking to wait for up to maxWaitMs if the call `waits`, counted while it is out. */
  private async allocate(c: AuthPoolClient, op: Extract<LaneCall, { kind: "allocate" }>) {
    if (!op.waits) return c.allocate({ sessionId: op.sessionId });
    this.waitingInFlight++;
    try {
      return await c.allocate({ sessionId: op.sessionId, wait: true, maxWait: durationFromMs(this.maxWaitMs) });
    } finally {
      this.waitingInFlight--;
    }
  }

  /** refused settles a definite refusal: nothing happened. */
  private refused(lane: Lane, op: LaneCall): void {
    if (op.kind === "allocate") this.ledger.allocateFailed(op.sessionId);
    else if (op.kind === "report") this.ledger.reportRejected(op.record);
    else lane.held = lane.held.filter((id) => id !== op.sessionId);
  }
}

function tally(t: KillTally, n: number): void {
  t.total += n;
  t.max = Math.max(t.max, n);
}
