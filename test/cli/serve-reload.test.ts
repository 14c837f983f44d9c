import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { loggedInConfigRaw } from "../support/test-server.js";
import { type RunningCli, runCli, startCli } from "./cli-process.js";

/**
 * `authpool serve` as users run it, reloading its config: `authpool reload`,
 * SIGHUP, and a change of the file. An invalid file is refused and the
 * running config keeps serving.
 */

let server: RunningCli | undefined;
let dir: string | undefined;
afterEach(async () => {
  await server?.stop();
  server = undefined;
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

async function serve(): Promise<{ url: string; file: string }> {
  dir = await mkdtemp(path.join(os.tmpdir(), "authpool-serve-reload-"));
  const file = path.join(dir, "pool.json");
  await writeFile(file, JSON.stringify({ ...(await loggedInConfigRaw(dir)), server: { host: "127.0.0.1", port: 0 } }));
  server = startCli(["serve", "--config", file]);
  const deadline = Date.now() + 15_000;
  for (;;) {
    for (const line of server.stderr().split("\n")) {
      try {
        const entry = JSON.parse(line) as { message?: string; url?: string };
        if (entry.message === "serving" && entry.url !== undefined) return { url: entry.url, file };
      } catch {
        // not a whole JSON line yet
      }
    }
    if (Date.now() > deadline) throw new Error(`serve did not start: ${server.stderr()}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

// biome-ignore lint/suspicious/noExplicitAny: each test edits a different part of the config tree in place
async function edit(file: string, change: (raw: Record<string, any>) => void): Promise<void> {
  // biome-ignore lint/suspicious/noExplicitAny: as above
  const raw = JSON.parse(await readFile(file, "utf8")) as Record<string, any>;
  change(raw);
  await writeFile(file, JSON.stringify(raw));
}

async function maxSessionsOf(url: string, id: string): Promise<number | undefined> {
  const res = await runCli(["status", "--json", "--server", url]);
  const status = JSON.parse(res.stdout) as { subscriptions: { id: string; maxSessions: number }[] };
  return status.subscriptions.find((s) => s.id === id)?.maxSessions;
}

async function eventually(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not within 10 s: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe("authpool serve: config reload", () => {
  it("applies a change on `authpool reload`, refuses an invalid file, and reloads on SIGHUP", async () => {
    const { url, file } = await serve();
    await edit(file, (raw) => {
      raw.subscriptions[0].maxClientsPerSub = 3;
    });
    const reload = await runCli(["reload", "--json", "--server", url]);
    expect(reload.code).toBe(0);
    // The file watcher may have applied it first; either way it is in force now.
    expect(await maxSessionsOf(url, "sub1")).toBe(3);

    await edit(file, (raw) => {
      raw.subscriptions[1].weeklyBudget = -1;
    });
    const refused = await runCli(["reload", "--server", url]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`${file}: subscriptions[1].weeklyBudget: expected a number > 0`);
    expect(await maxSessionsOf(url, "sub1")).toBe(3);

    await edit(file, (raw) => {
      raw.subscriptions[1].weeklyBudget = 100;
      raw.subscriptions[2].maxClientsPerSub = 4;
    });
    server!.proc.kill("SIGHUP");
    await eventually(async () => (await maxSessionsOf(url, "sub3")) === 4, "SIGHUP reload");
    // The server logs what the reload changed, and is still serving.
    expect(server!.stderr()).toMatch(/"updated":\["sub3"\]/);
    expect((await runCli(["allocate", "--json", "--server", url])).code).toBe(0);
  });
});
