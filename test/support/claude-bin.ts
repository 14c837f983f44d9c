import { execFile } from "node:child_process";
import { accessSync, constants } from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";

/**
 * Where the real Claude Code CLI is, for the tests that drive it: `CLAUDE_BIN`
 * when set, else the cache dir `.ci/run` installs it into
 * (`~/.cache/authpool-claude-cli`, npm's native package for this platform).
 * Undefined when neither holds an executable: those tests skip.
 */
export const CLAUDE_CLI_CACHE_DIR = path.join(os.homedir(), ".cache", "authpool-claude-cli");

/** CLAUDE_CLI_VERSION is the version the real-CLI tests were written against (and `.ci/run` installs). */
export const CLAUDE_CLI_VERSION = "2.1.328";

export function findClaudeBin(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const candidates = [
    env["CLAUDE_BIN"],
    path.join(
      CLAUDE_CLI_CACHE_DIR,
      "node_modules",
      "@anthropic-ai",
      `claude-code-${process.platform}-${process.arch}`,
      "claude",
    ),
    path.join(CLAUDE_CLI_CACHE_DIR, "node_modules", ".bin", "claude"),
  ];
  for (const candidate of candidates) {
    if (candidate === undefined || candidate === "") continue;
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // try the next place
    }
  }
  return undefined;
}

/** claudeVersion runs `claude --version` ("2.1.328 (Claude Code)"); undefined when it fails. */
export async function claudeVersion(bin: string): Promise<string | undefined> {
  try {
    const { stdout } = await promisify(execFile)(bin, ["--version"], { timeout: 20_000 });
    return stdout.trim();
  } catch {
    return undefined;
  }
}
