import type { PoolConnection, PoolFlags } from "./connection-flags.js";
import type { ExecOptions } from "./exec.js";
import type { InitOptions } from "./init.js";

/** CliOptions are the process around the CLI; tests pass their own. */
export interface CliOptions {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream;
  /** Read for report's `-`. Default: process.stdin. */
  stdin?: NodeJS.ReadableStream;
  env: NodeJS.ProcessEnv;
  /** The user's home directory, for init. */
  home: string;
  /** Default: runExec of ./exec.js, imported when `exec` runs. */
  runExec?: (options: ExecOptions) => Promise<number>;
  /** Default: runInit of ./init.js, imported when `init` runs. */
  runInit?: (options: InitOptions) => Promise<number>;
  /** Default: serve of ./serve.js, imported when `serve` runs. */
  serve?: (configFile: string | undefined) => Promise<number>;
  /**
   * Check the command line and stop before any command runs: exit 0 when
   * it parses, 2 when it does not (the documentation's examples are tested
   * this way).
   */
  parseOnly?: boolean;
}

/**
 * CommandContext is what a command's action gets from runCli: the process,
 * a way to the pool, and a place for its exit code.
 */
export interface CommandContext {
  cli: CliOptions;
  /** connect makes a client for the pool the flags name; runCli keeps its URL for error messages. */
  connect(flags: PoolFlags): PoolConnection;
  /** exit sets the exit code of a command that has its own (serve, status, events, exec, init). */
  exit(code: number): void;
}
