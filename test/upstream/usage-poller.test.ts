import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { RateLimitReading } from "../../src/domain/index.js";
import { createJsonLogger } from "../../src/runtime/logger.js";
import { MAX_POLL_BACKOFF_MS, OAUTH_BETA, UsagePoller, type UsagePollerOptions } from "../../src/upstream/index.js";
import { ManualClock } from "../support/manual-clock.js";

const TOKEN_A = "sk-ant-oat01-FIXTURE-not-a-real-token";
const TOKEN_B = "sk-ant-oat01-SECOND-fixture-token";
const INTERVAL = 60_000;
const START = "2026-11-23T12:00:00Z";

const fixtureUrl = (name: string) => new URL(`../fixtures/${name}`, import.meta.url);

/** Seen is one request as the fake usage endpoint received it. */
interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
}

type Answer = { status: number; body?: string; headers?: Record<string, string> } | "hang";

/** UsageServer is a real local HTTP endpoint whose answers a test scripts, with event-driven waits. */
class UsageServer {
  readonly requests: Seen[] = [];
  /** maxHeld is the most requests ever held open at once (concurrency seen from the server). */
  maxHeld = 0;
  answer: (req: Seen) => Answer = () => ({ status: 200, body: "{}" });
  private readonly held: (() => void)[] = [];
  private waiters: (() => void)[] = [];
  private readonly server = http.createServer((req, res) => {
    const seen = { method: req.method ?? "", url: req.url ?? "", headers: req.headers };
    this.requests.push(seen);
    const answer = this.answer(seen);
    const reply = (a: Exclude<Answer, "hang">) => {
      res.writeHead(a.status, { "content-type": "application/json", ...a.headers });
      res.end(a.body ?? "");
    };
    if (answer === "hang") {
      this.held.push(() => reply({ status: 200, body: "{}" }));
      this.maxHeld = Math.max(this.maxHeld, this.held.length);
    } else reply(answer);
    for (const wake of this.waiters.splice(0)) wake();
  });

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/api/oauth/usage`;
  }

  /** until waits (no polling, no sleeping) for a condition on what was received. */
  async until(cond: () => boolean): Promise<void> {
    while (!cond()) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  /** release answers every held ("hang") request with an empty usage body. */
  release(): void {
    for (const reply of this.held.splice(0)) reply();
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

const fixtureBody = async (name: string) => readFile(fixtureUrl(`oauth-usage/${name}`), "utf8");

let tmp: string;
let server: UsageServer;
let endpoint: string;
let logLines: string[];
let delivered: { id: string; readings: RateLimitReading[] }[];
let clock: ManualClock;
let configA: string;
let configB: string;

beforeEach(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), "authpool-poller-"));
  configA = path.join(tmp, "config-a");
  configB = path.join(tmp, "config-b");
  await mkdir(configA);
  await mkdir(configB);
  // Git keeps no file modes: give the copies the 0600 Claude Code writes.
  await copyFile(fixtureUrl("credentials/config-a/.credentials.json"), path.join(configA, ".credentials.json"));
  await chmod(path.join(configA, ".credentials.json"), 0o600);
  await writeFile(
    path.join(configB, ".credentials.json"),
    JSON.stringify({ claudeAiOauth: { accessToken: TOKEN_B, expiresAt: Date.parse("2027-01-01T00:00:00Z") } }),
    { mode: 0o600 },
  );
  server = new UsageServer();
  endpoint = await server.listen();
  logLines = [];
  delivered = [];
  clock = new ManualClock(START);
});

afterEach(async () => {
  await server.close();
  await rm(tmp, { recursive: true, force: true });
});

function poller(overrides: Partial<UsagePollerOptions> = {}): UsagePoller {
  return new UsagePoller({
    subscriptions: [{ id: "sub-a", configDir: configA }],
    endpoint,
    intervalMs: INTERVAL,
    clock,
    logger: createJsonLogger({ write: (line: string) => logLines.push(line) }),
    onReadings: async (id, readings) => {
      delivered.push({ id, readings });
    },
    // 0.5 is the middle of the ±10 % jitter: no jitter, exact times to assert.
    random: () => 0.5,
    ...overrides,
  });
}

/** expectNoTokenLeak checks every log line and the recorded status stay free of the tokens. */
function expectNoTokenLeak(p: UsagePoller, ...ids: string[]): void {
  const texts = [...logLines, ...ids.map((id) => JSON.stringify(p.status(id)))];
  for (const text of texts) {
    expect(text).not.toContain(TOKEN_A);
    expect(text).not.toContain(TOKEN_B);
    expect(text).not.toContain("FIXTURE");
  }
}

describe("UsagePoller", () => {
  it("polls every subscription at once, with the OAuth headers, and delivers the readings", async () => {
    const bodies: Record<string, string> = {
      [`Bearer ${TOKEN_A}`]: await fixtureBody("2025-11.json"),
      [`Bearer ${TOKEN_B}`]: await fixtureBody("exhausted-5h.json"),
    };
    server.answer = (req) => ({ status: 200, body: bodies[req.headers.authorization ?? ""] ?? "{}" });
    const p = poller({
      subscriptions: [
        { id: "sub-a", configDir: configA },
        { id: "sub-b", configDir: configB },
      ],
    });
    expect(p.status("sub-a")).toStrictEqual({ nextPollAt: clock.now() });
    expect(p.nextDueAt()).toBe(clock.now());

    await p.pollDue();

    expect(server.requests).toHaveLength(2);
    for (const req of server.requests) {
      expect(req.method).toBe("GET");
      expect(req.url).toBe("/api/oauth/usage");
      expect(req.headers["anthropic-beta"]).toBe(OAUTH_BETA);
      expect(req.headers["anthropic-beta"]).toBe("oauth-2025-04-20");
      expect(req.headers.accept).toBe("application/json");
      expect(req.headers["user-agent"]).toBe("auth-pool/1");
    }
    expect(server.requests.map((r) => r.headers.authorization).sort()).toStrictEqual([
      `Bearer ${TOKEN_A}`,
      `Bearer ${TOKEN_B}`,
    ]);

    const byId = Object.fromEntries(delivered.map((d) => [d.id, d.readings]));
    expect(byId["sub-a"]).toStrictEqual([
      {
        window: "five_hour",
        source: "oauth",
        status: "allowed",
        utilization: 0.5,
        resetsAt: Date.parse("2026-11-23T17:59:59.753369+00:00"),
      },
      {
        window: "seven_day",
        source: "oauth",
        status: "allowed",
        utilization: 0.2,
        resetsAt: Date.parse("2026-11-27T17:59:59.753394+00:00"),
      },
      {
        window: "seven_day_sonnet",
        source: "oauth",
        status: "allowed",
        utilization: 0.04,
        resetsAt: Date.parse("2026-11-28T09:59:59.753406+00:00"),
      },
    ]);
    expect(byId["sub-b"]?.[0]).toStrictEqual({
      window: "five_hour",
      source: "oauth",
      status: "rejected",
      utilization: 1,
      resetsAt: Date.parse("2026-11-23T18:00:00+00:00"),
    });
    const now = clock.now();
    expect(p.status("sub-a")).toStrictEqual({ lastPolledAt: now, nextPollAt: now + INTERVAL });
    expect(p.status("sub-b")).toStrictEqual({ lastPolledAt: now, nextPollAt: now + INTERVAL });
    expect(p.status("nobody")).toBeUndefined();
    expectNoTokenLeak(p, "sub-a", "sub-b");
  });

  it("waits for the interval before polling again", async () => {
    server.answer = () => ({ status: 200, body: "{}" });
    const p = poller();
    await p.pollDue();
    expect(server.requests).toHaveLength(1);
    clock.advance(INTERVAL - 1);
    await p.pollDue();
    expect(server.requests).toHaveLength(1);
    clock.advance(1);
    await p.pollDue();
    expect(server.requests).toHaveLength(2);
  });

  it("does not call onReadings for a body without readings", async () => {
    server.answer = () => ({ status: 200, body: JSON.stringify({ five_hour: null, extra_usage: { utilization: 3 } }) });
    const p = poller();
    await p.pollDue();
    expect(delivered).toStrictEqual([]);
    expect(p.status("sub-a")?.lastError).toBeUndefined();
  });

  it("spreads later polls with ±10 % jitter", async () => {
    const low = poller({ random: () => 0 });
    const high = poller({ random: () => 0.999_999 });
    await low.pollDue();
    await high.pollDue();
    expect(low.status("sub-a")?.nextPollAt).toBe(clock.now() + 0.9 * INTERVAL);
    expect(high.status("sub-a")?.nextPollAt).toBe(clock.now() + Math.round(INTERVAL * (1 + (0.999_999 * 2 - 1) * 0.1)));
  });

  it("honours retry-after on 429, and doubles the interval without one", async () => {
    server.answer = () => ({ status: 429, headers: { "retry-after": "120" }, body: `{"error":"rate_limited"}` });
    const p = poller();
    await p.pollDue();
    const t0 = clock.now();
    expect(p.status("sub-a")).toStrictEqual({
      lastPolledAt: t0,
      lastError: "rate limited (429)",
      nextPollAt: t0 + 120_000,
    });

    clock.advance(119_999);
    await p.pollDue();
    expect(server.requests).toHaveLength(1);

    clock.advance(1);
    server.answer = () => ({ status: 429 });
    await p.pollDue();
    expect(server.requests).toHaveLength(2);
    expect(p.status("sub-a")?.nextPollAt).toBe(clock.now() + 2 * INTERVAL);
    expect(logLines.some((l) => l.includes('"status":429'))).toBe(true);
  });

  it("caps the default 429 wait at 30 minutes", async () => {
    server.answer = () => ({ status: 429 });
    const p = poller({ intervalMs: 20 * 60_000 });
    await p.pollDue();
    expect(p.status("sub-a")?.nextPollAt).toBe(clock.now() + MAX_POLL_BACKOFF_MS);
  });

  it.each([401, 403])("records a rejected token (%i) without the token and waits ten intervals", async (status) => {
    // A hostile or buggy upstream echoing the request must not get the token into the log.
    server.answer = (req) => ({ status, body: JSON.stringify({ error: `bad token ${req.headers.authorization}` }) });
    const p = poller();
    await p.pollDue();
    const s = p.status("sub-a");
    expect(s?.lastError).toMatch(new RegExp(`^token rejected \\(${status}\\)`));
    expect(s?.nextPollAt).toBe(clock.now() + 10 * INTERVAL);
    expect(delivered).toStrictEqual([]);
    expect(logLines).toHaveLength(1);
    expect(JSON.parse(logLines[0] ?? "{}")).toMatchObject({ subscriptionId: "sub-a", status, reason: s?.lastError });
    expectNoTokenLeak(p, "sub-a");
  });

  it("backs off exponentially on 5xx, capped at 30 minutes, and recovers on success", async () => {
    server.answer = (req) => ({ status: 500, body: `oops ${req.headers.authorization}` });
    const p = poller();
    const delays: number[] = [];
    for (let i = 0; i < 7; i++) {
      await p.pollDue();
      const next = p.status("sub-a")?.nextPollAt ?? Number.NaN;
      delays.push(next - clock.now());
      clock.set(next);
    }
    expect(delays).toStrictEqual([2, 4, 8, 16, 30, 30, 30].map((m) => m * 60_000));
    expect(server.requests).toHaveLength(7);
    expect(p.status("sub-a")?.lastError).toBe("upstream answered 500");
    // The same failure is logged once, not on every retry.
    expect(logLines).toHaveLength(1);

    server.answer = () => ({ status: 200, body: "{}" });
    await p.pollDue();
    expect(p.status("sub-a")).toStrictEqual({ lastPolledAt: clock.now(), nextPollAt: clock.now() + INTERVAL });
    expect(logLines.at(-1)).toContain("usage poll recovered");

    // The backoff starts over after a success.
    server.answer = () => ({ status: 503 });
    clock.advance(INTERVAL);
    await p.pollDue();
    expect(p.status("sub-a")?.nextPollAt).toBe(clock.now() + 2 * INTERVAL);
    expectNoTokenLeak(p, "sub-a");
  });

  it("backs off on network errors", async () => {
    await server.close();
    const p = poller();
    await p.pollDue();
    expect(p.status("sub-a")?.lastError).toBe("request failed (ECONNREFUSED)");
    expect(p.status("sub-a")?.nextPollAt).toBe(clock.now() + 2 * INTERVAL);
    clock.advance(2 * INTERVAL);
    await p.pollDue();
    expect(p.status("sub-a")?.nextPollAt).toBe(clock.now() + 4 * INTERVAL);
    server = new UsageServer(); // afterEach closes a fresh one
    await server.listen();
  });

  it("times out a request that hangs", async () => {
    server.answer = () => "hang";
    const p = poller({ timeoutMs: 50 });
    await p.pollDue();
    expect(p.status("sub-a")?.lastError).toBe("request timed out after 50 ms");
    expect(p.status("sub-a")?.nextPollAt).toBe(clock.now() + 2 * INTERVAL);
  });

  it("treats a 200 that is not JSON as a transient failure", async () => {
    server.answer = () => ({ status: 200, body: "<html>maintenance</html>" });
    const p = poller();
    await p.pollDue();
    expect(p.status("sub-a")?.lastError).toBe("malformed response body (not JSON)");
    expect(p.status("sub-a")?.nextPollAt).toBe(clock.now() + 2 * INTERVAL);
  });

  it("does not follow a redirect, which would carry the token elsewhere", async () => {
    const other = new UsageServer();
    const otherUrl = await other.listen();
    try {
      server.answer = () => ({ status: 302, headers: { location: otherUrl } });
      const p = poller();
      await p.pollDue();
      expect(other.requests).toHaveLength(0);
      expect(p.status("sub-a")?.lastError).toMatch(/^request failed/);
      expectNoTokenLeak(p, "sub-a");
    } finally {
      await other.close();
    }
  });

  it("records a credentials problem without a request and retries at the normal interval", async () => {
    await rm(path.join(configA, ".credentials.json"));
    const p = poller();
    await p.pollDue();
    expect(server.requests).toHaveLength(0);
    expect(p.status("sub-a")).toStrictEqual({
      lastError: "no credentials: no .credentials.json in the config dir (macOS keeps the token in the keychain)",
      nextPollAt: clock.now() + INTERVAL,
    });
  });

  it("refuses an expired token per the injected clock", async () => {
    clock.set(Date.parse("2027-01-01T00:00:00Z"));
    const p = poller();
    await p.pollDue();
    expect(server.requests).toHaveLength(0);
    expect(p.status("sub-a")?.lastError).toMatch(/^credentials expired at 2026-11-24T\S+; run claude once/);
    expectNoTokenLeak(p, "sub-a");
  });

  it("reads the token afresh for every poll, so a refresh by the CLI is picked up", async () => {
    const p = poller({ subscriptions: [{ id: "sub-b", configDir: configB }] });
    await p.pollDue();
    await writeFile(
      path.join(configB, ".credentials.json"),
      JSON.stringify({ claudeAiOauth: { accessToken: `${TOKEN_B}-2` } }),
    );
    clock.advance(INTERVAL);
    await p.pollDue();
    expect(server.requests.map((r) => r.headers.authorization)).toStrictEqual([
      `Bearer ${TOKEN_B}`,
      `Bearer ${TOKEN_B}-2`,
    ]);
  });

  it("records an onReadings failure and keeps the normal interval", async () => {
    server.answer = () => ({ status: 200, body: JSON.stringify({ five_hour: { utilization: 10 } }) });
    const p = poller({
      onReadings: async () => {
        throw new Error("store closed");
      },
    });
    await p.pollDue();
    expect(p.status("sub-a")).toStrictEqual({
      lastPolledAt: clock.now(),
      lastError: "readings not applied (store closed)",
      nextPollAt: clock.now() + INTERVAL,
    });
  });

  it("redacts the token from an error a custom fetch throws", async () => {
    const p = poller({
      fetch: async (_input, init) => {
        const auth = new Headers(init?.headers).get("authorization");
        throw new Error(`cannot send ${auth}`);
      },
    });
    await p.pollDue();
    expect(p.status("sub-a")?.lastError).toBe("request failed (cannot send Bearer [redacted])");
    expectNoTokenLeak(p, "sub-a");
  });

  it("does not poll a subscription twice while its request is in flight", async () => {
    server.answer = () => "hang";
    const p = poller();
    const first = p.pollDue();
    await server.until(() => server.requests.length === 1);
    clock.advance(10 * INTERVAL);
    await p.pollDue();
    expect(server.requests).toHaveLength(1);
    server.release();
    await first;
    expect(p.status("sub-a")?.nextPollAt).toBe(clock.now() + INTERVAL);
  });

  it("polls at most `concurrency` subscriptions at once", async () => {
    const dirs = await Promise.all(
      ["c1", "c2", "c3"].map(async (name) => {
        const dir = path.join(tmp, name);
        await mkdir(dir);
        await writeFile(
          path.join(dir, ".credentials.json"),
          JSON.stringify({ claudeAiOauth: { accessToken: `tok-${name}` } }),
        );
        return { id: name, configDir: dir };
      }),
    );
    server.answer = () => "hang";
    const p = poller({ subscriptions: dirs, concurrency: 2 });
    const done = p.pollDue();
    await server.until(() => server.requests.length === 2);
    server.release();
    await server.until(() => server.requests.length === 3);
    server.release();
    await done;
    expect(server.maxHeld).toBe(2);
    expect(dirs.map((d) => p.status(d.id)?.lastError)).toStrictEqual([undefined, undefined, undefined]);
  });
});
