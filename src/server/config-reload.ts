import { Code, ConnectError } from "@connectrpc/connect";
import { ConfigError, type PoolConfig } from "../config/index.js";
import type { Logger } from "../runtime/logger.js";
import type { ReloadSummary } from "./auth-pool-service.js";
import { diffConfig } from "./config-diff.js";

/**
 * createReloader returns reload(): read the config again, and if it changed,
 * put it in force through `apply` (the leader journals the consequences,
 * a standby adopts the settings for what it serves). One reload at a time,
 * in order: a burst of file events must not interleave two. An invalid file
 * leaves the running config in force.
 */
export interface ReloaderOptions {
  /** Reads the config again; throws ConfigError for an invalid file. Absent: no reload. */
  loadConfig?: () => Promise<PoolConfig>;
  current: () => PoolConfig;
  /** Puts `next` in force; the config variable is already `next` while it runs and is restored if it throws. */
  apply: (next: PoolConfig) => Promise<void>;
  replace: (config: PoolConfig) => void;
  logger: Logger;
}

export function createReloader(options: ReloaderOptions): () => Promise<ReloadSummary> {
  let reloading: Promise<unknown> = Promise.resolve();
  const applyReload = async (): Promise<ReloadSummary> => {
    if (options.loadConfig === undefined) {
      throw new ConnectError("this pool was started without a config file to reload", Code.FailedPrecondition);
    }
    let next: PoolConfig;
    try {
      next = await options.loadConfig();
    } catch (error) {
      // The running config stays; the error names the file, the path in it and what was expected.
      // edgeErrors caps the message: a file's long key cannot flood the trailer.
      if (error instanceof ConfigError) throw new ConnectError(error.message, Code.InvalidArgument);
      throw error;
    }
    const previous = options.current();
    const summary = diffConfig(previous, next);
    if (!summary.changed) return summary;
    options.replace(next);
    try {
      await options.apply(next);
    } catch (error) {
      // Not applied: the writer reloads its state with the config it had.
      options.replace(previous);
      throw error;
    }
    options.logger.info("config reloaded", { ...summary });
    return summary;
  };
  return () => {
    const run = reloading.then(() => applyReload());
    reloading = run.catch(() => undefined);
    return run;
  };
}
