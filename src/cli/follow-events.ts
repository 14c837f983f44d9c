import { setTimeout as sleep } from "node:timers/promises";
import { Code, ConnectError } from "@connectrpc/connect";
import type { EventType } from "../../gen/authpool/v1/auth_pool_pb.js";
import type { AuthPoolClient } from "../client/index.js";
import { backoffDelay } from "../domain/index.js";
import { codeName, describeConnectError, isConnectionFailure, type PoolTarget } from "./connect-errors.js";
import { eventText } from "./event-line.js";
import { ExitCode, type ExitCodeValue } from "./exit-codes.js";

/** TextSink is where the CLI writes: process.stdout and process.stderr, or a test's buffer. */
export interface TextSink {
  write(text: string): unknown;
}

/** EventQuery is which events `events` prints, from where, how, and how many. */
export interface EventQuery {
  /** Print events after this sequence (0: from the oldest retained). */
  afterSequence: bigint;
  /** Empty: every type. */
  types: EventType[];
  /** Empty: every subscription. */
  subscriptionIds: string[];
  /** One protobuf-JSON object per line instead of a readable line. */
  json: boolean;
  /** Stop after printing this many; absent: no limit. */
  limit?: number;
}

/** FollowEventsOptions: what to follow, from where, and where to print. */
export interface FollowEventsOptions extends EventQuery {
  client: AuthPoolClient;
  /** The pool's URL and --ca file, for messages. */
  target: PoolTarget;
  /** Only live events at first (afterSequence is ignored until one arrives). */
  tail: boolean;
  stdout: TextSink;
  stderr: TextSink;
  /** Reconnect delay: starts at initialMs, doubles up to maxMs. Default 250 ms .. 5 s. */
  backoff?: { initialMs: number; maxMs: number };
  /** After an outage, a new stream that has not failed for this long has resumed. Default 1 s. */
  resumedAfterMs?: number;
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
 * followEvents prints pool events until it is stopped (or has printed
 * `limit`), resuming after a dropped stream or a restarted pool from the
 * last sequence it printed, so it never prints an event twice nor skips one
 * the pool still retains. An outage is said once on stderr, however many
 * reconnects it takes, and its end once. It only returns on a stop or the
 * limit (0) or an error retrying cannot fix (its exit code).
 */
export async function followEvents(options: FollowEventsOptions): Promise<ExitCodeValue> {
  const { client, stdout, stderr, signal, target } = options;
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
  let printed = 0;
  let connectedOnce = false;
  // Set between the "lost" line and the "resumed" one.
  let outage = false;
  const resumed = () => {
    if (!outage) return;
    outage = false;
    stderr.write(`authpool: event stream resumed from ${target.url}, ${resumingFrom(tail, cursor)}\n`);
  };
  // Reaching the limit ends the stream itself: leaving the loop alone would
  // keep the HTTP/2 stream, and with it the process, alive.
  const done = new AbortController();
  const ended = signal === undefined ? done.signal : AbortSignal.any([signal, done.signal]);
  // A function, not an expression: TypeScript would narrow `aborted` across the awaits.
  const stopped = () => signal?.aborted === true;
  while (!stopped()) {
    const started = Date.now();
    let received = false;
    let failure: ConnectError;
    // The pool sends nothing until there is an event, so a stream that
    // merely stays up is the only sign an idle pool is back.
    const held = setTimeout(resumed, options.resumedAfterMs ?? 1000);
    try {
      const stream = client.streamEvents(
        { afterSequence: cursor, tail, types: options.types, subscriptionIds: options.subscriptionIds },
        { signal: ended },
      );
      for await (const { event } of stream) {
        if (event === undefined) continue;
        received = true;
        connectedOnce = true;
        resumed();
        // The server resumes strictly after the cursor; the check keeps that
        // promise even if a server were to replay.
        if (event.sequence <= cursor) continue;
        stdout.write(`${eventText(event, options.json)}\n`);
        cursor = event.sequence;
        // From the first event on, a reconnect resumes from it: --tail must
        // not skip what happened while the stream was down.
        tail = false;
        if (++printed === options.limit) {
          done.abort();
          return ExitCode.ok;
        }
      }
      failure = new ConnectError("the pool ended the stream", Code.Unavailable);
    } catch (error) {
      if (stopped()) break;
      failure = ConnectError.from(error);
    } finally {
      clearTimeout(held);
    }
    // Never connected (a wrong URL, TLS on one side only, or no pool yet): a
    // script wants to hear about that now rather than wait on forever.
    if ((!connectedOnce && isConnectionFailure(failure, target)) || !TRANSIENT.has(failure.code)) {
      return reportEventsFailure(failure, target, stderr);
    }
    connectedOnce = connectedOnce || !isConnectionFailure(failure, target);
    if (received || Date.now() - started >= maxMs) failures = 0;
    failures++;
    // One line per outage: the reconnects that follow retry quietly until
    // the stream holds again.
    if (!outage) {
      stderr.write(
        `authpool: event stream lost (${codeName(failure.code)}: ${failure.rawMessage}); ` +
          `reconnecting to ${target.url}, resuming ${resumingFrom(tail, cursor)}\n`,
      );
      outage = true;
    }
    try {
      await sleep(backoffDelay(failures, backoff), undefined, signal !== undefined ? { signal } : {});
    } catch {
      break; // aborted while waiting
    }
  }
  return ExitCode.ok;
}

function resumingFrom(tail: boolean, cursor: bigint): string {
  return tail ? "live events" : `after sequence ${cursor}`;
}

/** reportEventsFailure says why `events` stops, and returns its exit code. */
export function reportEventsFailure(failure: ConnectError, target: PoolTarget, stderr: TextSink): ExitCodeValue {
  const report = describeConnectError(failure, target);
  const hint =
    failure.code === Code.OutOfRange
      ? "\nThe pool no longer keeps events that old: follow from --since 0 (the oldest kept) or --tail."
      : "";
  stderr.write(`${report.message}${hint}\n`);
  return report.exitCode;
}
