import { type ChildProcess, spawn } from "node:child_process";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";

/**
 * Helpers to run the built `authpool` (dist/src/cli/main.js) as users do: a
 * child process with its own stdout, stderr and exit code. `npm test` builds
 * first; run `npm run build` before calling vitest directly.
 */

/** CLI is the built entry point. */
export const CLI = fileURLToPath(new URL("../../dist/src/cli/main.js", import.meta.url));

/** CliResult is how a finished run ended. */
export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** CliRunOptions: extra environment (over a copy without the AUTHPOOL_* of the caller), stdin and the working directory. */
export interface CliRunOptions {
  env?: Record<string, string>;
  input?: string;
  timeoutMs?: number;
  /** Default: the test's own. */
  cwd?: string;
}

/** cliEnv is the environment a child gets: the test's, minus anything that would point it at another pool. */
export function cliEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of Object.keys(env)) if (key.startsWith("AUTHPOOL_")) delete env[key];
  delete env.FORCE_COLOR;
  return { ...env, ...extra };
}

/** runCli runs `authpool ...args` to completion (killed after timeoutMs, default 20 s). */
export function runCli(args: string[], options: CliRunOptions = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [CLI, ...args], {
      env: cliEnv(options.env),
      stdio: ["pipe", "pipe", "pipe"],
      ...(options.cwd !== undefined ? { cwd: options.cwd } : {}),
    });
    let stdout = "";
    let stderr = "";
    proc.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    proc.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => proc.kill("SIGKILL"), options.timeoutMs ?? 20_000);
    proc.once("error", reject);
    proc.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    proc.stdin.end(options.input ?? "");
  });
}

/** RunningCli is a long-running `authpool` (events, status --watch) whose output is read as it comes. */
export interface RunningCli {
  proc: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Complete stdout lines so far. */
  lines(): string[];
  /** stop kills the child and resolves once it has exited. */
  stop(): Promise<void>;
}

/** startCli starts `authpool ...args` and returns at once. */
export function startCli(args: string[], options: CliRunOptions = {}): RunningCli {
  const proc = spawn(process.execPath, [CLI, ...args], {
    env: cliEnv(options.env),
    stdio: ["ignore", "pipe", "pipe"],
    ...(options.cwd !== undefined ? { cwd: options.cwd } : {}),
  });
  let stdout = "";
  let stderr = "";
  proc.stdout!.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  proc.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  return {
    proc,
    stdout: () => stdout,
    stderr: () => stderr,
    lines: () => stdout.split("\n").slice(0, -1),
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
      await exited;
    },
  };
}

/**
 * waitFor polls `check` until it returns true, failing with `what` (and
 * `detail()`, e.g. the child's output) after timeoutMs. The only waiting the
 * CLI tests do: bounded, and as short as the condition allows.
 */
export async function waitFor(
  what: string,
  check: () => boolean | Promise<boolean>,
  options: { timeoutMs?: number; detail?: () => string } = {},
): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? 15_000);
  while (!(await check())) {
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}${options.detail ? `\n${options.detail()}` : ""}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** freePort returns a port nothing listens on right now (the OS picks it, then it is closed). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** waitForServing waits for a started `authpool serve` to log "serving" and returns its URL. */
export async function waitForServing(cli: RunningCli, timeoutMs = 15_000): Promise<string> {
  let url: string | undefined;
  const serving = () => {
    for (const line of cli.stderr().split("\n")) {
      if (!line.startsWith("{")) continue;
      try {
        const entry = JSON.parse(line) as { message?: string; url?: string };
        if (entry.message === "serving" && entry.url !== undefined) url = entry.url;
      } catch {
        // not a whole JSON line yet
      }
    }
    return url !== undefined || cli.proc.exitCode !== null;
  };
  await waitFor("serve to start", serving, { timeoutMs, detail: () => cli.stderr() });
  if (url === undefined) throw new Error(`serve exited: ${cli.stderr()}`);
  return url;
}
