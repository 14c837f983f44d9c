import { type MessageInitShape, type MessageShape, toJsonString } from "@bufbuild/protobuf";
import type { CallOptions } from "@connectrpc/connect";
import type { Argument, Command, Option } from "commander";
import { AuthPoolService } from "../../gen/authpool/v1/auth_pool_pb.js";
import type { AuthPoolClient } from "../client/index.js";
import type { CliOptions, CommandContext } from "./command-context.js";
import { type PoolFlags, poolCommand } from "./connection-flags.js";

type Methods = (typeof AuthPoolService)["method"];

/** UnaryRpc names one of the pool's unary RPCs as the client spells it (`allocate`, `setPaused`). */
export type UnaryRpc = { [K in keyof Methods]: Methods[K]["methodKind"] extends "unary" ? K : never }[keyof Methods];

/** RpcRequest is what the RPC named K takes (an init object is enough). */
export type RpcRequest<K extends UnaryRpc> = MessageInitShape<Methods[K]["input"]>;

/** RpcReply is what the RPC named K answers. */
export type RpcReply<K extends UnaryRpc> = MessageShape<Methods[K]["output"]>;

/** CommandInput is one invocation of a command: its flags, its positional arguments, and the process. */
export interface CommandInput<
  Flags extends PoolFlags = PoolFlags,
  Args extends readonly unknown[] = readonly unknown[],
> {
  flags: Flags;
  /** The values of the command's `arguments`, in their order. */
  args: Args;
  cli: CliOptions;
}

/** CommandGroup is a command that only holds others (`cooldown` for `cooldown clear`). */
export interface CommandGroup {
  name: string;
  description: string;
}

/**
 * RpcCommand is a command that makes one call to the pool and prints the
 * reply: as text, or with --json as the RPC's reply in protobuf JSON. Make
 * one with defineRpcCommand and add it with addRpcCommand.
 *
 * The functions are methods, not properties, on purpose: TypeScript compares
 * method parameters bivariantly, which lets one table hold commands with
 * different flags and RPCs as the plain RpcCommand.
 */
export interface RpcCommand<
  K extends UnaryRpc = UnaryRpc,
  Flags extends PoolFlags = PoolFlags,
  Args extends readonly unknown[] = readonly unknown[],
> {
  name: string;
  /** The command it goes under; absent: the top level. */
  group?: CommandGroup;
  description: string;
  arguments?: readonly Argument[];
  options?: readonly Option[];
  /** Shown after the options in `--help`. */
  help?: string;
  /** The RPC it calls; its reply schema is what --json prints. */
  rpc: K;
  request(input: CommandInput<Flags, Args>): RpcRequest<K> | Promise<RpcRequest<K>>;
  /** Default: the client's own (a 5 s deadline). */
  callOptions?(input: CommandInput<Flags, Args>): CallOptions;
  /**
   * Makes the call when the RPC alone is not the whole story (allocate
   * --wait watches its place in the queue); it answers what the RPC would.
   * Default: the RPC.
   */
  call?(
    pool: AuthPoolClient,
    request: RpcRequest<K>,
    options: CallOptions | undefined,
    input: CommandInput<Flags, Args>,
  ): Promise<RpcReply<K>>;
  /** The reply for people, without --json; `pool` is there for a reply that needs a second look (rebalance). */
  text(reply: RpcReply<K>, input: CommandInput<Flags, Args>, pool: AuthPoolClient): string | Promise<string>;
}

/** defineRpcCommand checks one command's request and text against its RPC. */
export function defineRpcCommand<K extends UnaryRpc, Flags extends PoolFlags, Args extends readonly unknown[]>(
  command: RpcCommand<K, Flags, Args>,
): RpcCommand {
  return command;
}

/** addRpcCommand adds a command to the program, under its group if it has one. */
export function addRpcCommand(program: Command, entry: RpcCommand, context: CommandContext): void {
  const parent = entry.group === undefined ? program : groupCommand(program, entry.group);
  const command = poolCommand(parent, entry.name, entry.description);
  for (const argument of entry.arguments ?? []) command.addArgument(argument);
  for (const option of entry.options ?? []) command.addOption(option);
  if (entry.help !== undefined) command.addHelpText("after", entry.help);
  command.action(async () => {
    const input: CommandInput = { flags: command.opts<PoolFlags>(), args: command.processedArgs, cli: context.cli };
    // The request first: report's unreadable --file is an error before an unreadable --ca is.
    const request = await entry.request(input);
    const { client } = context.connect(input.flags);
    const options = entry.callOptions?.(input);
    const reply =
      entry.call !== undefined
        ? await entry.call(client, request, options, input)
        : await call(client, entry.rpc, request, options);
    const text =
      input.flags.json === true
        ? toJsonString(AuthPoolService.method[entry.rpc].output, reply, { prettySpaces: 2 })
        : await entry.text(reply, input, client);
    context.cli.stdout.write(`${text}\n`);
  });
}

function groupCommand(program: Command, group: CommandGroup): Command {
  return (
    program.commands.find((command) => command.name() === group.name) ??
    program.command(group.name).description(group.description)
  );
}

function call(
  client: AuthPoolClient,
  rpc: UnaryRpc,
  request: unknown,
  options?: CallOptions,
): Promise<RpcReply<UnaryRpc>> {
  // Looked up by a union of names, the client is a union of signatures
  // TypeScript will not call; defineRpcCommand has already matched the
  // request to its RPC.
  const method = client[rpc] as (request: unknown, options?: CallOptions) => Promise<RpcReply<UnaryRpc>>;
  return method(request, options);
}
