import { chmod, mkdir, writeFile } from "node:fs/promises";
import path from "node:path";

/**
 * Fake Claude Code logins for config dirs the benches and tests make: the
 * pool offers only subscriptions whose config dir holds a usable login (its
 * login check), so a dir that is only created would be excluded a second
 * after start and every Allocate would end in the fallback.
 */

/** FAKE_ACCESS_TOKEN and FAKE_REFRESH_TOKEN are the tokens of fakeLogin(); no endpoint knows them. */
export const FAKE_ACCESS_TOKEN = "sk-ant-oat01-TEST-fake-login-access";
export const FAKE_REFRESH_TOKEN = "sk-ant-ort01-TEST-fake-login-refresh";

/** fakeLogin is a `.credentials.json` as Claude Code writes it after /login, valid until 2100. */
export function fakeLogin(over: Record<string, unknown> = {}): string {
  return JSON.stringify({
    claudeAiOauth: {
      accessToken: FAKE_ACCESS_TOKEN,
      refreshToken: FAKE_REFRESH_TOKEN,
      expiresAt: Date.parse("2100-01-01T00:00:00Z"),
      scopes: ["user:inference", "user:profile", "user:sessions:claude_code"],
      subscriptionType: "pro",
      ...over,
    },
  });
}

/** writeFakeLogin makes a logged-in config dir (the file mode 600, like the CLI's). */
export async function writeFakeLogin(configDir: string, over: Record<string, unknown> = {}): Promise<void> {
  await mkdir(configDir, { recursive: true });
  const file = path.join(configDir, ".credentials.json");
  await writeFile(file, fakeLogin(over));
  await chmod(file, 0o600);
}
