/**
 * The config module: load a pool config file, apply environment overrides,
 * and get a frozen, fully-defaulted PoolConfig or a ConfigError saying
 * exactly which key is wrong.
 */
export { configDefaults } from "./defaults.js";
export { applyEnv, defaultConfigPath, ENV_SOURCE } from "./env.js";
export { ConfigError } from "./errors.js";
export type { ConfigIssue } from "./errors.js";
export { INLINE_SOURCE, loadConfigFile, parseConfig } from "./load.js";
export { configAliases, SUBSCRIPTION_ID_PATTERN } from "./schema.js";
export { CLIENT_NAME_PATTERN } from "./auth-tokens.js";
export { BEARER_ROLES, MIN_TOKEN_LENGTH } from "./auth-tokens.js";
export { type TlsCredentials, readTlsCredentials } from "./tls-files.js";
export type {
  BearerRole,
  BearerToken,
  HealthWeights,
  LoadOptions,
  NotificationChannel,
  NotificationRule,
  NotificationType,
  PoolConfig,
  SlackConfig,
  SubscriptionConfig,
  SubscriptionType,
  TlsConfig,
  WebhookConfig,
} from "./types.js";
