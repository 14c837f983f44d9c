import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { createAuthPoolClient } from "../../src/client/index.js";
import { loggedInConfigRaw } from "../support/test-server.js";

/**
 * kill -9 in a busy hour: the pool runs as its own process (the built CLI,
 * as users run it), is killed without warning in the middle of a burst, and
 * restarted. Every allocation it acknowledged must still be there, and none
 * it did not acknowledge may have over-filled a subscription.
 */
const cli = fileURLToPath(new URL("../../dist/src/cli/main.js", import.meta.url));

let child: ChildProcess | undefined;
let dir: string | undefined;
afterEach(async () => {
  child?.kill("SIGKILL");
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

async function serve(configFile: string): Promise<{ proc: ChildProcess; url: string }> {
  const proc = spawn(process.execPath, [cli, "serve", "--config", configFile], {
    env: { ...process.env, AUTHPOOL_PORT: "0" },
    stdio: ["ignore", "ignore", "pipe"],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let buffered = "";
    proc.stderr!.on("data", (chunk: Buffer) => {
      buffered += chunk.toString();
      // JSON log lines; the one saying "serving" carries the URL.
      for (const line of buffered.split("\n")) {
        try {
          const entry = JSON.parse(line) as { message?: string; url?: string };
          if (entry.message === "serving" && entry.url !== undefined) resolve(entry.url);
        } catch {
          // a partial line: wait for the rest
        }
      }
    });
    proc.once("exit", (code) => reject(new Error(`server exited with ${code}: ${buffered}`)));
  });
  return { proc, url };
}

describe("crash recovery (kill -9)", () => {
  it("keeps every acknowledged allocation and never over-allocates", async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "authpool-crash-"));
    const configFile = path.join(dir, "pool.json");
    await writeFile(
      configFile,
      JSON.stringify({ ...(await loggedInConfigRaw(dir)), server: { host: "127.0.0.1", port: 0 } }),
    );

    const first = await serve(configFile);
    child = first.proc;
    const client = createAuthPoolClient(first.url, { timeoutMs: 10_000 });
    const acknowledged: string[] = [];
    const calls = Array.from({ length: 300 }, (_, i) =>
      client.allocate({ sessionId: `crash-${i}` }).then(
        (res) => {
          if (res.outcome.case === "subscription") acknowledged.push(res.sessionId);
        },
        () => undefined,
      ),
    );
    // Kill once some answers are out but the burst is still going.
    while (acknowledged.length < 10) await new Promise((r) => setImmediate(r));
    first.proc.kill("SIGKILL");
    await Promise.all(calls);
    expect(acknowledged.length).toBeGreaterThanOrEqual(10);

    const second = await serve(configFile);
    child = second.proc;
    const status = await createAuthPoolClient(second.url).getPoolStatus({ includeSessions: true });
    const held = new Set(status.sessions.map((s) => s.sessionId));
    for (const id of acknowledged) expect(held.has(id)).toBe(true);
    expect(status.totalSessions).toBeLessThanOrEqual(45);
    for (const s of status.subscriptions) expect(s.sessionCount).toBeLessThanOrEqual(15);

    // The restarted pool keeps allocating from where it was.
    const more = await createAuthPoolClient(second.url).allocate({ sessionId: "after-restart" });
    expect(more.outcome.case).toBe(status.totalSessions < 45 ? "subscription" : "fallback");
  });

  it("loses no granted slot when it is killed while calls wait for one", async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "authpool-crash-wait-"));
    const configFile = path.join(dir, "pool.json");
    const raw = await loggedInConfigRaw(dir);
    const [only] = raw.subscriptions as Record<string, unknown>[];
    await writeFile(
      configFile,
      JSON.stringify({
        ...raw,
        subscriptions: [{ ...only, maxClientsPerSub: undefined, maxSessions: 3 }],
        server: { host: "127.0.0.1", port: 0 },
      }),
    );

    const first = await serve(configFile);
    child = first.proc;
    const client = createAuthPoolClient(first.url, { timeoutMs: 30_000 });
    for (let i = 0; i < 3; i++) await client.allocate({ sessionId: `holder-${i}` });
    const granted: string[] = [];
    const released = new Set<string>();
    const waiting = Array.from({ length: 60 }, (_, i) => {
      const sessionId = `waiter-${i}`;
      return client.allocate({ sessionId, client: i % 2 === 0 ? "even" : "odd", wait: true }).then(
        async (res) => {
          if (res.outcome.case !== "subscription") return;
          granted.push(sessionId);
          // Every other grant is given back at once: slots keep turning over while calls wait.
          if (granted.length % 2 === 0) {
            // Sent is enough to count it as given back: a release cut off by the kill has an unknown fate.
            released.add(sessionId);
            await client.release({ sessionId }).catch(() => undefined);
          }
        },
        () => undefined,
      );
    });
    while ((await client.getPoolStatus({})).waiting < 60) await new Promise((r) => setTimeout(r, 10));
    for (let i = 0; i < 3; i++) await client.release({ sessionId: `holder-${i}` });
    while (granted.length < 4) await new Promise((r) => setImmediate(r));
    first.proc.kill("SIGKILL");
    await Promise.all(waiting);

    const second = await serve(configFile);
    child = second.proc;
    const status = await createAuthPoolClient(second.url).getPoolStatus({ includeSessions: true });
    const held = new Set(status.sessions.map((s) => s.sessionId));
    // Every grant a waiting call was answered with is still there, unless it was given back.
    for (const id of granted) if (!released.has(id)) expect(held.has(id), id).toBe(true);
    // And no slot was granted twice.
    expect(status.totalSessions).toBeLessThanOrEqual(3);
    expect(status.waiting).toBe(0);
  });
});
