import type { Command } from "commander";
import type { CommandContext } from "./command-context.js";

/** addInitCommand adds `init`, which writes a pool config for this machine's Claude config dirs. */
export function addInitCommand(program: Command, context: CommandContext): void {
  const { home, stdout, stderr } = context.cli;
  program
    .command("init")
    .description("write a pool config for the Claude config dirs on this machine (or the ones given)")
    .argument("[paths...]", "Claude config dirs (default: found under your home directory)")
    .option("--output <file>", "the config file to write", "authpool.yaml")
    .option("--force", "overwrite the output file if it exists")
    .action(async (paths: string[], flags: { output: string; force?: boolean }) => {
      const runInit = context.cli.runInit ?? (await import("./init.js")).runInit;
      context.exit(await runInit({ home, paths, output: flags.output, force: flags.force === true, stdout, stderr }));
    });
}
