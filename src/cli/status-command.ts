import { type Command, Option } from "commander";
import { colorsFor } from "./colors.js";
import type { CommandContext } from "./command-context.js";
import { type PoolFlags, poolCommand } from "./connection-flags.js";
import { parseSeconds } from "./flag-parsers.js";
import { showStatus } from "./show-status.js";

/** StatusFlags are what `status` is asked for besides the pool; --watch alone is `true`. */
type StatusFlags = PoolFlags & { sessions?: boolean; compact?: boolean; problems?: boolean; watch?: number | true };

/** addStatusCommand adds `status`, the pool's table, once or redrawn with --watch. */
export function addStatusCommand(program: Command, context: CommandContext): void {
  const { stdout, env } = context.cli;
  poolCommand(program, "status", "show every subscription: status, health, 5-hour and weekly use, sessions, cooldowns")
    .option("--sessions", "also list the sessions")
    .option("--compact", "one line per subscription (at most 100 columns) instead of the tables")
    .option("--problems", "only the subscriptions whose status is not available (the totals still cover the pool)")
    .addOption(
      new Option("--watch [seconds]", "re-render every SECONDS (default 2) until Ctrl-C").argParser(parseSeconds),
    )
    .addHelpText(
      "after",
      `
Each use figure says what it rests on: "oauth 42s" (the OAuth usage endpoint,
42 s ago), "stale headers 20m" (an old reading, kept as a floor), "learned"
(local spend at the ratio learned from upstream) or "budget" (local spend over
the configured budget). Under the subscriptions a total line sums the pool
up: subscriptions available, session slots held, weekly capacity left.
--json prints GetPoolStatus's reply unchanged (--problems does not filter it).`,
    )
    // --watch alone is `true` (commander calls no parser without a value).
    .action(async (flags: StatusFlags) => {
      const connection = context.connect(flags);
      context.exit(
        await showStatus({
          client: connection.client,
          target: connection,
          sessions: flags.sessions === true,
          json: flags.json === true,
          compact: flags.compact === true,
          problems: flags.problems === true,
          ...(flags.watch !== undefined ? { watchSeconds: flags.watch === true ? 2 : flags.watch } : {}),
          stdout,
          colors: colorsFor({ stream: stdout, env }),
        }),
      );
    });
}
