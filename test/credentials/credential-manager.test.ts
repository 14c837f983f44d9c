import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, stat, symlink, unlink, utimes, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  CLAUDE_CODE_CLIENT_ID,
  CLAUDE_REFRESH_LOCK,
  CredentialManager,
  type CredentialManagerOptions,
  type CredentialStatus,
  LOCK_BUSY_RETRY_MS,
  type RefreshLock,
  createClaudeRefreshLock,
} from "../../src/credentials/index.js";
import { createJsonLogger } from "../../src/runtime/logger.js";
import {
  FakeTokenEndpoint,
  type TokenServer,
  type TokenSet,
  serveTokenEndpoint,
} from "../support/fake-token-endpoint.js";
import { ManualClock } from "../support/manual-clock.js";

const START = Date.parse("2026-11-23T10:00:00Z");
const MIN = 60_000;
const HOUR = 60 * MIN;
const SCOPES = ["user:inference", "user:profile", "user:sessions:claude_code"];

let clock: ManualClock;
let endpoint: FakeTokenEndpoint;
let server: TokenServer;
let root: string;
let dir: string;
let logLines: string[];
let statuses: [string, CredentialStatus][];

beforeEach(async () => {
  clock = new ManualClock(START);
  endpoint = new FakeTokenEndpoint({ clientId: CLAUDE_CODE_CLIENT_ID, now: () => clock.now() });
  server = await serveTokenEndpoint(endpoint);
  root = await mkdtemp(path.join(os.tmpdir(), "authpool-manage-"));
  dir = path.join(root, "claude-a");
  await mkdir(dir);
  logLines = [];
  statuses = [];
});
afterEach(async () => {
  await server.close();
  await rm(root, { recursive: true, force: true });
});

function manager(over: Partial<CredentialManagerOptions> = {}): CredentialManager {
  return new CredentialManager({
    subscriptions: [{ id: "sub1", configDir: dir }],
    tokenEndpoint: server.url,
    clientId: CLAUDE_CODE_CLIENT_ID,
    refreshBeforeMs: HOUR,
    checkIntervalMs: MIN,
    timeoutMs: 5_000,
    backoff: { minMs: 30_000, maxMs: 600_000 },
    clock,
    logger: createJsonLogger({ level: "debug", destination: { write: (line: string) => logLines.push(line) } }),
    onStatus: (id, status) => statuses.push([id, status]),
    random: () => 0.5,
    ...over,
  });
}

const credentialsFile = (configDir = dir) => path.join(configDir, ".credentials.json");

/** writeLogin writes a login as Claude Code keeps it, with keys of its own the pool must keep. */
async function writeLogin(tokens: TokenSet, configDir = dir): Promise<void> {
  const data = {
    claudeAiOauth: {
      ...tokens,
      scopes: SCOPES,
      subscriptionType: "max",
      rateLimitTier: "default_claude_max_20x",
      accountUuid: "acc-1",
    },
    mcpOAuth: { keep: "me" },
  };
  await writeFile(credentialsFile(configDir), JSON.stringify(data), { mode: 0o600 });
}

async function readLogin(
  configDir = dir,
): Promise<{ claudeAiOauth: Record<string, unknown> & TokenSet; mcpOAuth?: unknown }> {
  return JSON.parse(await readFile(credentialsFile(configDir), "utf8")) as {
    claudeAiOauth: Record<string, unknown> & TokenSet;
  };
}

const kinds = () => statuses.map(([, s]) => s.kind);

/** A fetch that runs `before` (e.g. another process writing the file), then the real request, then `after`. */
function fetchWith(hooks: { before?: () => Promise<void>; after?: () => Promise<void> }): typeof fetch {
  return async (input, init) => {
    await hooks.before?.();
    const response = await globalThis.fetch(input, init);
    await hooks.after?.();
    return response;
  };
}

describe("CredentialManager", () => {
  it("leaves a login alone until an hour before it expires, then renews it once, keeping every other key", async () => {
    await writeLogin(endpoint.login(START + 3 * HOUR));
    const m = manager();

    await m.checkDue();
    expect(endpoint.requests).toEqual([]);
    expect(m.status("sub1")).toMatchObject({
      kind: "ok",
      expiresAt: START + 3 * HOUR,
      nextCheckAt: START + MIN,
      failures: 0,
    });

    clock.set(START + 2 * HOUR + 1_000);
    await m.checkDue();
    expect(endpoint.granted).toBe(1);
    const after = await readLogin();
    expect(endpoint.isLive(after.claudeAiOauth.refreshToken)).toBe(true);
    expect(endpoint.accessTokenValid(after.claudeAiOauth.accessToken)).toBe(true);
    expect(after.claudeAiOauth.expiresAt).toBe(clock.now() + 8 * HOUR);
    expect(after).toMatchObject({
      claudeAiOauth: {
        scopes: SCOPES,
        subscriptionType: "max",
        rateLimitTier: "default_claude_max_20x",
        accountUuid: "acc-1",
      },
      mcpOAuth: { keep: "me" },
    });
    expect((await stat(credentialsFile())).mode & 0o777).toBe(0o600);
    expect(endpoint.requests[0]?.scope).toBe(SCOPES.join(" "));
    expect(m.status("sub1")).toMatchObject({
      kind: "refreshed",
      lastRefreshAt: clock.now(),
      expiresAt: clock.now() + 8 * HOUR,
    });
    expect(kinds()).toEqual(["ok", "refreshed"]);

    // Still the pool's token at the next looks: no flip back to "ok", no second refresh.
    await m.checkDue();
    clock.advance(MIN);
    await m.checkDue();
    expect(endpoint.requests).toHaveLength(1);
    expect(kinds()).toEqual(["ok", "refreshed"]);
  });

  it("holds Claude Code's refresh lock while it refreshes, and releases it", async () => {
    await writeLogin(endpoint.login(START + 10 * MIN));
    const seen: boolean[] = [];
    const m = manager({
      fetch: fetchWith({ before: async () => void seen.push(existsSync(path.join(dir, CLAUDE_REFRESH_LOCK))) }),
    });
    await m.checkDue();
    expect(seen).toEqual([true]);
    expect(existsSync(path.join(dir, CLAUDE_REFRESH_LOCK))).toBe(false);
    expect(m.status("sub1")?.kind).toBe("refreshed");
  });

  describe("rotated under it", () => {
    it("adopts a login another process renewed before the lock was taken (no request)", async () => {
      const login = endpoint.login(START + 10 * MIN);
      await writeLogin(login);
      let theirs: TokenSet | undefined;
      const lock = createClaudeRefreshLock(clock);
      // A `claude` process renewed it just before the pool got the lock.
      const racing: RefreshLock = {
        async acquire(configDir) {
          theirs = endpoint.redeem(login.refreshToken);
          await writeLogin(theirs!);
          return lock.acquire(configDir);
        },
      };
      const m = manager({ lock: racing });
      await m.checkDue();
      expect(endpoint.requests).toEqual([]);
      expect((await readLogin()).claudeAiOauth).toMatchObject({ ...theirs });
      expect(m.status("sub1")).toMatchObject({ kind: "ok", failures: 0 });
    });

    it("does not overwrite a new login written during its request", async () => {
      await writeLogin(endpoint.login(START + 10 * MIN));
      const relogin = endpoint.login();
      const m = manager({ fetch: fetchWith({ before: () => writeLogin(relogin) }) });
      await m.checkDue();
      expect(endpoint.granted).toBe(1);
      expect((await readLogin()).claudeAiOauth).toMatchObject({ ...relogin });
      expect(m.status("sub1")?.kind).toBe("ok");
    });

    it("writes over a file Claude Code blanked after losing the race to the pool", async () => {
      await writeLogin(endpoint.login(START + 10 * MIN));
      const blank = () =>
        writeFile(
          credentialsFile(),
          JSON.stringify({ claudeAiOauth: { accessToken: "", refreshToken: "", expiresAt: 0, scopes: SCOPES } }),
        );
      const m = manager({ fetch: fetchWith({ after: blank }) });
      await m.checkDue();
      const after = await readLogin();
      expect(endpoint.isLive(after.claudeAiOauth.refreshToken)).toBe(true);
      expect(after.claudeAiOauth.scopes).toEqual(SCOPES);
      expect(m.status("sub1")?.kind).toBe("refreshed");
    });

    it("adopts the successor when another process won the race at the endpoint (invalid_grant is not a dead login then)", async () => {
      const login = endpoint.login(START + 10 * MIN);
      await writeLogin(login);
      let theirs: TokenSet | undefined;
      const m = manager({
        fetch: fetchWith({
          before: async () => {
            theirs = endpoint.redeem(login.refreshToken);
            await writeLogin(theirs!);
          },
        }),
      });
      await m.checkDue();
      expect(endpoint.invalidGrants).toBe(1);
      expect((await readLogin()).claudeAiOauth).toMatchObject({ ...theirs });
      expect(m.status("sub1")).toMatchObject({ kind: "ok" });
      expect(kinds()).not.toContain("login_required");
    });
  });

  it("reports a dead refresh token as login_required, does not try it again, and picks up a new login", async () => {
    const login = endpoint.login(START + 10 * MIN);
    await writeLogin(login);
    endpoint.redeem(login.refreshToken); // spent elsewhere (a copy of this login on another machine)
    const m = manager();

    await m.checkDue();
    expect(endpoint.requests.map((r) => r.outcome)).toEqual(["invalid_grant"]);
    expect(m.status("sub1")).toMatchObject({
      kind: "login_required",
      reason: expect.stringMatching(/invalid_grant.*claude \/login/),
    });
    // The pool leaves the file as it is (Claude Code would blank it).
    expect((await readLogin()).claudeAiOauth).toMatchObject({ ...login });

    clock.advance(MIN);
    await m.checkDue();
    expect(endpoint.requests).toHaveLength(1);
    expect(kinds()).toEqual(["login_required"]);

    await writeLogin(endpoint.login());
    clock.advance(MIN);
    await m.checkDue();
    expect(kinds()).toEqual(["login_required", "ok"]);
  });

  it.each<[string, string | undefined, string]>([
    ["no file", undefined, "no_credentials"],
    [
      "a blanked login",
      JSON.stringify({ claudeAiOauth: { accessToken: "", refreshToken: "", expiresAt: 0 } }),
      "login_required",
    ],
    [
      "an expired token without a refresh token",
      JSON.stringify({ claudeAiOauth: { accessToken: "sk-ant-oat01-x", expiresAt: START - 1 } }),
      "credentials_expired",
    ],
    ["an API key login", JSON.stringify({ primaryApiKey: "sk-ant-api03-x" }), "no_credentials"],
  ])("reports %s without calling the endpoint", async (_name, text, kind) => {
    if (text !== undefined) await writeFile(credentialsFile(), text, { mode: 0o600 });
    const m = manager();
    await m.checkDue();
    expect(m.status("sub1")?.kind).toBe(kind);
    expect(endpoint.requests).toEqual([]);
  });

  it("backs off with jitter while the endpoint is down, says so when the token expires, and recovers", async () => {
    await writeLogin(endpoint.login(START + 2 * MIN));
    endpoint.unavailable = true;
    const m = manager({ random: () => 0 });

    await m.checkDue();
    // Failure 1: between half and all of 30 s; random 0 gives the half.
    expect(m.status("sub1")).toMatchObject({
      kind: "ok",
      failures: 1,
      nextCheckAt: START + 15_000,
      lastError: "token endpoint answered 503 overloaded_error",
    });
    expect(m.status("sub1")?.reason).toMatch(/renewal failing/);

    clock.advance(14_000);
    await m.checkDue();
    expect(endpoint.requests).toHaveLength(1);

    clock.advance(1_000);
    await m.checkDue();
    expect(m.status("sub1")).toMatchObject({ failures: 2, nextCheckAt: clock.now() + 30_000 });
    clock.advance(30_000);
    await m.checkDue();
    expect(m.status("sub1")).toMatchObject({ failures: 3, nextCheckAt: clock.now() + 60_000 });

    // Past the token's expiry the login is not usable any more.
    expect(m.status("sub1")!.nextCheckAt).toBeLessThan(START + 2 * MIN);
    clock.set(START + 2 * MIN + 1_000);
    await m.checkDue();
    expect(m.status("sub1")).toMatchObject({
      kind: "credentials_expired",
      failures: 4,
      reason: expect.stringMatching(/^expired at .*renewal failing/),
    });

    for (let i = 0; i < 10; i++) {
      clock.set(m.status("sub1")!.nextCheckAt);
      await m.checkDue();
    }
    // Capped at backoffMax (600 s; random 0 → 300 s).
    expect(m.status("sub1")).toMatchObject({ failures: 14, nextCheckAt: clock.now() + 300_000 });
    // One warning per distinct failure, not one per try.
    expect(logLines.filter((l) => l.includes("credentials refresh failed"))).toHaveLength(1);

    endpoint.unavailable = false;
    clock.set(m.status("sub1")!.nextCheckAt);
    await m.checkDue();
    expect(m.status("sub1")).toMatchObject({ kind: "refreshed", failures: 0 });
    expect(m.status("sub1")?.lastError).toBeUndefined();
    expect(kinds()).toEqual(["ok", "credentials_expired", "refreshed"]);
  });

  it("honours retry-after when it is longer than the backoff", async () => {
    await writeLogin(endpoint.login(START + 2 * MIN));
    const m = manager({
      fetch: async () =>
        new Response('{"type":"error","error":{"type":"rate_limit_error"}}', {
          status: 429,
          headers: { "retry-after": "900" },
        }),
    });
    await m.checkDue();
    expect(m.status("sub1")).toMatchObject({ failures: 1, nextCheckAt: START + 900_000 });
  });

  describe("one refresh at a time per config dir", () => {
    it("under concurrent triggers", async () => {
      const slow = new FakeTokenEndpoint({ now: () => clock.now(), latencyMs: 200 });
      const slowServer = await serveTokenEndpoint(slow);
      try {
        await writeLogin(slow.login(START + 10 * MIN));
        const m = manager({ tokenEndpoint: slowServer.url });
        await Promise.all([m.checkDue(), m.checkDue(), m.checkDue(), m.checkDue()]);
        expect(slow.requests.map((r) => r.outcome)).toEqual(["granted"]);
        expect(slow.isLive((await readLogin()).claudeAiOauth.refreshToken)).toBe(true);
      } finally {
        await slowServer.close();
      }
    });

    it("across two managers on one dir (a reload, a leader handing over): the lock makes the second wait, then adopt", async () => {
      const slow = new FakeTokenEndpoint({ now: () => clock.now(), latencyMs: 200 });
      const slowServer = await serveTokenEndpoint(slow);
      try {
        await writeLogin(slow.login(START + 10 * MIN));
        const a = manager({ tokenEndpoint: slowServer.url });
        const b = manager({ tokenEndpoint: slowServer.url });
        await Promise.all([a.checkDue(), b.checkDue()]);
        expect(slow.requests.map((r) => r.outcome)).toEqual(["granted"]);
        const waiting = [a, b].find((m) => m.status("sub1")?.nextCheckAt === START + LOCK_BUSY_RETRY_MS);
        expect(waiting).toBeDefined();

        clock.advance(LOCK_BUSY_RETRY_MS);
        await waiting!.checkDue();
        expect(slow.requests).toHaveLength(1);
        expect(waiting!.status("sub1")?.kind).toBe("ok");
        expect(slow.isLive((await readLogin()).claudeAiOauth.refreshToken)).toBe(true);
      } finally {
        await slowServer.close();
      }
    });

    it("keeps each login's state across configure(), adds new ones, forgets removed ones", async () => {
      const dirB = path.join(root, "claude-b");
      await mkdir(dirB);
      await writeLogin(endpoint.login(START + 10 * MIN));
      await writeLogin(endpoint.login(START + 5 * HOUR), dirB);
      const m = manager();
      await m.checkDue();
      expect(m.status("sub1")?.kind).toBe("refreshed");

      const settings = {
        tokenEndpoint: server.url,
        clientId: CLAUDE_CODE_CLIENT_ID,
        refreshBeforeMs: HOUR,
        checkIntervalMs: MIN,
        timeoutMs: 5_000,
        backoff: { minMs: 30_000, maxMs: 600_000 },
      };
      m.configure({
        ...settings,
        subscriptions: [
          { id: "sub1", configDir: dir },
          { id: "sub2", configDir: dirB },
        ],
      });
      expect(m.status("sub1")).toMatchObject({ kind: "refreshed", lastRefreshAt: START });
      expect(m.status("sub2")).toMatchObject({ nextCheckAt: START });
      await m.checkDue();
      expect(m.status("sub2")?.kind).toBe("ok");
      expect(endpoint.granted).toBe(1);

      m.configure({ ...settings, subscriptions: [{ id: "sub2", configDir: dirB }] });
      expect(m.status("sub1")).toBeUndefined();
      expect(m.nextDueAt()).toBe(START + MIN);
    });
  });

  describe("Claude Code's refresh lock", () => {
    it("waits while someone holds it (no request), then adopts what they wrote", async () => {
      const login = endpoint.login(START + 10 * MIN);
      await writeLogin(login);
      const lockDir = path.join(dir, CLAUDE_REFRESH_LOCK);
      await mkdir(lockDir);
      await utimes(lockDir, new Date(START), new Date(START));
      const m = manager();
      await m.checkDue();
      expect(endpoint.requests).toEqual([]);
      expect(m.status("sub1")?.nextCheckAt).toBe(START + LOCK_BUSY_RETRY_MS);

      // The holder (a `claude` process) renews and lets go.
      await writeLogin(endpoint.redeem(login.refreshToken)!);
      await rm(lockDir, { recursive: true });
      clock.advance(LOCK_BUSY_RETRY_MS);
      await m.checkDue();
      expect(endpoint.requests).toEqual([]);
      expect(m.status("sub1")?.kind).toBe("ok");
    });

    it("takes over a lock left stale (untouched for over 60 s) by a holder that died", async () => {
      await writeLogin(endpoint.login(START + 10 * MIN));
      const lockDir = path.join(dir, CLAUDE_REFRESH_LOCK);
      await mkdir(lockDir);
      await utimes(lockDir, new Date(START - 61_000), new Date(START - 61_000));
      const m = manager();
      await m.checkDue();
      expect(endpoint.granted).toBe(1);
      expect(existsSync(lockDir)).toBe(false);
      expect(m.status("sub1")?.kind).toBe("refreshed");
    });
  });

  it("does not spend the refresh token when it could not save its successor", async () => {
    const login = endpoint.login(START + 10 * MIN);
    const real = path.join(dir, "real.json");
    await writeLogin(login);
    await writeFile(real, await readFile(credentialsFile()));
    await unlink(credentialsFile());
    await symlink(real, credentialsFile());
    const m = manager();
    await m.checkDue();
    expect(endpoint.requests).toEqual([]);
    expect(endpoint.isLive(login.refreshToken)).toBe(true);
    expect(m.status("sub1")).toMatchObject({
      kind: "ok",
      failures: 1,
      lastError: expect.stringMatching(/^not renewed: .* is a symlink/),
    });
  });

  it("keeps granted tokens it could not write and saves them at the next check (no second refresh)", async () => {
    const login = endpoint.login(START + 10 * MIN);
    const real = path.join(dir, "real.json");
    await writeLogin(login);
    // Between the request and the write, the file turns into a symlink: the write is refused.
    const swap = async () => {
      await writeFile(real, await readFile(credentialsFile()));
      await unlink(credentialsFile());
      await symlink(real, credentialsFile());
    };
    const m = manager({ fetch: fetchWith({ after: swap }) });

    await m.checkDue();
    expect(endpoint.granted).toBe(1);
    expect(m.status("sub1")).toMatchObject({
      kind: "ok",
      failures: 1,
      lastError: expect.stringMatching(/^refreshed, but .* is a symlink/),
    });
    expect(endpoint.isLive(login.refreshToken)).toBe(false);

    // The operator replaces the link with the file itself.
    await unlink(credentialsFile());
    await writeFile(credentialsFile(), await readFile(real), { mode: 0o600 });
    clock.set(m.status("sub1")!.nextCheckAt);
    await m.checkDue();
    expect(endpoint.requests).toHaveLength(1);
    expect(endpoint.isLive((await readLogin()).claudeAiOauth.refreshToken)).toBe(true);
    expect(m.status("sub1")).toMatchObject({ kind: "refreshed", failures: 0 });
  });

  it("says when the next refresh is planned", async () => {
    await writeLogin(endpoint.login(START + 3 * HOUR));
    const m = manager();
    await m.checkDue();
    expect(m.status("sub1")).toMatchObject({ nextRefreshAt: START + 2 * HOUR, nextCheckAt: START + MIN });
    clock.set(START + 2 * HOUR);
    await m.checkDue();
    expect(m.status("sub1")).toMatchObject({ kind: "refreshed", nextRefreshAt: START + 2 * HOUR + 7 * HOUR });
  });

  it("renews tokens that live less than the margin at half their life, not at every check", async () => {
    const short = new FakeTokenEndpoint({ now: () => clock.now(), accessTtlSeconds: 40 * 60 });
    const shortServer = await serveTokenEndpoint(short);
    try {
      await writeLogin(short.login(START + 10 * MIN));
      const m = manager({ tokenEndpoint: shortServer.url });
      await m.checkDue();
      expect(short.granted).toBe(1);
      expect(m.status("sub1")).toMatchObject({ kind: "refreshed", nextRefreshAt: START + 20 * MIN });
      for (let t = 1; t < 20; t++) {
        clock.set(START + t * MIN);
        await m.checkDue();
      }
      expect(short.granted).toBe(1);
      clock.set(START + 20 * MIN);
      await m.checkDue();
      expect(short.granted).toBe(2);
    } finally {
      await shortServer.close();
    }
  });

  it("never logs, reports or returns a token", async () => {
    const dirs = ["ok", "dead", "down", "rotated"].map((n) => path.join(root, n));
    for (const d of dirs) await mkdir(d);
    const [okDir, deadDir, downDir, rotatedDir] = dirs as [string, string, string, string];
    await writeLogin(endpoint.login(START + 10 * MIN), okDir);
    const dead = endpoint.login(START + 10 * MIN);
    await writeLogin(dead, deadDir);
    endpoint.redeem(dead.refreshToken);
    await writeLogin(endpoint.login(START - MIN), downDir);
    const rotated = endpoint.login(START + 10 * MIN);
    await writeLogin(rotated, rotatedDir);

    const subscriptions = dirs.map((d) => ({ id: path.basename(d), configDir: d }));
    const m = manager({
      subscriptions,
      concurrency: 1,
      fetch: fetchWith({
        before: async () => {
          // The third request (downDir) fails; the fourth races another process on rotatedDir.
          if (endpoint.requests.length === 2) endpoint.unavailable = true;
          if (endpoint.requests.length === 3) {
            endpoint.unavailable = false;
            await writeLogin(endpoint.redeem(rotated.refreshToken)!, rotatedDir);
          }
        },
      }),
    });
    await m.checkDue();
    expect(endpoint.requests.map((r) => r.outcome)).toEqual([
      "granted",
      "invalid_grant",
      "unavailable",
      "invalid_grant",
    ]);
    expect(subscriptions.map((s) => m.status(s.id)?.kind)).toEqual([
      "refreshed",
      "login_required",
      "credentials_expired",
      "ok",
    ]);

    const said = [...logLines, JSON.stringify(statuses), JSON.stringify(subscriptions.map((s) => m.status(s.id)))].join(
      "\n",
    );
    expect(logLines.length).toBeGreaterThan(0);
    for (const token of endpoint.issued) {
      expect(said).not.toContain(token);
      expect(said).not.toContain(token.slice(-12));
    }
  });
});
