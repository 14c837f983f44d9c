import { setTimeout as sleep } from "node:timers/promises";
import { toJsonString } from "@bufbuild/protobuf";
import { ConnectError } from "@connectrpc/connect";
import { GetPoolStatusResponseSchema } from "../../gen/authpool/v1/auth_pool_pb.js";
import type { AuthPoolClient } from "../client/index.js";
import type { Colors } from "./colors.js";
import { describeConnectError, type PoolTarget } from "./connect-errors.js";
import { ExitCode, type ExitCodeValue } from "./exit-codes.js";
import type { TextSink } from "./follow-events.js";
import { renderStatus } from "./status-table.js";

/** ShowStatusOptions: what `authpool status` was asked for. */
export interface ShowStatusOptions {
  client: AuthPoolClient;
  /** The pool's URL and --ca file, for messages. */
  target: PoolTarget;
  /** Ask for sessions too (GetPoolStatus include_sessions). */
  sessions: boolean;
  /** Print the reply as protobuf JSON, exactly as GetPoolStatus answers it. */
  json: boolean;
  /** One line per subscription (see status-compact.ts). */
  compact: boolean;
  /** Only subscriptions whose status is not `available`. */
  problems: boolean;
  /** Re-render every this many seconds until stopped; absent: once. */
  watchSeconds?: number;
  /** isTTY decides whether the screen is cleared between renderings. */
  stdout: TextSink & { isTTY?: boolean };
  colors: Colors;
  /** Ends a watch; showStatus then resolves with 0. */
  signal?: AbortSignal;
}

// Home, then clear: each rendering replaces the last instead of scrolling.
const CLEAR_SCREEN = "\x1b[H\x1b[2J";

/**
 * showStatus prints the pool's status once, or keeps re-rendering it with
 * `watchSeconds`. A failed call throws (for main to map to an exit code),
 * except during a watch that has already shown something: then the error
 * takes the table's place until the pool answers again, as `watch(1)` would.
 */
export async function showStatus(options: ShowStatusOptions): Promise<ExitCodeValue> {
  const { client, stdout, signal } = options;
  const render = async () => {
    const res = await client.getPoolStatus({ includeSessions: options.sessions });
    return options.json
      ? toJsonString(GetPoolStatusResponseSchema, res, { prettySpaces: 2 })
      : renderStatus(res, { colors: options.colors, compact: options.compact, problems: options.problems });
  };
  if (options.watchSeconds === undefined) {
    stdout.write(`${await render()}\n`);
    return ExitCode.ok;
  }
  const tty = stdout.isTTY === true;
  for (let first = true; signal?.aborted !== true; first = false) {
    let text: string;
    try {
      text = await render();
    } catch (error) {
      if (first || !(error instanceof ConnectError)) throw error;
      text = `${describeConnectError(error, options.target).message}\n(retrying every ${options.watchSeconds}s)`;
    }
    const title = options.colors.dim(`every ${options.watchSeconds}s · Ctrl-C to stop`);
    stdout.write(tty ? `${CLEAR_SCREEN}${title}\n${text}\n` : `${text}\n\n`);
    try {
      await sleep(options.watchSeconds * 1000, undefined, signal !== undefined ? { signal } : {});
    } catch {
      break; // stopped while waiting
    }
  }
  return ExitCode.ok;
}
