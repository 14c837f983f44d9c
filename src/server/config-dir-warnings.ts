import { statSync } from "node:fs";

/**
 * configDirWarnings checks each subscription's config dir once: a missing
 * dir is reported in status (the gateway would fail to run Claude there),
 * not a reason to refuse to start, since dirs are often created after the
 * pool (e.g. by `claude login` on first use).
 */
export function configDirWarnings(
  subscriptions: readonly { id: string; configDir: string }[],
): Map<string, string[]> {
  const warnings = new Map<string, string[]>();
  for (const sub of subscriptions) {
    const list: string[] = [];
    try {
      if (!statSync(sub.configDir).isDirectory()) list.push(`config dir ${sub.configDir} is not a directory`);
    } catch {
      list.push(`config dir ${sub.configDir} does not exist`);
    }
    warnings.set(sub.id, list);
  }
  return warnings;
}
