import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

/**
 * ServerProcess is the pool run as users run it: the built CLI
 * (`node dist/src/cli/main.js serve --config FILE`) in a child process,
 * its JSON log lines read from stderr one by one.
 */
export interface ServerProcess {
  proc: ChildProcess;
  /** Resolves with the URL of the "serving" line; rejects if the process exits first. */
  ready: Promise<string>;
  /** Resolves once the process has exited (with its code or signal). */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Spawn time (performance.now()). */
  startedAt: number;
  /** ms from spawn to the "serving" line; undefined until then. */
  startupMs: number | undefined;
  /** replayedRecords from the "pool loaded" line. */
  replayedRecords: number | undefined;
  /** From the "serving" line: this process's instance id, its role then, and (a standby) the leader it named. */
  instanceId: string | undefined;
  role: string | undefined;
  leader: string | undefined;
  /** True once kill() was called: errors seen after this are the kill's doing. */
  killed: boolean;
  /** The last log lines, for a report when something goes wrong. */
  tail: string[];
  /** kill sends SIGKILL (no shutdown, no final snapshot). */
  kill(): void;
}

const TAIL_LINES = 40;

/**
 * defaultCliPath finds dist/src/cli/main.js from this module, whether it
 * runs compiled (dist/bench/torture) or from source under vitest
 * (bench/torture).
 */
export function defaultCliPath(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const root =
    path.basename(path.dirname(path.dirname(here))) === "dist"
      ? path.resolve(here, "../../..")
      : path.resolve(here, "../..");
  const cli = path.join(root, "dist", "src", "cli", "main.js");
  if (!existsSync(cli)) throw new Error(`${cli} not found: run npm run build first`);
  return cli;
}

/** spawnServer starts `serve --config configFile` and follows its log; `env` is added to the child's environment. */
export function spawnServer(cli: string, configFile: string, env: Record<string, string> = {}): ServerProcess {
  const startedAt = performance.now();
  const proc = spawn(process.execPath, [cli, "serve", "--config", configFile], {
    // The file says port 0 already; the env wins over it, so say it here too.
    env: { ...process.env, AUTHPOOL_PORT: "0", AUTHPOOL_LOG_LEVEL: "info", ...env },
    stdio: ["ignore", "ignore", "pipe"],
  });
  const server: ServerProcess = {
    proc,
    ready: undefined as unknown as Promise<string>,
    exited: new Promise((resolve) => proc.once("exit", (code, signal) => resolve({ code, signal }))),
    startedAt,
    startupMs: undefined,
    replayedRecords: undefined,
    instanceId: undefined,
    role: undefined,
    leader: undefined,
    killed: false,
    tail: [],
    kill() {
      server.killed = true;
      proc.kill("SIGKILL");
    },
  };
  server.ready = new Promise<string>((resolve, reject) => {
    let partial = "";
    // stderr is read to the end, not only until "serving": a pipe nobody
    // drains fills up and blocks the server on its next log line.
    proc.stderr!.setEncoding("utf8");
    proc.stderr!.on("data", (chunk: string) => {
      const lines = (partial + chunk).split("\n");
      partial = lines.pop() ?? "";
      for (const line of lines) {
        if (line.trim() === "") continue;
        server.tail.push(line);
        if (server.tail.length > TAIL_LINES) server.tail.shift();
        let entry: {
          message?: unknown;
          url?: unknown;
          replayedRecords?: unknown;
          instance?: unknown;
          role?: unknown;
          leader?: unknown;
        };
        try {
          entry = JSON.parse(line) as typeof entry;
        } catch {
          continue; // not a log line (a stack trace): kept in the tail only
        }
        if (entry.message === "pool loaded" && typeof entry.replayedRecords === "number") {
          server.replayedRecords = entry.replayedRecords;
        }
        if (entry.message === "serving" && typeof entry.url === "string") {
          server.startupMs = performance.now() - startedAt;
          if (typeof entry.instance === "string") server.instanceId = entry.instance;
          if (typeof entry.role === "string") server.role = entry.role;
          if (typeof entry.leader === "string") server.leader = entry.leader;
          resolve(entry.url);
        }
      }
    });
    void server.exited.then(({ code, signal }) =>
      reject(new Error(`server exited (code ${code}, signal ${signal}) before serving:\n${server.tail.join("\n")}`)),
    );
  });
  // A rejection nobody awaits (the run moved on after a kill) must not crash the harness.
  server.ready.catch(() => undefined);
  return server;
}

/**
 * serving resolves with the URL once the server serves; it rejects if the
 * process exits first, or has not served by 3 × `maxStartupMs` (a hang, not
 * a slow start: the harnesses hold a start-up to `maxStartupMs` themselves).
 */
export async function serving(server: ServerProcess, maxStartupMs: number): Promise<string> {
  const ms = maxStartupMs * 3;
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      server.ready,
      new Promise<never>(
        (_, reject) => (timer = setTimeout(() => reject(new Error(`no "serving" line after ${ms} ms`)), ms)),
      ),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
