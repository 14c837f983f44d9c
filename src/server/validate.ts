import { Code, ConnectError } from "@connectrpc/connect";
import { z } from "zod";
import { CLIENT_NAME_PATTERN, SUBSCRIPTION_ID_PATTERN } from "../config/index.js";
import { UsageGroupBy } from "../../gen/authpool/v1/auth_pool_pb.js";
import { BUCKET_RETENTION_MS, type UsageGroup, type UsageReport } from "../domain/index.js";
import { readTimestamp } from "./read-timestamp.js";

/**
 * Request rules protobuf types cannot express, as zod schemas over the
 * fields' proto names, so an error names the field as an operator typed it
 * in `buf curl` (snake_case, with the JSON camelCase shown too).
 */

const MAX_ID = 256;
const MAX_NAME = 128;
const MAX_TOKENS = 1_000_000_000_000;
const MAX_COST_USD = 100_000;
const DAY_MS = 86_400_000;
/** A Claude run that lasted longer than this is a unit mistake or garbage. */
const MAX_DURATION_MS = 7 * DAY_MS;
/** Reset times past this horizon are garbage: no upstream window is longer than a week. */
const MAX_RESET_AHEAD_MS = 366 * DAY_MS;

// C0 controls, DEL and C1 controls (ESC among them): a name carrying one
// could rewrite an operator's terminal when the CLI prints it.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const noControl = (s: string) => !CONTROL.test(s);
// Lengths count characters as zod's max() does: code points, not UTF-16 units.
const charCount = (s: string) => [...s].length;

/** sessionIdSchema: ids travel in logs and keys; keep them printable and bounded. */
export const sessionIdSchema = z
  .string()
  .min(1, "is required")
  .max(MAX_ID, `must be at most ${MAX_ID} characters`)
  .regex(/^[\x21-\x7e]+$/, "must be printable ASCII without spaces");

/** subscriptionIdSchema: the config's own id rule, so a typo reads as invalid, not as "not found". */
export const subscriptionIdSchema = z
  .string()
  .min(1, "is required")
  .regex(SUBSCRIPTION_ID_PATTERN, "must be 1-64 letters, digits, '.', '_' or '-' starting with a letter or digit");

export const optionalIdSchema = z.union([z.literal(""), sessionIdSchema]);

/** modelSchema: a model hint is shown in status and by the CLI. */
export const modelSchema = z
  .string()
  .max(MAX_NAME, `must be at most ${MAX_NAME} characters`)
  .refine(noControl, "must not contain control characters");

/** clientSchema: a client's name, as tokens and the config spell it; empty: the caller's token says. */
export const clientSchema = z.union([
  z.literal(""),
  z
    .string()
    .regex(CLIENT_NAME_PATTERN, "must be 1-64 letters, digits, '.', '_' or '-' starting with a letter or digit"),
]);

/** maxWaitSchema: how long an Allocate may wait, in ms (0: the server's bound). */
export const maxWaitMsSchema = z.number().min(0, "must not be negative");

/** usageSinceSchema: how far back GetUsage sums, in ms: more than nothing, at most what the ledger keeps. */
export const usageSinceSchema = z
  .number()
  .gt(0, "must be more than 0")
  .max(BUCKET_RETENTION_MS, `must be at most ${BUCKET_RETENTION_MS / 86_400_000} days (what the ledger keeps)`);

/** usageGroupFromProto: what GetUsage sums by (unspecified: by client). */
export function usageGroupFromProto(group: UsageGroupBy): UsageGroup {
  return group === UsageGroupBy.SUBSCRIPTION ? "subscription" : group === UsageGroupBy.MODEL ? "model" : "client";
}

/** modelScopeSchema: a model family a cooldown can be scoped to, or "" for all. */
export const modelScopeSchema = z.enum(["", "opus", "sonnet"], {
  error: 'must be "opus", "sonnet" or empty (every cooldown)',
});

const MAX_REASON = 300;

/** operatorReasonSchema: an operator's note, kept in an event and shown by the CLI. */
export const operatorReasonSchema = z
  .string()
  .max(MAX_REASON, `must be at most ${MAX_REASON} characters`)
  .refine(noControl, "must not contain control characters");

const tokens = z.bigint().nonnegative("must be >= 0").max(BigInt(MAX_TOKENS), "is implausibly large (> 1e12)");

/** estimatedTokensSchema: the caller's estimate is kept as a number; past 1e12 it is garbage (and loses precision). */
export const estimatedTokensSchema = tokens;

// $100k for one report is not a Claude run; it is a unit mistake or garbage.
// zod's number type already refuses NaN and ±Infinity; say so in our words.
const cost = z
  .number({ error: "must be a finite number" })
  .refine((n) => n >= 0, "must be >= 0")
  .refine((n) => n <= MAX_COST_USD, `is implausibly large (> ${MAX_COST_USD} USD)`);

const counted = {
  cost_usd: cost,
  input_tokens: tokens,
  output_tokens: tokens,
  cache_creation_input_tokens: tokens,
  cache_read_input_tokens: tokens,
};

/** durationSchema: a google.protobuf.Duration as the spec allows it, and no longer than a week. */
const durationSchema = z
  .object({ seconds: z.bigint(), nanos: z.number() })
  .refine((d) => d.nanos > -1e9 && d.nanos < 1e9, "nanos must be between -999999999 and 999999999")
  .refine(
    (d) => !(d.seconds > 0n && d.nanos < 0) && !(d.seconds < 0n && d.nanos > 0),
    "seconds and nanos must have the same sign",
  )
  .refine((d) => durationMs(d) >= 0, "must be >= 0")
  .refine((d) => durationMs(d) <= MAX_DURATION_MS, "is implausibly long (> 7 days)");

/** durationMs reads a Duration as milliseconds. */
export function durationMs(d: { seconds: bigint; nanos: number }): number {
  return Number(d.seconds) * 1000 + d.nanos / 1e6;
}

/** timestampField reads a request's Timestamp field as epoch ms, or throws INVALID_ARGUMENT naming the field. */
export function timestampField(t: { seconds: bigint; nanos: number }, field: string): number {
  const read = readTimestamp(t);
  if (!read.ok) throw invalidArgument(field, read.message);
  return read.ms;
}

/**
 * plausibleReset says whether an epoch-ms reset time is one the pool can act
 * on: from 1970 to a year after now. Anything else is garbage, and some of
 * it (past year 275760) cannot even be shown as a date.
 */
export function plausibleReset(ms: number, now: number): boolean {
  return Number.isFinite(ms) && ms >= 0 && ms <= now + MAX_RESET_AHEAD_MS;
}

const RESET_RANGE = "must be between 1970-01-01 and a year from now";

/** usageSchema: the rules of a structured Usage at time `now` (reset times are judged against it). */
export function usageSchema(now: number) {
  const resetsAt = z.object({ seconds: z.bigint(), nanos: z.number() }).superRefine((t, ctx) => {
    const read = readTimestamp(t);
    if (!read.ok && read.reason === "nanos") ctx.addIssue({ code: "custom", message: read.message });
    // Before 1970 or past year 275760 is outside a reset's own range too; say that one.
    else if (!read.ok || !plausibleReset(read.ms, now)) ctx.addIssue({ code: "custom", message: RESET_RANGE });
  });
  return z.object({
    ...counted,
    model_usage: z.record(
      z
        .string()
        .min(1, "model id must not be empty")
        .max(MAX_ID, `model id must be at most ${MAX_ID} characters`)
        .refine(noControl, "model id must not contain control characters"),
      z.object(counted),
    ),
    duration: durationSchema.optional(),
    rate_limits: z.array(
      z.object({
        utilization: z
          .number({ error: "must be a finite 0-1 fraction (negative: unknown)" })
          .refine((n) => n <= 10, "must be a 0-1 fraction (negative: unknown)"),
        resets_at: resetsAt.optional(),
      }),
    ),
    response: z.object({ status: z.number().max(999, "must be an HTTP status code") }).optional(),
    claude_session_id: z
      .string()
      .max(MAX_NAME, `must be at most ${MAX_NAME} characters`)
      .refine(noControl, "must not contain control characters"),
  });
}

/**
 * reportProblem checks the numbers of a report a lenient parser produced
 * (claude_output, response headers) against the rules structured usage
 * obeys, and says what is wrong, naming the source's own field; undefined
 * when nothing is.
 */
export function reportProblem(r: UsageReport, now: number): string | undefined {
  if (!(r.costUsd >= 0 && r.costUsd <= MAX_COST_USD)) {
    return `total_cost_usd: expected a number from 0 to ${MAX_COST_USD}, got ${r.costUsd}`;
  }
  const tokenProblem = (t: UsageReport["tokens"], at: (field: string) => string) => {
    for (const [field, value] of [
      ["input_tokens", t.inputTokens],
      ["output_tokens", t.outputTokens],
      ["cache_creation_input_tokens", t.cacheCreationInputTokens],
      ["cache_read_input_tokens", t.cacheReadInputTokens],
    ] as const) {
      if (!Number.isInteger(value) || value < 0 || value > MAX_TOKENS) {
        return `${at(field)}: expected an integer from 0 to 1e12, got ${value}`;
      }
    }
    return undefined;
  };
  const main = tokenProblem(r.tokens, (f) => `usage.${f}`);
  if (main !== undefined) return main;
  for (const [model, m] of Object.entries(r.models)) {
    const key = `modelUsage[${quote(model)}]`;
    if (charCount(model) > MAX_ID || !noControl(model)) {
      return `${key}: expected a model id of at most ${MAX_ID} characters without control characters`;
    }
    if (!(m.costUsd >= 0 && m.costUsd <= MAX_COST_USD)) {
      return `${key}.costUSD: expected a number from 0 to ${MAX_COST_USD}, got ${m.costUsd}`;
    }
    const camel: Record<string, string> = {
      input_tokens: "inputTokens",
      output_tokens: "outputTokens",
      cache_creation_input_tokens: "cacheCreationInputTokens",
      cache_read_input_tokens: "cacheReadInputTokens",
    };
    const problem = tokenProblem(m, (f) => `${key}.${camel[f] ?? f}`);
    if (problem !== undefined) return problem;
  }
  if (!(r.durationMs >= 0 && r.durationMs <= MAX_DURATION_MS)) {
    return `duration_ms: expected a duration from 0 to 7 days, got ${r.durationMs}`;
  }
  for (const reading of r.readings) {
    if (reading.utilization !== undefined && !(reading.utilization >= 0 && reading.utilization <= 10)) {
      return `utilization: expected a 0-1 fraction, got ${reading.utilization}`;
    }
    if (reading.resetsAt !== undefined && !plausibleReset(reading.resetsAt, now)) {
      return `resetsAt: expected a reset time between 1970 and a year from now, got ${reading.resetsAt} ms`;
    }
  }
  if (r.limit?.resetsAt !== undefined && !plausibleReset(r.limit.resetsAt, now)) {
    return `reset time: expected a reset time between 1970 and a year from now, got ${r.limit.resetsAt} ms`;
  }
  if (r.claudeSessionId !== undefined && (charCount(r.claudeSessionId) > MAX_NAME || !noControl(r.claudeSessionId))) {
    return `session_id: expected at most ${MAX_NAME} characters without control characters`;
  }
  if (r.resultUuid !== undefined && (charCount(r.resultUuid) > MAX_ID || !noControl(r.resultUuid))) {
    return `uuid: expected at most ${MAX_ID} characters without control characters`;
  }
  return undefined;
}

/**
 * check parses input with a schema or throws INVALID_ARGUMENT naming the
 * first offending field, e.g. `usage.cost_usd (usage.costUsd): must be >= 0`.
 */
export function check<T extends z.ZodType>(schema: T, input: unknown, prefix = ""): z.output<T> {
  const parsed = schema.safeParse(input);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  // A bad map key reports "Invalid key in record"; the key's own rule says what is wrong.
  const message = issue.code === "invalid_key" ? (issue.issues[0]?.message ?? issue.message) : issue.message;
  let snake = prefix;
  let camel = toCamel(prefix);
  for (const key of issue.path) {
    if (typeof key === "number") {
      snake += `[${key}]`;
      camel += `[${key}]`;
    } else if (typeof key === "string" && /^[a-z][a-z0-9_]{0,63}$/.test(key)) {
      snake += snake === "" ? key : `.${key}`;
      camel += camel === "" ? toCamel(key) : `.${toCamel(key)}`;
    } else {
      // Map keys (model ids) are shown quoted and cut, as sent: never camel-cased.
      snake += `[${quote(String(key))}]`;
      camel += `[${quote(String(key))}]`;
    }
  }
  throw fieldError(snake, camel, message);
}

/** invalidArgument builds the INVALID_ARGUMENT error for a field. */
export function invalidArgument(field: string, message: string): ConnectError {
  return fieldError(field, toCamel(field), message);
}

/** fieldError names the field as the proto and JSON spell it; edgeErrors caps the length on the way out. */
function fieldError(snake: string, camel: string, message: string): ConnectError {
  const name = camel === snake ? snake : `${snake} (${camel})`;
  return new ConnectError(`${name}: ${message}`, Code.InvalidArgument);
}

function toCamel(field: string): string {
  return field.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** quote JSON-quotes a caller's key for a message, cut so one huge key cannot flood a log. */
export function quote(key: string): string {
  // Cut by code points: cutting an emoji in half leaves a lone surrogate.
  const json = [...JSON.stringify(key)];
  return json.length > 66 ? `${json.slice(0, 64).join("")}…"` : json.join("");
}
