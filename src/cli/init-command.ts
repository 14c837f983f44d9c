import type { Command } from "commander";
import type { CommandContext } from "./command-context.js";
import { OWN_CONFIG_FILE } from "./config-file.js";

/** addInitCommand adds `init`, which writes a pool config for this machine's Claude config dirs. */
export function addInitCommand(program: Command, context: CommandContext): void {
  const { home, env, stdout, stderr } = context.cli;
  program
    .command("init")
    .description("write a pool config for the Claude config dirs on this machine (or the ones given)")
    .argument("[paths...]", "Claude config dirs (default: found under your home directory)")
    .option(
      "--output <file>",
      "the config file to write (`authpool serve` here finds this one by itself)",
      OWN_CONFIG_FILE,
    )
    .option("--force", "overwrite the output file if it exists")
    .action(async (paths: string[], flags: { output: string; force?: boolean }) => {
      const runInit = context.cli.runInit ?? (await import("./init.js")).runInit;
      context.exit(
        await runInit({ home, env, paths, output: flags.output, force: flags.force === true, stdout, stderr }),
      );
    });
}
