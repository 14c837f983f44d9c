import { Pool, type PoolSettings, type RateLimitReading, type TokenCounts, createPoolState } from "../../src/domain/index.js";
import type { RunReport, Strategy } from "./strategy.js";
import { MODEL_IDS, type SimSession } from "./workload.js";

/**
 * poolStrategy is the auth pool itself: every decision is the real domain's
 * `Pool.run` at simulated time. A run is an `allocate` of the session (the
 * gateway's per-run call: the first one places it, later ones resume it or
 * move it), its result a `report` with the run's cost and the readings
 * Claude's stream-json output carries (and, for a refused run, the limit
 * and its reset), and the end of a session a `release`. The sweep runs
 * every tick, as the server's scheduler would; with pollMs, each account's
 * usage endpoint is read that often (`upstream.enabled`) and `observe`d.
 */
export function poolStrategy(name: string, settings: PoolSettings, pollMs?: number): Strategy {
  const pool = new Pool(createPoolState(settings.subscriptions.map((s) => s.id)), settings);
  const index = new Map(settings.subscriptions.map((s, i) => [s.id, i]));
  let requests = 0;
  return {
    name,
    place(session: SimSession, at: number) {
      const { result } = pool.run(
        { kind: "allocate", sessionId: session.id, priority: "normal", model: MODEL_IDS[session.model], estimatedTokens: 0 },
        at,
      );
      return result.kind === "granted" ? index.get(result.view.cfg.id) : undefined;
    },
    report(r: RunReport) {
      const model = MODEL_IDS[r.session.model];
      const tokens = tokensFor(r.costUsd);
      pool.run(
        {
          kind: "report",
          sessionId: r.session.id,
          requestId: `run-${++requests}`,
          report: {
            costUsd: r.costUsd,
            tokens,
            models: r.costUsd > 0 ? { [model]: { ...tokens, costUsd: r.costUsd } } : {},
            durationMs: r.durationMs,
            claudeSessionId: r.session.id,
            readings: r.readings,
            ...(r.limit !== undefined
              ? { limit: { window: r.limit.window, resetsAt: r.limit.resetsAt, estimated: false, message: "You've hit your limit" } }
              : {}),
          },
        },
        r.at,
      );
    },
    release(session: SimSession, at: number) {
      pool.run({ kind: "release", sessionId: session.id }, at);
    },
    tick(at: number) {
      pool.run({ kind: "sweep" }, at);
    },
    ...(pollMs !== undefined
      ? {
          pollMs,
          observe(account: number, readings: RateLimitReading[], at: number) {
            pool.run({ kind: "observe", subscriptionId: settings.subscriptions[account]!.id, readings, source: "usage endpoint" }, at);
          },
        }
      : {}),
  };
}

/** tokensFor gives a run plausible token counts for its cost (the pool records them; no decision reads them). */
function tokensFor(costUsd: number): TokenCounts {
  return {
    inputTokens: Math.round(costUsd * 2_000),
    outputTokens: Math.round(costUsd * 4_000),
    cacheCreationInputTokens: Math.round(costUsd * 20_000),
    cacheReadInputTokens: Math.round(costUsd * 200_000),
  };
}
