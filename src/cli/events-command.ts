import { type Command, Option } from "commander";
import type { EventType } from "../../gen/authpool/v1/auth_pool_pb.js";
import type { CommandContext } from "./command-context.js";
import { type PoolFlags, poolCommand } from "./connection-flags.js";
import { EVENT_TYPE_NAMES } from "./enum-names.js";
import { collect, collectEventTypes, parseCount, parseSequence } from "./flag-parsers.js";
import { followEvents } from "./follow-events.js";
import { printRetained } from "./retained-events.js";
import { UsageError } from "./usage-error.js";

/** EventsFlags are what `events` is asked for besides the pool. */
interface EventsFlags extends PoolFlags {
  since?: bigint;
  after?: bigint;
  type?: EventType[];
  subscription?: string[];
  tail?: boolean;
  /** False with --no-follow. */
  follow: boolean;
  limit?: number;
}

/** addEventsCommand adds `events`, which prints the pool's events and follows live ones. */
export function addEventsCommand(program: Command, context: CommandContext): void {
  const { stdout, stderr } = context.cli;
  poolCommand(
    program,
    "events",
    "print pool events, then follow live ones; reconnects and resumes if the pool restarts",
  )
    .option("--since <seq>", "start after this sequence (default 0: the oldest event the pool keeps)", parseSequence)
    // --after is what the first CLI called it; kept so old scripts still work.
    .addOption(new Option("--after <seq>").hideHelp().argParser(parseSequence))
    .option(
      `--type <type>`,
      `only events of this type (repeatable): ${Object.keys(EVENT_TYPE_NAMES).join(", ")}`,
      collectEventTypes,
    )
    .option("--subscription <id>", "only events about this subscription (repeatable)", collect)
    .option("--tail", "only live events, none from history")
    .option("--no-follow", "print the events the pool keeps after --since, then exit")
    .option("--limit <n>", "exit after printing N events", parseCount)
    .addHelpText(
      "after",
      `
One line per event (time, sequence, type, details), or with --json one
protobuf-JSON Event per line. After a dropped stream it reconnects (backoff
250 ms doubling to 5 s) from the last sequence it printed: no event twice.
An outage is one line on stderr, and its end another. A --since older than
the pool's retention exits with 1 (OUT_OF_RANGE).

Examples:
  authpool events --since 0 --no-follow               everything the pool keeps
  authpool events --since 812 --type failover --json  resume a script's cursor
  authpool events --tail --limit 1                    wait for the next event`,
    )
    .action(async (flags: EventsFlags) => {
      if (flags.tail === true && !flags.follow) {
        throw new UsageError("events: --tail prints only live events and --no-follow none of them; give one");
      }
      const connection = context.connect(flags);
      const query = {
        client: connection.client,
        target: connection,
        afterSequence: flags.since ?? flags.after ?? 0n,
        types: flags.type ?? [],
        subscriptionIds: flags.subscription ?? [],
        json: flags.json === true,
        ...(flags.limit !== undefined ? { limit: flags.limit } : {}),
        stdout,
        stderr,
      };
      context.exit(
        flags.follow ? await followEvents({ ...query, tail: flags.tail === true }) : await printRetained(query),
      );
    });
}
