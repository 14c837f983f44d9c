import { Command, CommanderError } from "commander";
import type { CliOptions, CommandContext } from "./command-context.js";
import type { PoolTarget } from "./connect-errors.js";
import { connectToPool, DEFAULT_SERVER } from "./connection-flags.js";
import { addEventsCommand } from "./events-command.js";
import { addExecCommand } from "./exec-command.js";
import { ExitCode, exitCodesHelp } from "./exit-codes.js";
import { addInitCommand } from "./init-command.js";
import { packageVersion } from "./package-version.js";
import { reportFailure } from "./report-failure.js";
import { addRpcCommand } from "./rpc-command.js";
import { RPC_COMMANDS } from "./rpc-commands.js";
import { addServeCommand } from "./serve-command.js";
import { addStatusCommand } from "./status-command.js";

export type { CliOptions } from "./command-context.js";

/**
 * runCli runs one `authpool` invocation (argv without node and the script)
 * and resolves with its exit code; it never rejects on a failed call or bad
 * usage, which become a message on stderr and the code from exit-codes.ts.
 */
export async function runCli(argv: readonly string[], options: CliOptions): Promise<number> {
  // The pool the command talked to, for error messages.
  let target: PoolTarget = { url: DEFAULT_SERVER };
  let exitCode: number = ExitCode.ok;
  const program = createProgram({
    cli: options,
    connect(flags) {
      const connection = connectToPool(flags, options.env);
      target = connection;
      return connection;
    },
    exit(code) {
      exitCode = code;
    },
  });
  try {
    await program.parseAsync([...argv], { from: "user" });
    return exitCode;
  } catch (error) {
    return reportFailure(error, { target, stderr: options.stderr });
  }
}

/** createProgram builds the command tree, in the order `--help` lists it. */
function createProgram(context: CommandContext): Command {
  const { stdout, stderr } = context.cli;
  const program = new Command("authpool")
    .description("Run many Claude subscriptions as one pool: serve it, or operate a running pool.")
    .version(packageVersion(), "-V, --version", "print the version of authpool and exit")
    // Options after a command name belong to that command, so `exec` can pass
    // everything after its first argument to the program it runs.
    .enablePositionalOptions()
    .exitOverride()
    .configureOutput({ writeOut: (s) => stdout.write(s), writeErr: (s) => stderr.write(s) })
    .showHelpAfterError("(add --help for usage)")
    .showSuggestionAfterError()
    .addHelpText(
      "after",
      `
Every command that talks to a pool takes --server URL (default $AUTHPOOL_URL,
else ${DEFAULT_SERVER}), --token T (default $AUTHPOOL_TOKEN) and, for an
https:// pool with its own certificate, --ca FILE (default $AUTHPOOL_CA).

${exitCodesHelp}`,
    );
  if (context.cli.parseOnly === true) {
    // preAction runs once the options and arguments are parsed and checked, before any action.
    program.hook("preAction", () => {
      throw new CommanderError(ExitCode.ok, "authpool.parsed", "");
    });
  }
  addServeCommand(program, context);
  addStatusCommand(program, context);
  addEventsCommand(program, context);
  for (const command of RPC_COMMANDS) addRpcCommand(program, command, context);
  addExecCommand(program, context);
  addInitCommand(program, context);
  return program;
}
