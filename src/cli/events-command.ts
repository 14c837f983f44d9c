import { type Command, Option } from "commander";
import type { EventType } from "../../gen/authpool/v1/auth_pool_pb.js";
import type { CommandContext } from "./command-context.js";
import { type PoolFlags, poolCommand } from "./connection-flags.js";
import { EVENT_TYPE_NAMES } from "./enum-names.js";
import { collect, collectEventTypes, parseSequence } from "./flag-parsers.js";
import { followEvents } from "./follow-events.js";

/** EventsFlags are what `events` is asked for besides the pool. */
interface EventsFlags extends PoolFlags {
  since?: bigint;
  after?: bigint;
  type?: EventType[];
  subscription?: string[];
  tail?: boolean;
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
    .action(async (flags: EventsFlags) => {
      const { client, url } = context.connect(flags);
      context.exit(
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
    });
}
