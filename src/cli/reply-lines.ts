import { durationMs } from "@bufbuild/protobuf/wkt";
import {
  type AllocateResponse,
  type ClearCooldownResponse,
  type RebalanceResponse,
  type ReleaseResponse,
  type ReloadConfigResponse,
  ReportFormat,
  type ReportUsageResponse,
  type SubscriptionStatus,
  TransientKind,
} from "../../gen/authpool/v1/auth_pool_pb.js";
import { DEFAULT_CLIENT } from "../domain/index.js";
import { stateName, windowName } from "./enum-names.js";
import { move } from "./event-line.js";
import { formatDuration, formatTime, millisOf } from "./format-time.js";

/**
 * The short human answers of the RPC commands, for when --json is not
 * given. Each says what happened in a line or two; --json has the rest.
 */

/**
 * allocationLines: where the session went, and the config dir to run Claude
 * with. The session is followed by the client it was booked to and, after a
 * wait in the queue, how long it waited: `s1 (client ci, waited 12s) → pro-1 (…)`.
 */
export function allocationLines(res: AllocateResponse): string {
  const call = [`client ${res.client || DEFAULT_CLIENT}`];
  const waited = res.waited === undefined ? 0 : durationMs(res.waited);
  if (waited > 0) call.push(`waited ${formatWait(waited)}`);
  const session = `${res.sessionId} (${call.join(", ")})`;
  const o = res.outcome;
  switch (o.case) {
    case "subscription": {
      const g = o.value;
      const how = g.rotatedFrom !== "" ? `; moved from ${g.rotatedFrom}` : g.resumed ? "; resumed" : "";
      return (
        `${session} → ${g.subscriptionId} (health ${g.healthScore.toFixed(1)}, ` +
        `5-hour ${Math.round(g.fiveHourPercentUsed)}%, weekly ${Math.round(g.weeklyPercentUsed)}%${how})\n` +
        `CLAUDE_CONFIG_DIR=${g.configDir}`
      );
    }
    case "fallback":
      return `${session} → fallback ${o.value.provider}: ${o.value.reason}`;
    default:
      return `${session}: no outcome`;
  }
}

/** formatWait: tenths of a second under 10 s ("0.4s"), else formatDuration's "42s", "3m". */
function formatWait(ms: number): string {
  return ms < 10_000 ? `${(ms / 1000).toFixed(1)}s` : formatDuration(ms);
}

/** reportLines: what was counted, the limit the run hit if any, and what else the output said. */
export function reportLines(res: ReportUsageResponse): string {
  const s = res.subscription;
  const where = s === undefined ? "" : ` on ${s.id} (${subscriptionSummary(s)})`;
  const lines = [
    res.duplicate
      ? `duplicate report: nothing counted${where}`
      : res.costUnknown
        ? `nothing counted (${FORMAT_WORDS[res.format] ?? "output"} without a cost)${where}`
        : `counted $${res.countedCostUsd.toFixed(4)}${where}`,
  ];
  const l = res.limit;
  if (l !== undefined) {
    const resets = millisOf(l.resetsAt);
    lines.push(
      `limit reached${windowName(l.window) === "" ? "" : ` (${windowName(l.window)})`}` +
        (resets === undefined ? "" : ` until ${formatTime(resets)}${l.estimated ? " (estimated)" : ""}`) +
        (l.message === "" ? "" : `: ${l.message}`),
    );
  }
  const t = res.transientError;
  if (t !== undefined) {
    const paused = millisOf(t.pausedUntil);
    lines.push(
      `${TRANSIENT_WORDS[t.kind] ?? "upstream error"}, not a usage limit: ` +
        (paused === undefined ? "no pause" : `no new sessions there until ${formatTime(paused)}`) +
        (t.message === "" ? "" : ` (${t.message})`),
    );
  }
  if (res.partial) lines.push("partial: the output ended before Claude's result");
  return lines.join("\n");
}

const FORMAT_WORDS: Partial<Record<ReportFormat, string>> = {
  [ReportFormat.TEXT]: "text output",
  [ReportFormat.EMPTY]: "empty output",
  [ReportFormat.STREAM_JSON]: "stream-json cut short",
  [ReportFormat.JSON_VERBOSE]: "JSON array cut short",
};

const TRANSIENT_WORDS: Partial<Record<TransientKind, string>> = {
  [TransientKind.THROTTLE]: "throttled",
  [TransientKind.OVERLOADED]: "overloaded",
  [TransientKind.BILLING]: "billing refused",
  [TransientKind.SERVER_ERROR]: "upstream error",
};

/** clearedLines: which cooldowns ClearCooldown ended, and the subscription now. */
export function clearedLines(subscriptionId: string, res: ClearCooldownResponse): string {
  const cleared = res.cleared.map((c) => {
    const until = millisOf(c.until);
    const what = c.modelScope !== "" ? `${c.modelScope} limit` : `${windowName(c.window) || "cooldown"}`;
    return `${what}${until === undefined ? "" : ` (until ${formatTime(until)})`}`;
  });
  if (res.throttleCleared) cleared.push("throttle pause");
  const head =
    cleared.length === 0
      ? `${subscriptionId}: no cooldown in force; nothing cleared`
      : `${subscriptionId}: cleared ${cleared.join(", ")}`;
  return `${head}\n${subscriptionLine(res.subscription)}`;
}

/** releaseLine: released, or not held (which is not an error). */
export function releaseLine(sessionId: string, res: ReleaseResponse): string {
  return res.released
    ? `released ${sessionId} from ${res.subscriptionId}`
    : `session ${sessionId} was not held: nothing to release`;
}

/** rebalanceLines: one line per move, or that there was nothing to move and, when known, why. */
export function rebalanceLines(res: RebalanceResponse, noMoves?: string): string {
  const title = `rebalance${res.dryRun ? " (dry run, nothing moved)" : ""}: ${res.moves.length} move${res.moves.length === 1 ? "" : "s"}`;
  const why = res.moves.length === 0 && noMoves !== undefined ? [`  why: ${noMoves}`] : [];
  return [title, ...res.moves.map((m) => `  ${move(m)}`), ...why].join("\n");
}

/** subscriptionLine: a subscription's state after pause, resume, drain or undrain. */
export function subscriptionLine(s: SubscriptionStatus | undefined): string {
  return s === undefined ? "done" : `${s.id}: ${subscriptionSummary(s)}`;
}

function subscriptionSummary(s: SubscriptionStatus): string {
  return `${stateName(s.status)}, ${s.sessionCount}/${s.maxSessions} sessions, weekly ${Math.round(s.weeklyPercentUsed)}%`;
}

/** reloadLines: what the reload changed, by kind. */
export function reloadLines(res: ReloadConfigResponse): string {
  // The file watcher often applies a saved change before the command runs.
  if (!res.changed) return `reloaded ${res.source}: already in force (no change since the last load)`;
  const parts: string[] = [];
  if (res.added.length > 0) parts.push(`added ${res.added.join(", ")}`);
  if (res.removed.length > 0) parts.push(`removed ${res.removed.join(", ")} (draining)`);
  if (res.updated.length > 0) parts.push(`updated ${res.updated.join(", ")}`);
  if (res.settings.length > 0) parts.push(`settings ${res.settings.join(", ")}`);
  return `reloaded ${res.source}: ${parts.join("; ")}`;
}
