import { statSync } from "node:fs";

/**
 * configDirWarnings checks each subscription's config dir once (at start and
 * at a reload): a missing dir is reported in status (the gateway would fail
 * to run Claude there), not a reason to refuse to start, since dirs are often
 * created after the pool (e.g. by `claude login` on first use). Meanwhile the
 * login check (src/credentials/login-check.ts, a background job) keeps such
 * a subscription out of allocation, and lets it in once a login is there.
 */
export function configDirWarnings(subscriptions: readonly { id: string; configDir: string }[]): Map<string, string[]> {
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
