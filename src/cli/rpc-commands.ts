import { type Timestamp, durationFromMs, timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Argument, Option } from "commander";
import { HistoryResolution, Priority } from "../../gen/authpool/v1/auth_pool_pb.js";
import { BUCKET_RETENTION_MS, DAY_MS, HISTORY_RETENTION_MS, HOUR_MS, floorTo } from "../domain/index.js";
import { clientOption, priorityOption, waitOption } from "./allocation-flags.js";
import { colorsFor } from "./colors.js";
import type { PoolFlags } from "./connection-flags.js";
import { HISTORY_GROUP_NAMES, USAGE_GROUP_NAMES } from "./enum-names.js";
import { parseHistorySpan } from "./flag-parsers.js";
import { renderHistory } from "./history-table.js";
import { readInput } from "./read-input.js";
import { noMovesReason, periodicNote } from "./rebalance-reason.js";
import {
  allocationLines,
  clearedLines,
  rebalanceLines,
  releaseLine,
  reloadLines,
  reportLines,
  subscriptionLine,
} from "./reply-lines.js";
import { type CommandInput, defineRpcCommand, type RpcCommand, type RpcRequest } from "./rpc-command.js";
import { UsageError } from "./usage-error.js";
import { usageFromHistory } from "./usage-from-history.js";
import { renderUsage } from "./usage-table.js";
import { type Wait, waitCallOptions, waitFields } from "./wait-flag.js";
import { watchAllocation } from "./watch-allocation.js";

/** AllocateFlags are allocate's options. */
type AllocateFlags = PoolFlags & {
  session?: string;
  model?: string;
  priority?: Priority;
  client?: string;
  wait?: Wait;
};

/** ReportFlags are report's options. */
type ReportFlags = PoolFlags & { session: string; file?: string; requestId?: string };

/** BySubscription is the input of a command whose one argument is a subscription id. */
type BySubscription<Flags extends PoolFlags = PoolFlags> = CommandInput<Flags, [id: string]>;

/**
 * historyRange is the GetUsageHistory range for the span before `now`: from
 * SPAN ago (the pool floors it to the hour or day) through the hour or day
 * in progress. Both ends come from here, not `until` from the pool's clock,
 * so the range is never longer than the 40 days the pool answers; a span of
 * the whole 40 days leaves out the hour (or day) that began 40 days ago.
 */
function historyRange(spanMs: number, resolutionMs: number, now: number): { from: Timestamp; until: Timestamp } {
  const until = floorTo(now, resolutionMs) + resolutionMs;
  return { from: timestampFromMs(Math.max(now - spanMs, until - HISTORY_RETENTION_MS)), until: timestampFromMs(until) };
}

/**
 * RPC_COMMANDS are the commands that make one call to the pool, in the order
 * `authpool --help` lists them. Every program runCli builds shares their
 * Option and Argument objects, which commander only reads.
 */
export const RPC_COMMANDS: readonly RpcCommand[] = [
  defineRpcCommand({
    name: "allocate",
    description: "place a session on the healthiest eligible subscription (or resume it)",
    options: [
      new Option("--session <id>", "the session id (default: the pool makes one)"),
      new Option("--model <model>", 'model hint: "opus", "sonnet" or a model id'),
      priorityOption(),
      clientOption("the session"),
      waitOption(),
    ],
    help: `
Prints the session, the client it was booked to (and how long it waited),
the subscription and the CLAUDE_CONFIG_DIR to run Claude with; or the paid
API and why (a client limit names the client and the limit). A token given
a name (role:name:token) may only name its own client with --client. While
a --wait waits, stderr says where the call stands in the pool's queue each
time it moves ("waiting: 3rd in line of 7", with why it waits). A wait
that runs out, a full queue, or a client limit with fallback off exits with
75 (RESOURCE_EXHAUSTED).`,
    rpc: "allocate",
    request: ({ flags }: CommandInput<AllocateFlags>) => ({
      sessionId: flags.session ?? "",
      model: flags.model ?? "",
      priority: flags.priority ?? Priority.NORMAL,
      client: flags.client ?? "",
      ...waitFields(flags.wait),
    }),
    callOptions: ({ flags }) => waitCallOptions(flags.wait),
    // A call that may wait watches its place in the queue (AllocateWatch); the answer is Allocate's.
    call: (pool, request, options, { flags, cli }) =>
      flags.wait === undefined
        ? pool.allocate(request, options)
        : watchAllocation(pool, request, options, (line) => cli.stderr.write(`authpool: ${line}\n`)),
    text: (reply) => allocationLines(reply),
  }),

  defineRpcCommand({
    name: "usage",
    description: "who spent the pool: cost, tokens and requests by client, subscription or model",
    options: [
      new Option("--by <group>", "what to sum by").choices(Object.keys(USAGE_GROUP_NAMES)).default("client"),
      new Option(
        "--since <span>",
        "how far back: minutes, hours or days such as 30m, 5h, 7d; at most 40d (default 7d)",
      ).argParser(parseHistorySpan),
    ],
    help: `
Sums the pool's durable usage ledger (GetUsage), the same figures the
clients' budgets are checked against, by the hour: the period starts at the
top of the hour SPAN ago. One row per client, subscription or model, largest
cost first: cost (USD at API prices), input and output tokens, cache writes
and reads, requests, and the share of the total cost. Use found in
transcripts is the client "(outside the pool)". The ledger keeps 8 days;
further back (up to 40 days) the same rows are summed from GetUsageHistory,
which keeps the ledger's hours. --json prints a GetUsage reply either way.
Per hour or day, with usage limits and runs sent to the paid API: authpool
history.`,
    rpc: "getUsage",
    request: ({ flags }: CommandInput<PoolFlags & { by: string; since?: number }>) => ({
      groupBy: USAGE_GROUP_NAMES[flags.by],
      ...(flags.since !== undefined ? { since: durationFromMs(flags.since) } : {}),
    }),
    call: async (pool, request, options, { flags }) => {
      if (flags.since === undefined || flags.since <= BUCKET_RETENTION_MS) return pool.getUsage(request, options);
      const now = Date.now();
      const history = await pool.getUsageHistory(
        { ...historyRange(flags.since, HOUR_MS, now), groupBy: HISTORY_GROUP_NAMES[flags.by] },
        options,
      );
      return usageFromHistory(history, now);
    },
    text: (reply, { flags, cli }) =>
      renderUsage(reply, { by: flags.by, colors: colorsFor({ stream: cli.stdout, env: cli.env }) }),
  }),

  defineRpcCommand({
    name: "history",
    description: "usage per hour or day for up to 40 days: cost, runs, limits hit, runs sent to the paid API",
    options: [
      new Option("--by <group>", "one series per").choices(Object.keys(HISTORY_GROUP_NAMES)).default("pool"),
      new Option("--since <span>", "how far back, such as 48h or 35d; at most 40d (default 7d)").argParser(
        parseHistorySpan,
      ),
      new Option("--per <period>", "one row per").choices(["hour", "day"]).default("day"),
    ],
    help: `
Reads GetUsageHistory: the last week from the live ledger, older hours from
the hourly archive the pool keeps for 40 days. One row per hour or UTC day
with anything in it: cost (USD at API prices), runs reported, usage limits
Claude reported, runs sent to the paid API, and with --by the client,
subscription or model that spent most in it; then each one's total. --json
prints the reply with every point, zeros included.`,
    rpc: "getUsageHistory",
    request: ({ flags }: CommandInput<PoolFlags & { by: string; since?: number; per: string }>) => {
      const resolutionMs = flags.per === "hour" ? HOUR_MS : DAY_MS;
      return {
        groupBy: HISTORY_GROUP_NAMES[flags.by],
        resolution: resolutionMs === HOUR_MS ? HistoryResolution.HOUR : HistoryResolution.DAY,
        ...(flags.since !== undefined ? historyRange(flags.since, resolutionMs, Date.now()) : {}),
      };
    },
    text: (reply, { flags, cli }) =>
      renderHistory(reply, { by: flags.by, colors: colorsFor({ stream: cli.stdout, env: cli.env }) }),
  }),

  defineRpcCommand({
    name: "report",
    description: "report what a run consumed: the stdout of `claude -p` (json, stream-json, or text)",
    options: [
      new Option("--session <id>", "the session the run belonged to").makeOptionMandatory(),
      new Option("--file <file>", "read the output from this file (or - for stdin)"),
      new Option("--request-id <key>", "idempotency key: a report sent again with it counts once"),
    ],
    arguments: [new Argument("[file]", "the same as --file; - reads stdin")],
    rpc: "reportUsage",
    request: async ({ flags, args: [file], cli }: CommandInput<ReportFlags, [file?: string]>) => {
      const source = flags.file ?? file;
      if (source === undefined) throw new UsageError("report: give the output as --file FILE, FILE, or - for stdin");
      return {
        sessionId: flags.session,
        requestId: flags.requestId ?? "",
        source: { case: "claudeOutput", value: await readInput(source, cli.stdin ?? process.stdin) },
      };
    },
    text: (reply) => reportLines(reply),
  }),

  defineRpcCommand({
    name: "release",
    description: "free a session's slot (releasing a session that is not held is not an error)",
    options: [new Option("--session <id>", "the session to release").makeOptionMandatory()],
    rpc: "release",
    request: ({ flags }: CommandInput<PoolFlags & { session: string }>) => ({ sessionId: flags.session }),
    text: (reply, { flags }) => releaseLine(flags.session, reply),
  }),

  defineRpcCommand({
    name: "rebalance",
    description: "move idle sessions off the most loaded subscriptions now",
    options: [new Option("--dry-run", "only show the moves a rebalance would make")],
    help: `
Only idle sessions move (a session in use never does): first off
subscriptions that cannot serve (cooldown, paused, draining), then from the
most to the least loaded while their 5-hour load differs by at least
rebalancing.costGapThreshold, at most rebalancing.maxMovesPerCycle. With no
move it says why, from the pool's status. It runs whether or not
rebalancing.enabled is set: that setting only turns on the periodic
rebalance (every rebalancing.intervalSeconds). A "periodic:" line says
when the periodic rebalance is off, and whether it is on after a
rebalance that moved nothing.`,
    rpc: "rebalance",
    request: ({ flags }: CommandInput<PoolFlags & { dryRun?: boolean }>) => ({ dryRun: flags.dryRun === true }),
    text: async (reply, _input, pool) => {
      const periodic = periodicNote(reply);
      const tail = periodic === undefined ? "" : `\n  periodic: ${periodic}`;
      if (reply.moves.length > 0) return rebalanceLines(reply) + tail;
      // The reason is a courtesy: a pool that will not show its status still gets its answer.
      const status = await pool.getPoolStatus({}).catch(() => undefined);
      return rebalanceLines(reply, status === undefined ? undefined : noMovesReason(status)) + tail;
    },
  }),

  ...switchCommands("setPaused", (subscriptionId, paused) => ({ subscriptionId, paused }), {
    on: ["pause", "stop placing new sessions on a subscription; its sessions move on their next allocate"],
    off: ["resume", "place sessions on a paused subscription again"],
  }),
  ...switchCommands("setDrained", (subscriptionId, drained) => ({ subscriptionId, drained }), {
    on: ["drain", "take no new sessions on a subscription; the ones it holds finish there"],
    off: ["undrain", "end a drain: the subscription takes new sessions again"],
  }),

  defineRpcCommand({
    name: "clear",
    group: {
      name: "cooldown",
      description: "end a subscription's cooldowns early (see `authpool cooldown clear --help`)",
    },
    description:
      "end a subscription's cooldowns and throttle pause now, when you know it works again (recorded as an event)",
    arguments: [subscriptionArgument()],
    options: [
      new Option("--model <family>", "clear only this model family's cooldown: opus or sonnet"),
      new Option("--reason <text>", "why, in your words; kept in the event"),
    ],
    rpc: "clearCooldown",
    request: ({ flags, args: [id] }: BySubscription<PoolFlags & { model?: string; reason?: string }>) => ({
      subscriptionId: id,
      modelScope: flags.model ?? "",
      reason: flags.reason ?? "",
    }),
    text: (reply, { args: [id] }) => clearedLines(id, reply),
  }),

  defineRpcCommand({
    name: "reload",
    description: "make the pool re-read its config file (an invalid file is refused and nothing changes)",
    rpc: "reloadConfig",
    request: () => ({}),
    text: (reply) => reloadLines(reply),
  }),
];

/** NamedCommand is a command's name and its description. */
type NamedCommand = readonly [name: string, description: string];

/**
 * switchCommands are the two commands that set one of a subscription's
 * switches (paused, drained) through its RPC: `on` sets it, `off` clears it.
 */
function switchCommands<K extends "setPaused" | "setDrained">(
  rpc: K,
  request: (subscriptionId: string, on: boolean) => RpcRequest<K>,
  { on, off }: { on: NamedCommand; off: NamedCommand },
): RpcCommand[] {
  const command = ([name, description]: NamedCommand, value: boolean) =>
    defineRpcCommand({
      name,
      description,
      arguments: [subscriptionArgument()],
      rpc,
      request: ({ args: [id] }: BySubscription) => request(id, value),
      text: (reply) => subscriptionLine(reply.subscription),
    });
  return [command(on, true), command(off, false)];
}

function subscriptionArgument(): Argument {
  return new Argument("<id>", "subscription id");
}
