import type { Command } from "commander";
import type { Priority } from "../../gen/authpool/v1/auth_pool_pb.js";
import { clientOption, priorityOption, waitOption } from "./allocation-flags.js";
import type { CommandContext } from "./command-context.js";
import { type PoolFlags, poolCommand } from "./connection-flags.js";
import { collect } from "./flag-parsers.js";
import type { Wait } from "./wait-flag.js";

/** ExecFlags are what `exec` is asked for besides the pool and the command. */
interface ExecFlags extends PoolFlags {
  session?: string;
  keep?: boolean;
  retryOnLimit?: boolean;
  model?: string;
  priority?: Priority;
  client?: string;
  wait?: Wait;
  fallbackEnv?: string[];
}

/** addExecCommand adds `exec`, which runs a command on a pooled subscription (see exec.ts). */
export function addExecCommand(program: Command, context: CommandContext): void {
  const { env, stdout, stderr } = context.cli;
  poolCommand(
    program,
    "exec",
    "run a command (e.g. claude -p ...) on a pooled subscription: allocate, run, report, release",
    { json: false },
  )
    .usage("[options] -- <command...>")
    .argument("<command...>", "the command and its arguments, after --")
    .option("--session <id>", "session id (default: a new random one)")
    .option("--keep", "do not release the session at the end (to resume it with --session)")
    .option("--retry-on-limit", "if the run hits a usage limit, run it once more on another subscription")
    .option("--model <model>", "model hint for allocate (default: the command's own --model, if any)")
    .addOption(priorityOption())
    .addOption(clientOption("the run"))
    .addOption(waitOption())
    .option(
      "--fallback-env <name>",
      "env var that holds a paid-API key, used only when no subscription is available " +
        "(repeatable; default: $AUTHPOOL_FALLBACK_ENV, comma-separated, else ANTHROPIC_API_KEY)",
      collect,
    )
    // Everything after the command's first word is the command's own: its
    // flags (`-e`, `--model`) must reach it untouched.
    .passThroughOptions()
    .addHelpText(
      "after",
      `
Exits with the command's exit code, or 75 when nothing ran: no subscription
is available and no fallback variable is set, or a limit of the client
(clients.NAME in the pool's config) keeps it off the subscriptions and the
pool sends it nowhere else it can run. A client limit is named as such
("client ci: spent $41.20 in 7 days, its limit is $40.00 (weekly_usd
limit)"), not as the pool running out.

Example:
  authpool exec --retry-on-limit -- claude -p "What is 2+2?" --output-format json`,
    )
    .action(async (command: string[], flags: ExecFlags) => {
      const { client, url } = context.connect(flags);
      const runExec = context.cli.runExec ?? (await import("./exec.js")).runExec;
      context.exit(
        await runExec({
          client,
          server: url,
          command,
          sessionId: flags.session,
          keep: flags.keep === true,
          retryOnLimit: flags.retryOnLimit === true,
          model: flags.model,
          priority: flags.priority,
          ...(flags.client !== undefined ? { clientName: flags.client } : {}),
          ...(flags.wait !== undefined ? { wait: flags.wait } : {}),
          fallbackEnv: flags.fallbackEnv ?? defaultFallbackEnv(env),
          env,
          stdout,
          stderr,
        }),
      );
    });
}

function defaultFallbackEnv(env: NodeJS.ProcessEnv): string[] {
  const names = (env.AUTHPOOL_FALLBACK_ENV ?? "")
    .split(",")
    .map((n) => n.trim())
    .filter((n) => n !== "");
  return names.length > 0 ? names : ["ANTHROPIC_API_KEY"];
}
