/**
 * Environment overrides for the few settings that differ per deployment of
 * the same config file (listen address, store location, bearer tokens).
 */
import path from "node:path";
import { TOKEN_ENTRY_PHRASE, bearerToken, parseTokenEntry, readTokenFile } from "./auth-tokens.js";
import { deepFreeze } from "./defaults.js";
import { type ConfigIssue, ConfigError, describeValue } from "./errors.js";
import { applyNotificationEnv } from "./notification-env.js";
import { isPort } from "./schema.js";
import type { BearerToken, PoolConfig } from "./types.js";

/**
 * defaultConfigPath is the config file used when AUTHPOOL_CONFIG is unset;
 * the caller reads AUTHPOOL_CONFIG itself.
 */
export const defaultConfigPath = "config/example.yaml";

/** ENV_SOURCE is the ConfigError.file of errors in environment variables. */
export const ENV_SOURCE = "env";

/**
 * applyEnv returns config with AUTHPOOL_HOST (server.host), AUTHPOOL_PORT
 * (server.port), AUTHPOOL_STORE (store.uri), AUTHPOOL_TOKENS
 * (comma-separated `role:token` entries; a bare token means admin) and
 * AUTHPOOL_TOKENS_FILE (a token file) applied. Tokens from either variable
 * replace those of the config file (both variables together add up).
 * Unset or empty variables are ignored, as shells make "unset" and "" hard
 * to tell apart. Throws ConfigError (file "env") for a bad value; a token is
 * never echoed, only its position. AUTHPOOL_WEBHOOK_SECRET and
 * AUTHPOOL_SLACK_URL are applied too (see applyNotificationEnv).
 */
export function applyEnv(fileConfig: PoolConfig, env: NodeJS.ProcessEnv): PoolConfig {
  const config = applyNotificationEnv(fileConfig, env, ENV_SOURCE);
  const host = nonEmpty(env.AUTHPOOL_HOST);
  const portText = nonEmpty(env.AUTHPOOL_PORT);
  const storeUri = nonEmpty(env.AUTHPOOL_STORE);
  const tokensText = nonEmpty(env.AUTHPOOL_TOKENS);
  const tokensFile = nonEmpty(env.AUTHPOOL_TOKENS_FILE);
  let authTokens: BearerToken[] | undefined;
  if (tokensText !== undefined) {
    const entries = tokensText
      .split(",")
      .map((t) => t.trim())
      .filter((t) => t !== "");
    if (entries.length === 0) {
      throw new ConfigError(ENV_SOURCE, [
        { path: "AUTHPOOL_TOKENS", expected: `expected comma-separated entries, each ${TOKEN_ENTRY_PHRASE}, got none` },
      ]);
    }
    const issues: ConfigIssue[] = [];
    authTokens = [];
    entries.forEach((text, index) => {
      const entry = parseTokenEntry(text);
      if (entry.ok) authTokens!.push(bearerToken(entry, "env"));
      else
        issues.push({
          path: "AUTHPOOL_TOKENS",
          expected: `expected ${entry.expected}, got ${entry.found} in entry ${index + 1} of ${entries.length}`,
        });
    });
    const [first, ...rest] = issues;
    if (first !== undefined) throw new ConfigError(ENV_SOURCE, [first, ...rest]);
  }
  let authTokensFile: string | undefined;
  if (tokensFile !== undefined) {
    authTokensFile = path.resolve(tokensFile);
    const read = readTokenFile(authTokensFile);
    if (!read.ok) {
      const [first, ...rest] = read.problems.map(
        (expected): ConfigIssue => ({ path: "AUTHPOOL_TOKENS_FILE", expected }),
      );
      throw new ConfigError(ENV_SOURCE, [
        first ?? { path: "AUTHPOOL_TOKENS_FILE", expected: "expected a token file" },
        ...rest,
      ]);
    }
    authTokens = [...read.tokens.map((t) => ({ ...t, from: "env" as const })), ...(authTokens ?? [])];
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
  let server: PoolConfig["server"] = {
    ...config.server,
    host: host ?? config.server.host,
    port: port ?? config.server.port,
  };
  if (authTokens !== undefined) {
    // The config's token file no longer supplies any token.
    const { authTokensFile: _replaced, ...rest } = server;
    server = { ...rest, authTokens, ...(authTokensFile !== undefined ? { authTokensFile } : {}) };
  }
  return deepFreeze({ ...config, server, store: { uri: storeUri ?? config.store.uri } });
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === "" ? undefined : value;
}

function envError(variable: string, expected: string, got: string): ConfigError {
  return new ConfigError(ENV_SOURCE, [{ path: variable, expected: `expected ${expected}, got ${describeValue(got)}` }]);
}
