import type { UsageArchive } from "../store/index.js";
import { usageHistory } from "./usage-history-rpc.js";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { MessageInitShape } from "@bufbuild/protobuf";
import {
  type AuthPoolService,
  type ClusterStatusSchema,
  EventType,
  type ReportUsageRequest,
} from "../../gen/authpool/v1/auth_pool_pb.js";
import type {
  Clock,
  PoolSettings,
  ReportResult,
  SubscriptionHealthSummary,
  SubscriptionView,
  UsageReport,
} from "../domain/index.js";
import { HOUR_MS, WEEK_MS, floorHour, usageBy } from "../domain/index.js";
import type { EventFeed } from "../runtime/event-feed.js";
import { type EventFilter, matches, toPublicEvent } from "./event-to-proto.js";
import { type ChannelSnapshot, notificationsToProto } from "./notification-status.js";
import type { StreamGauge } from "./metrics/index.js";
import { parseClaudeOutput } from "../domain/claude-output.js";
import type { PoolHandle } from "../runtime/pool-handle.js";
import {
  cooldownToProto,
  moveToProto,
  reportFormatToProto,
  sessionToProto,
  type SubscriptionExtras,
  subscriptionToProto,
  transientKindToProto,
  windowToProto,
} from "./to-proto.js";
import { usageFromProto } from "./usage-from-proto.js";
import { usd, wholeMs } from "./proto-values.js";
import { orThrow } from "./rejection.js";
import { type AllocateDeps, allocate, allocateWatch } from "./allocate-rpc.js";
import { modelPricesToProto } from "./upstream-to-proto.js";
import type { AllocationWaits } from "./allocation-waits.js";
import { clientsToProto } from "./client-to-proto.js";
import {
  check,
  usageGroupFromProto,
  usageSinceSchema,
  invalidArgument,
  modelScopeSchema,
  operatorReasonSchema,
  optionalIdSchema,
  reportProblem,
  sessionIdSchema,
  subscriptionIdSchema,
} from "./validate.js";

/** AuthPoolServiceOptions are the service's dependencies, injected so tests control them. */
export interface AuthPoolServiceOptions {
  writer: PoolHandle;
  feed: EventFeed;
  /** Live events a subscriber may fall behind by before its stream ends with RESOURCE_EXHAUSTED. */
  streamBufferEvents: number;
  /** Aborted when the server begins to shut down: open streams end so shutdown is prompt. */
  shutdown: AbortSignal;
  /** Each running delivery channel's state (webhook, Slack) for status. */
  notificationStatus?: () => readonly ChannelSnapshot[];
  clock: Clock;
  /** The limits in force now (a reload changes them): claude_output size, and the zone of reset times given without one. */
  limits: () => { maxClaudeOutputBytes: number; timeZone: string };
  /** What the status shows beyond the pool's state: warnings (e.g. a missing config dir), polling, transcripts. */
  extras: (subscriptionId: string) => SubscriptionExtras;
  newSessionId: () => string;
  /** Holds Allocate calls that asked to wait (absent: waiting is off and they fall back at once). */
  waits?: AllocationWaits;
  /** Re-reads the config file and applies it; absent when the pool has no file (tests, embedding). */
  reload?: () => Promise<ReloadSummary>;
  /** Told when an event stream opens and ends (the subscribers gauge). */
  streamGauge?: StreamGauge;
  /** This instance's role and the store's lease, for status. */
  cluster?: () => ClusterStatusInit;
  /** The store's hourly archive of usage older than a week (GetUsageHistory). */
  archive: UsageArchive;
}

/** ClusterStatusInit is GetPoolStatusResponse.cluster as the server fills it. */
export type ClusterStatusInit = MessageInitShape<typeof ClusterStatusSchema>;

/** ReloadSummary is what a reload changed (ReloadConfigResponse's fields). */
export interface ReloadSummary {
  source: string;
  changed: boolean;
  added: string[];
  removed: string[];
  updated: string[];
  settings: string[];
}

/**
 * createAuthPoolService returns the RPC handlers: validate, submit a command
 * to the one writer, map the result. No decision is made here.
 */
export function createAuthPoolService(options: AuthPoolServiceOptions): ServiceImpl<typeof AuthPoolService> {
  const { writer } = options;
  // Read at each call: a reload swaps the settings between two decisions.
  const settings = (): PoolSettings => writer.currentPool.settings;
  const render = (v: SubscriptionView) => subscriptionToProto(v, options.extras(v.cfg.id));
  const placing: AllocateDeps = {
    writer,
    clock: options.clock,
    newSessionId: options.newSessionId,
    ...(options.waits !== undefined ? { waits: options.waits } : {}),
  };

  return {
    allocate: (req, ctx) => allocate(req, ctx, placing),

    allocateWatch: (req, ctx) => allocateWatch(req, ctx, placing),

    async reportUsage(req) {
      const sessionId = check(sessionIdSchema, req.sessionId, "session_id");
      const requestId = check(optionalIdSchema, req.requestId, "request_id");
      const report = toReport(req.source, options);
      const result: ReportResult = orThrow(await writer.submit({ kind: "report", sessionId, requestId, report }));
      const transient = report.transient;
      return {
        duplicate: result.duplicate,
        countedCostUsd: result.countedCostUsd,
        subscription: render(result.view),
        limit:
          result.limit === undefined
            ? undefined
            : {
                window: windowToProto[result.limit.window],
                resetsAt: timestampFromMs(result.limit.resetsAt),
                estimated: result.limit.estimated,
                message: result.limit.message,
              },
        format: reportFormatToProto[report.format ?? "structured"],
        partial: report.partial === true,
        costUnknown: report.costUnknown === true,
        notes: replyNotes(report, result),
        transientError:
          transient === undefined || result.limit !== undefined
            ? undefined
            : {
                kind: transientKindToProto[transient.kind],
                message: transient.message,
                pausedUntil: result.throttle === undefined ? undefined : timestampFromMs(result.throttle.until),
                estimated: result.throttle?.estimated ?? false,
              },
      };
    },

    async release(req) {
      const sessionId = check(sessionIdSchema, req.sessionId, "session_id");
      const result = await writer.submit({ kind: "release", sessionId });
      return { released: result.released, subscriptionId: result.subscriptionId };
    },

    async getUsage(req) {
      const sinceMs = req.since === undefined ? WEEK_MS : check(usageSinceSchema, wholeMs(req.since), "since");
      const now = options.clock.now();
      const from = now - sinceMs;
      const rows = usageBy(writer.currentPool.state, usageGroupFromProto(req.groupBy), from, floorHour(now) + HOUR_MS);
      return {
        from: timestampFromMs(floorHour(from)),
        to: timestampFromMs(now),
        rows: rows.map((r) => ({
          key: r.key,
          costUsd: usd(r.costUsd),
          inputTokens: BigInt(r.tokens.inputTokens),
          outputTokens: BigInt(r.tokens.outputTokens),
          cacheCreationInputTokens: BigInt(r.tokens.cacheCreationInputTokens),
          cacheReadInputTokens: BigInt(r.tokens.cacheReadInputTokens),
          requests: r.requests,
        })),
      };
    },

    getUsageHistory: (req) =>
      usageHistory(req, { state: writer.currentPool.state, archive: options.archive, now: options.clock.now() }),

    async getPoolStatus(req) {
      const result = await writer.submit({ kind: "status", includeSessions: req.includeSessions });
      const current = settings();
      const sessions = result.sessions.map((s) => sessionToProto(s, result.now, current));
      const eligible = result.views.filter((v) => v.status === "available" || v.status === "approaching").length;
      return {
        now: timestampFromMs(result.now),
        subscriptions: result.views.map(render),
        sessions,
        fallbackEnabled: current.fallback.enabled,
        fallbackProvider: current.fallback.provider,
        totalSessions: result.totalSessions,
        eligibleSubscriptions: eligible,
        notifications: notificationsToProto(options.notificationStatus?.()),
        ...(options.cluster !== undefined ? { cluster: options.cluster() } : {}),
        modelPrices: modelPricesToProto(result.prices),
        clients: clientsToProto(
          writer.currentPool.state,
          current,
          result.now,
          (c) => options.waits?.queue.waiting(c) ?? 0,
        ),
        waiting: options.waits?.queue.size ?? 0,
      };
    },

    async *streamEvents(req, ctx) {
      const filter: EventFilter = {
        types: new Set(req.types.filter((t) => t !== EventType.UNSPECIFIED)),
        subscriptionIds: new Set(req.subscriptionIds.map((id) => check(subscriptionIdSchema, id, "subscription_ids"))),
      };
      for (const t of filter.types) {
        if (EventType[t] === undefined) throw invalidArgument("types", `unknown event type ${t}`);
      }
      const { feed } = options;
      // A cursor past the newest event did not come from this pool's stream
      // (another pool, a lost store): following would wait silently and skip
      // every event up to it. Compared as bigints: Number() rounds past 2^53.
      if (!req.tail && req.afterSequence > BigInt(feed.headSeq)) {
        throw new ConnectError(
          `after_sequence (afterSequence): ${req.afterSequence} is past the newest event ${feed.headSeq}; resume with after_sequence ${feed.headSeq} or less, or use tail`,
          Code.OutOfRange,
        );
      }
      // Follow first, then read history up to where following began: the
      // hand-over is by sequence, so nothing falls between the two.
      const live = feed.follow(options.streamBufferEvents);
      try {
        options.streamGauge?.opened();
        let cursor = req.tail ? live.startSeq : Number(req.afterSequence);
        if (!req.tail && cursor > 0) {
          const oldest = await feed.oldestSeq();
          if (cursor < oldest - 1) {
            throw new ConnectError(
              `after_sequence (afterSequence): ${cursor} is older than the retained events; the oldest available is ${oldest} (resume with after_sequence ${oldest - 1})`,
              Code.OutOfRange,
            );
          }
        }
        for await (const e of feed.history(cursor, live.startSeq)) {
          cursor = e.seq;
          const pub = toPublicEvent(e);
          if (pub !== undefined && matches(pub, filter)) yield { event: pub.message };
        }
        cursor = Math.max(cursor, live.startSeq);
        const stop = AbortSignal.any([ctx.signal, options.shutdown]);
        while (!stop.aborted) {
          const batch = await live.next(stop);
          for (const e of batch) {
            if (e.seq <= cursor) continue;
            cursor = e.seq;
            const pub = toPublicEvent(e);
            if (pub !== undefined && matches(pub, filter)) yield { event: pub.message };
          }
          if (options.shutdown.aborted) {
            throw new ConnectError(`the pool is shutting down; resume with after_sequence ${cursor}`, Code.Unavailable);
          }
          if (live.overflow && batch.length === 0) {
            throw new ConnectError(
              `subscriber fell more than ${options.streamBufferEvents} events behind; resume with after_sequence ${cursor}`,
              Code.ResourceExhausted,
            );
          }
        }
      } finally {
        options.streamGauge?.closed();
        live.close();
      }
    },

    async rebalance(req) {
      const started = performance.now();
      const result = await writer.submit({ kind: "rebalance", dryRun: req.dryRun, trigger: "on_demand" });
      const toProto = (h: SubscriptionHealthSummary) => ({
        subscriptionId: h.subscriptionId,
        healthScore: h.healthScore,
        fiveHourCostUsd: h.fiveHourCostUsd,
        sessionCount: h.sessionCount,
      });
      return {
        dryRun: result.dryRun,
        moves: result.moves.map(moveToProto),
        before: result.before.map(toProto),
        after: result.after.map(toProto),
        duration: preciseDuration(performance.now() - started),
        // The operator asking why nothing moved most often wants to know whether anything will on its own.
        periodicEnabled: settings().rebalancing.enabled,
      };
    },

    async setPaused(req) {
      const subscriptionId = check(subscriptionIdSchema, req.subscriptionId, "subscription_id");
      const result = orThrow(await writer.submit({ kind: "set_paused", subscriptionId, paused: req.paused }));
      return { subscription: render(result.view) };
    },

    async setDrained(req) {
      const subscriptionId = check(subscriptionIdSchema, req.subscriptionId, "subscription_id");
      const result = orThrow(await writer.submit({ kind: "set_drained", subscriptionId, drained: req.drained }));
      return { subscription: render(result.view) };
    },

    async clearCooldown(req) {
      const subscriptionId = check(subscriptionIdSchema, req.subscriptionId, "subscription_id");
      const modelScope = check(modelScopeSchema, req.modelScope, "model_scope");
      const reason = check(operatorReasonSchema, req.reason, "reason");
      const result = orThrow(
        await writer.submit({
          kind: "clear_cooldown",
          subscriptionId,
          ...(modelScope !== "" ? { modelScope } : {}),
          reason,
        }),
      );
      return {
        cleared: result.cleared.map(cooldownToProto),
        throttleCleared: result.throttleCleared,
        subscription: render(result.view),
      };
    },

    async reloadConfig() {
      if (options.reload === undefined) {
        throw new ConnectError("this pool was started without a config file to reload", Code.FailedPrecondition);
      }
      return options.reload();
    },
  };
}

function toReport(source: ReportUsageRequest["source"], options: AuthPoolServiceOptions): UsageReport {
  switch (source.case) {
    case "usage":
      return usageFromProto(source.value, options.clock.now());
    case "claudeOutput": {
      const { maxClaudeOutputBytes, timeZone } = options.limits();
      const bytes = Buffer.byteLength(source.value, "utf8");
      if (bytes > maxClaudeOutputBytes) {
        throw invalidArgument(
          "claude_output",
          `is ${bytes} bytes, over the ${maxClaudeOutputBytes}-byte limit (send the result object, e.g. the last line of stream-json)`,
        );
      }
      const now = options.clock.now();
      let parsed: ReturnType<typeof parseClaudeOutput>;
      try {
        parsed = parseClaudeOutput(source.value, { now, defaultTimeZone: timeZone });
      } catch (error) {
        // The parser echoes a bad value with JSON.stringify, which overflows the
        // stack on a value nested thousands of levels deep: the input's fault.
        if (error instanceof RangeError) throw invalidArgument("claude_output", `could not be read: ${error.message}`);
        throw error;
      }
      if (!parsed.ok) throw invalidArgument("claude_output", parsed.reason);
      // The parser is lenient about shape; the numbers it let through obey the structured rules.
      const problem = reportProblem(parsed.report, now);
      if (problem !== undefined) throw invalidArgument("claude_output", problem);
      return parsed.report;
    }
    default:
      throw invalidArgument("source", "one of usage or claude_output is required");
  }
}

/**
 * replyNotes says in words what a report was understood as, beyond the
 * parser's own notes: what a transient refusal did, which cooldowns a
 * fresher reading ended.
 */
function replyNotes(report: UsageReport, result: ReportResult): string[] {
  const notes = [...(report.notes ?? [])];
  const t = report.transient;
  if (t !== undefined && result.limit === undefined && !result.duplicate) {
    notes.push(
      result.throttle !== undefined
        ? `${t.kind}, not a usage limit: no new sessions on ${result.view.cfg.id} until ${new Date(result.throttle.until).toISOString()}`
        : `${t.kind}, not a usage limit: no pause`,
    );
  }
  for (const c of result.healed ?? []) {
    notes.push(`${c.modelScope ?? c.window} cooldown ended early: a fresher reading shows the window allowed`);
  }
  return notes;
}

/** preciseDuration keeps sub-millisecond precision (durationFromMs wants whole milliseconds). */
function preciseDuration(ms: number) {
  const seconds = Math.floor(ms / 1000);
  return { seconds: BigInt(seconds), nanos: Math.min(999_999_999, Math.round((ms - seconds * 1000) * 1e6)) };
}
