import { DAY_MS, HOUR_MS } from "../../src/domain/index.js";
import type { Rng } from "./prng.js";
import { type SimSession, type Workload, drawSession, workloadOf } from "./workload.js";

/** BOT and BATCH name the two clients that are not people. */
export const BOT = "ci-bot";
export const BATCH = "daily-batch";

/** personClient names a person's client. */
export function personClient(user: number): string {
  return `person-${user + 1}`;
}

/**
 * withClients books the team's work to clients, one per person, and adds a
 * heavy bot and a low-priority batch job:
 *
 * - **ci-bot** runs pipelines around the clock, every day: 0.6 an hour per
 *   account from 8 to 19 UTC and 0.15 outside, each fanning out into 1 to 4
 *   short Sonnet sessions (a tenth Opus, a tenth long);
 * - **daily-batch** starts one long Sonnet session per account at 11:00
 *   UTC every day, at low priority: it competes with the people for the
 *   working day's windows.
 *
 * The people's sessions are unchanged, so their part of the trace is the
 * same as without clients.
 */
export function withClients(workload: Workload, rng: Rng, accounts: number): Workload {
  const sessions: SimSession[] = workload.sessions.map((s) => ({ ...s, client: personClient(s.user) }));
  const bot = rng.fork(1);
  const botUser = workload.people;
  for (let t = workload.start; ; ) {
    const hour = ((t - workload.start) / HOUR_MS) % 24;
    const perHour = (hour >= 8 && hour < 19 ? 0.6 : 0.15) * accounts;
    t += bot.exponential(HOUR_MS / perHour);
    if (t >= workload.end) break;
    const fanOut = bot.int(1, 4);
    for (let k = 0; k < fanOut; k++) {
      const s = drawSession(
        bot,
        `bot-${sessions.length}`,
        botUser,
        { opus: 0.1, long: 0.1 },
        t + k * 2_000,
        workload.end,
      );
      sessions.push({ ...s, client: BOT });
    }
  }
  const batch = rng.fork(2);
  for (let day = 0; day < 7; day++) {
    const at = workload.start + day * DAY_MS + 11 * HOUR_MS;
    for (let k = 0; k < accounts; k++) {
      const s = drawSession(
        batch,
        `batch-d${day}-${k}`,
        botUser + 1,
        { opus: 0, long: 1 },
        at + k * 10_000,
        at + 6 * HOUR_MS,
      );
      sessions.push({ ...s, client: BATCH, priority: "low" });
    }
  }
  return workloadOf(sessions, workload.start, workload.people, workload.heavyUsers);
}

/**
 * clientLimits is the pool's `clients` config for that workload, as an
 * operator would set it: the bot may hold at most 30% of the session slots
 * and spend three quarters of what it asks for in the week (so its budget
 * binds on the last days); the batch job never runs above low priority,
 * may hold a quarter of the slots and weighs half as much in the wait
 * queue. People have no limits (weight 1).
 */
export function clientLimits(workload: Workload): Record<string, Record<string, unknown>> {
  const botUsd = workload.sessions
    .filter((s) => s.client === BOT)
    .reduce((sum, s) => sum + s.turns.reduce((t, r) => t + r.costUsd, 0), 0);
  return {
    [BOT]: { share: 0.3, weeklyUsd: Math.round(botUsd * 0.75) },
    [BATCH]: { maxPriority: "low", share: 0.25, weight: 0.5 },
  };
}
