import { applyEnv, defaultConfigPath, loadConfigFile } from "../config/index.js";
import { createJsonLogger } from "../runtime/logger.js";
import { startAuthPoolServer } from "../server/start-server.js";
import { redact } from "../store/index.js";

/**
 * serve runs the pool until SIGTERM or SIGINT, then closes it gracefully and
 * resolves with 0; SIGHUP reloads the config. The config comes from `configFlag`, else AUTHPOOL_CONFIG,
 * else the example; a ConfigError or StoreError is thrown for main to turn
 * into exit code 78.
 */
export async function serve(configFlag: string | undefined): Promise<number> {
  const logger = createJsonLogger();
  const file = configFlag ?? process.env.AUTHPOOL_CONFIG ?? defaultConfigPath;
  const load = async () => applyEnv(await loadConfigFile(file), process.env);
  const config = await load();
  // Reload on ReloadConfig, on SIGHUP and when the file changes; an invalid
  // file is refused (and logged) and the running config stays.
  const server = await startAuthPoolServer({ config, logger, loadConfig: load, watchConfig: true });
  const reloadOnSignal = () => {
    server.reload().then(
      (summary) => logger.info("reload (SIGHUP)", { ...summary }),
      (error: unknown) => logger.error("reload refused (SIGHUP)", { reason: error instanceof Error ? error.message : String(error) }),
    );
  };
  logger.info("serving", {
    url: server.url,
    config: config.source,
    store: redact(config.store.uri),
    subscriptions: config.subscriptions.map((s) => s.id),
  });
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      logger.info("shutting down", { signal });
      resolve();
    };
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
    process.on("SIGHUP", reloadOnSignal);
  });
  process.off("SIGHUP", reloadOnSignal);
  await server.close();
  logger.info("stopped", {});
  return 0;
}
