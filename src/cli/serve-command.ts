import type { Command } from "commander";
import type { CommandContext } from "./command-context.js";

/** addServeCommand adds `serve`, which runs the pool in this process. */
export function addServeCommand(program: Command, context: CommandContext): void {
  program
    .command("serve")
    .description("run the pool in the foreground (what `npm start` runs); SIGTERM or SIGINT stops it gracefully")
    .option("--config <file>", "the pool's config file (default: $AUTHPOOL_CONFIG, else config/example.yaml)")
    .addHelpText(
      "after",
      `
AUTHPOOL_STORE, AUTHPOOL_HOST, AUTHPOOL_PORT, AUTHPOOL_TOKENS and
AUTHPOOL_TOKENS_FILE override the file.
Logs are JSON lines on stderr. An unusable config or store exits with 78.`,
    )
    .action(async (flags: { config?: string }) => {
      const serve = context.cli.serve ?? (await import("./serve.js")).serve;
      context.exit(await serve(flags.config));
    });
}
