/**
 * Subscription config dirs become CLAUDE_CONFIG_DIR for spawned Claude
 * processes, so only plain directory paths are accepted: absolute, `~/...`,
 * or `./...` (relative to the config file, so a config shipped with its
 * dirs, like config/example.yaml, works from any working directory).
 * Anything clever (URLs, `..` hops, control characters) is more likely a
 * mistake or an injection than an intent.
 */
import path from "node:path";

/**
 * configDirProblem returns what a config dir should have been, or undefined
 * when the raw value is acceptable. It checks the value as written, before
 * `~` expansion, so a `..` cannot hide behind normalisation.
 */
export function configDirProblem(raw: string): string | undefined {
  if (raw.includes("\0")) return "a directory path without NUL bytes";
  if (/[\u0000-\u001f\u007f]/.test(raw)) {
    return "a directory path without newlines or control characters";
  }
  if (/^[A-Za-z][A-Za-z0-9+.-]*:/.test(raw)) {
    return "a plain directory path, not a URL";
  }
  if (raw.split(/[\\/]/).includes("..")) {
    return 'a directory path without ".." segments';
  }
  // A bare relative path ("claude-a") is more likely a forgotten "~/" than meant: "./" says it is.
  if (!isHomeRelative(raw) && !isFileRelative(raw) && !path.isAbsolute(raw)) {
    return 'an absolute directory path, or one starting with "~/" or "./" (relative to the config file)';
  }
  return undefined;
}

/**
 * expandConfigDir expands a leading `~` against homeDir, resolves a relative
 * path against baseDir (default: the working directory) and normalises the
 * result.
 */
export function expandConfigDir(raw: string, homeDir: string, baseDir?: string): string {
  if (isHomeRelative(raw)) return path.resolve(homeDir, `.${raw.slice(1)}`);
  return baseDir === undefined ? path.resolve(raw) : path.resolve(baseDir, raw);
}

// Only "~" and "~/..." are supported; "~user" needs a passwd lookup and is
// rejected as relative instead.
function isHomeRelative(raw: string): boolean {
  return raw === "~" || raw.startsWith("~/");
}

function isFileRelative(raw: string): boolean {
  return raw.startsWith("./");
}
