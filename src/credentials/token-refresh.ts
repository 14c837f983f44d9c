/**
 * One OAuth refresh against Anthropic's token endpoint, as Claude Code
 * 2.1.328 makes it: `POST {grant_type:"refresh_token", refresh_token,
 * client_id, scope}` as JSON; the answer carries `access_token`, a new
 * `refresh_token` (the old one is spent: single use) and `expires_in`
 * seconds. The outcome is a value; nothing here logs, and no reason quotes
 * a token or the answer's body.
 */

import type { RenewedTokens } from "./credentials-file.js";

/** OAUTH_TOKEN_ENDPOINT is where Claude Code refreshes (older clients used console.anthropic.com). */
export const OAUTH_TOKEN_ENDPOINT = "https://platform.claude.com/v1/oauth/token";

/** CLAUDE_CODE_CLIENT_ID is Claude Code's public OAuth client id. */
export const CLAUDE_CODE_CLIENT_ID = "9d1c250a-e61b-44d9-88ed-5944d1962f5e";

/** TokenRefreshRequest is one refresh to make. */
export interface TokenRefreshRequest {
  endpoint: string;
  clientId: string;
  /** Secret: sent, never logged. */
  refreshToken: string;
  /** The login's scopes, sent as `scope` (space-separated) when there are any. */
  scopes: readonly string[];
  timeoutMs: number;
  /** Epoch ms the answer's `expires_in` counts from. */
  now: () => number;
  fetch: typeof fetch;
}

/** TokenRefreshResult is how a refresh ended. */
export type TokenRefreshResult =
  | { readonly kind: "granted"; readonly tokens: RenewedTokens }
  /** The refresh token is spent or revoked: only a new login helps (unless someone else holds its successor). */
  | { readonly kind: "invalid_grant" }
  /** Another refusal (4xx): usually configuration (client id, endpoint); retried slowly. */
  | { readonly kind: "refused"; readonly status: number; readonly error?: string }
  /** Network error, timeout, 429 or 5xx: worth retrying with backoff. */
  | { readonly kind: "unavailable"; readonly reason: string; readonly retryAfterMs?: number };

/** requestTokenRefresh makes the request; never throws. */
export async function requestTokenRefresh(request: TokenRefreshRequest): Promise<TokenRefreshResult> {
  const body: Record<string, string> = {
    grant_type: "refresh_token",
    refresh_token: request.refreshToken,
    client_id: request.clientId,
  };
  if (request.scopes.length > 0) body["scope"] = request.scopes.join(" ");
  let response: Response;
  try {
    response = await request.fetch(request.endpoint, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json" },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(request.timeoutMs),
    });
  } catch (error) {
    return { kind: "unavailable", reason: `token endpoint unreachable (${errorName(error)})` };
  }
  let answer: unknown;
  try {
    answer = await response.json();
  } catch {
    answer = undefined;
  }
  if (response.ok) {
    const tokens = grantedTokens(answer, request.refreshToken, request.now());
    return tokens === undefined
      ? { kind: "unavailable", reason: `token endpoint answered ${response.status} without usable tokens` }
      : { kind: "granted", tokens };
  }
  const error = oauthErrorCode(answer);
  // Claude Code treats invalid_grant on 400 and 401 as a dead refresh token; some reports show 404.
  if (error === "invalid_grant" && response.status >= 400 && response.status < 500) return { kind: "invalid_grant" };
  if (response.status === 408 || response.status === 429 || response.status >= 500) {
    const retryAfterMs = retryAfter(response.headers.get("retry-after"));
    return {
      kind: "unavailable",
      reason: `token endpoint answered ${response.status}${error !== undefined ? ` ${error}` : ""}`,
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
    };
  }
  return { kind: "refused", status: response.status, ...(error !== undefined ? { error } : {}) };
}

/** grantedTokens reads a success answer; a missing refresh_token means the old one stays valid (Claude Code's reading). */
function grantedTokens(answer: unknown, oldRefreshToken: string, now: number): RenewedTokens | undefined {
  if (!isRecord(answer)) return undefined;
  const accessToken = answer["access_token"];
  const refreshToken = answer["refresh_token"] ?? oldRefreshToken;
  const expiresIn = answer["expires_in"];
  if (typeof accessToken !== "string" || accessToken === "") return undefined;
  if (typeof refreshToken !== "string" || refreshToken === "") return undefined;
  if (typeof expiresIn !== "number" || !Number.isFinite(expiresIn) || expiresIn <= 0) return undefined;
  return { accessToken, refreshToken, expiresAt: now + Math.round(expiresIn * 1000) };
}

/** oauthErrorCode is the answer's OAuth `error` code when it looks like one (never free text from the body). */
function oauthErrorCode(answer: unknown): string | undefined {
  if (!isRecord(answer)) return undefined;
  const direct = answer["error"];
  // Anthropic's API errors nest it: {"type":"error","error":{"type":"…"}}.
  const code = typeof direct === "string" ? direct : isRecord(direct) ? direct["type"] : undefined;
  return typeof code === "string" && /^[a-z_]{1,64}$/.test(code) ? code : undefined;
}

function retryAfter(header: string | null): number | undefined {
  if (header === null || !/^\d{1,6}$/.test(header.trim())) return undefined;
  return Number(header.trim()) * 1000;
}

function errorName(error: unknown): string {
  if (error instanceof Error) {
    const cause = (error as { cause?: unknown }).cause;
    const code = isRecord(cause) && typeof cause["code"] === "string" ? cause["code"] : undefined;
    return code ?? error.name;
  }
  return "unknown error";
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
