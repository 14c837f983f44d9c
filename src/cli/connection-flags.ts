import { readFileSync } from "node:fs";
import { type Command, Option } from "commander";
import { type AuthPoolClient, createAuthPoolClient } from "../client/index.js";
import { namingFailures } from "./failed-calls.js";
import type { PoolTarget } from "./tls-mismatch.js";
import { UsageError } from "./usage-error.js";

/** DEFAULT_SERVER is the pool `authpool` talks to without --server or AUTHPOOL_URL. */
export const DEFAULT_SERVER = "http://127.0.0.1:50051";

/** PoolFlags are the options every command that calls the pool takes. */
export interface PoolFlags {
  server?: string;
  url?: string;
  token?: string;
  ca?: string;
  json?: boolean;
}

/** PoolConnection is a client for the pool the flags named, and that pool's URL and --ca file. */
export interface PoolConnection extends PoolTarget {
  client: AuthPoolClient;
}

/** poolCommand adds a command that calls the pool, with the options every such command shares. */
export function poolCommand(parent: Command, name: string, description: string, { json = true } = {}): Command {
  const command = parent
    .command(name)
    .description(description)
    .option("--server <url>", `the pool's URL (default: $AUTHPOOL_URL, else ${DEFAULT_SERVER})`)
    // --url is what the first CLI called it; kept so old scripts still work.
    .addOption(new Option("--url <url>").hideHelp())
    .option("--token <token>", "bearer token, when the pool requires one (default: $AUTHPOOL_TOKEN)")
    .option("--ca <file>", "PEM certificate to trust for an https:// pool (default: $AUTHPOOL_CA)");
  if (json) command.option("--json", "print the reply as protobuf JSON");
  return command;
}

/** connectToPool makes the client --server, --token and --ca ask for, each defaulting to its variable in env. */
export function connectToPool(flags: PoolFlags, env: NodeJS.ProcessEnv): PoolConnection {
  const url = normaliseUrl(flags.server ?? flags.url ?? nonEmpty(env.AUTHPOOL_URL) ?? DEFAULT_SERVER);
  const token = flags.token ?? nonEmpty(env.AUTHPOOL_TOKEN);
  const caFile = flags.ca ?? nonEmpty(env.AUTHPOOL_CA);
  let ca: Buffer | undefined;
  if (caFile !== undefined) {
    try {
      ca = readFileSync(caFile);
    } catch (error) {
      throw new UsageError(
        `--ca ${caFile}: cannot read it (${(error as NodeJS.ErrnoException).code ?? String(error)})`,
      );
    }
  }
  const client = createAuthPoolClient(url, {
    ...(token !== undefined ? { token } : {}),
    ...(ca !== undefined ? { ca } : {}),
  });
  return { url, ...(caFile !== undefined ? { caFile } : {}), client: namingFailures(client) };
}

/** normaliseUrl lets `--server 10.0.0.5:50051` mean http://10.0.0.5:50051, as grpcurl users would type it. */
function normaliseUrl(url: string): string {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(url) ? url : `http://${url}`;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === "" ? undefined : value;
}
