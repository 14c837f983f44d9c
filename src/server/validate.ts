import { Code, ConnectError } from "@connectrpc/connect";
import { z } from "zod";
import { SUBSCRIPTION_ID_PATTERN } from "../config/index.js";

/**
 * Request rules protobuf types cannot express, as zod schemas over the
 * fields' proto names, so an error names the field as an operator typed it
 * in `buf curl` (snake_case, with the JSON camelCase shown too).
 */

const MAX_ID = 256;

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

const tokens = z
  .bigint()
  .nonnegative("must be >= 0")
  .max(1_000_000_000_000n, "is implausibly large (> 1e12)");

// $100k for one report is not a Claude run; it is a unit mistake or garbage.
const cost = z
  .number()
  .refine(Number.isFinite, "must be a finite number")
  .refine((n) => n >= 0, "must be >= 0")
  .refine((n) => n <= 100_000, "is implausibly large (> 100000 USD)");

export const usageSchema = z.object({
  cost_usd: cost,
  input_tokens: tokens,
  output_tokens: tokens,
  cache_creation_input_tokens: tokens,
  cache_read_input_tokens: tokens,
  model_usage: z.record(
    z.string().min(1, "model id must not be empty").max(MAX_ID),
    z.object({
      cost_usd: cost,
      input_tokens: tokens,
      output_tokens: tokens,
      cache_creation_input_tokens: tokens,
      cache_read_input_tokens: tokens,
    }),
  ),
  duration_ms: z.number().refine((n) => Number.isFinite(n) && n >= 0, "must be >= 0"),
  rate_limits: z.array(
    z.object({
      utilization: z.number().refine((n) => Number.isFinite(n) && n <= 10, "must be a 0-1 fraction (negative: unknown)"),
    }),
  ),
});

/**
 * check parses input with a schema or throws INVALID_ARGUMENT naming the
 * first offending field, e.g. `usage.cost_usd (usage.costUsd): must be >= 0`.
 */
export function check<T extends z.ZodType>(schema: T, input: unknown, prefix = ""): z.output<T> {
  const parsed = schema.safeParse(input);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const path = [prefix, ...issue.path.map(String)].filter((p) => p !== "").join(".");
  throw invalidArgument(path, issue.message);
}

/** invalidArgument builds the INVALID_ARGUMENT error for a field. */
export function invalidArgument(field: string, message: string): ConnectError {
  const camel = field.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
  const name = camel === field ? field : `${field} (${camel})`;
  return new ConnectError(`${name}: ${message}`, Code.InvalidArgument);
}
