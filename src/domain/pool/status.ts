import type { Command, StatusResult } from "../commands.js";
import type { PoolContext } from "./pool-context.js";

/**
 * status reads the pool at now: every subscription's view, the session
 * count (and with includeSessions, copies of the sessions) and the prices
 * learned. It decides nothing.
 */
export function status(
  pool: Pick<PoolContext, "state" | "views">,
  cmd: Extract<Command, { kind: "status" }>,
  now: number,
): StatusResult {
  return {
    kind: "status",
    now,
    views: pool.views(now),
    totalSessions: pool.state.sessions.size,
    sessions: cmd.includeSessions
      ? [...pool.state.sessions.values()].map((s) => ({ ...s, tokens: { ...s.tokens } }))
      : [],
    prices: [...pool.state.prices].map(([model, price]) => ({ model, ...price })),
  };
}
