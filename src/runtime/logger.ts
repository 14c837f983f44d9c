/**
 * Logger writes one JSON object per line (to stderr by default), so log
 * shippers can parse it. Fields must never carry secrets: callers pass
 * ids, counts and reasons, not tokens or webhook secrets.
 */
export interface Logger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** createJsonLogger logs to a writable (stderr by default). */
export function createJsonLogger(out: { write(line: string): unknown } = process.stderr): Logger {
  const log = (level: string) => (message: string, fields?: Record<string, unknown>) => {
    out.write(`${JSON.stringify({ time: new Date().toISOString(), level, message, ...fields })}\n`);
  };
  return { info: log("info"), warn: log("warn"), error: log("error") };
}

/** silentLogger drops everything (tests). */
export const silentLogger: Logger = { info() {}, warn() {}, error() {} };
