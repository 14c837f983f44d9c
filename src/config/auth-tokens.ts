/**
 * Bearer tokens and their roles, as written in a token file, in
 * AUTHPOOL_TOKENS or (discouraged) in server.authTokens: `role:name:token`
 * (the name is the client the token's calls are booked to), `role:token`,
 * or a bare token, which means admin (what a token meant before roles
 * existed).
 * Nothing here ever puts a token, or a part of one, into an error text:
 * problems are located by line or entry number instead.
 */
import { readFileSync } from "node:fs";
import type { BearerRole, BearerToken } from "./types.js";

/** BEARER_ROLES are the roles a token can have; admin may do everything. */
export const BEARER_ROLES: readonly BearerRole[] = ["client", "reader", "admin"];

/** MIN_TOKEN_LENGTH: shorter tokens are refused, as guessable. */
export const MIN_TOKEN_LENGTH = 16;

/** CLIENT_NAME_PATTERN is what a client's name must match (as a subscription id). */
export const CLIENT_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** TOKEN_ENTRY_PHRASE completes "expected ..." for one token entry. */
export const TOKEN_ENTRY_PHRASE = `"role:name:token" or "role:token" (role client, reader or admin; name the client the token's calls are booked to; a bare token means admin) with a token of at least ${MIN_TOKEN_LENGTH} printable characters without spaces`;

/** TokenEntryResult is a parsed entry, or what was wrong with it (never quoting it). */
export type TokenEntryResult =
  | { readonly ok: true; readonly role: BearerRole; readonly token: string; readonly client?: string }
  | { readonly ok: false; readonly expected: string; readonly found: string };

/**
 * parseTokenEntry reads one `role:name:token`, `role:token` or bare-token
 * entry. A bare token may not contain ":" (the part before it would be
 * taken for a role); the role is matched case-insensitively. After the
 * role, a part that is a client name followed by ":" and a whole token is
 * the name: a `role:token` whose token has a ":" with 16 or more characters
 * after it reads as named, so generate tokens without one (hex, base64url).
 */
export function parseTokenEntry(text: string): TokenEntryResult {
  const colon = text.indexOf(":");
  const role = colon < 0 ? "admin" : text.slice(0, colon).trim().toLowerCase();
  let token = colon < 0 ? text : text.slice(colon + 1).trim();
  let client: string | undefined;
  const second = token.indexOf(":");
  if (
    colon >= 0 &&
    second > 0 &&
    CLIENT_NAME_PATTERN.test(token.slice(0, second)) &&
    token.length - second - 1 >= MIN_TOKEN_LENGTH
  ) {
    client = token.slice(0, second);
    token = token.slice(second + 1).trim();
  }
  if (!(BEARER_ROLES as readonly string[]).includes(role)) {
    return { ok: false, expected: 'a role of client, reader or admin before the ":"', found: "an unknown role" };
  }
  if (!/^[\x21-\x7e]*$/.test(token)) {
    return {
      ok: false,
      expected: "a token of printable characters without spaces",
      found: "a token with a space or control character",
    };
  }
  if (token.length < MIN_TOKEN_LENGTH) {
    return {
      ok: false,
      expected: `a token of at least ${MIN_TOKEN_LENGTH} characters`,
      found: token.length === 0 ? "an empty token" : `a token of ${token.length} characters`,
    };
  }
  return client === undefined
    ? { ok: true, role: role as BearerRole, token }
    : { ok: true, role: role as BearerRole, token, client };
}

/** bearerToken is a parsed entry as the server keeps it. */
export function bearerToken(entry: Extract<TokenEntryResult, { ok: true }>, from: BearerToken["from"]): BearerToken {
  return entry.client === undefined
    ? { role: entry.role, token: entry.token, from }
    : { role: entry.role, token: entry.token, from, client: entry.client };
}

/** TokenFileResult is the tokens of a token file, or its problems (each naming the file, and the line). */
export type TokenFileResult =
  | { readonly ok: true; readonly tokens: readonly BearerToken[] }
  | { readonly ok: false; readonly problems: readonly string[] };

/**
 * readTokenFile reads a token file: one `role:token` (or bare token) per
 * line; blank lines and `#` comments (a line starting with `#`, or ` #...`
 * after the token) are skipped. A file without a token is refused, so a
 * truncated file cannot silently turn authentication off. Each problem is
 * a phrase "expected ..., got ..." naming the file and the line.
 */
export function readTokenFile(file: string): TokenFileResult {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    return {
      ok: false,
      problems: [`expected a readable file of "role:token" lines, got ${file}: ${fileErrorText(error)}`],
    };
  }
  const tokens: BearerToken[] = [];
  const problems: string[] = [];
  text
    .replace(/^\uFEFF/, "")
    .split(/\r?\n/)
    .forEach((raw, index) => {
      const line = raw.replace(/\s+#.*$/, "").trim();
      if (line === "" || line.startsWith("#")) return;
      const entry = parseTokenEntry(line);
      if (entry.ok) tokens.push(bearerToken(entry, "file"));
      else problems.push(`expected ${entry.expected}, got ${entry.found} on line ${index + 1} of ${file}`);
    });
  if (problems.length > 0) return { ok: false, problems };
  if (tokens.length === 0)
    return { ok: false, problems: [`expected at least one "role:token" line, got none in ${file}`] };
  return { ok: true, tokens };
}

/** fileErrorText says why a file could not be read, without the stack or the errno number. */
export function fileErrorText(error: unknown): string {
  const code = typeof error === "object" && error !== null ? (error as { code?: unknown }).code : undefined;
  switch (code) {
    case "ENOENT":
      return "no such file";
    case "EACCES":
    case "EPERM":
      return "permission denied";
    case "EISDIR":
      return "a directory, not a file";
    default:
      return error instanceof Error ? error.message : String(error);
  }
}
