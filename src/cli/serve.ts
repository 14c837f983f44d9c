import { existsSync } from "node:fs";
import { applyEnv, ConfigError, loadConfigFile } from "../config/index.js";
import { createJsonLogger } from "../runtime/logger.js";
import { exposureWarnings } from "../server/exposure.js";
import { startAuthPoolServer } from "../server/start-server.js";
import { redact } from "../store/index.js";
import { chooseConfigFile, describeChoice, missingExampleHint } from "./config-file.js";

/** ServeOptions replace the process around serve (tests); each defaults to the real one. */
export interface ServeOptions {
  env?: NodeJS.ProcessEnv;
  /** Where the JSON log lines and the plain warnings go. Default: process.stderr. */
  stderr?: { write(text: string): unknown };
  /** Stops the pool as SIGTERM does. */
  stop?: AbortSignal;
}

/**
 * serve runs the pool until SIGTERM or SIGINT, then closes it gracefully and
 * resolves with 0; SIGHUP reloads the config. The config is the file
 * chooseConfigFile picks (`configFlag`, AUTHPOOL_CONFIG, ./authpool.yaml, the
 * example), named in one plain line on stderr once it has loaded; a
 * ConfigError or StoreError is thrown for main to turn into exit code 78.
 * Serving beyond loopback without authentication is also said in one plain
 * line on stderr, for whoever reads the terminal rather than the logs.
 */
export async function serve(configFlag: string | undefined, options: ServeOptions = {}): Promise<number> {
  const env = options.env ?? process.env;
  const stderr = options.stderr ?? process.stderr;
  const logger = createJsonLogger(options.stderr !== undefined ? { destination: options.stderr, env } : { env });
  const choice = chooseConfigFile({ flag: configFlag, env });
  const file = choice.file;
  // Outside a checkout there is no example either: say how to get a config, not ENOENT.
  if (choice.kind === "example" && !existsSync(file)) {
    throw new ConfigError(file, [{ path: "", expected: missingExampleHint() }]);
  }
  const load = async () => applyEnv(await loadConfigFile(file), env);
  const config = await load();
  stderr.write(`authpool: ${describeChoice(choice)}\n`);
  // Reload on ReloadConfig, on SIGHUP and when the file changes; an invalid
  // file is refused (and logged) and the running config stays.
  const server = await startAuthPoolServer({ config, logger, loadConfig: load, watchConfig: true });
  const reloadOnSignal = () => {
    server.reload().then(
      (summary) => logger.info("reload (SIGHUP)", { ...summary }),
      (error: unknown) =>
        logger.error("reload refused (SIGHUP)", { reason: error instanceof Error ? error.message : String(error) }),
    );
  };
  logger.info("serving", {
    url: server.url,
    config: config.source,
    store: redact(config.store.uri),
    subscriptions: config.subscriptions.map((s) => s.id),
    instance: server.instanceId,
    role: server.writer.role,
    ...(server.writer.role === "standby"
      ? { leader: server.writer.lease?.holder ?? "none", leaderAddress: server.writer.lease?.address ?? "" }
      : {}),
  });
  for (const w of exposureWarnings(config.server, server)) {
    if (w.kind === "open") {
      stderr.write(
        `authpool: WARNING: serving on ${String(w.fields.address)} without authentication; anyone who can reach it controls the pool (set AUTHPOOL_TOKENS or server.authTokensFile)\n`,
      );
    }
  }
  let cleanup = () => {};
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      logger.info("shutting down", { signal });
      resolve();
    };
    const onTerm = () => stop("SIGTERM");
    const onInt = () => stop("SIGINT");
    const onAbort = () => stop("stop");
    process.once("SIGTERM", onTerm);
    process.once("SIGINT", onInt);
    process.on("SIGHUP", reloadOnSignal);
    if (options.stop?.aborted === true) onAbort();
    options.stop?.addEventListener("abort", onAbort, { once: true });
    cleanup = () => {
      process.off("SIGTERM", onTerm);
      process.off("SIGINT", onInt);
      options.stop?.removeEventListener("abort", onAbort);
    };
  });
  cleanup();
  process.off("SIGHUP", reloadOnSignal);
  await server.close();
  logger.info("stopped", {});
  return 0;
}
