import { pino } from "pino";

/**
 * Logger writes one JSON object per line (to stderr by default), so log
 * shippers can parse it. Callers pass ids, counts and reasons; keys that
 * can hold secrets are redacted anyway (see REDACTED_KEYS), as a safety net.
 */
export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** LogLevel is the lowest level written; "silent" writes nothing. */
export type LogLevel = "debug" | "info" | "warn" | "error" | "silent";

/** LogDestination is where lines go: anything with a write(string). */
export interface LogDestination {
  write(line: string): unknown;
}

/** JsonLoggerOptions configure createJsonLogger. */
export interface JsonLoggerOptions {
  /** Lowest level written. Default: AUTHPOOL_LOG_LEVEL from `env`, else "info". */
  level?: LogLevel;
  /** Default: stderr, written synchronously so nothing is lost on exit. */
  destination?: LogDestination;
  /** Where AUTHPOOL_LOG_LEVEL is read when `level` is absent. Default: process.env. */
  env?: Readonly<Record<string, string | undefined>>;
}

const LEVELS: readonly LogLevel[] = ["debug", "info", "warn", "error", "silent"];

/** REDACTED_KEYS are field names whose values are replaced by "[redacted]", at the top level and one level down. */
export const REDACTED_KEYS = [
  "token",
  "accessToken",
  "refreshToken",
  "authorization",
  "secret",
  "signature",
  "password",
  "apiKey",
] as const;

/**
 * createJsonLogger returns a pino-backed Logger: JSON lines with `level` as
 * a label, `time` in ISO-8601, `message`, and the fields at the top level.
 * The older call form `createJsonLogger(destination)` is still accepted.
 */
export function createJsonLogger(options: JsonLoggerOptions | LogDestination = {}): Logger {
  const opts: JsonLoggerOptions = isDestination(options) ? { destination: options } : options;
  const fromEnv = opts.level === undefined ? readLevel(opts.env ?? process.env) : undefined;
  const level = opts.level ?? fromEnv?.level ?? "info";
  const log = pino(
    {
      level,
      messageKey: "message",
      // No pid and hostname: the shipper knows where a line came from.
      base: null,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACTED_KEYS.flatMap((k) => [k, `*.${k}`]), censor: "[redacted]" },
    },
    opts.destination ?? pino.destination({ dest: 2, sync: true }),
  );
  const at =
    (method: "debug" | "info" | "warn" | "error") =>
    (message: string, fields?: Record<string, unknown>): void => {
      if (fields === undefined) log[method](message);
      else log[method](fields, message);
    };
  const logger: Logger = { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
  if (fromEnv?.invalid !== undefined) {
    logger.warn("AUTHPOOL_LOG_LEVEL ignored", { value: fromEnv.invalid, expected: LEVELS.join(", ") });
  }
  return logger;
}

/** silentLogger drops everything (tests). */
export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

function isDestination(value: JsonLoggerOptions | LogDestination): value is LogDestination {
  return typeof (value as Partial<LogDestination>).write === "function";
}

/**
 * readLevel reads AUTHPOOL_LOG_LEVEL. A value that is not a level is
 * reported (by the caller, once there is a logger) rather than fatal: a typo
 * in a log setting should not keep the pool from starting.
 */
function readLevel(
  env: Readonly<Record<string, string | undefined>>,
): { level?: LogLevel; invalid?: string } | undefined {
  const raw = env.AUTHPOOL_LOG_LEVEL?.trim();
  if (raw === undefined || raw === "") return undefined;
  const value = raw.toLowerCase();
  return (LEVELS as readonly string[]).includes(value) ? { level: value as LogLevel } : { invalid: raw };
}
