import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { toJsonString } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { ConnectError } from "@connectrpc/connect";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import {
  AllocateResponseSchema,
  ClearCooldownResponseSchema,
  type EventType,
  GetUsageResponseSchema,
  Priority,
  RebalanceResponseSchema,
  ReleaseResponseSchema,
  ReloadConfigResponseSchema,
  ReportUsageResponseSchema,
  SetDrainedResponseSchema,
  SetPausedResponseSchema,
} from "../../gen/authpool/v1/auth_pool_pb.js";
import { type AuthPoolClient, createAuthPoolClient } from "../client/index.js";
import { CLIENT_NAME_PATTERN, ConfigError } from "../config/index.js";
import { BUCKET_RETENTION_MS, DAY_MS, HOUR_MS, MINUTE_MS } from "../domain/index.js";
import { StoreError } from "../store/index.js";
import { colorsFor } from "./colors.js";
import { describeConnectError } from "./connect-errors.js";
import { EVENT_TYPE_NAMES, PRIORITY_NAMES, USAGE_GROUP_NAMES } from "./enum-names.js";
import type { ExecOptions } from "./exec.js";
import { ExitCode, exitCodesHelp } from "./exit-codes.js";
import { followEvents } from "./follow-events.js";
import type { InitOptions } from "./init.js";
import {
  allocationLines,
  clearedLines,
  rebalanceLines,
  releaseLine,
  reloadLines,
  reportLines,
  subscriptionLine,
} from "./reply-lines.js";
import { showStatus } from "./show-status.js";
import { waitCallOptions, waitFields } from "./wait-flag.js";
import { renderUsage } from "./usage-table.js";

/** DEFAULT_SERVER is the pool `authpool` talks to without --server or AUTHPOOL_URL. */
export const DEFAULT_SERVER = "http://127.0.0.1:50051";

/** CliOptions are the process around the CLI; tests pass their own. */
export interface CliOptions {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream;
  /** Read for report's `-`. Default: process.stdin. */
  stdin?: NodeJS.ReadableStream;
  env: NodeJS.ProcessEnv;
  /** The user's home directory, for init. */
  home: string;
  /** Default: runExec of ./exec.js, imported when `exec` runs. */
  runExec?: (options: ExecOptions) => Promise<number>;
  /** Default: runInit of ./init.js, imported when `init` runs. */
  runInit?: (options: InitOptions) => Promise<number>;
  /** Default: serve of ./serve.js, imported when `serve` runs. */
  serve?: (configFile: string | undefined) => Promise<number>;
}

/** PoolFlags are the options every command that calls the pool takes. */
interface PoolFlags {
  server?: string;
  url?: string;
  token?: string;
  ca?: string;
  json?: boolean;
}

/**
 * runCli runs one `authpool` invocation (argv without node and the script)
 * and resolves with its exit code; it never rejects on a failed call or bad
 * usage, which become a message on stderr and the code from exit-codes.ts.
 */
export async function runCli(argv: readonly string[], options: CliOptions): Promise<number> {
  // The URL of the pool the command talked to, for error messages.
  let server = DEFAULT_SERVER;
  let exitCode: number = ExitCode.ok;
  const program = createProgram(options, {
    connect(flags) {
      server = normaliseUrl(flags.server ?? flags.url ?? nonEmpty(options.env.AUTHPOOL_URL) ?? DEFAULT_SERVER);
      const token = flags.token ?? nonEmpty(options.env.AUTHPOOL_TOKEN);
      const caFile = flags.ca ?? nonEmpty(options.env.AUTHPOOL_CA);
      let ca: Buffer | undefined;
      if (caFile !== undefined) {
        try {
          ca = readFileSync(caFile);
        } catch (error) {
          throw new UsageError(
            `--ca ${caFile}: cannot read it (${(error as NodeJS.ErrnoException).code ?? String(error)})`,
          );
        }
      }
      return {
        url: server,
        client: createAuthPoolClient(server, {
          ...(token !== undefined ? { token } : {}),
          ...(ca !== undefined ? { ca } : {}),
        }),
      };
    },
    exit(code) {
      exitCode = code;
    },
  });
  try {
    await program.parseAsync([...argv], { from: "user" });
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Commander has already printed the help or the usage error.
      return error.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
    }
    if (error instanceof ConnectError) {
      const report = describeConnectError(error, server);
      options.stderr.write(`${report.message}\n`);
      return report.exitCode;
    }
    if (error instanceof ConfigError || error instanceof StoreError) {
      options.stderr.write(`authpool: ${error.message}\n`);
      return ExitCode.config;
    }
    if (error instanceof UsageError) {
      options.stderr.write(`authpool: ${error.message}\n`);
      return ExitCode.usage;
    }
    options.stderr.write(`authpool: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    return ExitCode.error;
  }
}

/** UsageError is bad input commander cannot see, such as an unreadable --file: exit code 2. */
class UsageError extends Error {
  override readonly name = "UsageError";
}

/** ProgramHooks connect the command tree to runCli: how to reach the pool, and where the exit code goes. */
interface ProgramHooks {
  connect(flags: PoolFlags): { url: string; client: AuthPoolClient };
  exit(code: number): void;
}

/** createProgram builds the command tree; actions report their exit code through hooks.exit. */
function createProgram(options: CliOptions, hooks: ProgramHooks): Command {
  const { stdout, stderr, env } = options;
  const print = (text: string) => stdout.write(`${text}\n`);
  // Prints the reply as exact protobuf JSON with --json, else as the short human line.
  const reply = (flags: PoolFlags, json: () => string, human: () => string) =>
    print(flags.json === true ? json() : human());

  const program = new Command("authpool")
    .description("Run many Claude subscriptions as one pool: serve it, or operate a running pool.")
    // Options after a command name belong to that command, so `exec` can pass
    // everything after its first argument to the program it runs.
    .enablePositionalOptions()
    .exitOverride()
    .configureOutput({ writeOut: (s) => stdout.write(s), writeErr: (s) => stderr.write(s) })
    .showHelpAfterError("(add --help for usage)")
    .showSuggestionAfterError()
    .addHelpText(
      "after",
      `
Every command that talks to a pool takes --server URL (default $AUTHPOOL_URL,
else ${DEFAULT_SERVER}), --token T (default $AUTHPOOL_TOKEN) and, for an
https:// pool with its own certificate, --ca FILE (default $AUTHPOOL_CA).

${exitCodesHelp}`,
    );

  program
    .command("serve")
    .description("run the pool in the foreground (what `npm start` runs); SIGTERM or SIGINT stops it gracefully")
    .option("--config <file>", "the pool's config file (default: $AUTHPOOL_CONFIG, else config/example.yaml)")
    .addHelpText(
      "after",
      `
AUTHPOOL_STORE, AUTHPOOL_HOST, AUTHPOOL_PORT, AUTHPOOL_TOKENS and
AUTHPOOL_TOKENS_FILE override the file.
Logs are JSON lines on stderr. An unusable config or store exits with 78.`,
    )
    .action(async (flags: { config?: string }) => {
      const serve = options.serve ?? (await import("./serve.js")).serve;
      hooks.exit(await serve(flags.config));
    });

  poolCommand(program, "status", "show every subscription: status, health, 5-hour and weekly use, sessions, cooldowns")
    .option("--sessions", "also list the sessions")
    .addOption(
      new Option("--watch [seconds]", "re-render every SECONDS (default 2) until Ctrl-C").argParser(parseSeconds),
    )
    .addHelpText(
      "after",
      `
Each use figure says what it rests on: "oauth 42s" (the OAuth usage endpoint,
42 s ago), "stale headers 20m" (an old reading, kept as a floor), "learned"
(local spend at the ratio learned from upstream) or "budget" (local spend over
the configured budget). --json prints GetPoolStatus's reply unchanged.`,
    )
    // --watch alone is `true` (commander calls no parser without a value).
    .action(async (flags: PoolFlags & { sessions?: boolean; watch?: number | true }) => {
      const { client, url } = hooks.connect(flags);
      hooks.exit(
        await showStatus({
          client,
          url,
          sessions: flags.sessions === true,
          json: flags.json === true,
          ...(flags.watch !== undefined ? { watchSeconds: flags.watch === true ? 2 : flags.watch } : {}),
          stdout,
          colors: colorsFor({ stream: stdout, env }),
        }),
      );
    });

  poolCommand(
    program,
    "events",
    "print pool events, then follow live ones; reconnects and resumes if the pool restarts",
  )
    .option("--since <seq>", "start after this sequence (default 0: the oldest event the pool keeps)", parseSequence)
    .addOption(new Option("--after <seq>").hideHelp().argParser(parseSequence))
    .option(
      `--type <type>`,
      `only events of this type (repeatable): ${Object.keys(EVENT_TYPE_NAMES).join(", ")}`,
      collectEventTypes,
    )
    .option("--subscription <id>", "only events about this subscription (repeatable)", collect)
    .option("--tail", "only live events, none from history")
    .addHelpText(
      "after",
      `
One line per event (time, sequence, type, details), or with --json one
protobuf-JSON Event per line. After a dropped stream it reconnects (backoff
250 ms doubling to 5 s) from the last sequence it printed: no event twice.
A --since older than the pool's retention exits with 1 (OUT_OF_RANGE).`,
    )
    .action(
      async (
        flags: PoolFlags & {
          since?: bigint;
          after?: bigint;
          type?: EventType[];
          subscription?: string[];
          tail?: boolean;
        },
      ) => {
        const { client, url } = hooks.connect(flags);
        hooks.exit(
          await followEvents({
            client,
            url,
            afterSequence: flags.since ?? flags.after ?? 0n,
            tail: flags.tail === true,
            types: flags.type ?? [],
            subscriptionIds: flags.subscription ?? [],
            json: flags.json === true,
            stdout,
            stderr,
          }),
        );
      },
    );

  poolCommand(program, "allocate", "place a session on the healthiest eligible subscription (or resume it)")
    .option("--session <id>", "the session id (default: the pool makes one)")
    .option("--model <model>", 'model hint: "opus", "sonnet" or a model id')
    .addOption(priorityOption())
    .option(
      "--client <name>",
      "the client to book the session to (default: the token's name, else default)",
      parseClientName,
    )
    .addOption(
      new Option(
        "--wait [seconds]",
        "when no subscription is free, wait for a slot instead of falling back: up to SECONDS (default: the pool's queue.maxWaitSeconds)",
      ).argParser(parseSeconds),
    )
    .addHelpText(
      "after",
      `
Prints the session, the client it was booked to (and how long it waited),
the subscription and the CLAUDE_CONFIG_DIR to run Claude with; or the paid
API and why (a client limit names the client and the limit). A token given
a name (role:name:token) may only name its own client with --client. A wait
that runs out, a full queue, or a client limit with fallback off exits with
75 (RESOURCE_EXHAUSTED).`,
    )
    // --wait alone is `true`: wait as long as the pool allows.
    .action(
      async (
        flags: PoolFlags & {
          session?: string;
          model?: string;
          priority?: Priority;
          client?: string;
          wait?: number | true;
        },
      ) => {
        const { client } = hooks.connect(flags);
        const { wait } = flags;
        const res = await client.allocate(
          {
            sessionId: flags.session ?? "",
            model: flags.model ?? "",
            priority: flags.priority ?? Priority.NORMAL,
            client: flags.client ?? "",
            ...waitFields(wait),
          },
          waitCallOptions(wait),
        );
        reply(
          flags,
          () => toJsonString(AllocateResponseSchema, res, { prettySpaces: 2 }),
          () => allocationLines(res),
        );
      },
    );

  poolCommand(program, "usage", "who spent the pool: cost, tokens and requests by client, subscription or model")
    .addOption(new Option("--by <group>", "what to sum by").choices(Object.keys(USAGE_GROUP_NAMES)).default("client"))
    .option(
      "--since <span>",
      "how far back: minutes, hours or days such as 30m, 5h, 7d; at most 8d (default 7d)",
      parseSpan,
    )
    .addHelpText(
      "after",
      `
Sums the pool's durable usage ledger (GetUsage), the same figures the
clients' budgets are checked against, by the hour: the period starts at the
top of the hour SPAN ago. One row per client, subscription or model, largest
cost first: cost (USD at API prices), input and output tokens, cache writes
and reads, requests, and the share of the total cost. Use found in
transcripts is the client "(outside the pool)". --json prints GetUsage's
reply unchanged.`,
    )
    .action(async (flags: PoolFlags & { by: string; since?: number }) => {
      const { client } = hooks.connect(flags);
      const res = await client.getUsage({
        groupBy: USAGE_GROUP_NAMES[flags.by],
        ...(flags.since !== undefined ? { since: durationFromMs(flags.since) } : {}),
      });
      const colors = colorsFor({ stream: stdout, env });
      reply(
        flags,
        () => toJsonString(GetUsageResponseSchema, res, { prettySpaces: 2 }),
        () => renderUsage(res, { by: flags.by, colors }),
      );
    });

  poolCommand(program, "report", "report what a run consumed: the stdout of `claude -p` (json, stream-json, or text)")
    .requiredOption("--session <id>", "the session the run belonged to")
    .option("--file <file>", "read the output from this file (or - for stdin)")
    .argument("[file]", "the same as --file; - reads stdin")
    .option("--request-id <key>", "idempotency key: a report sent again with it counts once")
    .action(
      async (file: string | undefined, flags: PoolFlags & { session: string; file?: string; requestId?: string }) => {
        const source = flags.file ?? file;
        if (source === undefined) throw new UsageError("report: give the output as --file FILE, FILE, or - for stdin");
        const output = await readInput(source, options.stdin ?? process.stdin);
        const { client } = hooks.connect(flags);
        const res = await client.reportUsage({
          sessionId: flags.session,
          requestId: flags.requestId ?? "",
          source: { case: "claudeOutput", value: output },
        });
        reply(
          flags,
          () => toJsonString(ReportUsageResponseSchema, res, { prettySpaces: 2 }),
          () => reportLines(res),
        );
      },
    );

  poolCommand(program, "release", "free a session's slot (releasing a session that is not held is not an error)")
    .requiredOption("--session <id>", "the session to release")
    .action(async (flags: PoolFlags & { session: string }) => {
      const { client } = hooks.connect(flags);
      const res = await client.release({ sessionId: flags.session });
      reply(
        flags,
        () => toJsonString(ReleaseResponseSchema, res, { prettySpaces: 2 }),
        () => releaseLine(flags.session, res),
      );
    });

  poolCommand(program, "rebalance", "move idle sessions off the most loaded subscriptions now")
    .option("--dry-run", "only show the moves a rebalance would make")
    .action(async (flags: PoolFlags & { dryRun?: boolean }) => {
      const { client } = hooks.connect(flags);
      const res = await client.rebalance({ dryRun: flags.dryRun === true });
      reply(
        flags,
        () => toJsonString(RebalanceResponseSchema, res, { prettySpaces: 2 }),
        () => rebalanceLines(res),
      );
    });

  const toggles = [
    {
      name: "pause",
      about: "stop placing new sessions on a subscription; its sessions move on their next allocate",
      paused: true,
    },
    { name: "resume", about: "place sessions on a paused subscription again", paused: false },
  ];
  for (const t of toggles) {
    poolCommand(program, t.name, t.about)
      .argument("<id>", "subscription id")
      .action(async (id: string, flags: PoolFlags) => {
        const { client } = hooks.connect(flags);
        const res = await client.setPaused({ subscriptionId: id, paused: t.paused });
        reply(
          flags,
          () => toJsonString(SetPausedResponseSchema, res, { prettySpaces: 2 }),
          () => subscriptionLine(res.subscription),
        );
      });
  }
  const drains = [
    { name: "drain", about: "take no new sessions on a subscription; the ones it holds finish there", drained: true },
    { name: "undrain", about: "end a drain: the subscription takes new sessions again", drained: false },
  ];
  for (const d of drains) {
    poolCommand(program, d.name, d.about)
      .argument("<id>", "subscription id")
      .action(async (id: string, flags: PoolFlags) => {
        const { client } = hooks.connect(flags);
        const res = await client.setDrained({ subscriptionId: id, drained: d.drained });
        reply(
          flags,
          () => toJsonString(SetDrainedResponseSchema, res, { prettySpaces: 2 }),
          () => subscriptionLine(res.subscription),
        );
      });
  }

  const cooldown = program
    .command("cooldown")
    .description("end a subscription's cooldowns early (see `authpool cooldown clear --help`)");
  poolCommand(
    cooldown,
    "clear",
    "end a subscription's cooldowns and throttle pause now, when you know it works again (recorded as an event)",
  )
    .argument("<id>", "subscription id")
    .option("--model <family>", "clear only this model family's cooldown: opus or sonnet")
    .option("--reason <text>", "why, in your words; kept in the event")
    .action(async (id: string, flags: PoolFlags & { model?: string; reason?: string }) => {
      const { client } = hooks.connect(flags);
      const res = await client.clearCooldown({
        subscriptionId: id,
        modelScope: flags.model ?? "",
        reason: flags.reason ?? "",
      });
      reply(
        flags,
        () => toJsonString(ClearCooldownResponseSchema, res, { prettySpaces: 2 }),
        () => clearedLines(id, res),
      );
    });

  poolCommand(
    program,
    "reload",
    "make the pool re-read its config file (an invalid file is refused and nothing changes)",
  ).action(async (flags: PoolFlags) => {
    const { client } = hooks.connect(flags);
    const res = await client.reloadConfig({});
    reply(
      flags,
      () => toJsonString(ReloadConfigResponseSchema, res, { prettySpaces: 2 }),
      () => reloadLines(res),
    );
  });

  poolCommand(
    program,
    "exec",
    "run a command (e.g. claude -p ...) on a pooled subscription: allocate, run, report, release",
    {
      json: false,
    },
  )
    .usage("[options] -- <command...>")
    .argument("<command...>", "the command and its arguments, after --")
    .option("--session <id>", "session id (default: a new random one)")
    .option("--keep", "do not release the session at the end (to resume it with --session)")
    .option("--retry-on-limit", "if the run hits a usage limit, run it once more on another subscription")
    .option("--model <model>", "model hint for allocate (default: the command's own --model, if any)")
    .addOption(priorityOption())
    .option(
      "--client <name>",
      "the client to book the run to (default: the token's name, else default)",
      parseClientName,
    )
    .addOption(
      new Option(
        "--wait [seconds]",
        "when no subscription is free, wait for a slot instead of falling back: up to SECONDS (default: the pool's queue.maxWaitSeconds)",
      ).argParser(parseSeconds),
    )
    .option(
      "--fallback-env <name>",
      "env var that holds a paid-API key, used only when no subscription is available " +
        "(repeatable; default: $AUTHPOOL_FALLBACK_ENV, comma-separated, else ANTHROPIC_API_KEY)",
      collect,
    )
    // Everything after the command's first word is the command's own: its
    // flags (`-e`, `--model`) must reach it untouched.
    .passThroughOptions()
    .addHelpText(
      "after",
      `
Exits with the command's exit code, or 75 when no subscription is available
and no fallback variable is set.

Example:
  authpool exec --retry-on-limit -- claude -p "What is 2+2?" --output-format json`,
    )
    .action(
      async (
        command: string[],
        flags: PoolFlags & {
          session?: string;
          keep?: boolean;
          retryOnLimit?: boolean;
          model?: string;
          priority?: Priority;
          client?: string;
          wait?: number | true;
          fallbackEnv?: string[];
        },
      ) => {
        const { client, url } = hooks.connect(flags);
        const runExec = options.runExec ?? (await import("./exec.js")).runExec;
        hooks.exit(
          await runExec({
            client,
            server: url,
            command,
            sessionId: flags.session,
            keep: flags.keep === true,
            retryOnLimit: flags.retryOnLimit === true,
            model: flags.model,
            priority: flags.priority,
            ...(flags.client !== undefined ? { clientName: flags.client } : {}),
            ...(flags.wait !== undefined ? { wait: flags.wait } : {}),
            fallbackEnv: flags.fallbackEnv ?? defaultFallbackEnv(env),
            env,
            stdout,
            stderr,
          }),
        );
      },
    );

  program
    .command("init")
    .description("write a pool config for the Claude config dirs on this machine (or the ones given)")
    .argument("[paths...]", "Claude config dirs (default: found under your home directory)")
    .option("--output <file>", "the config file to write", "authpool.yaml")
    .option("--force", "overwrite the output file if it exists")
    .action(async (paths: string[], flags: { output: string; force?: boolean }) => {
      const runInit = options.runInit ?? (await import("./init.js")).runInit;
      hooks.exit(
        await runInit({ home: options.home, paths, output: flags.output, force: flags.force === true, stdout, stderr }),
      );
    });

  return program;
}

/** poolCommand adds a command that calls the pool, with the options every such command shares. */
function poolCommand(program: Command, name: string, description: string, { json = true } = {}): Command {
  const command = program
    .command(name)
    .description(description)
    .option("--server <url>", `the pool's URL (default: $AUTHPOOL_URL, else ${DEFAULT_SERVER})`)
    // --url is what the first CLI called it; kept so old scripts still work.
    .addOption(new Option("--url <url>").hideHelp())
    .option("--token <token>", "bearer token, when the pool requires one (default: $AUTHPOOL_TOKEN)")
    .option("--ca <file>", "PEM certificate to trust for an https:// pool (default: $AUTHPOOL_CA)");
  if (json) command.option("--json", "print the reply as protobuf JSON");
  return command;
}

function priorityOption(): Option {
  return new Option("--priority <priority>", "low, normal or high (default: normal)").argParser((value) => {
    const priority = PRIORITY_NAMES[value.toLowerCase()];
    if (priority === undefined) throw new InvalidArgumentError("expected low, normal or high.");
    return priority;
  });
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

function collectEventTypes(value: string, previous: EventType[] | undefined): EventType[] {
  const types = [...(previous ?? [])];
  // Comma lists too (`--type failover,limit_reached`), and either spelling of the separator.
  for (const name of value.split(",")) {
    const type = EVENT_TYPE_NAMES[name.trim().toLowerCase().replaceAll("-", "_")];
    if (type === undefined)
      throw new InvalidArgumentError(`expected one of ${Object.keys(EVENT_TYPE_NAMES).join(", ")}.`);
    types.push(type);
  }
  return types;
}

function parseSequence(value: string): bigint {
  if (!/^[0-9]{1,20}$/.test(value)) throw new InvalidArgumentError("expected a sequence number (0 or more).");
  return BigInt(value);
}

const SPAN_UNIT_MS: Readonly<Record<string, number>> = { m: MINUTE_MS, h: HOUR_MS, d: DAY_MS };

/** parseSpan reads `usage --since` (30m, 5h, 7d) as milliseconds, no more than the ledger keeps. */
function parseSpan(value: string): number {
  const m = /^([1-9][0-9]{0,5})([mhd])$/.exec(value);
  if (m === null) throw new InvalidArgumentError("expected minutes, hours or days such as 30m, 5h or 7d.");
  const ms = Number(m[1]) * SPAN_UNIT_MS[m[2]!]!;
  if (ms > BUCKET_RETENTION_MS)
    throw new InvalidArgumentError(
      `expected at most ${BUCKET_RETENTION_MS / DAY_MS}d: the usage ledger keeps no more.`,
    );
  return ms;
}

function parseClientName(value: string): string {
  if (!CLIENT_NAME_PATTERN.test(value)) {
    throw new InvalidArgumentError(
      "expected a client name: 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit.",
    );
  }
  return value;
}

function parseSeconds(value: string): number {
  const seconds = Number(value);
  if (!Number.isFinite(seconds) || seconds <= 0) throw new InvalidArgumentError("expected a number of seconds > 0.");
  return seconds;
}

function defaultFallbackEnv(env: NodeJS.ProcessEnv): string[] {
  const names = (env.AUTHPOOL_FALLBACK_ENV ?? "")
    .split(",")
    .map((n) => n.trim())
    .filter((n) => n !== "");
  return names.length > 0 ? names : ["ANTHROPIC_API_KEY"];
}

/** normaliseUrl lets `--server 10.0.0.5:50051` mean http://10.0.0.5:50051, as grpcurl users would type it. */
function normaliseUrl(url: string): string {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(url) ? url : `http://${url}`;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === "" ? undefined : value;
}

async function readInput(source: string, stdin: NodeJS.ReadableStream): Promise<string> {
  if (source !== "-") {
    return readFile(source, "utf8").catch((error: NodeJS.ErrnoException) => {
      throw new UsageError(`cannot read ${source}: ${error.code ?? error.message}`);
    });
  }
  const chunks: Buffer[] = [];
  for await (const chunk of stdin) chunks.push(typeof chunk === "string" ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks).toString("utf8");
}
