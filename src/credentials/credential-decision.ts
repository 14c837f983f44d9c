/**
 * What the credential manager should do about one config dir's login, given
 * what its file says and the time: a pure function, no I/O, no tokens (only
 * facts about them), so every case is a table row in the tests.
 */

import { backoffDelay } from "../domain/index.js";

/**
 * CredentialStatusKind is the state of a login as the pool sees it:
 * `ok` (usable; someone else may have renewed it), `refreshed` (usable, and
 * the pool renewed it last), `no_credentials` (no OAuth login in the config
 * dir), `credentials_expired` (the access token expired and was not
 * renewed), `login_required` (the refresh token is dead: only `claude
 * /login` in that config dir helps).
 */
export type CredentialStatusKind = "ok" | "refreshed" | "no_credentials" | "credentials_expired" | "login_required";

/** CredentialStatus is a status and why (no secrets). */
export interface CredentialStatus {
  readonly kind: CredentialStatusKind;
  readonly reason?: string;
  /** The access token's expiry (epoch ms), when the file records one. */
  readonly expiresAt?: number;
}

/** CredentialFacts is what a read of the file established, without the tokens themselves. */
export type CredentialFacts =
  | { readonly kind: "absent"; readonly reason: string }
  | {
      readonly kind: "stored";
      readonly hasAccessToken: boolean;
      readonly hasRefreshToken: boolean;
      /** The refresh token is one the endpoint already refused (invalid_grant). */
      readonly refreshTokenDead: boolean;
      /** Claude Code's `loginEnded` marker. */
      readonly loginEnded?: string;
      readonly expiresAt?: number;
    };

/** RefreshPolicy is when to renew and how often to look. */
export interface RefreshPolicy {
  /** Renew when the access token has less than this left. */
  readonly refreshBeforeMs: number;
  /** Look at the file at least this often (a login fixed by hand is noticed within it). */
  readonly checkIntervalMs: number;
}

/** CredentialDecision: leave it (with its status and the next look) or renew it now. */
export type CredentialDecision =
  | { readonly action: "wait"; readonly status: CredentialStatus; readonly nextCheckAt: number }
  | { readonly action: "refresh"; readonly expired: boolean };

/** decideCredentials maps a file's facts and the time to a status or a refresh. */
export function decideCredentials(facts: CredentialFacts, now: number, policy: RefreshPolicy): CredentialDecision {
  const later = now + policy.checkIntervalMs;
  if (facts.kind === "absent") return wait({ kind: "no_credentials", reason: facts.reason }, later);
  const expiry = facts.expiresAt !== undefined ? { expiresAt: facts.expiresAt } : {};
  const expired = facts.expiresAt !== undefined && facts.expiresAt <= now;
  if (!facts.hasAccessToken && !facts.hasRefreshToken) {
    // Claude Code blanks both tokens when its refresh token was refused ("Not logged in · Please run /login").
    const why = facts.loginEnded !== undefined ? ` (loginEnded: ${facts.loginEnded})` : "";
    const reason = `the login was ended${why}: its tokens are blank; run claude /login in this config dir`;
    return wait({ kind: "login_required", reason, ...expiry }, later);
  }
  if (facts.refreshTokenDead) {
    return wait(
      {
        kind: "login_required",
        reason: "the refresh token was refused (invalid_grant); run claude /login in this config dir",
        ...expiry,
      },
      later,
    );
  }
  if (!facts.hasRefreshToken) {
    if (expired) {
      const reason = `expired at ${iso(facts.expiresAt)} and there is no refresh token; run claude /login in this config dir`;
      return wait({ kind: "credentials_expired", reason, ...expiry }, later);
    }
    return wait(
      {
        kind: "ok",
        reason: "no refresh token: this login cannot be renewed and ends when its access token expires",
        ...expiry,
      },
      later,
    );
  }
  // A refresh token without a recorded expiry: Claude Code does not refresh such a login either.
  if (facts.expiresAt === undefined)
    return wait({ kind: "ok", reason: "no expiry recorded: not renewed ahead of time" }, later);
  if (!facts.hasAccessToken || facts.expiresAt - now <= policy.refreshBeforeMs)
    return { action: "refresh", expired: expired || !facts.hasAccessToken };
  return wait({ kind: "ok", ...expiry }, Math.min(later, facts.expiresAt - policy.refreshBeforeMs));
}

/**
 * statusWhileFailing is the status while renewal keeps failing: an access
 * token still valid keeps the login usable (the previous status stands);
 * an expired one is `credentials_expired`, with the failure as the reason.
 */
export function statusWhileFailing(
  facts: CredentialFacts,
  now: number,
  previous: CredentialStatus | undefined,
  failure: string,
): CredentialStatus {
  const expiresAt = facts.kind === "stored" ? facts.expiresAt : undefined;
  const expiry = expiresAt !== undefined ? { expiresAt } : {};
  const usable = facts.kind === "stored" && facts.hasAccessToken && (expiresAt === undefined || expiresAt > now);
  if (!usable) {
    const what = expiresAt !== undefined ? `expired at ${iso(expiresAt)}` : "no access token";
    return { kind: "credentials_expired", reason: `${what}; renewal failing: ${failure}`, ...expiry };
  }
  const kind = previous?.kind === "refreshed" ? "refreshed" : "ok";
  return { kind, reason: `renewal failing, retrying: ${failure}`, ...expiry };
}

/** Backoff bounds the wait between failed renewals, in ms. */
export interface RefreshBackoff {
  readonly minMs: number;
  readonly maxMs: number;
}

/**
 * retryDelay is the wait after failure number `failures` (1 = the first):
 * doubling from minMs up to maxMs, with "equal jitter" (between half and
 * all of that), so a pool never retries sooner than half of minMs and many
 * accounts failing together spread out.
 */
export function retryDelay(failures: number, backoff: RefreshBackoff, random: () => number): number {
  return backoffDelay(failures, { baseMs: backoff.minMs, maxMs: backoff.maxMs }, "equal", random);
}

function wait(status: CredentialStatus, nextCheckAt: number): CredentialDecision {
  return { action: "wait", status, nextCheckAt };
}

function iso(ms: number | undefined): string {
  return ms === undefined ? "an unknown time" : new Date(ms).toISOString();
}
