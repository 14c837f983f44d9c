import { type Command, Option } from "commander";
import { colorsFor } from "./colors.js";
import type { CommandContext } from "./command-context.js";
import { type PoolFlags, poolCommand } from "./connection-flags.js";
import { parseSeconds } from "./flag-parsers.js";
import { showStatus } from "./show-status.js";

/** addStatusCommand adds `status`, the pool's table, once or redrawn with --watch. */
export function addStatusCommand(program: Command, context: CommandContext): void {
  const { stdout, env } = context.cli;
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
      const { client, url } = context.connect(flags);
      context.exit(
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
}
