import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const PACKAGE_NAME = "auth-pool";

/**
 * packageVersion is the version in auth-pool's package.json, found by
 * walking up from this module: it sits at a different depth in src/ (tests)
 * and dist/src/ (the installed command), and importing the JSON would copy
 * package.json into dist/.
 */
export function packageVersion(from = path.dirname(fileURLToPath(import.meta.url))): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const version = versionIn(path.join(dir, "package.json"));
    if (version !== undefined) return version;
    if (path.dirname(dir) === dir) return "unknown";
  }
}

function versionIn(file: string): string | undefined {
  try {
    const pkg = JSON.parse(readFileSync(file, "utf8")) as { name?: unknown; version?: unknown };
    return pkg.name === PACKAGE_NAME && typeof pkg.version === "string" ? pkg.version : undefined;
  } catch {
    return undefined;
  }
}
