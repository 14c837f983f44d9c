import { MINUTE_MS } from "../../src/domain/index.js";
import { EventQueue } from "./event-queue.js";
import type { SimAccount } from "./sim-account.js";
import type { RunReport, Strategy } from "./strategy.js";
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
}

type SimEvent =
  | { kind: "run"; session: SimSession; turn: number }
  | { kind: "report"; report: RunReport; account: SimAccount }
  | { kind: "cut"; session: SimSession; turn: number; account: number; costUsd: number; durationMs: number; tries: number }
  | { kind: "release"; session: SimSession }
  | { kind: "external"; use: ExternalUse }
  | { kind: "tick" }
  | { kind: "poll"; account: number };

/**
 * runSimulation replays a workload against the accounts with one strategy,
 * in simulated time. Runs start at the trace's times whatever happened
 * before (people keep working); a run refused at its start is retried at
 * once on the account the strategy picks next, one cut midway is redone
 * from the start when it is cut, up to one try per account, then it goes
 * to the paid API. Readings reach the strategy when a run ends, so a burst
 * of placements acts on what was known before it.
 */
export function runSimulation(
  workload: Workload,
  accounts: SimAccount[],
  external: readonly ExternalUse[],
  strategy: Strategy,
): SimMetrics {
  const queue = new EventQueue<SimEvent>();
  for (const session of workload.sessions) queue.push(session.turns[0]!.at, { kind: "run", session, turn: 0 });
  for (const use of external) queue.push(use.at, { kind: "external", use });
  for (let t = workload.start; t < workload.end; t += TICK_MS) queue.push(t, { kind: "tick" });
  if (strategy.pollMs !== undefined) {
    // Each account on its own phase, as a poller started per subscription would be.
    accounts.forEach((_, account) => {
      const phase = Math.round((strategy.pollMs! * account) / accounts.length);
      for (let t = workload.start + phase; t < workload.end; t += strategy.pollMs!) queue.push(t, { kind: "poll", account });
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
  };
  const lastAccount = new Map<string, number>();

  const limitHit = (at: number): void => {
    m.refused++;
    m.firstLimitAt ??= at;
  };

  /** attempt places one run (or what is left of it to redo) and runs it until it ends, is cut, or goes to the paid API. */
  const attempt = (session: SimSession, turn: number, at: number, tries: number): void => {
    const t = session.turns[turn]!;
    for (; tries < accounts.length; tries++) {
      const a = strategy.place(session, at);
      if (a === undefined) break;
      const previous = lastAccount.get(session.id);
      const moved = previous !== undefined && previous !== a;
      if (moved) m.moves++;
      lastAccount.set(session.id, a);
      const account = accounts[a]!;
      const limit = account.limitAt(at);
      if (limit !== undefined) {
        limitHit(at);
        strategy.report({ session, account: a, turn, at, costUsd: 0, durationMs: 0, readings: account.readings(at), limit });
        continue;
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
        queue.push(cutAt, { kind: "cut", session, turn, account: a, costUsd: costUsd * share, durationMs: cutAt - at, tries: tries + 1 });
        return;
      }
      account.use(at, costUsd * weight);
      m.servedUsd += costUsd;
      if (m.firstLimitAt === undefined) m.servedBeforeFirstLimitUsd += costUsd;
      const end = at + t.durationMs;
      queue.push(end, { kind: "report", account, report: { session, account: a, turn, at: end, costUsd, durationMs: t.durationMs, readings: [] } });
      return;
    }
    m.fallbackRuns++;
    m.fallbackUsd += t.costUsd;
  };

  const run = (session: SimSession, turn: number, at: number): void => {
    m.runs++;
    attempt(session, turn, at, 0);
    const next = session.turns[turn + 1];
    const t = session.turns[turn]!;
    if (next !== undefined) queue.push(next.at, { kind: "run", session, turn: turn + 1 });
    else queue.push(at + t.durationMs + MINUTE_MS, { kind: "release", session });
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
        limitHit(e.at);
        const limit = account.limitAt(e.at) ?? { window: "five_hour", resetsAt: e.at + 60 * MINUTE_MS };
        strategy.report({ session: ev.session, account: ev.account, turn: ev.turn, at: e.at, costUsd: ev.costUsd, durationMs: ev.durationMs, readings: account.readings(e.at), limit });
        attempt(ev.session, ev.turn, e.at, ev.tries);
        break;
      }
      case "release":
        strategy.release(ev.session, e.at);
        break;
      case "external": {
        // The owner is held to the same limits: what is over the cap is refused to them.
        const account = accounts[ev.use.account]!;
        if (account.limitAt(e.at) === undefined) account.use(e.at, Math.min(ev.use.usageUsd, account.roomAt(e.at)));
        break;
      }
      case "tick":
        strategy.tick(e.at);
        break;
      case "poll":
        strategy.observe?.(ev.account, accounts[ev.account]!.usageEndpoint(e.at), e.at);
        break;
    }
  }
  // Every account's week reset during the simulated week; make sure each has seen its reset.
  for (const a of accounts) a.limitAt(workload.end);
  m.weeklyUtilization = accounts.map((a) => a.utilizationAtResets[0] ?? Number.NaN);
  return m;
}
