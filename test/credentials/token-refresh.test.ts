import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { CLAUDE_CODE_CLIENT_ID, requestTokenRefresh } from "../../src/credentials/index.js";
import { FakeTokenEndpoint, type TokenServer, serveTokenEndpoint } from "../support/fake-token-endpoint.js";

const NOW = Date.parse("2026-11-23T10:00:00Z");
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

async function serve(endpoint: FakeTokenEndpoint): Promise<TokenServer> {
  const server = await serveTokenEndpoint(endpoint);
  closers.push(server.close);
  return server;
}

/** A server answering every request with one fixed reply, recording the bodies it got. */
async function fixedAnswer(
  status: number,
  body: string,
  headers: Record<string, string> = {},
): Promise<{ url: string; bodies: unknown[] }> {
  const bodies: unknown[] = [];
  const server = http.createServer((req, res) => {
    let raw = "";
    req.on("data", (c: Buffer) => (raw += c.toString("utf8")));
    req.on("end", () => {
      bodies.push(JSON.parse(raw));
      res.writeHead(status, { "content-type": "application/json", ...headers }).end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  closers.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/oauth/token`, bodies };
}

function request(url: string, refreshToken: string, over: Partial<Parameters<typeof requestTokenRefresh>[0]> = {}) {
  return requestTokenRefresh({
    endpoint: url,
    clientId: CLAUDE_CODE_CLIENT_ID,
    refreshToken,
    scopes: ["user:inference", "user:profile"],
    timeoutMs: 5_000,
    now: () => NOW,
    fetch: globalThis.fetch,
    ...over,
  });
}

describe("requestTokenRefresh()", () => {
  it("trades a refresh token for a new pair, once (refresh tokens are single use)", async () => {
    const endpoint = new FakeTokenEndpoint({
      clientId: CLAUDE_CODE_CLIENT_ID,
      accessTtlSeconds: 28_800,
      now: () => NOW,
    });
    const server = await serve(endpoint);
    const login = endpoint.login(NOW + 60_000);

    const first = await request(server.url, login.refreshToken);
    expect(first.kind).toBe("granted");
    if (first.kind !== "granted") return;
    expect(first.tokens.expiresAt).toBe(NOW + 28_800_000);
    expect(first.tokens.refreshToken).not.toBe(login.refreshToken);
    expect(endpoint.isLive(first.tokens.refreshToken)).toBe(true);
    expect(endpoint.requests).toEqual([{ outcome: "granted", scope: "user:inference user:profile" }]);

    expect(await request(server.url, login.refreshToken)).toEqual({ kind: "invalid_grant" });
  });

  it("sends Claude Code's body: grant_type, refresh_token, client_id, scope", async () => {
    const fixed = await fixedAnswer(200, JSON.stringify({ access_token: "a", refresh_token: "r", expires_in: 60 }));
    await request(fixed.url, "sk-ant-ort01-x");
    expect(fixed.bodies).toEqual([
      {
        grant_type: "refresh_token",
        refresh_token: "sk-ant-ort01-x",
        client_id: CLAUDE_CODE_CLIENT_ID,
        scope: "user:inference user:profile",
      },
    ]);
    await request(fixed.url, "sk-ant-ort01-y", { scopes: [] });
    expect(fixed.bodies[1]).not.toHaveProperty("scope");
  });

  it("keeps the old refresh token when the answer carries none", async () => {
    const fixed = await fixedAnswer(200, JSON.stringify({ access_token: "sk-ant-oat01-n", expires_in: 3600 }));
    expect(await request(fixed.url, "sk-ant-ort01-keep")).toEqual({
      kind: "granted",
      tokens: { accessToken: "sk-ant-oat01-n", refreshToken: "sk-ant-ort01-keep", expiresAt: NOW + 3_600_000 },
    });
  });

  it.each<[string, number, string, Record<string, string>, unknown]>([
    [
      "invalid_grant on 400",
      400,
      '{"error":"invalid_grant","error_description":"Refresh token not found or invalid"}',
      {},
      { kind: "invalid_grant" },
    ],
    ["invalid_grant on 401", 401, '{"error":"invalid_grant"}', {}, { kind: "invalid_grant" }],
    [
      "invalid_client",
      400,
      '{"error":"invalid_client"}',
      {},
      { kind: "refused", status: 400, error: "invalid_client" },
    ],
    ["404 without a body", 404, "", {}, { kind: "refused", status: 404 }],
    [
      "503 with retry-after",
      503,
      '{"type":"error","error":{"type":"overloaded_error"}}',
      { "retry-after": "120" },
      { kind: "unavailable", reason: "token endpoint answered 503 overloaded_error", retryAfterMs: 120_000 },
    ],
    ["429", 429, "{}", {}, { kind: "unavailable", reason: "token endpoint answered 429" }],
    [
      "200 without tokens",
      200,
      '{"access_token":"sk-ant-oat01-only"}',
      {},
      { kind: "unavailable", reason: "token endpoint answered 200 without usable tokens" },
    ],
    [
      "200 not JSON",
      200,
      "<html>",
      {},
      { kind: "unavailable", reason: "token endpoint answered 200 without usable tokens" },
    ],
  ])("%s", async (_name, status, body, headers, expected) => {
    const fixed = await fixedAnswer(status, body, headers);
    const result = await request(fixed.url, "sk-ant-ort01-z");
    expect(result).toEqual(expected);
    expect(JSON.stringify(result)).not.toContain("sk-ant-ort01-z");
  });

  it("free text in an error body never becomes a reason", async () => {
    const fixed = await fixedAnswer(400, JSON.stringify({ error: "sk-ant-ort01-echoed-back" }));
    expect(await request(fixed.url, "sk-ant-ort01-echoed-back")).toEqual({ kind: "refused", status: 400 });
  });

  it("an unreachable endpoint is unavailable, not an exception", async () => {
    const endpoint = new FakeTokenEndpoint();
    const server = await serveTokenEndpoint(endpoint);
    await server.close();
    expect(await request(server.url, "sk-ant-ort01-z")).toMatchObject({
      kind: "unavailable",
      reason: expect.stringMatching(/^token endpoint unreachable \(/),
    });
  });

  it("times out", async () => {
    const endpoint = new FakeTokenEndpoint({ latencyMs: 2_000 });
    const server = await serve(endpoint);
    const login = endpoint.login();
    expect(await request(server.url, login.refreshToken, { timeoutMs: 50 })).toMatchObject({
      kind: "unavailable",
      reason: expect.stringMatching(/TimeoutError/),
    });
  });
});
