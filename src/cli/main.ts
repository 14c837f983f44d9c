#!/usr/bin/env node
import os from "node:os";
import { runCli } from "./program.js";

/**
 * The `authpool` command. `serve` runs the pool; the other commands operate
 * a running one (see `authpool --help`, or program.ts).
 */

// A reader that goes away (`authpool events | head -5`) is a normal way to
// stop the output, not a crash.
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code === "EPIPE") process.exit(0);
  throw error;
});

runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  home: os.homedir(),
}).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    // runCli reports every failure itself; this is a bug in the CLI.
    process.stderr.write(`authpool: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  },
);
