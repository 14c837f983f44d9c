import { ConnectError } from "@connectrpc/connect";
import { CommanderError } from "commander";
import { ConfigError } from "../config/index.js";
import { StoreError } from "../store/index.js";
import { describeConnectError, type PoolTarget } from "./connect-errors.js";
import { ExitCode } from "./exit-codes.js";
import { UsageError } from "./usage-error.js";

/** ReportFailureOptions say where a failure is reported and which pool it came from. */
export interface ReportFailureOptions {
  /** The pool the command talked to, for the unreachable, TLS and auth messages. */
  target: PoolTarget;
  stderr: NodeJS.WritableStream;
}

/** reportFailure writes what a command's error means on stderr and returns its exit code from exit-codes.ts. */
export function reportFailure(error: unknown, { target, stderr }: ReportFailureOptions): number {
  if (error instanceof CommanderError) {
    // Commander has already printed the help or the usage error.
    return error.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
  }
  if (error instanceof ConnectError) {
    const report = describeConnectError(error, target);
    stderr.write(`${report.message}\n`);
    return report.exitCode;
  }
  if (error instanceof ConfigError || error instanceof StoreError) {
    stderr.write(`authpool: ${error.message}\n`);
    return ExitCode.config;
  }
  if (error instanceof UsageError) {
    stderr.write(`authpool: ${error.message}\n`);
    return ExitCode.usage;
  }
  stderr.write(`authpool: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  return ExitCode.error;
}
