import { MINUTE_MS } from "../../src/domain/index.js";
import { EventQueue } from "./event-queue.js";
import type { SimAccount } from "./sim-account.js";
import type { Placement, RunReport, Strategy } from "./strategy.js";
import { type ExternalUse, type SimSession, USAGE_WEIGHT, type Workload } from "./workload.js";

/**
 * MOVE_PENALTY: a session moved to another account loses its prompt cache
 * there, so its next run reads its context uncached; that run costs this
 * much more (caches are per account: a cache read costs a tenth of input,
 * a cache write 1.25 times input).
 */
export const MOVE_PENALTY = 0.5;

/** TICK_MS: how often the strategies' housekeeping runs (the pool's sweep). */
const TICK_MS = 5 * MINUTE_MS;

/** SimMetrics are one strategy's results over one simulated week. */
export interface SimMetrics {
  strategy: string;
  /** Runs the team asked for. */
  runs: number;
  /** Runs an account refused, at their start or midway, because a window was at its cap (429s). */
  refused: number;
  /** API-price dollars of runs cut midway: capacity used for nothing. */
  wastedUsd: number;
  /** Runs no account could take: sent to the paid API. */
  fallbackRuns: number;
  fallbackUsd: number;
  /** API-price dollars of runs served on subscriptions (including the cost of moves). */
  servedUsd: number;
  /** servedUsd until the first 429 anywhere in the pool. */
  servedBeforeFirstLimitUsd: number;
  firstLimitAt?: number;
  /** Sessions whose next run went to a different account than their last one. */
  moves: number;
  /** Each account's weekly utilization just before its weekly window reset (what was left was lost). */
  weeklyUtilization: number[];
  /** Owners' use outside the pool (utilization dollars) refused because a window was at its cap: what the pool took from them. */
  ownersRefusedUsd: number;
  /** The same figures for each client the sessions name (the default client for those naming none). */
  byClient: Map<string, ClientMetrics>;
}

/** ClientMetrics are one client's runs: served, waited for a slot, sent to the paid API. */
export interface ClientMetrics {
  runs: number;
  servedRuns: number;
  servedUsd: number;
  /** How long each run that waited for a slot waited (granted or not). */
  waitsMs: number[];
  /** Runs that waited until their wait ran out, then went to the paid API. */
  expiredRuns: number;
  fallbackRuns: number;
  fallbackUsd: number;
  /** Runs a limit of the client itself sent to the paid API, by the limit's kind (weekly_usd, share, ...). */
  limitRefusals: Record<string, number>;
}

/** emptyClientMetrics is a client that asked for nothing yet. */
export function emptyClientMetrics(): ClientMetrics {
  return {
    runs: 0,
    servedRuns: 0,
    servedUsd: 0,
    waitsMs: [],
    expiredRuns: 0,
    fallbackRuns: 0,
    fallbackUsd: 0,
    limitRefusals: {},
  };
}

/** SimObserver hears what happened to each run: for scenarios that look closer than the totals. */
export interface SimObserver {
  /** A run started on `account`; `from` is the session's previous account. */
  placed?(session: SimSession, account: number, from: number | undefined, at: number): void;
  /** An account refused a run, at its start or midway. */
  limited?(session: SimSession, account: number, at: number): void;
}

/** SimOptions: a closer look at the runs, and where sessions already were before the replay. */
export interface SimOptions {
  observer?: SimObserver;
  /** Sessions placed before the replay starts, by id: their account (their first run there is no move). */
  heldOn?: ReadonlyMap<string, number>;
}

type SimEvent =
  | { kind: "run"; session: SimSession; turn: number }
  | { kind: "report"; report: RunReport; account: SimAccount }
  | {
      kind: "cut";
      session: SimSession;
      turn: number;
      account: number;
      costUsd: number;
      durationMs: number;
      tries: number;
    }
  | { kind: "release"; session: SimSession }
  | { kind: "external"; use: ExternalUse }
  | { kind: "tick" }
  | { kind: "poll"; account: number }
  | { kind: "wait_ends" };

/** A run whose wait settled: it goes where `placement` says, at the time the queue was walked. */
interface Settled {
  session: SimSession;
  turn: number;
  tries: number;
  waitedFrom: number;
  placement: Placement;
  /** The session's next run waits for this one (false for a run redone after a cut: its next is already due). */
  paced: boolean;
}

/**
 * runSimulation replays a workload against the accounts with one strategy,
 * in simulated time. Runs start at the trace's times whatever happened
 * before (people keep working); a run refused at its start is retried at
 * once on the account the strategy picks next, one cut midway is redone
 * from the start when it is cut, up to one try per account, then it goes
 * to the paid API. Readings reach the strategy when a run ends, so a burst
 * of placements acts on what was known before it. A strategy with a wait
 * queue may hold a run until a slot opens (the queue is walked after every
 * event while runs wait, and when a wait runs out): the run starts then,
 * and the rest of its session later by as much.
 */
export async function runSimulation(
  workload: Workload,
  accounts: SimAccount[],
  external: readonly ExternalUse[],
  strategy: Strategy,
  options: SimOptions = {},
): Promise<SimMetrics> {
  const observer = options.observer ?? {};
  const queue = new EventQueue<SimEvent>();
  for (const session of workload.sessions) queue.push(session.turns[0]!.at, { kind: "run", session, turn: 0 });
  for (const use of external) queue.push(use.at, { kind: "external", use });
  for (let t = workload.start; t < workload.end; t += TICK_MS) queue.push(t, { kind: "tick" });
  if (strategy.pollMs !== undefined) {
    // Each account on its own phase, as a poller started per subscription would be.
    accounts.forEach((_, account) => {
      const phase = Math.round((strategy.pollMs! * account) / accounts.length);
      for (let t = workload.start + phase; t < workload.end; t += strategy.pollMs!)
        queue.push(t, { kind: "poll", account });
    });
  }

  const m: SimMetrics = {
    strategy: strategy.name,
    runs: 0,
    refused: 0,
    wastedUsd: 0,
    fallbackRuns: 0,
    fallbackUsd: 0,
    servedUsd: 0,
    servedBeforeFirstLimitUsd: 0,
    moves: 0,
    weeklyUtilization: [],
    ownersRefusedUsd: 0,
    byClient: new Map(),
  };
  const lastAccount = new Map<string, number>(options.heldOn);
  /** How much later than the trace each session's runs come, after the waits of its earlier runs. */
  const delays = new Map<string, number>();
  const settled: Settled[] = [];

  const clientOf = (session: SimSession): ClientMetrics => {
    const name = session.client ?? "default";
    let c = m.byClient.get(name);
    if (c === undefined) m.byClient.set(name, (c = emptyClientMetrics()));
    return c;
  };

  const limitHit = (session: SimSession, account: number, at: number): void => {
    m.refused++;
    m.firstLimitAt ??= at;
    observer.limited?.(session, account, at);
  };

  const paid = (session: SimSession, turn: number, clientLimit: string | undefined): void => {
    const c = clientOf(session);
    const costUsd = session.turns[turn]!.costUsd;
    m.fallbackRuns++;
    m.fallbackUsd += costUsd;
    c.fallbackRuns++;
    c.fallbackUsd += costUsd;
    if (clientLimit !== undefined) c.limitRefusals[clientLimit] = (c.limitRefusals[clientLimit] ?? 0) + 1;
  };

  /** runOn starts the run (or what is left of it to redo) on account a; false when the account refused it at its start. */
  const runOn = (session: SimSession, turn: number, at: number, tries: number, a: number): boolean => {
    const t = session.turns[turn]!;
    const previous = lastAccount.get(session.id);
    const moved = previous !== undefined && previous !== a;
    if (moved) m.moves++;
    lastAccount.set(session.id, a);
    observer.placed?.(session, a, previous, at);
    const account = accounts[a]!;
    const limit = account.limitAt(at);
    if (limit !== undefined) {
      limitHit(session, a, at);
      strategy.report({
        session,
        account: a,
        turn,
        at,
        costUsd: 0,
        durationMs: 0,
        readings: account.readings(at),
        limit,
      });
      return false;
    }
    const weight = USAGE_WEIGHT[session.model];
    const costUsd = t.costUsd * (moved ? 1 + MOVE_PENALTY : 1);
    const room = account.roomAt(at);
    if (costUsd * weight > room) {
      // Cut midway: what it used is lost (the run gave no result) and it is redone elsewhere.
      const share = room / (costUsd * weight);
      const cutAt = at + Math.max(1, Math.round(t.durationMs * share));
      account.use(at, room);
      m.wastedUsd += costUsd * share;
      queue.push(cutAt, {
        kind: "cut",
        session,
        turn,
        account: a,
        costUsd: costUsd * share,
        durationMs: cutAt - at,
        tries: tries + 1,
      });
      return true;
    }
    account.use(at, costUsd * weight);
    m.servedUsd += costUsd;
    const c = clientOf(session);
    c.servedRuns++;
    c.servedUsd += costUsd;
    if (m.firstLimitAt === undefined) m.servedBeforeFirstLimitUsd += costUsd;
    const end = at + t.durationMs;
    queue.push(end, {
      kind: "report",
      account,
      report: { session, account: a, turn, at: end, costUsd, durationMs: t.durationMs, readings: [] },
    });
    return true;
  };

  /**
   * attempt places one run and runs it until it ends, is cut, waits for a
   * slot, or goes to the paid API; false while it waits. `paced`: the
   * session's next run is scheduled once this one settles.
   */
  const attempt = (session: SimSession, turn: number, at: number, tries: number, paced: boolean): boolean => {
    for (; tries < accounts.length; tries++) {
      const p = strategy.place(session, at);
      if (p.kind === "wait") {
        const until = strategy.waits!.enqueue(session, at, (placement) =>
          settled.push({ session, turn, tries, waitedFrom: at, placement, paced }),
        );
        queue.push(until, { kind: "wait_ends" });
        return false;
      }
      if (p.kind === "paid") {
        paid(session, turn, p.clientLimit);
        return true;
      }
      if (runOn(session, turn, at, tries, p.account)) return true;
    }
    paid(session, turn, undefined);
    return true;
  };

  /** next schedules what follows the session's run `turn`, which started (or began to wait) at `at`. */
  const next = (session: SimSession, turn: number, at: number): void => {
    const delay = delays.get(session.id) ?? 0;
    const following = session.turns[turn + 1];
    if (following !== undefined) queue.push(following.at + delay, { kind: "run", session, turn: turn + 1 });
    else queue.push(at + session.turns[turn]!.durationMs + MINUTE_MS, { kind: "release", session });
  };

  const run = (session: SimSession, turn: number, at: number): void => {
    m.runs++;
    clientOf(session).runs++;
    if (attempt(session, turn, at, 0, true)) next(session, turn, at);
  };

  /** resume carries on with runs whose wait settled at `at`. */
  const resume = (at: number): void => {
    for (let s = settled.shift(); s !== undefined; s = settled.shift()) {
      const c = clientOf(s.session);
      c.waitsMs.push(at - s.waitedFrom);
      if (s.paced) delays.set(s.session.id, (delays.get(s.session.id) ?? 0) + (at - s.waitedFrom));
      let done = true;
      if (s.placement.kind === "paid") {
        if (s.placement.clientLimit === undefined) c.expiredRuns++;
        paid(s.session, s.turn, s.placement.clientLimit);
      } else if (s.placement.kind === "account" && !runOn(s.session, s.turn, at, s.tries, s.placement.account)) {
        done = attempt(s.session, s.turn, at, s.tries + 1, s.paced);
      }
      if (done && s.paced) next(s.session, s.turn, at);
    }
  };

  for (let e = queue.pop(); e !== undefined; e = queue.pop()) {
    const ev = e.item;
    switch (ev.kind) {
      case "run":
        run(ev.session, ev.turn, e.at);
        break;
      case "report":
        strategy.report({ ...ev.report, readings: ev.account.readings(e.at) });
        break;
      case "cut": {
        const account = accounts[ev.account]!;
        limitHit(ev.session, ev.account, e.at);
        const limit = account.limitAt(e.at) ?? { window: "five_hour", resetsAt: e.at + 60 * MINUTE_MS };
        strategy.report({
          session: ev.session,
          account: ev.account,
          turn: ev.turn,
          at: e.at,
          costUsd: ev.costUsd,
          durationMs: ev.durationMs,
          readings: account.readings(e.at),
          limit,
        });
        // Its session's next run is already scheduled.
        attempt(ev.session, ev.turn, e.at, ev.tries, false);
        break;
      }
      case "release":
        strategy.release(ev.session, e.at);
        break;
      case "external": {
        // The owner is held to the same limits: what is over the cap is refused to them.
        const account = accounts[ev.use.account]!;
        const allowed = account.limitAt(e.at) === undefined ? Math.min(ev.use.usageUsd, account.roomAt(e.at)) : 0;
        if (allowed > 0) account.use(e.at, allowed);
        m.ownersRefusedUsd += ev.use.usageUsd - allowed;
        break;
      }
      case "tick":
        strategy.tick(e.at);
        break;
      case "poll":
        strategy.observe?.(ev.account, accounts[ev.account]!.usageEndpoint(e.at), e.at);
        break;
      case "wait_ends":
        // Only the walk below: it lets the waits that ran out go.
        break;
    }
    // As the server wakes its queue after every record that may free a slot (and every second while calls wait).
    if (strategy.waits !== undefined && strategy.waits.size > 0) {
      await strategy.waits.wake(e.at);
      resume(e.at);
    }
  }
  // Every account's week reset during the simulated week; make sure each has seen its reset.
  for (const a of accounts) a.limitAt(workload.end);
  m.weeklyUtilization = accounts.map((a) => a.utilizationAtResets[0] ?? Number.NaN);
  return m;
}
