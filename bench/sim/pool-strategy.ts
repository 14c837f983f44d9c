import {
  type AllocateResult,
  DEFAULT_CLIENT,
  Pool,
  type PoolSettings,
  type RateLimitReading,
  type Rejection,
  type TokenCounts,
  cappedPriority,
  createPoolState,
  fairShareUse,
  modelFamily,
} from "../../src/domain/index.js";
import { WaitQueue } from "../../src/runtime/wait-queue.js";
import type { Placement, RunReport, SimWaits, Strategy } from "./strategy.js";
import { MODEL_IDS, type SimSession } from "./workload.js";

/** PoolStrategyOptions: what the gateway in front of the pool does besides allocating. */
export interface PoolStrategyOptions {
  /** Read each account's usage endpoint this often (`upstream.enabled`); absent: never. */
  pollMs?: number;
  /** Allocate with `wait: true` and hold runs nothing can take in a wait queue of these bounds (the config's `queue`). */
  queue?: QueueBounds;
}

/** QueueBounds: how many runs may wait, in all and per client, and how long each may wait. */
export interface QueueBounds {
  maxWaiting: number;
  maxWaitingPerClient: number;
  maxWaitSeconds: number;
}

/** PoolStrategy is the pool as a strategy, with the pool itself for scenarios that command it directly. */
export interface PoolStrategy extends Strategy {
  readonly pool: Pool;
}

/**
 * poolStrategy is the auth pool itself: every decision is the real domain's
 * `Pool.run` at simulated time. A run is an `allocate` of the session (the
 * gateway's per-run call: the first one places it, later ones resume it or
 * move it), its result a `report` with the run's cost and the readings
 * Claude's stream-json output carries (and, for a refused run, the limit
 * and its reset), and the end of a session a `release`. The sweep runs
 * every tick, as the server's scheduler would; with pollMs, each account's
 * usage endpoint is read that often (`upstream.enabled`) and `observe`d.
 * With a queue, a run nothing can take waits in the server's own
 * WaitQueue (on the simulated clock, ordered by priority, then
 * (held + granted) / weight, then arrival) for at most maxWaitSeconds,
 * then goes to the paid API, as a gateway would when Allocate answers
 * RESOURCE_EXHAUSTED after its wait (or at once when the queue is full).
 */
export function poolStrategy(name: string, settings: PoolSettings, options: PoolStrategyOptions = {}): PoolStrategy {
  const pool = new Pool(createPoolState(settings.subscriptions.map((s) => s.id)), settings);
  const index = new Map(settings.subscriptions.map((s, i) => [s.id, i]));
  const wait = options.queue !== undefined;
  let requests = 0;
  const allocate = (session: SimSession, at: number): AllocateResult | Rejection =>
    pool.run(
      {
        kind: "allocate",
        sessionId: session.id,
        priority: session.priority ?? "normal",
        model: MODEL_IDS[session.model],
        estimatedTokens: 0,
        ...(session.client !== undefined ? { client: session.client } : {}),
        ...(wait ? { wait: true } : {}),
      },
      at,
    ).result;
  const maxWaitMs = (options.queue?.maxWaitSeconds ?? 0) * 1000;
  // As the server (AllocationWaits): a wait nothing can end before it runs out is answered at once.
  const placement = (result: AllocateResult | Rejection, waitUntil: number): Placement => {
    if (result.kind === "granted") return { kind: "account", account: index.get(result.view.cfg.id)! };
    if (result.kind === "unavailable") return result.opensAt > waitUntil ? { kind: "paid" } : { kind: "wait" };
    return result.clientLimit !== undefined ? { kind: "paid", clientLimit: result.clientLimit.kind } : { kind: "paid" };
  };
  return {
    name,
    pool,
    place: (session, at) => placement(allocate(session, at), at + maxWaitMs),
    ...(options.queue !== undefined
      ? {
          waits: poolWaits(pool, options.queue, (session, at, waitUntil) =>
            placement(allocate(session, at), waitUntil),
          ),
        }
      : {}),
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
              ? {
                  limit: {
                    window: r.limit.window,
                    resetsAt: r.limit.resetsAt,
                    estimated: false,
                    message: "You've hit your limit",
                  },
                }
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
    ...(options.pollMs !== undefined
      ? {
          pollMs: options.pollMs,
          observe(account: number, readings: RateLimitReading[], at: number) {
            pool.run(
              {
                kind: "observe",
                subscriptionId: settings.subscriptions[account]!.id,
                readings,
                source: "usage endpoint",
              },
              at,
            );
          },
        }
      : {}),
  };
}

/**
 * poolWaits wraps the server's WaitQueue (src/runtime/wait-queue.ts) for the
 * simulator: the queue's clock is the simulated one, a waiter's attempt is
 * the same `allocate` with `wait: true`, and its share is the server's own
 * fairShareUse. A grant or a fallback (a limit of its client reached while
 * it waited) settles the run when the queue finds it; a wait that runs out,
 * or a full queue, settles it on the paid API.
 */
function poolWaits(
  pool: Pool,
  bounds: QueueBounds,
  attempt: (session: SimSession, at: number, waitUntil: number) => Placement,
): SimWaits {
  let now = 0;
  const queue = new WaitQueue({
    clock: { now: () => now },
    maxTotal: () => bounds.maxWaiting,
    maxPerClient: () => bounds.maxWaitingPerClient,
    shareOf: (client, granted) => fairShareUse(pool.state, pool.settings, client, granted),
  });
  return {
    get size() {
      return queue.size;
    },
    enqueue(session, at, settled) {
      const waitUntil = at + bounds.maxWaitSeconds * 1000;
      const client = session.client ?? DEFAULT_CLIENT;
      // As the server's queue: the client's priority ceiling holds here too.
      const priority = cappedPriority(pool.settings, client, session.priority ?? "normal");
      queue
        .enqueue<Placement>({
          client,
          priority: priority === "high" ? 2 : priority === "low" ? 0 : 1,
          kind: modelFamily(MODEL_IDS[session.model]) ?? "",
          // Nobody leaves a simulated wait early: a signal that never aborts.
          signal: new AbortController().signal,
          waitUntil,
          attempt: async () => {
            const p = attempt(session, now, waitUntil);
            if (p.kind === "wait") return undefined;
            // Settled here, not when the promise resolves: the runner carries on as soon as the walk ends.
            settled(p);
            return p;
          },
        })
        .catch(() => settled({ kind: "paid" }));
      return waitUntil;
    },
    async wake(at) {
      now = at;
      await queue.wake();
    },
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
