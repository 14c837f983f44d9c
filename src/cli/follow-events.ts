import { setTimeout as sleep } from "node:timers/promises";
import { toJsonString } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { type EventType, EventSchema } from "../../gen/authpool/v1/auth_pool_pb.js";
import type { AuthPoolClient } from "../client/index.js";
import { backoffDelay } from "../domain/index.js";
import { codeName, describeConnectError, isUnreachable } from "./connect-errors.js";
import { formatEvent } from "./event-line.js";
import { ExitCode, type ExitCodeValue } from "./exit-codes.js";

/** TextSink is where the CLI writes: process.stdout and process.stderr, or a test's buffer. */
export interface TextSink {
  write(text: string): unknown;
}

/** FollowEventsOptions: what to follow, from where, and where to print. */
export interface FollowEventsOptions {
  client: AuthPoolClient;
  /** The pool's URL, for messages. */
  url: string;
  /** Print events after this sequence (0: from the oldest retained). */
  afterSequence: bigint;
  /** Only live events at first (afterSequence is ignored until one arrives). */
  tail: boolean;
  /** Empty: every type. */
  types: EventType[];
  /** Empty: every subscription. */
  subscriptionIds: string[];
  /** One protobuf-JSON object per line instead of a readable line. */
  json: boolean;
  stdout: TextSink;
  stderr: TextSink;
  /** Reconnect delay: starts at initialMs, doubles up to maxMs. Default 250 ms .. 5 s. */
  backoff?: { initialMs: number; maxMs: number };
  /** Stops following; followEvents then resolves with 0. */
  signal?: AbortSignal;
}

// Errors after which the same request may well succeed: the pool restarting
// ("shutting down; resume with after_sequence N"), a dropped connection, or
// this reader falling too far behind (RESOURCE_EXHAUSTED names the cursor,
// which is ours anyway). Anything else (a bad token, a cursor older than
// retention) will not change by retrying.
const TRANSIENT = new Set([
  Code.Unavailable,
  Code.ResourceExhausted,
  Code.Aborted,
  Code.Internal,
  Code.Unknown,
  Code.Canceled,
  Code.DeadlineExceeded,
]);

/**
 * followEvents prints pool events until it is stopped, resuming after a
 * dropped stream or a restarted pool from the last sequence it printed, so
 * it never prints an event twice nor skips one the pool still retains. It
 * only returns on a stop (0) or an error retrying cannot fix (its exit code).
 */
export async function followEvents(options: FollowEventsOptions): Promise<ExitCodeValue> {
  const { client, stdout, stderr, signal } = options;
  const { initialMs, maxMs } = options.backoff ?? { initialMs: 250, maxMs: 5000 };
  const backoff = { baseMs: initialMs, maxMs };
  // With --tail the cursor means nothing until the first live event.
  let cursor = options.tail ? 0n : options.afterSequence;
  // Until a --tail follower has seen an event it has no cursor, so a
  // reconnect asks for live events again; the API offers no "current
  // sequence" to resume from instead.
  let tail = options.tail;
  // Reconnects since the stream last held: the backoff's attempt.
  let failures = 0;
  let connectedOnce = false;
  let inOutage = false;
  // A function, not an expression: TypeScript would narrow `aborted` across the awaits.
  const stopped = () => signal?.aborted === true;
  while (!stopped()) {
    const started = Date.now();
    let received = false;
    let failure: ConnectError;
    try {
      const stream = client.streamEvents(
        { afterSequence: cursor, tail, types: options.types, subscriptionIds: options.subscriptionIds },
        signal !== undefined ? { signal } : {},
      );
      for await (const { event } of stream) {
        if (event === undefined) continue;
        received = true;
        connectedOnce = true;
        inOutage = false;
        // The server resumes strictly after the cursor; the check keeps that
        // promise even if a server were to replay.
        if (event.sequence <= cursor) continue;
        stdout.write(`${options.json ? toJsonString(EventSchema, event) : formatEvent(event)}\n`);
        cursor = event.sequence;
        // From the first event on, a reconnect resumes from it: --tail must
        // not skip what happened while the stream was down.
        tail = false;
      }
      failure = new ConnectError("the pool ended the stream", Code.Unavailable);
    } catch (error) {
      if (stopped()) break;
      failure = ConnectError.from(error);
    }
    if (!connectedOnce && isUnreachable(failure)) {
      // Never connected: a wrong URL or no pool yet, which a script wants to
      // hear about now rather than wait on forever.
      const report = describeConnectError(failure, options.url);
      return fail(stderr, report.message, report.exitCode);
    }
    if (!TRANSIENT.has(failure.code)) {
      const report = describeConnectError(failure, options.url);
      const hint =
        failure.code === Code.OutOfRange
          ? "\nThe pool no longer keeps events that old: follow from --since 0 (the oldest kept) or --tail."
          : "";
      return fail(stderr, report.message + hint, report.exitCode);
    }
    connectedOnce = connectedOnce || !isUnreachable(failure);
    if (received || Date.now() - started >= maxMs) failures = 0;
    failures++;
    // One note per outage: refused connections while the pool is still down
    // are the same outage; any other failure means we had got through again.
    if (!inOutage || !isUnreachable(failure)) {
      const from = tail ? "live events" : `after sequence ${cursor}`;
      stderr.write(
        `authpool: event stream lost (${codeName(failure.code)}: ${failure.rawMessage}); ` +
          `reconnecting to ${options.url}, resuming ${from}\n`,
      );
      inOutage = true;
    }
    try {
      await sleep(backoffDelay(failures, backoff), undefined, signal !== undefined ? { signal } : {});
    } catch {
      break; // aborted while waiting
    }
  }
  return ExitCode.ok;
}

function fail(stderr: TextSink, message: string, code: ExitCodeValue): ExitCodeValue {
  stderr.write(`${message}\n`);
  return code;
}
