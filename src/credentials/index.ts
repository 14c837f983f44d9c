/**
 * Managed credentials: the pool as the one refresher of each managed
 * subscription's Claude Code OAuth login (`<configDir>/.credentials.json`),
 * renewing it well before any running `claude` process would, under Claude
 * Code's own refresh lock, written atomically, never logged. For the other
 * (unmanaged) subscriptions, only a login check: is there a usable login?
 */
export { CredentialManager, LOCK_BUSY_RETRY_MS } from "./credential-manager.js";
export type {
  CredentialManagerOptions,
  CredentialSettings,
  CredentialSnapshot,
  ManagedSubscription,
} from "./credential-manager.js";
export { decideCredentials, retryDelay, statusWhileFailing } from "./credential-decision.js";
export type {
  CredentialDecision,
  CredentialFacts,
  CredentialStatus,
  CredentialStatusKind,
  RefreshBackoff,
  RefreshPolicy,
} from "./credential-decision.js";
export { loginStatus, readLoginFacts } from "./login-check.js";
export type { LoginCheck, LoginFacts } from "./login-check.js";
export { credentialsPath, readCredentialsFile, withRenewedTokens, writeCredentialsFile } from "./credentials-file.js";
export type { CredentialsFile, RenewedTokens, StoredOAuth, WriteResult } from "./credentials-file.js";
export { CLAUDE_REFRESH_LOCK, LOCK_STALE_MS, createClaudeRefreshLock } from "./refresh-lock.js";
export type { LockAttempt, RefreshLock } from "./refresh-lock.js";
export { CLAUDE_CODE_CLIENT_ID, OAUTH_TOKEN_ENDPOINT, requestTokenRefresh } from "./token-refresh.js";
export type { TokenRefreshRequest, TokenRefreshResult } from "./token-refresh.js";
