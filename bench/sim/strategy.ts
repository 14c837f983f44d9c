import type { RateLimitReading } from "../../src/domain/index.js";
import type { SimLimit } from "./sim-account.js";
import type { SimSession } from "./workload.js";

/** RunReport is what a gateway learns from one run: its cost, Claude's readings, and a limit if it was refused. */
export interface RunReport {
  session: SimSession;
  account: number;
  /** Index of the run in the session. */
  turn: number;
  /** When the run ended (or was refused). */
  at: number;
  /** API-price cost; 0 for a refused run. */
  costUsd: number;
  durationMs: number;
  readings: RateLimitReading[];
  limit?: SimLimit;
}

/**
 * Placement is where a run goes: an account, the paid API (`clientLimit`
 * names the limit of the session's client that sent it there, if one did),
 * or, for a strategy with a wait queue, a wait for a slot.
 */
export type Placement =
  | { kind: "account"; account: number }
  | { kind: "paid"; clientLimit?: string }
  | { kind: "wait" };

/** placementOf is an account, or the paid API when there is none. */
export function placementOf(account: number | undefined): Placement {
  return account === undefined ? { kind: "paid" } : { kind: "account", account };
}

/**
 * SimWaits holds the runs a strategy answered `wait`, as the server's wait
 * queue holds Allocate calls: each is placed when a slot opens, or falls
 * back when its wait runs out.
 */
export interface SimWaits {
  readonly size: number;
  /**
   * enqueue queues the session's run at `at` and returns when its wait
   * runs out; `settled` is called once, with an account or the paid API.
   */
  enqueue(session: SimSession, at: number, settled: (placement: Placement) => void): number;
  /** wake tries the waiting runs at `at`, in the queue's order; resolves once the queue was walked. */
  wake(at: number): Promise<void>;
}

/**
 * Strategy places each run of a session on an account (or on the paid API)
 * and hears back how it went. Every strategy sees the same trace; none sees
 * the accounts' capacities.
 */
export interface Strategy {
  readonly name: string;
  /** place picks where the session's next run at `at` goes. */
  place(session: SimSession, at: number): Placement;
  /** waits: the strategy's wait queue (only a strategy with one answers `wait`). */
  readonly waits?: SimWaits;
  report(report: RunReport): void;
  /** release: the session ended. */
  release(session: SimSession, at: number): void;
  /** tick lets time-driven housekeeping run (the pool's sweep). */
  tick(at: number): void;
  /** pollMs: how often the strategy reads each account's usage from Claude's usage endpoint (absent: never). */
  readonly pollMs?: number;
  /** observe hands it one such reading. */
  observe?(account: number, readings: RateLimitReading[], at: number): void;
}

/**
 * LimitBook is what a plain gateway knows without a pool: which account it
 * sent each session to, and which accounts answered 429 until when (Claude's
 * message names the reset time).
 */
export class LimitBook {
  readonly holder = new Map<string, number>();
  readonly sessions: number[];
  private readonly limitedUntil: number[];

  constructor(accounts: number) {
    this.sessions = Array.from({ length: accounts }, () => 0);
    this.limitedUntil = Array.from({ length: accounts }, () => -Infinity);
  }

  usable(account: number, at: number): boolean {
    return this.limitedUntil[account]! <= at;
  }

  /** current returns the session's account if it may still run there. */
  current(session: SimSession, at: number): number | undefined {
    const a = this.holder.get(session.id);
    return a !== undefined && this.usable(a, at) ? a : undefined;
  }

  assign(session: SimSession, account: number | undefined): number | undefined {
    const previous = this.holder.get(session.id);
    if (previous !== undefined) this.sessions[previous]!--;
    if (account === undefined) this.holder.delete(session.id);
    else {
      this.holder.set(session.id, account);
      this.sessions[account]!++;
    }
    return account;
  }

  report(r: RunReport): void {
    if (r.limit !== undefined) this.limitedUntil[r.account] = Math.max(this.limitedUntil[r.account]!, r.limit.resetsAt);
  }

  release(session: SimSession): void {
    this.assign(session, undefined);
  }
}

/** simpleStrategy builds a strategy that keeps a session on its account until a 429 and picks new accounts with pick. */
function simpleStrategy(
  name: string,
  accounts: number,
  pick: (book: LimitBook, at: number) => number | undefined,
): Strategy {
  const book = new LimitBook(accounts);
  return {
    name,
    place(session, at) {
      return placementOf(book.current(session, at) ?? book.assign(session, pick(book, at)));
    },
    report: (r) => book.report(r),
    release: (s) => book.release(s),
    tick: () => {},
  };
}

/** roundRobin hands new sessions (and ones whose account answered 429) to the accounts in turn. */
export function roundRobin(accounts: number): Strategy {
  let next = 0;
  return simpleStrategy("round-robin", accounts, (book, at) => {
    for (let k = 0; k < accounts; k++) {
      const a = (next + k) % accounts;
      if (book.usable(a, at)) {
        next = (a + 1) % accounts;
        return a;
      }
    }
    return undefined;
  });
}

/** leastSessions hands them to the account holding the fewest sessions. */
export function leastSessions(accounts: number): Strategy {
  return simpleStrategy("least-sessions", accounts, (book, at) => {
    let best: number | undefined;
    for (let a = 0; a < accounts; a++) {
      if (book.usable(a, at) && (best === undefined || book.sessions[a]! < book.sessions[best]!)) best = a;
    }
    return best;
  });
}

/** fillFirst hands them to the first account in order that has not answered 429. */
export function fillFirst(accounts: number): Strategy {
  return simpleStrategy("fill-first", accounts, (book, at) => {
    for (let a = 0; a < accounts; a++) if (book.usable(a, at)) return a;
    return undefined;
  });
}

/** stickyUntilLimit uses one account for everything until it answers 429, then the next one. */
export function stickyUntilLimit(accounts: number): Strategy {
  let current = 0;
  return simpleStrategy("sticky-until-limit", accounts, (book, at) => {
    for (let k = 0; k < accounts; k++) {
      const a = (current + k) % accounts;
      if (book.usable(a, at)) {
        current = a;
        return a;
      }
    }
    return undefined;
  });
}
