import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Health } from "../../gen/grpc/health/v1/health_pb.js";
import { type AuthPoolClient, createAuthPoolClient } from "../../src/client/index.js";
import { applyEnv, parseConfig } from "../../src/config/index.js";
import { createJsonLogger } from "../../src/runtime/logger.js";
import { type METHOD_ROLES, createBearerAuth } from "../../src/server/bearer-auth.js";
import { startAuthPoolServer } from "../../src/server/start-server.js";
import { ManualClock } from "../support/manual-clock.js";
import { type TestPool, startTestPool, testConfigRaw } from "../support/test-server.js";

/**
 * Roles over the wire: which token may call which method (every method of
 * AuthPoolService, and GET /metrics), what a wrong, missing or
 * under-privileged token gets, and where tokens may come from.
 */

const TOKENS = {
  client: "client-0123456789abcdef",
  reader: "reader-0123456789abcdef",
  admin: "admin-0123456789abcdefgh",
};
const WRONG = "client-0123456789abcdeX";

let dir: string;
let tokenFile: string;
let pool: TestPool | undefined;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "authpool-roles-"));
  tokenFile = path.join(dir, "tokens");
  await writeFile(
    tokenFile,
    [
      "# the pool's bearer tokens",
      `client:${TOKENS.client}`,
      "",
      `reader:${TOKENS.reader}  # dashboards`,
      `admin:${TOKENS.admin}`,
      "",
    ].join("\n"),
    { mode: 0o600 },
  );
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
afterEach(async () => {
  await pool?.close();
  pool = undefined;
});

type Caller = (c: AuthPoolClient) => Promise<unknown>;

/** One harmless call per method; what matters is whether auth lets it through. */
const CALLS: Record<keyof typeof METHOD_ROLES, Caller> = {
  Allocate: (c) => c.allocate({ sessionId: "roles-alloc" }),
  AllocateWatch: async (c) => {
    for await (const res of c.allocateWatch({ request: { sessionId: "roles-watch" } }, { timeoutMs: 5000 })) return res;
    return undefined;
  },
  ReportUsage: (c) =>
    c.reportUsage({ sessionId: "seed", requestId: "r1", source: { case: "usage", value: { costUsd: 0.01 } } }),
  Release: (c) => c.release({ sessionId: "nobody" }),
  GetPoolStatus: (c) => c.getPoolStatus({}),
  // History holds the seed's allocation: a permitted stream yields it at once.
  StreamEvents: async (c) => {
    for await (const res of c.streamEvents({ afterSequence: 0n }, { timeoutMs: 5000 })) return res;
    return undefined;
  },
  Rebalance: (c) => c.rebalance({ dryRun: true }),
  SetPaused: (c) => c.setPaused({ subscriptionId: "sub3", paused: false }),
  SetDrained: (c) => c.setDrained({ subscriptionId: "sub3", drained: false }),
  ReloadConfig: (c) => c.reloadConfig({}),
};

/** outcome is "ok" when auth let the call through (whatever the method then said), else the auth code. */
async function outcome(call: Caller, client: AuthPoolClient): Promise<"ok" | "unauthenticated" | "permission_denied"> {
  try {
    await call(client);
    return "ok";
  } catch (error) {
    const e = ConnectError.from(error);
    if (e.code === Code.Unauthenticated) return "unauthenticated";
    if (e.code === Code.PermissionDenied) return "permission_denied";
    return "ok";
  }
}

async function refusal(call: Promise<unknown>): Promise<ConnectError> {
  try {
    await call;
  } catch (error) {
    return ConnectError.from(error);
  }
  throw new Error("the call was not refused");
}

const ALLOWED: Record<string, readonly string[]> = {
  client: ["Allocate", "AllocateWatch", "ReportUsage", "Release"],
  reader: ["GetPoolStatus", "StreamEvents"],
  admin: Object.keys(CALLS),
};

describe("bearer roles", () => {
  it("lets each role call exactly its methods; others get PERMISSION_DENIED naming the role needed", async () => {
    pool = await startTestPool({ config: { server: { host: "127.0.0.1", port: 0, authTokensFile: tokenFile } } });
    const url = pool.server.url;
    await createAuthPoolClient(url, { token: TOKENS.admin }).allocate({ sessionId: "seed" });
    const rows: string[] = [];
    for (const [role, token] of Object.entries(TOKENS)) {
      for (const protocol of ["grpc", "connect"] as const) {
        const client = createAuthPoolClient(url, { token, protocol, httpVersion: "1.1" });
        for (const [method, call] of Object.entries(CALLS)) {
          const got = await outcome(call, client);
          const want = ALLOWED[role]!.includes(method) ? "ok" : "permission_denied";
          rows.push(`${role} ${protocol} ${method}: ${got}${got === want ? "" : ` (want ${want})`}`);
        }
      }
    }
    expect(rows.filter((r) => r.includes("want"))).toEqual([]);

    const denied = await refusal(createAuthPoolClient(url, { token: TOKENS.reader }).rebalance({}));
    expect(denied).toMatchObject({ code: Code.PermissionDenied });
    expect(denied.rawMessage).toBe("Rebalance needs the admin role; this token has the reader role");
    const denied2 = await refusal(createAuthPoolClient(url, { token: TOKENS.client }).getPoolStatus({}));
    expect(denied2.rawMessage).toBe("GetPoolStatus needs the reader role (or admin); this token has the client role");
    for (const e of [denied, denied2]) for (const t of Object.values(TOKENS)) expect(e.message).not.toContain(t);
  });

  it("answers UNAUTHENTICATED to a missing, malformed or wrong token on every method, without echoing it", async () => {
    pool = await startTestPool({ config: { server: { host: "127.0.0.1", port: 0, authTokensFile: tokenFile } } });
    const url = pool.server.url;
    const clients = {
      none: createAuthPoolClient(url),
      wrong: createAuthPoolClient(url, { token: WRONG }),
      prefix: createAuthPoolClient(url, { token: TOKENS.admin.slice(0, 20) }),
      longer: createAuthPoolClient(url, { token: `${TOKENS.admin}x` }),
    };
    for (const [name, client] of Object.entries(clients)) {
      for (const [method, call] of Object.entries(CALLS)) {
        const e = await call(client).then(
          () => undefined,
          (error: unknown) => ConnectError.from(error),
        );
        expect(e?.code, `${name} ${method}`).toBe(Code.Unauthenticated);
        expect(e?.message).not.toContain(WRONG);
        expect(e?.message).not.toContain(TOKENS.admin.slice(0, 20));
      }
    }
    // A header that is not "Bearer <token>" is a missing token.
    const basic = createAuthPoolClient(url, { protocol: "connect", httpVersion: "1.1" });
    const res = await fetch(`${url}/authpool.v1.AuthPoolService/GetPoolStatus`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Basic ${TOKENS.admin}` },
      body: "{}",
    });
    expect(res.status).toBe(401);
    expect(await res.text()).not.toContain(TOKENS.admin);
    await expect(basic.getPoolStatus({})).rejects.toMatchObject({ code: Code.Unauthenticated });
    // Refused calls changed nothing.
    const status = await createAuthPoolClient(url, { token: TOKENS.reader }).getPoolStatus({});
    expect(status.totalSessions).toBe(0);
  });

  it("puts /metrics behind the reader role; health stays open", async () => {
    pool = await startTestPool({ config: { server: { host: "127.0.0.1", port: 0, authTokensFile: tokenFile } } });
    const url = pool.server.url;
    const get = (token?: string) =>
      fetch(`${url}/metrics`, token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } });
    expect((await get()).status).toBe(401);
    expect((await get(WRONG)).status).toBe(401);
    const forbidden = await get(TOKENS.client);
    expect(forbidden.status).toBe(403);
    expect(await forbidden.text()).toContain("needs the reader role");
    for (const token of [TOKENS.reader, TOKENS.admin]) {
      const res = await get(token);
      expect(res.status).toBe(200);
      expect(await res.text()).toContain("authpool_allocations_total");
    }
    const health = createClient(Health, createGrpcTransport({ baseUrl: url }));
    expect((await health.check({})).status).toBe(1);
  });

  it("takes tokens from AUTHPOOL_TOKENS (a bare token is admin) and AUTHPOOL_TOKENS_FILE, in place of the config's", async () => {
    const tmp = await mkdtemp(path.join(dir, "env-"));
    const base = parseConfig(
      { ...testConfigRaw(tmp), server: { host: "127.0.0.1", port: 0, authTokensFile: tokenFile } },
      "<inline>",
    );
    const bare = "bare-token-0123456789abcdef";
    const config = applyEnv(base, { AUTHPOOL_TOKENS: `${bare},client:${TOKENS.reader}` });
    const server = await startAuthPoolServer({
      config,
      clock: new ManualClock("2026-11-23T10:00:00Z"),
      schedulerPollMs: 0,
    });
    try {
      // A bare token may do everything.
      expect(
        (await createAuthPoolClient(server.url, { token: bare }).setPaused({ subscriptionId: "sub1", paused: false }))
          .subscription,
      ).toBeDefined();
      // The reader token is now a client token; the file's admin token is gone.
      expect(
        (await createAuthPoolClient(server.url, { token: TOKENS.reader }).allocate({ sessionId: "e" })).outcome.case,
      ).toBe("subscription");
      await expect(createAuthPoolClient(server.url, { token: TOKENS.admin }).getPoolStatus({})).rejects.toMatchObject({
        code: Code.Unauthenticated,
      });
    } finally {
      await server.close();
    }
    const fromFile = applyEnv(parseConfig(testConfigRaw(tmp), "<inline>"), { AUTHPOOL_TOKENS_FILE: tokenFile });
    expect(fromFile.server.authTokens.map((t) => t.role)).toEqual(["client", "reader", "admin"]);
    expect(fromFile.server.authTokensFile).toBe(tokenFile);
    await rm(tmp, { recursive: true, force: true });
  });

  it("still accepts server.authTokens in the config file, with a loud warning", async () => {
    const lines: string[] = [];
    const logger = createJsonLogger({ destination: { write: (l: string) => lines.push(l) }, level: "debug" });
    const tmp = await mkdtemp(path.join(dir, "inline-"));
    const config = parseConfig(
      {
        ...testConfigRaw(tmp),
        server: { host: "127.0.0.1", port: 0, authTokens: [TOKENS.admin, `reader:${TOKENS.reader}`] },
      },
      "<inline>",
    );
    const server = await startAuthPoolServer({
      config,
      logger,
      clock: new ManualClock("2026-11-23T10:00:00Z"),
      schedulerPollMs: 0,
    });
    try {
      const warning = lines
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .find((l) => l.warning === "inline-tokens");
      expect(warning).toMatchObject({ level: "warn", tokens: 2 });
      expect(String(warning?.message)).toMatch(/^BEARER TOKENS IN THE CONFIG FILE .* ARE DISCOURAGED/);
      expect(lines.join("\n")).not.toContain(TOKENS.admin);
      await expect(
        createAuthPoolClient(server.url, { token: TOKENS.reader }).release({ sessionId: "x" }),
      ).rejects.toMatchObject({
        code: Code.PermissionDenied,
      });
    } finally {
      await server.close();
      await rm(tmp, { recursive: true, force: true });
    }
  });

  it("gives a token listed under two roles both", async () => {
    const both = path.join(dir, "both");
    await writeFile(both, `client:${TOKENS.client}\nreader:${TOKENS.client}\n`, { mode: 0o600 });
    pool = await startTestPool({ config: { server: { host: "127.0.0.1", port: 0, authTokensFile: both } } });
    const client = createAuthPoolClient(pool.server.url, { token: TOKENS.client });
    await client.allocate({ sessionId: "b" });
    expect((await client.getPoolStatus({})).totalSessions).toBe(1);
    await expect(client.rebalance({})).rejects.toMatchObject({ code: Code.PermissionDenied });
  });
});

describe("createBearerAuth()", () => {
  const auth = createBearerAuth([
    { role: "client", token: TOKENS.client, from: "file" },
    { role: "admin", token: TOKENS.admin, from: "file" },
  ]);

  it.each([
    { name: "no header", header: undefined, role: "client", want: Code.Unauthenticated },
    { name: "empty bearer", header: "Bearer ", role: "client", want: Code.Unauthenticated },
    { name: "another scheme", header: `Token ${TOKENS.client}`, role: "client", want: Code.Unauthenticated },
    { name: "two words", header: `Bearer ${TOKENS.client} x`, role: "client", want: Code.Unauthenticated },
    { name: "a prefix", header: `Bearer ${TOKENS.client.slice(0, -1)}`, role: "client", want: Code.Unauthenticated },
    {
      name: "case matters",
      header: `Bearer ${TOKENS.client.toUpperCase()}`,
      role: "client",
      want: Code.Unauthenticated,
    },
    { name: "client as client", header: `Bearer ${TOKENS.client}`, role: "client", want: undefined },
    { name: "scheme is case-insensitive", header: `bearer ${TOKENS.client}`, role: "client", want: undefined },
    { name: "client as reader", header: `Bearer ${TOKENS.client}`, role: "reader", want: Code.PermissionDenied },
    { name: "admin as reader", header: `Bearer ${TOKENS.admin}`, role: "reader", want: undefined },
  ] as const)("$name", ({ header, role, want }) => {
    const decision = auth.check(header, role, "Call");
    expect(decision.ok ? undefined : decision.code).toBe(want);
    if (!decision.ok) for (const t of Object.values(TOKENS)) expect(decision.message).not.toContain(t);
  });

  it("lets everything through without tokens", () => {
    const open = createBearerAuth([]);
    expect(open.enabled).toBe(false);
    expect(open.check(undefined, "admin", "Call").ok).toBe(true);
  });
});
