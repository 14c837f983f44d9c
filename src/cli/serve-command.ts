import type { Command } from "commander";
import type { CommandContext } from "./command-context.js";
import { OWN_CONFIG_FILE } from "./config-file.js";

/** addServeCommand adds `serve`, which runs the pool in this process. */
export function addServeCommand(program: Command, context: CommandContext): void {
  program
    .command("serve")
    .description("run the pool in the foreground (what `npm start` runs); SIGTERM or SIGINT stops it gracefully")
    .option(
      "--config <file>",
      `the pool's config file (default: $AUTHPOOL_CONFIG, else ./${OWN_CONFIG_FILE} when it exists, else config/example.yaml)`,
    )
    .addHelpText(
      "after",
      `
It names the config file it loaded on stderr. \`authpool init\` writes
./${OWN_CONFIG_FILE}, which a plain \`authpool serve\` in the same directory
then serves; config/example.yaml is the demo pool \`npm start\` serves in a
checkout. AUTHPOOL_STORE, AUTHPOOL_HOST, AUTHPOOL_PORT, AUTHPOOL_TOKENS and
AUTHPOOL_TOKENS_FILE override the file.
Logs are JSON lines on stderr. An unusable config or store exits with 78.`,
    )
    .action(async (flags: { config?: string }) => {
      const serve = context.cli.serve ?? (await import("./serve.js")).serve;
      context.exit(await serve(flags.config));
    });
}
