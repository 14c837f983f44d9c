import { InvalidArgumentError, Option } from "commander";
import { PRIORITY_NAMES } from "./enum-names.js";
import { parseClientName, parseSeconds } from "./flag-parsers.js";

// The flags `allocate` and `exec` share, since both ask the pool for a session.

/** priorityOption is --priority: low, normal or high. */
export function priorityOption(): Option {
  return new Option("--priority <priority>", "low, normal or high (default: normal)").argParser((value) => {
    const priority = PRIORITY_NAMES[value.toLowerCase()];
    if (priority === undefined) throw new InvalidArgumentError("expected low, normal or high.");
    return priority;
  });
}

/** clientOption is --client NAME; `booked` says what is booked to it (the session, the run). */
export function clientOption(booked: string): Option {
  return new Option(
    "--client <name>",
    `the client to book ${booked} to (default: the token's name, else default)`,
  ).argParser(parseClientName);
}

/** waitOption is --wait [SECONDS]; alone it is `true`: wait as long as the pool allows (see wait-flag.ts). */
export function waitOption(): Option {
  return new Option(
    "--wait [seconds]",
    "when no subscription is free, wait for a slot instead of falling back: up to SECONDS (default: the pool's queue.maxWaitSeconds)",
  ).argParser(parseSeconds);
}
