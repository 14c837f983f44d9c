/**
 * The OAuth access token Claude Code keeps in `<configDir>/.credentials.json`,
 * read strictly read-only here, for the usage poll. Only the credential
 * manager (src/credentials/, opt-in per subscription) ever renews it, under
 * Claude Code's own refresh lock so the CLI never races it. Failure reasons
 * are shown to operators, so they never carry the token (nor parser
 * messages, which may quote the file).
 */

import { readFile } from "node:fs/promises";
import path from "node:path";

/** CREDENTIALS_FILE is the file name Claude Code keeps its OAuth tokens in. */
export const CREDENTIALS_FILE = ".credentials.json";

/** AccessTokenResult is a usable token, or why there is none (safe to log). */
export type AccessTokenResult = { ok: true; token: string; expiresAt?: number } | { ok: false; reason: string };

/**
 * readAccessToken reads `claudeAiOauth.accessToken` from the config dir's
 * credentials file; a token whose `expiresAt` (epoch ms) is at or before
 * `now` is refused, because only the CLI may refresh it.
 */
export async function readAccessToken(configDir: string, now: number): Promise<AccessTokenResult> {
  let text: string;
  try {
    text = await readFile(path.join(configDir, CREDENTIALS_FILE), "utf8");
  } catch (error) {
    const code = errorCode(error);
    if (code === "ENOENT" || code === "ENOTDIR") {
      return {
        ok: false,
        reason: `no credentials: no ${CREDENTIALS_FILE} in the config dir (macOS keeps the token in the keychain)`,
      };
    }
    return { ok: false, reason: `cannot read ${CREDENTIALS_FILE} (${code ?? "unknown error"})` };
  }
  return tokenFromText(text, now);
}

/** tokenFromText checks the file's content; split out so the file is read once and parsed without I/O. */
function tokenFromText(text: string, now: number): AccessTokenResult {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    // The SyntaxError text can quote the file, token included: say only that it is malformed.
    return { ok: false, reason: "malformed credentials file (not JSON)" };
  }
  const oauth = isRecord(data) ? data["claudeAiOauth"] : undefined;
  if (!isRecord(oauth)) return { ok: false, reason: "malformed credentials file (no claudeAiOauth)" };
  const token = oauth["accessToken"];
  if (typeof token !== "string" || token.trim() === "") {
    return { ok: false, reason: "malformed credentials file (no claudeAiOauth.accessToken)" };
  }
  const expiresAt = oauth["expiresAt"];
  // Beyond Date's range (|ms| > 8.64e15) is not a time: treat it as no expiry rather than throw.
  if (typeof expiresAt === "number" && Math.abs(expiresAt) <= 8.64e15) {
    if (expiresAt <= now) {
      return {
        ok: false,
        reason: `credentials expired at ${new Date(expiresAt).toISOString()}; run claude once in this config dir to refresh them`,
      };
    }
    return { ok: true, token: token.trim(), expiresAt };
  }
  // No expiry recorded: let the endpoint judge the token.
  return { ok: true, token: token.trim() };
}

function errorCode(error: unknown): string | undefined {
  const code = isRecord(error) ? error["code"] : undefined;
  return typeof code === "string" ? code : undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
