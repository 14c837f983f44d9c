import { DAY_MS, HOUR_MS, MINUTE_MS, type Priority } from "../../src/domain/index.js";
import type { Rng } from "./prng.js";

/** SimModel is the model family a session runs; Opus uses a window faster per dollar. */
export type SimModel = "opus" | "sonnet";

/** MODEL_IDS: what a session reports as its model (the pool sees real model ids). */
export const MODEL_IDS: Record<SimModel, string> = {
  opus: "claude-opus-4-5-20251101",
  sonnet: "claude-sonnet-4-5-20250929",
};

/** SimTurn is one `claude -p` run of a session. */
export interface SimTurn {
  at: number;
  /** API-price cost of the run (what `total_cost_usd` reports). */
  costUsd: number;
  durationMs: number;
}

/** SimSession is one conversation: its turns run one after another on one account at a time. */
export interface SimSession {
  id: string;
  user: number;
  model: SimModel;
  turns: SimTurn[];
  /** Who it is for, as the gateway names it in Allocate (absent: the default client). */
  client?: string;
  /** Its Allocate priority (absent: normal). */
  priority?: Priority;
}

/** ExternalUse is use of an account outside the pool (its owner on claude.ai, say). */
export interface ExternalUse {
  account: number;
  at: number;
  /** In the account's utilization dollars (already weighted by model). */
  usageUsd: number;
}

/** Workload is a week of a team's work, the same for every strategy. */
export interface Workload {
  start: number;
  end: number;
  people: number;
  heavyUsers: number;
  sessions: SimSession[];
  /** Sum of the turns' costs at API prices. */
  demandUsd: number;
  /** Sum of the turns' costs weighted by model (what they take of the accounts' capacity). */
  demandUsageUsd: number;
}

/** USAGE_WEIGHT: how much of an account's capacity one dollar of each model takes. */
export const USAGE_WEIGHT: Record<SimModel, number> = { opus: 1.5, sonnet: 1 };

/**
 * generateWorkload draws a working week (Monday 00:00 UTC `start`, seven
 * days): each person works roughly 9 to 18 on weekdays (start and end vary
 * per day, a quiet lunch hour), a few heavy users put in a few hours on the
 * weekend; sessions arrive as a Poisson stream whose rate varies per person
 * and day, and 15% of arrivals fan out into 2-5 sessions at once (agents in
 * parallel). Heavy users (30%) start sessions more often and use Opus more;
 * a session is short (2-8 runs) or long (15-60 runs), and its runs grow in
 * cost as its context grows.
 */
export function generateWorkload(rng: Rng, people: number, start: number): Workload {
  const sessions: SimSession[] = [];
  let heavyUsers = 0;
  for (let user = 0; user < people; user++) {
    const r = rng.fork(user);
    const heavy = r.chance(0.3);
    if (heavy) heavyUsers++;
    for (let day = 0; day < 7; day++) {
      const dayStart = start + day * DAY_MS;
      let from: number;
      let until: number;
      if (day < 5) {
        from = dayStart + clamp(r.normal(9, 0.75), 7, 11) * HOUR_MS;
        until = dayStart + clamp(r.normal(17.5, 1), 15, 21) * HOUR_MS;
      } else if (heavy && r.chance(0.25)) {
        from = dayStart + r.uniform(10, 14) * HOUR_MS;
        until = from + r.uniform(2, 4) * HOUR_MS;
      } else {
        continue;
      }
      const perHour = (heavy ? 1.1 : 0.45) * r.logNormal(1, 0.4);
      let t = from;
      for (;;) {
        t += r.exponential(HOUR_MS / perHour);
        if (t >= until) break;
        const hour = ((t - dayStart) / HOUR_MS) % 24;
        if (hour >= 12 && hour < 13 && !r.chance(0.4)) continue; // lunch
        const fanOut = r.chance(0.15) ? r.int(2, 5) : 1;
        for (let k = 0; k < fanOut; k++) {
          sessions.push(session(r, `u${user}-d${day}-${sessions.length}`, user, heavy, t + k * 5_000, until + HOUR_MS));
        }
      }
    }
  }
  return workloadOf(sessions, start, people, heavyUsers);
}

/** workloadOf makes a week of sessions a Workload: in order of their first run, with their demand added up. */
export function workloadOf(sessions: SimSession[], start: number, people: number, heavyUsers: number): Workload {
  sessions.sort((a, b) => a.turns[0]!.at - b.turns[0]!.at || (a.id < b.id ? -1 : 1));
  let demandUsd = 0;
  let demandUsageUsd = 0;
  for (const s of sessions) {
    for (const t of s.turns) {
      demandUsd += t.costUsd;
      demandUsageUsd += t.costUsd * USAGE_WEIGHT[s.model];
    }
  }
  return { start, end: start + 7 * DAY_MS, people, heavyUsers, sessions, demandUsd, demandUsageUsd };
}

/** SessionShape: how often a session runs Opus, how often it is long (15-60 runs, else 2-8). */
export interface SessionShape {
  opus: number;
  long: number;
}

function session(r: Rng, id: string, user: number, heavy: boolean, at: number, stopBy: number): SimSession {
  return drawSession(r, id, user, heavy ? { opus: 0.45, long: 0.35 } : { opus: 0.2, long: 0.2 }, at, stopBy);
}

/** drawSession draws one session starting at `at`: its model, its runs and their costs, none starting after stopBy. */
export function drawSession(
  r: Rng,
  id: string,
  user: number,
  shape: SessionShape,
  at: number,
  stopBy: number,
): SimSession {
  const model: SimModel = r.chance(shape.opus) ? "opus" : "sonnet";
  const long = r.chance(shape.long);
  const count = long ? r.int(15, 60) : r.int(2, 8);
  const median = model === "opus" ? 0.4 : 0.12;
  const turns: SimTurn[] = [];
  let t = at;
  for (let k = 0; k < count && t < stopBy; k++) {
    const durationMs = clamp(r.logNormal(60_000, 0.7), 10_000, 10 * MINUTE_MS);
    const growth = 1 + Math.min(1, k / 30);
    turns.push({
      at: Math.round(t),
      costUsd: round4(r.logNormal(median, 0.8) * growth),
      durationMs: Math.round(durationMs),
    });
    t += durationMs + Math.max(15_000, r.exponential(150_000));
  }
  return { id, user, model, turns };
}

/**
 * generateExternalUse draws use outside the pool on some accounts: their
 * owners work on them on weekday evenings, about `dailyShare` of the
 * account's weekly capacity each evening, in a dozen runs.
 */
export function generateExternalUse(
  rng: Rng,
  accounts: readonly { weeklyCapUsd: number; external: boolean }[],
  start: number,
  dailyShare: number,
): ExternalUse[] {
  const uses: ExternalUse[] = [];
  accounts.forEach((a, account) => {
    if (!a.external) return;
    const r = rng.fork(1000 + account);
    for (let day = 0; day < 5; day++) {
      const evening = start + day * DAY_MS + 19 * HOUR_MS;
      const total = a.weeklyCapUsd * dailyShare * r.logNormal(1, 0.3);
      const runs = r.int(8, 16);
      for (let k = 0; k < runs; k++) {
        uses.push({ account, at: Math.round(evening + r.uniform(0, 3) * HOUR_MS), usageUsd: round4(total / runs) });
      }
    }
  });
  return uses.sort((a, b) => a.at - b.at || a.account - b.account);
}

function clamp(x: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, x));
}

function round4(x: number): number {
  return Math.round(x * 10_000) / 10_000;
}
