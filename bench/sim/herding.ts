import { DAY_MS, HOUR_MS, MINUTE_MS, floorHour } from "../../src/domain/index.js";
import { formatTable } from "../table.js";
import { runSimulation } from "./run-simulation.js";
import { type ProfileName, SIM_START, poolStrategyFor, simPoolConfig } from "./scenario.js";
import { SimAccount } from "./sim-account.js";
import type { SimSession, SimTurn } from "./workload.js";

/**
 * HerdOptions shape the herding scenario: one account holding `sessions`
 * busy sessions reaches its 5-hour limit while the others have the room
 * `targetsUsed` leaves them. Every default is what docs/BENCHMARKS.md shows.
 */
export interface HerdOptions {
  profile: ProfileName;
  /** Raw config keys in place of the defaults, under the profile's. */
  config?: Record<string, unknown>;
  /** The run's name in the report (default: the profile's). */
  label?: string;
  /** Sessions on the account that reaches its limit (default 15, its maxSessions). */
  sessions?: number;
  /** Each other account's 5-hour utilization when the herd starts (default 10%, 40%, 70%, 85%). */
  targetsUsed?: readonly number[];
  /** How long the sessions keep working (default 4 hours: an hour past the limited account's reset). */
  workMs?: number;
}

/** HerdTarget is what happened on one account of the herding scenario. */
export interface HerdTarget {
  id: string;
  /** Its 5-hour utilization when the herd started. */
  usedBefore: number;
  /** Sessions whose first move off the limited account came here. */
  firstMoves: number;
  /** Moves here later (from any account, the limited one back included). */
  laterMoves: number;
  /** Sessions on it at most, at once. */
  peakSessions: number;
  /**
   * Minutes after the limited account's limit at which it was full in turn:
   * its 5-hour use at the pool's fiveHourCap or over (sampled every 5
   * minutes), or a run refused.
   */
  fullAfterMin?: number;
  /** Runs it refused (429s, at their start or midway). */
  refused: number;
}

/** HerdResult is one run of the herding scenario. */
export interface HerdResult {
  profile: ProfileName;
  label: string;
  sessions: number;
  /** Minutes after the start at which the limited account refused a run or a session left it, whichever came first. */
  limitedAtMin: number;
  /** When that account's 5-hour window reset (minutes after the start). */
  backAtMin: number;
  /** The limited account first, then each other account. */
  accounts: HerdTarget[];
  /** Sessions that came (back) to the limited account within 1, 5 and 15 minutes of its reset. */
  back: { within1Min: number; within5Min: number; within15Min: number };
  moves: number;
  refused: number;
  fallbackRuns: number;
}

/** HERD_START: a Tuesday 10:00 UTC, mid-morning of a working day. */
const HERD_START = SIM_START + DAY_MS + 10 * HOUR_MS;
/** Nominal weekly budget of every account (the real caps are the same: this scenario is about placement, not guessing). */
const WEEKLY_USD = 1_000;
/** A run takes this share of a 5-hour window: 15 sessions take about 1.2% of a window a minute. */
const RUN_SHARE = 0.002;

/**
 * runHerding puts `sessions` busy sessions on acct1 (the others paused
 * while they are placed, then resumed). The pool last read acct1 at 85% of
 * its 5-hour window ten minutes ago; it is at 99.5% now, so it refuses the
 * burst's third run (a limit, until its window resets three hours later).
 * The others' windows are at 10%, 40%, 70% and 85%, read a minute ago; all
 * weeks are half used. Each session runs a minute out of every two and a
 * half, each run taking 0.2% of a window: more than the others' room
 * before acct1 is back. The result says where acct1's sessions went,
 * whether the accounts they went to filled in turn, and how many came back
 * when acct1's window reset.
 */
export async function runHerding(options: HerdOptions): Promise<HerdResult> {
  const sessionsCount = options.sessions ?? 15;
  const targetsUsed = options.targetsUsed ?? [0.1, 0.4, 0.7, 0.85];
  const workMs = options.workMs ?? 4 * HOUR_MS;
  const n = targetsUsed.length + 1;
  const fiveHourUsd = WEEKLY_USD / 6;
  const config = simPoolConfig(n, WEEKLY_USD, options.profile, options.config);
  const strategy = poolStrategyFor(`herding, ${options.profile}`, config);
  const { pool } = strategy;
  const observe = (a: SimAccount, readAt: number, at: number) =>
    pool.run({ kind: "observe", subscriptionId: a.id, readings: a.readings(readAt), source: "stream-json" }, at);
  const accounts = Array.from(
    { length: n },
    (_, i) => new SimAccount(`acct${i + 1}`, WEEKLY_USD, fiveHourUsd, HERD_START + 3 * DAY_MS, WEEKLY_USD * 0.5),
  );
  // acct1's window opened two hours before the start; the pool's last reading of it said 85%; it went on to 99.5%.
  const herd = accounts[0]!;
  herd.use(HERD_START - 2 * HOUR_MS, 0.85 * fiveHourUsd);
  observe(herd, HERD_START - 10 * MINUTE_MS, HERD_START - 10 * MINUTE_MS);
  herd.use(HERD_START - 5 * MINUTE_MS, 0.145 * fiveHourUsd);
  targetsUsed.forEach((u, k) => {
    const a = accounts[k + 1]!;
    a.use(HERD_START - HOUR_MS, u * fiveHourUsd);
    observe(a, HERD_START - MINUTE_MS, HERD_START - MINUTE_MS);
    pool.run({ kind: "set_paused", subscriptionId: a.id, paused: true }, HERD_START - MINUTE_MS);
  });
  const used = [0.995, ...targetsUsed];
  const sessions: SimSession[] = Array.from({ length: sessionsCount }, (_, k) => {
    const turns: SimTurn[] = [];
    for (let t = HERD_START + k * 10_000; t < HERD_START + workMs; t += 150_000) {
      turns.push({ at: t, costUsd: RUN_SHARE * fiveHourUsd, durationMs: 60_000 });
    }
    return { id: `herd-${k + 1}`, user: k, model: "sonnet", turns };
  });
  for (const s of sessions) strategy.place(s, HERD_START - 30_000);
  for (const a of accounts.slice(1))
    pool.run({ kind: "set_paused", subscriptionId: a.id, paused: false }, HERD_START - 20_000);

  const targets: HerdTarget[] = accounts.map((a, i) => ({
    id: a.id,
    usedBefore: used[i]!,
    firstMoves: 0,
    laterMoves: 0,
    peakSessions: 0,
    refused: 0,
  }));
  const fullAt: (number | undefined)[] = accounts.map(() => undefined);
  const holder = new Map<string, number>(sessions.map((s) => [s.id, 0]));
  const held = targets.map((_, i) => (i === 0 ? sessionsCount : 0));
  targets[0]!.peakSessions = sessionsCount;
  const movedOff = new Set<string>();
  let limitedAt: number | undefined;
  // acct1's window opened at floorHour(start - 2 h): it resets 5 hours after that.
  const backAt = floorHour(HERD_START - 2 * HOUR_MS) + 5 * HOUR_MS;
  const back = { within1Min: 0, within5Min: 0, within15Min: 0 };
  // The sweep's tick (every 5 minutes) also samples how full each account is.
  const sampled = {
    ...strategy,
    tick(at: number) {
      accounts.forEach((a, i) => {
        const five = a.readings(at).find((r) => r.window === "five_hour")?.utilization ?? 0;
        if (at >= HERD_START && five >= config.upstream.fiveHourCap) fullAt[i] ??= at;
      });
      strategy.tick(at);
    },
  };
  const metrics = await runSimulation(
    {
      start: HERD_START - 5 * MINUTE_MS,
      end: HERD_START + workMs + HOUR_MS,
      people: sessionsCount,
      heavyUsers: 0,
      sessions,
      demandUsd: 0,
      demandUsageUsd: 0,
    },
    accounts,
    [],
    sampled,
    {
      heldOn: holder,
      observer: {
        placed(session, account, from, at) {
          if (from === account) return;
          const t = targets[account]!;
          if (from === 0) limitedAt = Math.min(limitedAt ?? at, at);
          if (from === 0 && !movedOff.has(session.id)) {
            movedOff.add(session.id);
            t.firstMoves++;
          } else t.laterMoves++;
          if (account === 0 && at >= backAt) {
            if (at < backAt + MINUTE_MS) back.within1Min++;
            if (at < backAt + 5 * MINUTE_MS) back.within5Min++;
            if (at < backAt + 15 * MINUTE_MS) back.within15Min++;
          }
          held[from ?? 0]!--;
          held[account]!++;
          t.peakSessions = Math.max(t.peakSessions, held[account]!);
        },
        limited(_session, account, at) {
          targets[account]!.refused++;
          if (account === 0) limitedAt = Math.min(limitedAt ?? at, at);
          if (fullAt[account] === undefined || at < fullAt[account]!) fullAt[account] = at;
        },
      },
    },
  );
  const start = limitedAt ?? HERD_START;
  targets.forEach((t, i) => {
    const at = fullAt[i];
    if (i > 0 && at !== undefined) t.fullAfterMin = Math.max(0, (at - start) / MINUTE_MS);
  });
  return {
    profile: options.profile,
    label: options.label ?? options.profile,
    sessions: sessionsCount,
    limitedAtMin: (start - HERD_START) / MINUTE_MS,
    backAtMin: (backAt - HERD_START) / MINUTE_MS,
    accounts: targets,
    back,
    moves: metrics.moves,
    refused: metrics.refused,
    fallbackRuns: metrics.fallbackRuns,
  };
}

/** formatHerding renders one run of the herding scenario: a line on the limited account, a row per account. */
export function formatHerding(r: HerdResult, markdown: boolean): string {
  const head =
    `${r.label}: acct1 (${r.sessions} sessions) was left or refused a run ${r.limitedAtMin.toFixed(1)} min in; ` +
    `its window reset at ${r.backAtMin.toFixed(0)} min and ${r.back.within1Min} / ${r.back.within5Min} / ${r.back.within15Min} sessions came to it within 1 / 5 / 15 min; ` +
    `${r.moves} moves, ${r.refused} 429s, ${r.fallbackRuns} runs on the paid API in all`;
  const rows = r.accounts.map((t, i) => [
    i === 0 ? `${t.id} (limited)` : t.id,
    `${Number((100 * t.usedBefore).toFixed(1))}%`,
    i === 0 ? "–" : String(t.firstMoves),
    String(t.laterMoves),
    String(t.peakSessions),
    i === 0 ? "–" : t.fullAfterMin === undefined ? "no" : `${t.fullAfterMin.toFixed(0)} min`,
    String(t.refused),
  ]);
  return `${head}\n${formatTable(
    ["account", "5-hour use at start", "first moves in", "later moves in", "peak sessions", "then full after", "429s"],
    rows,
    markdown,
  )}`;
}
