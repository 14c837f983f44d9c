import { setTimeout as sleep } from "node:timers/promises";
import { ConnectError } from "@connectrpc/connect";
import type { AuthPoolClient } from "../client/index.js";
import type { PoolTarget } from "./connect-errors.js";
import { eventText } from "./event-line.js";
import { ExitCode, type ExitCodeValue } from "./exit-codes.js";
import { type EventQuery, reportEventsFailure, type TextSink } from "./follow-events.js";
import { newestSequence } from "./newest-event.js";

/** RetainedEventsOptions: which retained events to print, and where. */
export interface RetainedEventsOptions extends EventQuery {
  client: AuthPoolClient;
  /** The pool's URL and --ca file, for messages. */
  target: PoolTarget;
  stdout: TextSink;
  stderr: TextSink;
  /**
   * With a filter, the last matching event may come long before the
   * newest: the pool has sent all it keeps once it has sent nothing for
   * this long. Default 500 ms.
   */
  quietMs?: number;
}

/**
 * printRetained prints the events the pool keeps after the cursor and
 * returns (`events --no-follow`): up to the newest event at the start, so a
 * busy pool does not keep it going, and no retry: a failure is the answer.
 */
export async function printRetained(options: RetainedEventsOptions): Promise<ExitCodeValue> {
  const { client, stdout, stderr, target } = options;
  const quietMs = options.quietMs ?? 500;
  const filtered = options.types.length > 0 || options.subscriptionIds.length > 0;
  const stop = new AbortController();
  let quiet: AbortController | undefined;
  // Rearmed at every event: the stream is over once the pool goes quiet.
  const rearm = () => {
    quiet?.abort();
    quiet = new AbortController();
    sleep(quietMs, undefined, { signal: quiet.signal }).then(
      () => stop.abort(),
      () => {},
    );
  };
  let printed = 0;
  try {
    const newest = await newestSequence(client, Math.max(quietMs, 2000));
    if (newest !== undefined && options.afterSequence >= newest) return ExitCode.ok;
    // Unfiltered, the newest event is the end: no need to wait for quiet.
    if (newest === undefined || filtered) rearm();
    const stream = client.streamEvents(
      { afterSequence: options.afterSequence, types: options.types, subscriptionIds: options.subscriptionIds },
      { signal: stop.signal },
    );
    for await (const { event } of stream) {
      if (event === undefined) continue;
      // Live: it happened after the command started.
      if (newest !== undefined && event.sequence > newest) break;
      stdout.write(`${eventText(event, options.json)}\n`);
      if (++printed === options.limit) break;
      if (newest !== undefined && event.sequence >= newest) break;
      if (quiet !== undefined) rearm();
    }
    return ExitCode.ok;
  } catch (error) {
    if (stop.signal.aborted) return ExitCode.ok;
    return reportEventsFailure(ConnectError.from(error), target, stderr);
  } finally {
    quiet?.abort();
    stop.abort();
  }
}
