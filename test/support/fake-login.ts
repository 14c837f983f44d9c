import { access } from "node:fs/promises";
import path from "node:path";
import { writeFakeLogin } from "../../bench/fake-login.js";

export { FAKE_ACCESS_TOKEN, FAKE_REFRESH_TOKEN, fakeLogin, writeFakeLogin } from "../../bench/fake-login.js";

/**
 * writeFakeLogins logs in every OAuth subscription whose config dir lies
 * under `root` (a test's temp dir; nothing outside it is touched), as an
 * operator would before pooling it: the pool does not offer a subscription
 * without a usable login. A credentials file a test wrote itself is kept.
 */
export async function writeFakeLogins(
  subscriptions: readonly { type: string; configDir: string }[],
  root: string,
): Promise<void> {
  const inside = (dir: string) => {
    const rel = path.relative(root, dir);
    return rel !== "" && !rel.startsWith("..") && !path.isAbsolute(rel);
  };
  await Promise.all(
    subscriptions
      .filter((s) => s.type !== "api" && inside(s.configDir))
      .map(async (s) => {
        const exists = await access(path.join(s.configDir, ".credentials.json")).then(
          () => true,
          () => false,
        );
        if (!exists) await writeFakeLogin(s.configDir);
      }),
  );
}
