/**
 * Claude Code's `<configDir>/.credentials.json`, as the credential manager
 * reads and rewrites it. Reading keeps the whole object (other top-level
 * keys, other `claudeAiOauth` keys) so a rewrite changes only the tokens.
 * Writing is atomic: a temp file in the same directory, fsync, rename over
 * the old file, mode 0600, the old file's owner kept. Reasons are shown to
 * operators and logged, so they never quote the file (nor parser messages,
 * which can).
 */

import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { access, lstat, open, readFile, rename, unlink } from "node:fs/promises";
import path from "node:path";
import { CREDENTIALS_FILE } from "../upstream/index.js";

/** StoredOAuth is the part of `claudeAiOauth` the manager reasons about. Holds secrets: never log it. */
export interface StoredOAuth {
  /** "" when absent or blank. */
  readonly accessToken: string;
  /** "" when absent or blank (Claude Code blanks it when the login is dead). */
  readonly refreshToken: string;
  /** Epoch ms; absent when the file records none. */
  readonly expiresAt?: number;
  readonly scopes: readonly string[];
  /** Set by Claude Code when it ended the login (e.g. "time_limit"). */
  readonly loginEnded?: string;
}

/** CredentialsFile is what one read of the file found. */
export type CredentialsFile =
  | { readonly kind: "absent"; readonly reason: string }
  | {
      readonly kind: "present";
      readonly oauth: StoredOAuth;
      /** The whole parsed file, for a rewrite that keeps every other key. */
      readonly data: Readonly<Record<string, unknown>>;
      readonly owner: { readonly uid: number; readonly gid: number };
      readonly symlink: boolean;
    };

/** RenewedTokens is what a refresh handed out. Holds secrets: never log it. */
export interface RenewedTokens {
  readonly accessToken: string;
  readonly refreshToken: string;
  /** Epoch ms. */
  readonly expiresAt: number;
}

/** credentialsPath is the file's path in a config dir. */
export function credentialsPath(configDir: string): string {
  return path.join(configDir, CREDENTIALS_FILE);
}

/** readCredentialsFile reads and parses the file; never throws. */
export async function readCredentialsFile(configDir: string): Promise<CredentialsFile> {
  const file = credentialsPath(configDir);
  let text: string;
  let info: Awaited<ReturnType<typeof lstat>>;
  try {
    info = await lstat(file);
    text = await readFile(file, "utf8");
  } catch (error) {
    const code = errorCode(error);
    if (code === "ENOENT" || code === "ENOTDIR") {
      return { kind: "absent", reason: `no ${CREDENTIALS_FILE} in ${configDir} (log in with claude there)` };
    }
    return { kind: "absent", reason: `cannot read ${file} (${code ?? "unknown error"})` };
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    return { kind: "absent", reason: `${file} is not JSON` };
  }
  if (!isRecord(data)) return { kind: "absent", reason: `${file} is not a JSON object` };
  const oauth = data["claudeAiOauth"];
  if (!isRecord(oauth))
    return { kind: "absent", reason: `${file} has no claudeAiOauth login (an API key login cannot be refreshed)` };
  const expiresAt = oauth["expiresAt"];
  const loginEnded = oauth["loginEnded"];
  return {
    kind: "present",
    oauth: {
      accessToken: stringOr(oauth["accessToken"]),
      refreshToken: stringOr(oauth["refreshToken"]),
      // Beyond Date's range is not a time: treat it as no expiry rather than compute with it.
      ...(typeof expiresAt === "number" && Number.isFinite(expiresAt) && Math.abs(expiresAt) <= 8.64e15
        ? { expiresAt }
        : {}),
      scopes: Array.isArray(oauth["scopes"]) ? oauth["scopes"].filter((s): s is string => typeof s === "string") : [],
      ...(typeof loginEnded === "string" && loginEnded !== "" ? { loginEnded } : {}),
    },
    data,
    owner: { uid: info.uid, gid: info.gid },
    symlink: info.isSymbolicLink(),
  };
}

/**
 * withRenewedTokens returns the file's object with the new tokens and expiry
 * in `claudeAiOauth`; every other key is kept. `loginEnded` goes: it marks
 * the login the new tokens just renewed as ended.
 */
export function withRenewedTokens(
  data: Readonly<Record<string, unknown>>,
  tokens: RenewedTokens,
): Record<string, unknown> {
  const previous = isRecord(data["claudeAiOauth"]) ? data["claudeAiOauth"] : {};
  const oauth: Record<string, unknown> = {
    ...previous,
    accessToken: tokens.accessToken,
    refreshToken: tokens.refreshToken,
    expiresAt: tokens.expiresAt,
  };
  delete oauth["loginEnded"];
  return { ...data, claudeAiOauth: oauth };
}

/** WriteResult says whether the new file is in place, and why not. */
export type WriteResult = { readonly ok: true } | { readonly ok: false; readonly reason: string };

/**
 * writeCredentialsFile replaces the file atomically: a reader sees the old
 * file or the new one, never a part. The new file is mode 0600 and gets the
 * old file's owner (a pool running as another user than the CLI must not
 * leave a file the CLI cannot read: if the owner cannot be kept, nothing is
 * written). A symlinked file is not replaced (the rename would replace the
 * link, not its target).
 */
export async function writeCredentialsFile(
  configDir: string,
  data: Readonly<Record<string, unknown>>,
  current: { readonly owner: { readonly uid: number; readonly gid: number }; readonly symlink: boolean },
): Promise<WriteResult> {
  const target = credentialsPath(configDir);
  if (current.symlink) return { ok: false, reason: `${target} is a symlink; the pool does not replace it` };
  const temp = path.join(configDir, `${CREDENTIALS_FILE}.authpool-${randomBytes(6).toString("hex")}.tmp`);
  let created = false;
  try {
    const handle = await open(temp, "wx", 0o600);
    created = true;
    try {
      await handle.writeFile(JSON.stringify(data), "utf8");
      await handle.chmod(0o600);
      // Mode 0600: only the owner matters (a pool running as root writes for the CLI's user).
      const uid = process.getuid?.();
      if (uid !== undefined && current.owner.uid !== uid) await handle.chown(current.owner.uid, current.owner.gid);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, target);
    created = false;
    await syncDirectory(configDir);
    return { ok: true };
  } catch (error) {
    return { ok: false, reason: `cannot write ${target} (${errorCode(error) ?? "unknown error"})` };
  } finally {
    if (created) await unlink(temp).catch(() => {});
  }
}

/**
 * writeProblem says why a rewrite could not work, before a refresh spends
 * the refresh token: a symlinked file, a file of another user (unless the
 * pool runs as root), a config dir the pool cannot write in. Undefined when
 * none is known (a full disk still shows only at the write).
 */
export async function writeProblem(
  configDir: string,
  current: { readonly owner: { readonly uid: number }; readonly symlink: boolean },
): Promise<string | undefined> {
  const target = credentialsPath(configDir);
  if (current.symlink) return `${target} is a symlink; the pool does not replace it`;
  const uid = process.getuid?.();
  if (uid !== undefined && uid !== 0 && current.owner.uid !== uid) {
    return `${target} belongs to uid ${current.owner.uid} and the pool runs as uid ${uid}`;
  }
  try {
    await access(configDir, constants.W_OK);
  } catch (error) {
    return `cannot write in ${configDir} (${errorCode(error) ?? "unknown error"})`;
  }
  return undefined;
}

/** syncDirectory makes the rename durable; best effort (not every platform can open a directory). */
async function syncDirectory(dir: string): Promise<void> {
  try {
    const handle = await open(dir, "r");
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // The rename is done; only its durability across a power cut is less certain.
  }
}

function stringOr(value: unknown): string {
  return typeof value === "string" ? value.trim() : "";
}

function errorCode(error: unknown): string | undefined {
  const code = isRecord(error) ? error["code"] : undefined;
  return typeof code === "string" ? code : undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
