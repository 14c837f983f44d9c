/**
 * `authpool exec -- claude -p ...`: run one command on a pooled subscription.
 * Allocate a session, run the command with CLAUDE_CONFIG_DIR set to the
 * granted config dir, report its stdout as claude_output, release. With
 * retryOnLimit, a run that hit a usage limit is run once more on the
 * subscription the pool moves the session to. On a fallback the command runs
 * on the paid API, if the environment carries a key for it. A limit of the
 * calling client (its budget, share, sessions or models) is not a pool
 * failover and is not worded as one: the run goes where the pool sends it
 * (the paid API, with a key), else nothing runs.
 */
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import os from "node:os";
import type { Readable } from "node:stream";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { limitName } from "./enum-names.js";
import { ExitCode } from "./exit-codes.js";
import { waitCallOptions, waitFields } from "./wait-flag.js";
import { watchAllocation } from "./watch-allocation.js";
import {
  type AuthPoolClient,
  type ClientLimit,
  ClientLimitSchema,
  type LimitDetected,
  LimitWindow,
  Priority,
  type SubscriptionGrant,
} from "../client/index.js";

/** ExecOptions configure one runExec call; the caller supplies every default but sessionId and model. */
export interface ExecOptions {
  client: AuthPoolClient;
  /** The pool's URL, for messages. */
  server: string;
  /** The command and its arguments (argv after `--`), run without a shell. */
  command: string[];
  /** Default: a random UUID. */
  sessionId?: string;
  /** Do not release the session at the end. */
  keep: boolean;
  /** Run once more on another subscription when the first run hit a usage limit. */
  retryOnLimit: boolean;
  /** Allocate's model hint. Default: the value of `--model X` / `--model=X` in command, if any. */
  model?: string;
  /** Default: unspecified (normal). */
  priority?: Priority;
  /** The client to book the run to (default: the token's name, else default). */
  clientName?: string;
  /** Wait for a slot rather than fall back: up to this many seconds, or (true) as long as the pool allows. */
  wait?: number | true;
  /** Names of env vars used only on a fallback (stripped from subscription runs), e.g. ["ANTHROPIC_API_KEY"]. */
  fallbackEnv: string[];
  env: NodeJS.ProcessEnv;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

/**
 * EXEC_NO_SUBSCRIPTION is the exit code when nothing ran: no subscription is
 * available, or a limit of the client refuses it one, and no fallback env
 * var is set or the pool sent it nowhere else (EX_TEMPFAIL).
 */
export const EXEC_NO_SUBSCRIPTION = ExitCode.noSubscription;

/**
 * Without a paid-API key a fallback is of no use, and the pool books every
 * fallback it answers as a failover (an event, a Slack alert, the fallback
 * metrics) although nothing would run. So the run asks to wait instead,
 * this briefly, and a pool with nothing free says so without a failover.
 */
const NO_FALLBACK_WAIT_SECONDS = 1;

/** Stdout kept for the report (and, with retryOnLimit, held back before printing). */
const CAPTURE_BYTES = 4 * 1024 * 1024;
/**
 * Above this the report is cut down to the result and rate_limit_event
 * messages, the only ones the server reads: a long stream-json run easily
 * exceeds the server's default limits.maxClaudeOutputBytes (1 MiB).
 */
const CONDENSE_BYTES = 1024 * 1024;

const CONFIG_DIR_VAR = "CLAUDE_CONFIG_DIR";

/**
 * Where Allocate put the session. clientLimit is set when a limit of the
 * calling client, not the pool, decided it.
 */
type Placement =
  | { kind: "grant"; grant: SubscriptionGrant }
  | { kind: "fallback"; provider: string; reason: string; clientLimit?: ClientLimit }
  /** RESOURCE_EXHAUSTED: no subscription and no fallback (disabled, or the call waited). */
  | { kind: "exhausted"; reason: string; clientLimit?: ClientLimit };

/** How one run of the command ended. */
type RunResult =
  | { kind: "exited"; code: number; stdout: string; flushed: boolean; flush: () => void }
  | { kind: "not_started"; code: number };

/**
 * runExec runs options.command on a pooled subscription and resolves to the
 * exit code to exit with: the command's (128 + n for a signal, 127 when it
 * cannot be started), or EXEC_NO_SUBSCRIPTION. RPC errors other than those
 * described reject with the ConnectError; the session is released first
 * (unless keep) on a best-effort basis.
 */
export async function runExec(options: ExecOptions): Promise<number> {
  if (options.command.length === 0) {
    note(options, "exec needs a command after --");
    return 2;
  }
  const sessionId = options.sessionId ?? randomUUID();
  let code: number;
  try {
    code = await execSession(options, sessionId);
  } catch (error) {
    // The first error is the one to report; a failing release must not hide it.
    if (!options.keep) await options.client.release({ sessionId }).catch(() => undefined);
    throw error;
  }
  if (!options.keep) await options.client.release({ sessionId });
  return code;
}

async function execSession(options: ExecOptions, sessionId: string): Promise<number> {
  const placement = await allocate(options, sessionId);
  if (placement.kind !== "grant") return runWithoutSubscription(options, placement);

  const first = await runOnGrant(options, placement.grant, options.retryOnLimit);
  if (first.kind === "not_started") return first.code;
  const limit = await report(options, sessionId, first.stdout).catch((error: unknown) => {
    // The run happened: its held output must not be lost with the report.
    first.flush();
    throw error;
  });
  if (limit !== undefined && (!options.retryOnLimit || first.flushed)) {
    note(options, `${limitNote(placement.grant.subscriptionId, limit)}; the next run goes to another subscription`);
  }
  if (!options.retryOnLimit || limit === undefined || first.flushed) {
    first.flush();
    return first.code;
  }

  note(options, `${limitNote(placement.grant.subscriptionId, limit)}; trying another subscription`);
  // The pool has put the subscription in cooldown: the same session id moves.
  const next = await allocate(options, sessionId);
  if (next.kind !== "grant") return runWithoutSubscription(options, next);
  if (next.grant.subscriptionId === placement.grant.subscriptionId) {
    // E.g. a model-scoped limit with no model hint: a second run would hit it again.
    note(
      options,
      `no other subscription took the session; showing the output of the run on ${placement.grant.subscriptionId}`,
    );
    first.flush();
    return first.code;
  }
  const second = await runOnGrant(options, next.grant, false, "again");
  if (second.kind === "exited") await report(options, sessionId, second.stdout);
  return second.code;
}

async function allocate(options: ExecOptions, sessionId: string): Promise<Placement> {
  try {
    const wait = options.wait ?? (fallbackVars(options).length > 0 ? undefined : NO_FALLBACK_WAIT_SECONDS);
    const request = {
      sessionId,
      model: options.model ?? modelFromCommand(options.command),
      priority: options.priority ?? Priority.UNSPECIFIED,
      client: options.clientName ?? "",
      ...waitFields(wait),
    };
    // A run asked to wait says where it stands in the pool's queue while it does (not the brief wait above).
    const res =
      options.wait === undefined
        ? await options.client.allocate(request, waitCallOptions(wait))
        : await watchAllocation(options.client, request, waitCallOptions(wait), (line) => note(options, line));
    switch (res.outcome.case) {
      case "subscription":
        return { kind: "grant", grant: res.outcome.value };
      case "fallback": {
        const { provider, reason, clientLimit } = res.outcome.value;
        return { kind: "fallback", provider, reason, ...(clientLimit !== undefined ? { clientLimit } : {}) };
      }
      default:
        throw new ConnectError(`Allocate answered without an outcome (${options.server})`, Code.Internal);
    }
  } catch (error) {
    if (error instanceof ConnectError && error.code === Code.ResourceExhausted) {
      const [clientLimit] = error.findDetails(ClientLimitSchema);
      return { kind: "exhausted", reason: error.rawMessage, ...(clientLimit !== undefined ? { clientLimit } : {}) };
    }
    throw error;
  }
}

/**
 * runOnGrant runs the command on the granted subscription, first saying
 * which on stderr: whoever reads the output wants to know which account
 * produced it.
 */
function runOnGrant(
  options: ExecOptions,
  grant: SubscriptionGrant,
  hold: boolean,
  again?: "again",
): Promise<RunResult> {
  const moved = grant.rotatedFrom !== "" ? `; the pool moved the session from ${grant.rotatedFrom}` : "";
  note(
    options,
    `running ${again === undefined ? "" : "again "}on ${grant.subscriptionId} (${grant.configDir}${moved})`,
  );
  const env: NodeJS.ProcessEnv = { ...options.env, [CONFIG_DIR_VAR]: grant.configDir };
  // An API key in the environment would make claude bill the API instead of the subscription.
  for (const name of options.fallbackEnv) delete env[name];
  return runCommand(options, env, hold);
}

async function runWithoutSubscription(
  options: ExecOptions,
  placement: Exclude<Placement, { kind: "grant" }>,
): Promise<number> {
  if (placement.clientLimit !== undefined) return runOverClientLimit(options, placement, placement.clientLimit);
  const present = fallbackVars(options);
  if (placement.kind === "fallback" && present.length > 0) {
    note(
      options,
      `no subscription available (${placement.reason}); running with ${present.join(", ")} (fallback provider ${placement.provider})`,
    );
    return runOnPaidApi(options);
  }
  if (placement.kind === "exhausted" && present.length > 0) {
    // The operator does not want work on the paid API, or the caller asked to wait instead.
    const why = options.wait !== undefined ? "a run that waits does not fall back" : "the pool has fallback disabled";
    note(options, `no subscription available: ${placement.reason}; ${why}, so ${present.join(", ")} is not used`);
  } else if (options.fallbackEnv.length === 0) {
    note(options, `no subscription available: ${placement.reason}`);
  } else {
    note(
      options,
      `no subscription available: ${placement.reason}; set ${options.fallbackEnv.length === 1 ? "" : "one of "}${options.fallbackEnv.join(", ")} to run on the paid API instead`,
    );
  }
  return EXEC_NO_SUBSCRIPTION;
}

/**
 * runOverClientLimit answers a session a limit of the calling client keeps
 * off the subscriptions (its budget, share, sessions or models). That is the
 * client's own doing, not the pool running out, so it says so and names the
 * client and the limit. It runs on the paid API when the pool sent the
 * session there and a key is set, as a pool fallback does; else nothing runs.
 */
async function runOverClientLimit(
  options: ExecOptions,
  placement: Exclude<Placement, { kind: "grant" }>,
  limit: ClientLimit,
): Promise<number> {
  const over = `${limit.detail} (${limitName(limit.kind)} limit)`;
  const present = fallbackVars(options);
  const keys = options.fallbackEnv.join(", ");
  if (placement.kind === "fallback") {
    if (present.length > 0) {
      note(
        options,
        `${over}: the pool sends its new sessions to the paid API; running with ${present.join(", ")} (fallback provider ${placement.provider})`,
      );
      return runOnPaidApi(options);
    }
    note(
      options,
      options.fallbackEnv.length === 0
        ? `${over}: the pool gives its new sessions no subscription`
        : `${over}: the pool gives its new sessions no subscription; set ${options.fallbackEnv.length === 1 ? "" : "one of "}${keys} to run on the paid API instead`,
    );
    return EXEC_NO_SUBSCRIPTION;
  }
  // Refused outright: its fallback (or the pool's) is off, or the call asked to wait, which no limit does.
  const nowhere = `${over}: the pool gives its new sessions no subscription and sent this one nowhere else`;
  note(
    options,
    present.length > 0
      ? `${nowhere}, so ${present.join(", ")} is not used`
      : options.fallbackEnv.length === 0 || options.wait !== undefined
        ? nowhere
        : `${nowhere}; with ${keys} set, it may send it to the paid API`,
  );
  return EXEC_NO_SUBSCRIPTION;
}

/** runOnPaidApi runs the command without a config dir, on the key in the environment. */
async function runOnPaidApi(options: ExecOptions): Promise<number> {
  const env = { ...options.env };
  delete env[CONFIG_DIR_VAR];
  // Not on a subscription: nothing to report.
  return (await runCommand(options, env, false)).code;
}

/** fallbackVars are the fallback variables that hold a key in the environment. */
function fallbackVars(options: ExecOptions): string[] {
  return options.fallbackEnv.filter((name) => (options.env[name] ?? "") !== "");
}

/**
 * report sends a run's stdout as claude_output under a fresh request id (a
 * retried report is then not counted twice) and returns the limit it hit.
 * Output the server cannot read is a note, not a failure: the run happened.
 */
async function report(options: ExecOptions, sessionId: string, stdout: string): Promise<LimitDetected | undefined> {
  try {
    const res = await options.client.reportUsage({
      sessionId,
      requestId: randomUUID(),
      source: { case: "claudeOutput", value: condense(stdout) },
    });
    // Text output (claude's default) and a run cut short carry no cost: say so, once.
    if (res.costUnknown && !res.duplicate) {
      note(
        options,
        `usage not counted: ${res.notes[0] ?? "the output carried no cost"} (use --output-format json or stream-json)`,
      );
    }
    return res.limit;
  } catch (error) {
    if (error instanceof ConnectError && error.code === Code.InvalidArgument) {
      note(options, `usage not reported: ${error.rawMessage}`);
      return undefined;
    }
    throw error;
  }
}

/**
 * runCommand spawns the command (no shell, stdin inherited), passes its
 * stderr through and its stdout too (or holds it back when `hold`), keeps the
 * last CAPTURE_BYTES of stdout, and forwards SIGINT/SIGTERM while it runs.
 */
function runCommand(options: ExecOptions, env: NodeJS.ProcessEnv, hold: boolean): Promise<RunResult> {
  const [file, ...args] = options.command as [string, ...string[]];
  // The real stderr is handed over as is, so claude still sees a terminal there.
  const inheritStderr = options.stderr === process.stderr;
  return new Promise((resolve) => {
    const child = spawn(file, args, { env, stdio: ["inherit", "pipe", inheritStderr ? "inherit" : "pipe"] });
    const sink = createStdoutSink(options.stdout, hold);
    let spawnError: NodeJS.ErrnoException | undefined;

    const forward = (signal: NodeJS.Signals) => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    };
    const onSigint = () => forward("SIGINT");
    const onSigterm = () => forward("SIGTERM");
    process.on("SIGINT", onSigint);
    process.on("SIGTERM", onSigterm);

    child.on("error", (error: NodeJS.ErrnoException) => {
      // Without a pid the command never started; later errors (a failed kill) change nothing.
      if (child.pid === undefined) spawnError = error;
    });
    const childStdout = child.stdout;
    childStdout?.on("data", (chunk: Buffer) => sink.write(chunk, childStdout));
    child.stderr?.on("data", (chunk: Buffer) => options.stderr.write(chunk));
    // "close" comes after "exit" once stdio is drained, and also after a spawn error.
    child.on("close", (code, signal) => {
      process.off("SIGINT", onSigint);
      process.off("SIGTERM", onSigterm);
      if (spawnError !== undefined) {
        resolve({ kind: "not_started", code: notStartedCode(options, file, spawnError) });
        return;
      }
      resolve({
        kind: "exited",
        code: signal !== null ? 128 + (os.constants.signals[signal] ?? 0) : (code ?? 1),
        stdout: sink.captured(),
        flushed: !sink.holding(),
        flush: () => sink.flush(),
      });
    });
  });
}

function notStartedCode(options: ExecOptions, file: string, error: NodeJS.ErrnoException): number {
  if (error.code === "EACCES") {
    note(options, `cannot run ${file}: permission denied`);
    return 126; // the shell's "found but not executable"
  }
  note(
    options,
    error.code === "ENOENT"
      ? `cannot run ${file}: command not found (check PATH)`
      : `cannot run ${file}: ${error.code ?? error.message}`,
  );
  return 127;
}

/** StdoutSink passes the child's stdout on (or holds it) and keeps its tail for the report. */
interface StdoutSink {
  write(chunk: Buffer, source: Readable): void;
  /** Prints held output and passes the rest through. */
  flush(): void;
  holding(): boolean;
  captured(): string;
}

function createStdoutSink(stdout: NodeJS.WritableStream, hold: boolean): StdoutSink {
  const chunks: Buffer[] = [];
  let bytes = 0;
  let holding = hold;
  let truncated = false;
  let waiting = false;

  const pass = (chunk: Buffer, source: Readable | undefined) => {
    if (stdout.write(chunk) || source === undefined || waiting) return;
    // Back-pressure: a slow reader of our stdout slows the child, rather than memory growing.
    waiting = true;
    source.pause();
    stdout.once("drain", () => {
      waiting = false;
      source.resume();
    });
  };
  const flush = (source?: Readable) => {
    if (!holding) return;
    holding = false;
    for (const chunk of chunks) pass(chunk, source);
  };

  return {
    write(chunk, source) {
      chunks.push(chunk);
      bytes += chunk.length;
      if (!holding) pass(chunk, source);
      // Too much to be a limit message: print it and stop holding (no retry then).
      else if (bytes > CAPTURE_BYTES) flush(source);
      while (chunks.length > 1 && bytes - (chunks[0]?.length ?? 0) >= CAPTURE_BYTES) {
        bytes -= chunks.shift()?.length ?? 0;
        truncated = true;
      }
    },
    flush: () => flush(),
    holding: () => holding,
    captured() {
      const all = Buffer.concat(chunks);
      if (!truncated && all.length <= CAPTURE_BYTES) return all.toString("utf8");
      // The result comes last; start at a whole line (stream-json readers skip torn ones anyway).
      const tail = all.subarray(Math.max(0, all.length - CAPTURE_BYTES));
      const newline = tail.indexOf(0x0a);
      return (newline >= 0 ? tail.subarray(newline + 1) : tail).toString("utf8");
    },
  };
}

/**
 * condense keeps only the `result`, `rate_limit_event` and `api_retry`
 * messages of large stream-json output (or of a --verbose JSON array); the
 * retries say what a run cut short before its result was retrying (a
 * throttle, an overload). Smaller output is sent as is.
 */
function condense(stdout: string): string {
  if (Buffer.byteLength(stdout, "utf8") <= CONDENSE_BYTES) return stdout;
  const kept = (value: unknown) => {
    const message = typeof value === "object" && value !== null ? (value as Record<string, unknown>) : {};
    return (
      message["type"] === "result" ||
      message["type"] === "rate_limit_event" ||
      (message["type"] === "system" && message["subtype"] === "api_retry")
    );
  };
  const whole = tryJson(stdout.trim());
  if (Array.isArray(whole)) return JSON.stringify(whole.filter(kept));
  if (whole !== undefined) return stdout;
  return stdout
    .split(/\r?\n/)
    .filter((line) => kept(tryJson(line)))
    .join("\n");
}

function tryJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** modelFromCommand finds `--model X` or `--model=X` among the command's arguments, else "". */
function modelFromCommand(command: readonly string[]): string {
  for (let i = 1; i < command.length; i++) {
    const arg = command[i] ?? "";
    if (arg === "--") break;
    if (arg === "--model") return command[i + 1] ?? "";
    if (arg.startsWith("--model=")) return arg.slice("--model=".length);
  }
  return "";
}

function limitNote(subscriptionId: string, limit: LimitDetected): string {
  const until =
    limit.resetsAt !== undefined
      ? ` until ${timestampDate(limit.resetsAt)
          .toISOString()
          .replace(/\.000Z$/, "Z")}${limit.estimated ? " (estimated)" : ""}`
      : "";
  return `subscription ${subscriptionId} hit its ${windowName(limit.window)} limit${until}`;
}

function windowName(window: LimitWindow): string {
  switch (window) {
    case LimitWindow.FIVE_HOUR:
      return "5-hour";
    case LimitWindow.SEVEN_DAY:
      return "weekly";
    case LimitWindow.SEVEN_DAY_OPUS:
      return "weekly Opus";
    case LimitWindow.SEVEN_DAY_SONNET:
      return "weekly Sonnet";
    case LimitWindow.OVERAGE:
      return "overage";
    default:
      return "usage";
  }
}

function note(options: ExecOptions, message: string): void {
  options.stderr.write(`authpool: ${message}\n`);
}
