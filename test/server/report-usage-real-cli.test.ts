/**
 * Every capture of the real Claude Code CLI (2.1.328) fed through a real
 * server's ReportUsage, as a gateway would send it, and the booking each one
 * must give: cost counted exactly once, tokens from the result line, the
 * limit's window and reset (computed from the capture's own time), a
 * throttle as a short pause and never a cooldown, a 529 as nothing at all,
 * partial and text output answered with what they proved.
 *
 * The captures (test/fixtures/claude-cli-real/, copied from the
 * team's claude-cli-real capture set) were made on 2026-12-02 around
 * 11:20 UTC with TZ=Europe/Berlin; index.json gives each run's request
 * times, and the clock is set to one second after its last request.
 */
import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  LimitWindow,
  RateLimitStatus,
  ReportFormat,
  SubscriptionState,
  type SubscriptionStatus,
  TransientKind,
} from "../../src/client/index.js";
import { type TestPool, startTestPool } from "../support/test-server.js";
import { ManualClock } from "../support/manual-clock.js";

const DIR = new URL("../fixtures/claude-cli-real/", import.meta.url);

interface Run {
  name: string;
  scenario: string;
  auth: "apikey" | "oauth" | "credfile";
  format: "json" | "json-verbose" | "stream-json" | "text";
  rc: number;
  model: string;
  lastRequestAt: string;
}

const index = JSON.parse(readFileSync(new URL("index.json", DIR), "utf8")) as { runs: Run[] };
// In capture order, so the clock only moves forward through one pool.
const RUNS = [...index.runs].sort((a, b) => Date.parse(a.lastRequestAt) - Date.parse(b.lastRequestAt));
const stdout = (run: Run) => readFileSync(new URL(`${run.name}.stdout`, DIR), "utf8");
const rc = (run: Run) => Number(readFileSync(new URL(`${run.name}.rc`, DIR), "utf8").trim());
const at = (iso: string) => Date.parse(iso);
const THROTTLE_MS = 60_000; // cooldown.throttleSeconds default: the CLI prints no retry-after

/** Tokens [input, output, cache creation, cache read] as the result line gives them. */
type Tokens = [number, number, number, number];
const ONE_REQUEST: Tokens = [3, 12, 1234, 15000];

interface Booking {
  format: ReportFormat;
  partial: boolean;
  /** undefined: the output carried no cost (nothing counted, cost_unknown). */
  cost?: number;
  tokens?: Tokens;
  model?: string;
  /** Also the whole-subscription cooldown, unless modelScope. */
  limit?: { window: LimitWindow; resetsAt: number; modelScope?: string };
  transient?: TransientKind;
  /** Upstream readings the subscription must show afterwards: window → [status, utilization]. */
  readings?: Partial<Record<LimitWindow, [RateLimitStatus, number]>>;
  status: SubscriptionState;
}

const FORMATS: Record<Run["format"], ReportFormat> = {
  json: ReportFormat.JSON,
  "json-verbose": ReportFormat.JSON_VERBOSE,
  "stream-json": ReportFormat.STREAM_JSON,
  text: ReportFormat.TEXT,
};

/** The subscriber runs' rate_limit_event readings, as the fake's headers set them. */
const READINGS: Record<string, Booking["readings"]> = {
  ok: {
    [LimitWindow.FIVE_HOUR]: [RateLimitStatus.ALLOWED, 0.12],
    [LimitWindow.SEVEN_DAY]: [RateLimitStatus.ALLOWED, 0.31],
  },
  warn7d: {
    [LimitWindow.FIVE_HOUR]: [RateLimitStatus.ALLOWED, 0.4],
    [LimitWindow.SEVEN_DAY]: [RateLimitStatus.ALLOWED_WARNING, 0.85],
  },
  limit5h: {
    [LimitWindow.FIVE_HOUR]: [RateLimitStatus.REJECTED, 1],
    [LimitWindow.SEVEN_DAY]: [RateLimitStatus.ALLOWED, 0.59],
  },
  limit7d: {
    [LimitWindow.FIVE_HOUR]: [RateLimitStatus.ALLOWED, 0.2],
    [LimitWindow.SEVEN_DAY]: [RateLimitStatus.REJECTED, 1],
  },
  limitopus: {
    [LimitWindow.FIVE_HOUR]: [RateLimitStatus.ALLOWED, 0.3],
    [LimitWindow.SEVEN_DAY]: [RateLimitStatus.ALLOWED, 0.7],
    [LimitWindow.SEVEN_DAY_OPUS]: [RateLimitStatus.REJECTED, 1],
  },
};

/**
 * expected is the booking each capture must give, by scenario, auth and
 * format; the README of the captures says what each scenario's fake
 * answered and what the CLI printed.
 */
function expected(run: Run): Booking {
  const subscriber = run.auth !== "apikey";
  const format = FORMATS[run.format];
  const events = subscriber && (run.format === "stream-json" || run.format === "json-verbose");
  // The capture's variant: its name without auth and format ("throttle-retries2", "endpoints-quiet").
  const variant = run.name.slice(0, -`-${run.auth}-${run.format}`.length);
  const readingsOf = (scenario: string) => (events ? READINGS[scenario] : undefined);
  // `text` prints only the result text: no cost, ever. Limit and error results cost 0 and used no tokens.
  const cost = (usd: number) =>
    run.format === "text" ? {} : { cost: usd, tokens: usd > 0 ? ONE_REQUEST : ([0, 0, 0, 0] as Tokens) };

  if (run.rc === 124) {
    // The CLI was still retrying at the 60 s timeout: json and text printed nothing, stream-json its messages so far.
    if (run.format !== "stream-json")
      return { format: ReportFormat.EMPTY, partial: false, status: SubscriptionState.LIMITED };
    return {
      format,
      partial: true,
      transient: run.scenario === "throttle" ? TransientKind.THROTTLE : TransientKind.OVERLOADED,
      status: SubscriptionState.LIMITED,
    };
  }
  switch (variant) {
    case "ok":
    case "endpoints-default":
    case "endpoints-quiet":
    case "limitopus-sonnet":
      return {
        format,
        partial: false,
        ...cost(0.004711),
        model: "claude-sonnet-5-5",
        readings: readingsOf("ok"),
        status: SubscriptionState.LIMITED,
      };
    case "ok-defaultmodel":
      // Without --model: opus for an API key and for a Max credentials file, sonnet for an env token.
      return run.auth === "oauth"
        ? { format, partial: false, ...cost(0.004711), model: "claude-sonnet-5-5", status: SubscriptionState.LIMITED }
        : { format, partial: false, ...cost(0.009422), model: "claude-opus-5-5", status: SubscriptionState.LIMITED };
    case "warn7d":
      return {
        format,
        partial: false,
        ...cost(0.004711),
        model: "claude-sonnet-5-5",
        readings: readingsOf("warn7d"),
        status: SubscriptionState.LIMITED,
      };
    case "tooluse":
      // Two requests, one result: the cost of both, counted once.
      return {
        format,
        partial: false,
        cost: 0.009422,
        tokens: [6, 24, 2468, 30000],
        model: "claude-sonnet-5-5",
        status: SubscriptionState.LIMITED,
      };
    case "tooluse-maxturns1":
      // error_max_turns: an error result that still counts the one request it made.
      return {
        format,
        partial: false,
        cost: 0.004711,
        tokens: ONE_REQUEST,
        model: "claude-sonnet-5-5",
        readings: readingsOf("ok"),
        status: SubscriptionState.LIMITED,
      };
    case "limit5h":
    case "limit7d":
    case "limitopus": {
      if (!subscriber) {
        // An API key's 429 reads "Request rejected (429) · … your account's rate limit": request-scoped.
        return {
          format,
          partial: false,
          ...cost(0),
          transient: TransientKind.THROTTLE,
          status: SubscriptionState.LIMITED,
        };
      }
      const limit =
        variant === "limit5h"
          ? { window: LimitWindow.FIVE_HOUR, resetsAt: at("2026-12-02T13:30:00Z") } // "resets 2:30pm (Europe/Berlin)"
          : variant === "limit7d"
            ? { window: LimitWindow.SEVEN_DAY, resetsAt: at("2026-12-05T12:00:00Z") } // "resets Dec 5, 1pm (Europe/Berlin)"
            : { window: LimitWindow.SEVEN_DAY_OPUS, resetsAt: at("2026-12-04T12:00:00Z"), modelScope: "opus" }; // "Dec 4, 1pm"
      return {
        format,
        partial: false,
        ...cost(0),
        limit,
        readings: readingsOf(variant),
        // The Opus limit benches Opus only: the subscription stays in service.
        status: limit.modelScope === undefined ? SubscriptionState.COOLDOWN : SubscriptionState.LIMITED,
      };
    }
    case "throttle-retries2":
      return {
        format,
        partial: false,
        ...cost(0),
        transient: TransientKind.THROTTLE,
        status: SubscriptionState.LIMITED,
      };
    case "overloaded-retries2":
      return {
        format,
        partial: false,
        ...cost(0),
        transient: TransientKind.OVERLOADED,
        status: SubscriptionState.LIMITED,
      };
    default:
      throw new Error(`no expectation for ${variant} (${run.name})`);
  }
}

let pool: TestPool;

beforeAll(async () => {
  const clock = new ManualClock(RUNS[0]!.lastRequestAt);
  // One subscription per capture, one session each: every booking lands on a fresh account.
  pool = await startTestPool({
    clock,
    config: {
      subscriptions: RUNS.map((run, i) => ({
        id: `cap-${i}`,
        email: `cap-${i}@example.com`,
        type: run.auth === "apikey" ? "api" : "claude-max",
        configDir: path.join("/nonexistent-authpool-test", `cap-${i}`),
        weeklyBudget: 100,
        fiveHourBudgetUsd: 20,
        maxClientsPerSub: 1,
      })),
      cooldown: { timeZone: "UTC" },
    },
  });
});

afterAll(async () => {
  await pool?.close();
});

describe("the captures of the real CLI", () => {
  it("has every capture of the fixture directory in the index, with its exit code", () => {
    const files = readdirSync(DIR)
      .filter((f) => f.endsWith(".stdout"))
      .map((f) => f.slice(0, -".stdout".length));
    expect(files.sort()).toEqual(RUNS.map((r) => r.name).sort());
    expect(RUNS).toHaveLength(105);
    for (const run of RUNS) expect(rc(run)).toBe(run.rc);
  });
});

describe("ReportUsage books every capture of the real CLI (2.1.328)", () => {
  it.each(RUNS.map((run) => [run.name, run] as const))("%s", async (_, run) => {
    const want = expected(run);
    const now = at(run.lastRequestAt) + 1000;
    pool.clock.set(now);
    const sessionId = `s-${run.name}`;
    const grant = await pool.grpc.allocate({ sessionId, model: run.model });
    if (grant.outcome.case !== "subscription") throw new Error(`no grant for ${run.name}`);
    const id = grant.outcome.value.subscriptionId;
    const send = (requestId: string) =>
      pool.grpc.reportUsage({ sessionId, requestId, source: { case: "claudeOutput", value: stdout(run) } });

    const res = await send(`r1-${run.name}`);
    expect(res.duplicate).toBe(false);
    expect(res.format).toBe(want.format);
    expect(res.partial).toBe(want.partial);
    expect(res.costUnknown).toBe(want.cost === undefined);
    expect(res.countedCostUsd).toBe(want.cost ?? 0);
    if (want.cost === undefined) expect(res.notes.join("\n")).toMatch(/nothing counted/);

    // The limit, with its window and reset.
    if (want.limit !== undefined) {
      expect(res.limit?.window).toBe(want.limit.window);
      expect(res.limit?.resetsAt && timestampDate(res.limit.resetsAt).getTime()).toBe(want.limit.resetsAt);
      expect(res.limit?.estimated).toBe(false);
      expect(res.transientError).toBeUndefined();
    } else {
      expect(res.limit).toBeUndefined();
    }

    // A throttle pauses placements for a minute; an overload does nothing; neither is a limit.
    expect(res.transientError?.kind).toBe(want.transient);
    if (want.transient === TransientKind.THROTTLE) {
      expect(res.transientError?.pausedUntil && timestampDate(res.transientError.pausedUntil).getTime()).toBe(
        now + THROTTLE_MS,
      );
      expect(res.transientError?.estimated).toBe(true);
    } else {
      expect(res.transientError?.pausedUntil).toBeUndefined();
    }

    const status = await pool.grpc.getPoolStatus({ includeSessions: true });
    const sub = status.subscriptions.find((s) => s.id === id)!;
    const session = status.sessions.find((s) => s.sessionId === sessionId)!;
    // maxSessions 1 and its one session held: LIMITED unless a cooldown says more.
    expect(sub.status).toBe(want.status);
    expectCooldown(sub, want, now);
    expect(sub.throttle?.until && timestampDate(sub.throttle.until).getTime()).toBe(
      want.transient === TransientKind.THROTTLE ? now + THROTTLE_MS : undefined,
    );

    // Cost once, tokens of the result line, and nothing at all for what proved no use.
    expect(sub.weeklyUsedUsd).toBe(want.cost ?? 0);
    expect(session.costUsd).toBe(want.cost ?? 0);
    const tokens = [
      session.inputTokens,
      session.outputTokens,
      session.cacheCreationInputTokens,
      session.cacheReadInputTokens,
    ].map(Number);
    expect(tokens).toEqual(want.tokens ?? [0, 0, 0, 0]);
    const used = want.cost !== undefined && want.transient === undefined;
    expect(session.requests).toBe(used ? 1 : 0);

    expectReadings(sub, want.readings);

    // Sent again under a new request id: the same run (its result uuid), counted once.
    const again = await send(`r2-${run.name}`);
    const hasResult = want.format !== ReportFormat.TEXT && want.format !== ReportFormat.EMPTY && !want.partial;
    expect(again.duplicate).toBe(hasResult && used);
    expect(again.countedCostUsd).toBe(0);
    const after = (await pool.grpc.getPoolStatus({})).subscriptions.find((s) => s.id === id)!;
    expect(after.weeklyUsedUsd).toBe(want.cost ?? 0);
  });
});

function expectCooldown(sub: SubscriptionStatus, want: Booking, now: number): void {
  const limit = want.limit;
  if (limit === undefined) {
    expect(sub.cooldown).toBeUndefined();
    expect(sub.warnings.filter((w) => / limit until /.test(w))).toEqual([]);
    return;
  }
  if (limit.modelScope !== undefined) {
    // Only the model family is benched: no cooldown of the subscription, a warning naming the family.
    expect(sub.cooldown).toBeUndefined();
    expect(sub.warnings).toContain(`${limit.modelScope} limit until ${new Date(limit.resetsAt).toISOString()}`);
    return;
  }
  expect(sub.cooldown?.window).toBe(limit.window);
  expect(sub.cooldown?.until && timestampDate(sub.cooldown.until).getTime()).toBe(limit.resetsAt);
  expect(sub.cooldown?.since && timestampDate(sub.cooldown.since).getTime()).toBe(now);
  expect(sub.cooldown?.estimated).toBe(false);
}

function expectReadings(sub: SubscriptionStatus, readings: Booking["readings"]): void {
  const seen = Object.fromEntries(
    sub.upstream.filter((u) => u.window !== LimitWindow.OVERAGE).map((u) => [u.window, [u.status, u.utilization]]),
  );
  expect(seen).toEqual(readings ?? {});
  // Subscribers' events also carry the overage status: pay-as-you-go is off on these accounts.
  const overage = sub.upstream.find((u) => u.window === LimitWindow.OVERAGE);
  expect(overage?.status).toBe(readings === undefined ? undefined : RateLimitStatus.REJECTED);
}
