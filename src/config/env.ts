/**
 * Environment overrides for the few settings that differ per deployment of
 * the same config file (listen address, store location).
 */
import { deepFreeze } from "./defaults.js";
import { ConfigError, describeValue } from "./errors.js";
import { isPort } from "./schema.js";
import type { PoolConfig } from "./types.js";

/**
 * defaultConfigPath is the config file used when AUTHPOOL_CONFIG is unset;
 * the caller reads AUTHPOOL_CONFIG itself.
 */
export const defaultConfigPath = "config/example.yaml";

/** ENV_SOURCE is the ConfigError.file of errors in environment variables. */
export const ENV_SOURCE = "env";

/**
 * applyEnv returns config with AUTHPOOL_HOST (server.host), AUTHPOOL_PORT
 * (server.port), AUTHPOOL_STORE (store.uri) and AUTHPOOL_TOKENS
 * (server.authTokens, comma-separated) applied. Unset or empty
 * variables are ignored, as shells make "unset" and "" hard to tell apart.
 * Throws ConfigError (file "env") for a bad value.
 */
export function applyEnv(config: PoolConfig, env: NodeJS.ProcessEnv): PoolConfig {
  const host = nonEmpty(env.AUTHPOOL_HOST);
  const portText = nonEmpty(env.AUTHPOOL_PORT);
  const storeUri = nonEmpty(env.AUTHPOOL_STORE);
  const tokensText = nonEmpty(env.AUTHPOOL_TOKENS);
  let authTokens: string[] | undefined;
  if (tokensText !== undefined) {
    authTokens = tokensText.split(",").map((t) => t.trim()).filter((t) => t !== "");
    // Never echo a token: say how many were bad, not what they were.
    const bad = authTokens.filter((t) => !/^[\x21-\x7e]{16,}$/.test(t)).length;
    if (bad > 0 || authTokens.length === 0) {
      throw new ConfigError(ENV_SOURCE, [
        { path: "AUTHPOOL_TOKENS", expected: `expected comma-separated tokens of at least 16 characters without spaces (${bad} invalid)` },
      ]);
    }
  }

  if (host !== undefined && /[\s\u0000-\u001f\u007f]/.test(host)) {
    throw envError("AUTHPOOL_HOST", "a host name or address without spaces", host);
  }
  let port: number | undefined;
  if (portText !== undefined) {
    // Number() alone would accept "1e3", " 80" and "0x50".
    port = /^[0-9]{1,5}$/.test(portText) ? Number(portText) : Number.NaN;
    if (!isPort(port)) throw envError("AUTHPOOL_PORT", "an integer port 0-65535", portText);
  }

  if (host === undefined && port === undefined && storeUri === undefined && authTokens === undefined) return config;
  return deepFreeze({
    ...config,
    server: {
      host: host ?? config.server.host,
      port: port ?? config.server.port,
      authTokens: authTokens ?? config.server.authTokens,
    },
    store: { uri: storeUri ?? config.store.uri },
  });
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === "" ? undefined : value;
}

function envError(variable: string, expected: string, got: string): ConfigError {
  return new ConfigError(ENV_SOURCE, [
    { path: variable, expected: `expected ${expected}, got ${describeValue(got)}` },
  ]);
}
