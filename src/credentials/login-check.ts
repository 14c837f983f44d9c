/**
 * The login check of an unmanaged subscription: can Claude run in its
 * config dir at all? The pool does not renew these logins (the CLI does), so
 * it only looks: a config dir that is missing, a credentials file that is
 * missing, unreadable, blanked, or expired with nothing to renew it, keeps
 * the subscription out of the pool until someone logs in again.
 * `loginStatus` is pure (facts and the time in, a status out) so every case
 * is a table row; `readLoginFacts` is the I/O, and keeps no token.
 */

import { lstat, stat } from "node:fs/promises";
import { CREDENTIALS_FILE } from "../upstream/index.js";
import type { CredentialStatus, CredentialStatusKind } from "./credential-decision.js";
import { credentialsPath, readCredentialsFile } from "./credentials-file.js";

/** LoginFacts is what a look at a config dir found, without the tokens themselves. */
export type LoginFacts =
  | { readonly kind: "no_config_dir"; readonly configDir: string; readonly notDirectory?: boolean }
  | { readonly kind: "no_file"; readonly configDir: string }
  /** The file is there but cannot be used: unreadable, not JSON, no OAuth login. */
  | { readonly kind: "unusable"; readonly reason: string }
  | {
      readonly kind: "stored";
      readonly hasAccessToken: boolean;
      readonly hasRefreshToken: boolean;
      /** Claude Code's `loginEnded` marker. */
      readonly loginEnded?: string;
      /** Epoch ms. */
      readonly expiresAt?: number;
    };

/** LoginCheck is a CredentialStatus without `refreshed` (the pool renews nothing here). */
export type LoginCheck = CredentialStatus & { readonly kind: Exclude<CredentialStatusKind, "refreshed"> };

/**
 * loginStatus maps what a look found to the status the `credentials` domain
 * command takes: `ok` (offered), or `no_credentials`, `credentials_expired`,
 * `login_required` (excluded until fixed). Reasons name paths and times,
 * never file content. `platform` is process.platform (a parameter for tests).
 */
export function loginStatus(facts: LoginFacts, now: number, platform: NodeJS.Platform): LoginCheck {
  switch (facts.kind) {
    case "no_config_dir": {
      const what = facts.notDirectory === true ? "is not a directory" : "does not exist";
      return { kind: "no_credentials", reason: `config dir ${facts.configDir} ${what}; ${logIn(facts.configDir)}` };
    }
    case "no_file":
      // On macOS Claude Code keeps the login in the Keychain, which the pool
      // cannot read: a missing file is the normal case there, not a dead login.
      if (platform === "darwin")
        return { kind: "ok", reason: `no ${CREDENTIALS_FILE}: on macOS the login is in the Keychain (not checked)` };
      return {
        kind: "no_credentials",
        reason: `no ${CREDENTIALS_FILE} in ${facts.configDir}; ${logIn(facts.configDir)}`,
      };
    case "unusable":
      return { kind: "no_credentials", reason: facts.reason };
    case "stored":
      return storedStatus(facts, now);
  }
}

function logIn(configDir: string): string {
  return `log in: CLAUDE_CONFIG_DIR=${configDir} claude, then /login`;
}

function storedStatus(facts: Extract<LoginFacts, { kind: "stored" }>, now: number): LoginCheck {
  const expiry = facts.expiresAt !== undefined ? { expiresAt: facts.expiresAt } : {};
  if ((!facts.hasAccessToken && !facts.hasRefreshToken) || facts.loginEnded !== undefined) {
    // Claude Code blanks both tokens (and may set loginEnded) when its login died: only /login helps.
    const why =
      facts.loginEnded !== undefined && /^[a-z_]{1,32}$/.test(facts.loginEnded)
        ? ` (loginEnded: ${facts.loginEnded})`
        : "";
    return {
      kind: "login_required",
      reason: `the login was ended${why}; run claude /login in this config dir`,
      ...expiry,
    };
  }
  const expired = facts.expiresAt !== undefined && facts.expiresAt <= now;
  if (expired && !facts.hasRefreshToken) {
    const at = new Date(facts.expiresAt!).toISOString();
    return {
      kind: "credentials_expired",
      reason: `expired at ${at} and there is no refresh token; run claude /login in this config dir`,
      ...expiry,
    };
  }
  // Expired with a refresh token is fine: the CLI renews it itself at its next run.
  return { kind: "ok", ...expiry };
}

/** readLoginFacts looks at a config dir and its credentials file; never throws, keeps no token. */
export async function readLoginFacts(configDir: string): Promise<LoginFacts> {
  try {
    if (!(await stat(configDir)).isDirectory()) return { kind: "no_config_dir", configDir, notDirectory: true };
  } catch {
    return { kind: "no_config_dir", configDir };
  }
  const file = await readCredentialsFile(configDir);
  if (file.kind === "present") {
    const { accessToken, refreshToken, loginEnded, expiresAt } = file.oauth;
    return {
      kind: "stored",
      hasAccessToken: accessToken !== "",
      hasRefreshToken: refreshToken !== "",
      ...(loginEnded !== undefined ? { loginEnded } : {}),
      ...(expiresAt !== undefined ? { expiresAt } : {}),
    };
  }
  // readCredentialsFile says "absent" for a missing file and a broken one alike; only a missing one is normal on macOS.
  return (await isMissing(credentialsPath(configDir)))
    ? { kind: "no_file", configDir }
    : { kind: "unusable", reason: file.reason };
}

async function isMissing(file: string): Promise<boolean> {
  try {
    await lstat(file);
    return false;
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    return code === "ENOENT" || code === "ENOTDIR";
  }
}
