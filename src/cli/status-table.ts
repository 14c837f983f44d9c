import Table from "cli-table3";
import {
  type GetPoolStatusResponse,
  InstanceRole,
  type Session,
  SubscriptionState,
  type SubscriptionStatus,
} from "../../gen/authpool/v1/auth_pool_pb.js";
import { MIN_RESERVE } from "../domain/index.js";
import { clientsTable } from "./clients-table.js";
import type { Colors } from "./colors.js";
import { notificationChannelName, priorityName, sessionStateName, windowName } from "./enum-names.js";
import { formatDuration, formatTime, millisOf } from "./format-time.js";
import { compactStatus } from "./status-compact.js";
import { totalsLine } from "./status-totals.js";
import { cooldownUntil, fiveHourPercent, statusCell, warningsOf } from "./subscription-cells.js";
import { usageCell } from "./usage-cell.js";

/** StatusTableOptions: how to render a GetPoolStatus reply. */
export interface StatusTableOptions {
  colors: Colors;
  /** Width warnings wrap at (default 40). */
  warningWidth?: number;
  /** One line per subscription instead of the table (see status-compact.ts), and no clients' table. */
  compact?: boolean;
  /** Only the subscriptions whose status is not `available`; the totals still cover the pool. */
  problems?: boolean;
}

/**
 * renderStatus renders a GetPoolStatus reply for a person: a summary line,
 * one table row per subscription (or one line each, compact), the pool's
 * totals and, when the reply has them, a table of clients and one of
 * sessions. Columns that would be empty on every row (cooldown, external
 * use, warnings) are left out so the common case fits a terminal.
 */
export function renderStatus(res: GetPoolStatusResponse, options: StatusTableOptions): string {
  const { colors } = options;
  const now = millisOf(res.now) ?? Date.now();
  const out = [summaryLine(res, now, colors)];
  const cluster = clusterLine(res, now, colors);
  if (cluster !== undefined) out.push(cluster);
  const shown =
    options.problems === true
      ? res.subscriptions.filter((s) => s.status !== SubscriptionState.AVAILABLE)
      : res.subscriptions;
  if (shown.length === 0 && options.problems === true) {
    out.push(colors.green(`no problems: all ${res.subscriptions.length} subscriptions are available`));
  } else {
    out.push(options.compact === true ? compactStatus(shown, now, colors) : subscriptionsTable(shown, now, options));
  }
  out.push(totalsLine(res, colors));
  // Compact is for many subscriptions at a glance; the clients' table is the full view's.
  if (res.clients.length > 0 && options.compact !== true) out.push(clientsTable(res.clients, colors));
  if (res.sessions.length > 0) out.push(sessionsTable(res.sessions, now, colors));
  return out.join("\n");
}

function subscriptionsTable(subs: readonly SubscriptionStatus[], now: number, options: StatusTableOptions): string {
  const { colors } = options;
  const showCooldown = subs.some((s) => cooldownUntil(s) !== undefined);
  const showExternal = subs.some((s) => externalCell(s) !== "");
  const showWarnings = subs.some((s) => warningsOf(s).length > 0);
  const head = ["subscription", "status", "health", "5-hour", "weekly", "sessions"];
  if (showCooldown) head.push("cooldown");
  if (showExternal) head.push("outside the pool");
  if (showWarnings) head.push("warnings");
  const table = new Table({ head: head.map((h) => colors.bold(h)), style: { head: [], border: [] } });
  for (const s of subs) {
    const row = [
      s.email === "" ? s.id : `${s.id}\n${colors.dim(s.email)}`,
      statusCell(s.status, colors),
      s.healthScore.toFixed(1),
      usageCell(
        {
          percent: fiveHourPercent(s),
          figure: s.fiveHour,
          resetsAt: millisOf(s.fiveHourWindow?.end) ?? millisOf(s.fiveHour?.resetsAt),
          now,
        },
        colors,
      ),
      usageCell(
        { percent: s.weeklyPercentUsed, figure: s.weekly, resetsAt: millisOf(s.weekly?.resetsAt), now },
        colors,
      ),
      sessionsCell(s, colors),
    ];
    if (showCooldown) row.push(cooldownCell(s, now, colors));
    if (showExternal) row.push(externalCell(s));
    if (showWarnings) {
      const warnings = warningsOf(s);
      // One warning per line (wrapped), so each reads on its own.
      row.push(
        warnings.length === 0 ? "" : colors.yellow(warnings.map((w) => wrap(w, options.warningWidth ?? 40)).join("\n")),
      );
    }
    table.push(row);
  }
  return table.toString();
}

function summaryLine(res: GetPoolStatusResponse, now: number, colors: Colors): string {
  const parts = [
    `${res.subscriptions.length} subscription${res.subscriptions.length === 1 ? "" : "s"} (${res.eligibleSubscriptions} eligible)`,
    `${res.totalSessions} session${res.totalSessions === 1 ? "" : "s"}`,
    // Calls waiting for a slot: said only when there are any, like the optional columns.
    ...(res.waiting > 0 ? [`${res.waiting} waiting`] : []),
    res.fallbackEnabled ? `fallback ${res.fallbackProvider}` : "fallback off",
  ];
  parts.push(...notificationParts(res, colors));
  return `${colors.bold("Auth Pool")} at ${formatTime(now)} · ${parts.join(" · ")}`;
}

/**
 * notificationParts says how far each delivery channel got and which one
 * is failing (its last error newer than its last delivery): "webhook
 * delivered #42, 0 pending · slack delivered #40, 2 pending · slack
 * failing: POST …". A server older than per-channel status sends one
 * summary, shown as before.
 */
function notificationParts(res: GetPoolStatusResponse, colors: Colors): string[] {
  const n = res.notifications;
  if (n === undefined) return [];
  if (n.channels.length === 0) {
    const old = [`webhook delivered #${n.deliveredSequence}, ${n.pending} pending`];
    return n.lastError === "" ? old : [...old, colors.yellow(`last error: ${n.lastError}`)];
  }
  return n.channels.flatMap((c) => {
    const name = notificationChannelName(c.channel);
    const progress = `${name} delivered #${c.deliveredSequence}, ${c.pending} pending`;
    const failing = c.lastError !== "" && (millisOf(c.lastErrorAt) ?? 0) >= (millisOf(c.lastDeliveredAt) ?? 0);
    return failing ? [progress, colors.yellow(`${name} failing: ${c.lastError}`)] : [progress];
  });
}

/**
 * clusterLine says which instance answered and who writes the pool:
 * "instance pool-a:50051 · leader · epoch 4", or for a standby the leader,
 * its address, the lease and how far this instance has followed the journal
 * (only when the reply has it; an older server sends none).
 */
function clusterLine(res: GetPoolStatusResponse, now: number, colors: Colors): string | undefined {
  const c = res.cluster;
  if (c === undefined || c.role === InstanceRole.UNSPECIFIED) return undefined;
  const short = (id: string) => (id.length > 12 ? `${id.slice(0, 8)}…` : id);
  const expires = millisOf(c.leaseExpiresAt);
  const lease = `epoch ${c.epoch}${expires !== undefined ? `, lease ${expires > now ? "until" : "expired"} ${formatTime(expires)}` : ""}`;
  const parts =
    c.role === InstanceRole.LEADER
      ? [`instance ${short(c.instanceId)}`, colors.green("leader"), `epoch ${c.epoch}`]
      : [
          `instance ${short(c.instanceId)}`,
          colors.yellow("standby"),
          c.leaderId === ""
            ? "no leader"
            : `leader ${short(c.leaderId)}${c.leaderAddress !== "" ? ` at ${c.leaderAddress}` : ""}`,
          lease,
          `journal #${c.journalRecord}`,
        ];
  if (c.storeError !== "") parts.push(colors.red(`store: ${c.storeError}`));
  return parts.join(" · ");
}

function sessionsCell(s: SubscriptionStatus, colors: Colors): string {
  const held = `${s.sessionCount}/${s.maxSessions}`;
  return s.sessionCount === 0 ? held : `${held}\n${colors.dim(`${s.activeSessions} active`)}`;
}

function cooldownCell(s: SubscriptionStatus, now: number, colors: Colors): string {
  const until = cooldownUntil(s);
  if (until === undefined) return "";
  const lines = [colors.red(`${formatDuration(until - now)} left`), colors.dim(`until ${formatTime(until)}`)];
  const c = s.cooldown;
  if (c !== undefined) {
    const scope = c.modelScope === "" ? windowName(c.window) : `${c.modelScope} only`;
    const about = [scope, c.estimated ? "estimated" : ""].filter((w) => w !== "").join(", ");
    if (about !== "") lines.push(colors.dim(about));
  }
  return lines.join("\n");
}

/**
 * externalCell: the account's use outside the pool. The share of its week
 * (readings and transcripts) and what is kept back for it, or, with a fixed
 * threshold, that `auto` would keep it back; then transcripts' dollars.
 */
function externalCell(s: SubscriptionStatus): string {
  const lines: string[] = [];
  const owner = s.ownerUse;
  const share = (x: number) => `${(100 * x).toFixed(0)}%`;
  if (owner?.learned === true && (owner.keptBack > 0 || owner.outsideWeek >= MIN_RESERVE)) {
    lines.push(`${share(owner.outsideWeek)} of its week`, `keeps back ${share(owner.keptBack)}`);
  } else if (owner !== undefined && owner.outsideWeek >= MIN_RESERVE) {
    // Below the reserve's own floor the measurement is noise.
    lines.push(`${share(owner.outsideWeek)} of its week`, "(auto would keep it back)");
  }
  const e = s.external;
  if (e !== undefined && (e.weeklyUsd > 0 || e.fiveHourUsd > 0)) {
    // "~" marks dollars the pool priced itself: no figure of the CLI's covered them.
    const estimated = e.weeklyEstimatedUsd > 0.005 ? ` (~$${e.weeklyEstimatedUsd.toFixed(2)} est.)` : "";
    lines.push(`$${e.weeklyUsd.toFixed(2)} this week${estimated}`, `$${e.fiveHourUsd.toFixed(2)} this 5h`);
  }
  return lines.join("\n");
}

/** wrap breaks text at spaces so a long warning does not stretch the table past the terminal. */
function wrap(text: string, width: number): string {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(" ")) {
    if (line !== "" && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line === "" ? word : `${line} ${word}`;
    }
  }
  if (line !== "") lines.push(line);
  return lines.join("\n");
}

function sessionsTable(sessions: Session[], now: number, colors: Colors): string {
  const head = ["session", "subscription", "state", "priority", "model", "cost", "requests", "last activity"];
  const table = new Table({ head: head.map((h) => colors.bold(h)), style: { head: [], border: [] } });
  for (const s of sessions) {
    const last = millisOf(s.lastActivityAt) ?? millisOf(s.allocatedAt);
    table.push([
      s.sessionId,
      s.rotatedFrom === "" ? s.subscriptionId : `${s.subscriptionId}\n${colors.dim(`from ${s.rotatedFrom}`)}`,
      sessionStateName(s.state),
      priorityName(s.priority),
      s.model,
      `$${s.costUsd.toFixed(4)}`,
      String(s.requests),
      last === undefined ? "" : `${formatDuration(now - last)} ago`,
    ]);
  }
  return table.toString();
}
