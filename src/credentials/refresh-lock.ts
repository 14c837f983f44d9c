/**
 * The lock Claude Code itself takes before it refreshes a login:
 * `<configDir>/.oauth_refresh.lock`, a directory made with mkdir (the
 * proper-lockfile convention: whoever creates it holds it; one whose mtime
 * is over 60 s old is stale and may be taken over). Claude Code 2.1.328
 * waits for it (five tries, 1-2 s apart), then re-reads the credentials and
 * adopts a token someone else wrote instead of refreshing again. Holding it
 * while the pool refreshes is what keeps the pool and running `claude`
 * processes from spending the same single-use refresh token.
 */

import { mkdir, rmdir, stat } from "node:fs/promises";
import path from "node:path";
import type { Clock } from "../domain/index.js";

/** CLAUDE_REFRESH_LOCK is the lock directory's name in the config dir (Claude Code 2.1.328). */
export const CLAUDE_REFRESH_LOCK = ".oauth_refresh.lock";

/** LOCK_STALE_MS is Claude Code's staleness bound for the lock (proper-lockfile `stale`). */
export const LOCK_STALE_MS = 60_000;

/** LockAttempt is the outcome of one try. */
export type LockAttempt =
  | { readonly kind: "held"; release(): Promise<void> }
  /** Someone else (a `claude` process, another pool) is refreshing now. */
  | { readonly kind: "busy" }
  | { readonly kind: "failed"; readonly reason: string };

/** RefreshLock serializes refreshes of one config dir. */
export interface RefreshLock {
  acquire(configDir: string): Promise<LockAttempt>;
}

/**
 * createClaudeRefreshLock takes Claude Code's own lock, never waiting: a
 * busy lock is reported at once and the caller tries again later. Holders
 * keep it for one refresh request (its timeout is at most 30 s), well under
 * the 60 s after which Claude Code would call it stale.
 */
export function createClaudeRefreshLock(clock: Clock): RefreshLock {
  return {
    async acquire(configDir) {
      const lockDir = path.join(configDir, CLAUDE_REFRESH_LOCK);
      const first = await tryMkdir(lockDir);
      if (first !== "exists") return first;
      // Taken: stale only if its holder stopped touching it (it died mid-refresh).
      let mtimeMs: number;
      try {
        mtimeMs = (await stat(lockDir)).mtimeMs;
      } catch (error) {
        // Released between our mkdir and stat: try once more.
        if (errorCode(error) === "ENOENT") {
          const again = await tryMkdir(lockDir);
          return again === "exists" ? { kind: "busy" } : again;
        }
        return { kind: "failed", reason: `cannot inspect ${lockDir} (${errorCode(error) ?? "unknown error"})` };
      }
      if (clock.now() - mtimeMs <= LOCK_STALE_MS) return { kind: "busy" };
      try {
        await rmdir(lockDir);
      } catch (error) {
        if (errorCode(error) !== "ENOENT") return { kind: "busy" };
      }
      const taken = await tryMkdir(lockDir);
      return taken === "exists" ? { kind: "busy" } : taken;
    },
  };
}

async function tryMkdir(lockDir: string): Promise<LockAttempt | "exists"> {
  try {
    await mkdir(lockDir);
  } catch (error) {
    const code = errorCode(error);
    if (code === "EEXIST") return "exists";
    return { kind: "failed", reason: `cannot create ${lockDir} (${code ?? "unknown error"})` };
  }
  let released = false;
  return {
    kind: "held",
    async release() {
      if (released) return;
      released = true;
      await rmdir(lockDir).catch(() => {});
    },
  };
}

function errorCode(error: unknown): string | undefined {
  const code = typeof error === "object" && error !== null ? (error as { code?: unknown }).code : undefined;
  return typeof code === "string" ? code : undefined;
}
