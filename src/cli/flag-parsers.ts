import { InvalidArgumentError } from "commander";
import type { EventType } from "../../gen/authpool/v1/auth_pool_pb.js";
import { CLIENT_NAME_PATTERN } from "../config/index.js";
import { DAY_MS, HISTORY_RETENTION_MS, HOUR_MS, MINUTE_MS } from "../domain/index.js";
import { EVENT_TYPE_NAMES } from "./enum-names.js";

// Commander argParsers: each turns a flag's text into its value, or throws
// InvalidArgumentError, which commander reports naming the flag (exit 2).

/** collect makes a flag repeatable: each use adds its value to the list. */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** collectEventTypes reads `events --type`, repeatable and comma-separated. */
export function collectEventTypes(value: string, previous: EventType[] | undefined): EventType[] {
  const types = [...(previous ?? [])];
  // Comma lists too (`--type failover,limit_reached`), and either spelling of the separator.
  for (const name of value.split(",")) {
    const type = EVENT_TYPE_NAMES[name.trim().toLowerCase().replaceAll("-", "_")];
    if (type === undefined)
      throw new InvalidArgumentError(`expected one of ${Object.keys(EVENT_TYPE_NAMES).join(", ")}.`);
    types.push(type);
  }
  return types;
}

/** parseSequence reads an event sequence number. */
export function parseSequence(value: string): bigint {
  if (!/^[0-9]{1,20}$/.test(value)) throw new InvalidArgumentError("expected a sequence number (0 or more).");
  return BigInt(value);
}

const SPAN_UNIT_MS: Readonly<Record<string, number>> = { m: MINUTE_MS, h: HOUR_MS, d: DAY_MS };

/** parseHistorySpan reads `usage` and `history --since` (30m, 48h, 35d) as milliseconds, no more than history keeps. */
export function parseHistorySpan(value: string): number {
  return spanWithin(value, HISTORY_RETENTION_MS, "history");
}

function spanWithin(value: string, maxMs: number, keeper: string): number {
  const m = /^([1-9][0-9]{0,5})([mhd])$/.exec(value);
  if (m === null) throw new InvalidArgumentError("expected minutes, hours or days such as 30m, 5h or 7d.");
  const ms = Number(m[1]) * SPAN_UNIT_MS[m[2]!]!;
  if (ms > maxMs) throw new InvalidArgumentError(`expected at most ${maxMs / DAY_MS}d: ${keeper} keeps no more.`);
  return ms;
}

/** parseClientName reads a client name as the config spells them. */
export function parseClientName(value: string): string {
  if (!CLIENT_NAME_PATTERN.test(value)) {
    throw new InvalidArgumentError(
      "expected a client name: 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit.",
    );
  }
  return value;
}

/** parseSeconds reads a positive number of seconds, fractions allowed. */
export function parseSeconds(value: string): number {
  const seconds = Number(value);
  if (!Number.isFinite(seconds) || seconds <= 0) throw new InvalidArgumentError("expected a number of seconds > 0.");
  return seconds;
}

/** parseCount reads a whole number of things, at least 1. */
export function parseCount(value: string): number {
  if (!/^[1-9][0-9]{0,8}$/.test(value)) throw new InvalidArgumentError("expected a whole number, 1 or more.");
  return Number(value);
}
