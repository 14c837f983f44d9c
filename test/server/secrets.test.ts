import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { toJsonString } from "@bufbuild/protobuf";
import { ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  GetPoolStatusResponseSchema,
  ReloadConfigResponseSchema,
  StreamEventsResponseSchema,
} from "../../gen/authpool/v1/auth_pool_pb.js";
import { Health } from "../../gen/grpc/health/v1/health_pb.js";
import { type AuthPoolClient, createAuthPoolClient } from "../../src/client/index.js";
import { ConfigError, applyEnv, loadConfigFile, parseConfig } from "../../src/config/index.js";
import { createJsonLogger } from "../../src/runtime/logger.js";
import { startAuthPoolServer } from "../../src/server/start-server.js";
import { ManualClock } from "../support/manual-clock.js";
import { fixture } from "../support/test-server.js";

/**
 * A full scenario with known secrets, searched for in every output. The
 * secrets: bearer tokens of each role, the webhook secret and the
 * credentials in the webhook URL, the Slack incoming-webhook URL, an OAuth access and refresh token in a
 * config dir's .credentials.json (polled against a local stand-in for the
 * usage endpoint, which echoes the token back in its errors), and an
 * ANTHROPIC_API_KEY-like value (in the environment, and in the text of a
 * Claude answer that is reported). The outputs: every log line, status,
 * every streamed event, every error of a refused call, /metrics, the
 * reload summary, every webhook and Slack delivery (body and headers),
 * config errors. Also: the pool writes nothing inside a config dir.
 */

const SECRETS = {
  admin: "adm-7Qv1xLp9ZrT4mK2wBn8c",
  client: "cli-3Hs6yUe1GjD9aPq5Wz0r",
  reader: "rdr-8Nf2kVb7TxM4cLs1Ye6h",
  webhookSecret: "whs-5Rt9pQa2LzX7vKm3Nc8d",
  webhookPassword: "hpw-1Bd4gHs8QwE6rTy0Uj2k",
  webhookQuery: "hqk-9Pl3oIk7JuY5hTg1Rf6e",
  slackToken: "slk-3Vb8nM1qW6eR4tY9uI2o",
  oauthAccess: "sk-ant-oat01-ACC-4Fg7Hj2Kl9Zx5Cv8Bn1M",
  oauthRefresh: "sk-ant-ort01-REF-6Tr3Ew9Qa2Sd5Fg8Hj4K",
  expiredAccess: "sk-ant-oat01-OLD-2Mn5Bv8Cx1Zl4Kj7Hg0F",
  apiKey: "sk-ant-api03-KEY-8Yu2Io5Pa9Sd3Fg6Hj1Kl4Zx",
};

/** needles are the secrets and a distinctive middle part of each, so a cut-off copy is found too. */
const needles = Object.entries(SECRETS).flatMap(([name, value]) => [
  { name, text: value },
  { name: `${name} (part)`, text: value.slice(-12, -2) },
]);

let dir: string;
const outputs: { where: string; text: string }[] = [];
const record = (where: string, text: string) => outputs.push({ where, text });

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "authpool-secrets-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Receiver records every delivery, headers and body; `urlOf` makes the URL to post to from the receiver's origin. */
async function startReceiver(urlOf: (origin: string) => string): Promise<{
  url: string;
  deliveries: { headers: string; body: string }[];
  close: () => Promise<void>;
}> {
  const deliveries: { headers: string; body: string }[] = [];
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => {
      // The receiver's own credentials (basic auth, the URL's path and query)
      // are meant for it; everything else it is sent must hold no secret.
      const { authorization: _own, ...headers } = req.headers;
      deliveries.push({ headers: JSON.stringify(headers), body });
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: urlOf(`127.0.0.1:${port}`),
    deliveries,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/** A stand-in for the OAuth usage endpoint: a reading first, then errors that echo the caller's authorization. */
async function startUsageEndpoint(): Promise<{ url: string; seen: string[]; close: () => Promise<void> }> {
  const body = await readFile(new URL("../fixtures/oauth-usage/2026-limits.json", import.meta.url), "utf8");
  const seen: string[] = [];
  const server = http.createServer((req, res) => {
    const auth = req.headers.authorization ?? "";
    seen.push(auth);
    const n = seen.length;
    if (n === 1) res.writeHead(200, { "content-type": "application/json" }).end(body);
    else if (n === 2)
      res
        .writeHead(401, { "content-type": "application/json", "x-echo": auth })
        .end(JSON.stringify({ error: `bad token ${auth}` }));
    else res.writeHead(500, { "content-type": "text/plain", "x-echo": auth }).end(`upstream exploded handling ${auth}`);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/oauth/usage`,
    seen,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/** fingerprint lists a directory tree's files with their content hash and mtime. */
async function fingerprint(root: string): Promise<string[]> {
  const out: string[] = [];
  for (const name of (await readdir(root)).sort()) {
    const p = path.join(root, name);
    const s = await stat(p);
    if (s.isDirectory()) out.push(`${name}/`, ...(await fingerprint(p)).map((x) => `${name}/${x}`));
    else
      out.push(
        `${name} ${s.mtimeMs} ${createHash("sha256")
          .update(await readFile(p))
          .digest("hex")}`,
      );
  }
  return out;
}

async function errorText(call: Promise<unknown>): Promise<string> {
  try {
    await call;
  } catch (error) {
    const e = ConnectError.from(error);
    return [
      e.message,
      e.rawMessage,
      JSON.stringify([...e.metadata.entries()]),
      JSON.stringify(e.details),
      e.cause === undefined ? "" : String(e.cause),
    ].join(" | ");
  }
  throw new Error("the call was not refused");
}

describe("secrets", () => {
  it("appear in no output of a full scenario", async () => {
    const previousKey = process.env.ANTHROPIC_API_KEY;
    process.env.ANTHROPIC_API_KEY = SECRETS.apiKey;
    const receiver = await startReceiver(
      (origin) => `http://hookuser:${SECRETS.webhookPassword}@${origin}/hook?key=${SECRETS.webhookQuery}`,
    );
    const slack = await startReceiver((origin) => `http://${origin}/services/T0POOL/B0ALERT/${SECRETS.slackToken}`);
    const usage = await startUsageEndpoint();
    const lines: string[] = [];
    const logger = createJsonLogger({ destination: { write: (l: string) => lines.push(l) }, level: "debug" });
    try {
      // Config dirs: sub1 logged in, sub2 with expired credentials, sub3 empty.
      for (const id of ["sub1", "sub2", "sub3"]) await mkdir(path.join(dir, id), { recursive: true });
      await writeFile(
        path.join(dir, "sub1", ".credentials.json"),
        JSON.stringify({
          claudeAiOauth: {
            accessToken: SECRETS.oauthAccess,
            refreshToken: SECRETS.oauthRefresh,
            expiresAt: Date.parse("2027-01-01T00:00:00Z"),
          },
        }),
        { mode: 0o600 },
      );
      await writeFile(
        path.join(dir, "sub2", ".credentials.json"),
        JSON.stringify({
          claudeAiOauth: {
            accessToken: SECRETS.expiredAccess,
            refreshToken: SECRETS.oauthRefresh,
            expiresAt: Date.parse("2026-01-01T00:00:00Z"),
          },
        }),
        { mode: 0o600 },
      );
      const dirsBefore = await fingerprint(dir);
      const tokenFile = path.join(dir, "tokens");
      await writeFile(tokenFile, `admin:${SECRETS.admin}\nclient:${SECRETS.client}\nreader:${SECRETS.reader}\n`, {
        mode: 0o600,
      });
      const configFile = path.join(dir, "pool.json");
      const raw = {
        subscriptions: ["sub1", "sub2", "sub3"].map((id) => ({
          id,
          email: `${id}@example.com`,
          type: "claude-max",
          configDir: path.join(dir, id),
          weeklyBudget: 100,
          fiveHourBudgetUsd: 20,
          maxClientsPerSub: 3,
          upstreamUsage: id !== "sub3",
        })),
        upstream: { enabled: true, endpoint: usage.url, intervalSeconds: 90 },
        rebalancing: { enabled: true, costGapThreshold: 0 },
        notifications: {
          rules: ["session", "failover", "rotation", "limit_reached", "status_changed", "rebalance_completed"].map(
            (type) => ({
              type,
              channels: ["webhook", "log", "slack"],
            }),
          ),
          webhook: { url: receiver.url, secret: SECRETS.webhookSecret, timeoutMs: 2000, maxAttempts: 2 },
          slack: { url: slack.url, timeoutMs: 2000, maxAttempts: 2, digest: { enabled: true, hour: 11 } },
        },
        server: { host: "127.0.0.1", port: 0, authTokensFile: tokenFile },
        store: { uri: `sqlite://${path.join(dir, "pool.sqlite")}` },
      };
      await writeFile(configFile, JSON.stringify(raw, null, 2));
      const clock = new ManualClock("2026-11-23T10:00:00Z");
      const server = await startAuthPoolServer({
        config: await loadConfigFile(configFile),
        loadConfig: () => loadConfigFile(configFile),
        clock,
        logger,
        schedulerPollMs: 0,
        webhookBackoff: { baseMs: 5, maxMs: 50 },
      });
      const as = (token: string | undefined, protocol: "grpc" | "connect" = "grpc"): AuthPoolClient =>
        createAuthPoolClient(server.url, { ...(token !== undefined ? { token } : {}), protocol, httpVersion: "1.1" });
      const admin = as(SECRETS.admin);
      const client = as(SECRETS.client, "connect");
      const reader = as(SECRETS.reader);
      try {
        // Work: placements, reports (one answer quotes the API key), a limit, releases, admin.
        for (let i = 1; i <= 7; i++) await client.allocate({ sessionId: `s${i}` });
        const answer = JSON.parse(await fixture("claude-cli/success.json")) as Record<string, unknown>;
        answer.result = `Your key is ${SECRETS.apiKey}; keep it safe.`;
        await client.reportUsage({
          sessionId: "s1",
          requestId: "r1",
          source: { case: "claudeOutput", value: JSON.stringify(answer) },
        });
        await client.reportUsage({
          sessionId: "s2",
          requestId: "r2",
          source: { case: "claudeOutput", value: await fixture("claude-cli/limit-current.json") },
        });
        record(
          "refused report (malformed output quoting the key)",
          await errorText(
            client.reportUsage({
              sessionId: "s3",
              requestId: "r3",
              source: { case: "claudeOutput", value: `{"type":"result","total_cost_usd":"${SECRETS.apiKey}"}` },
            }),
          ),
        );
        await client.release({ sessionId: "s4" });
        record(
          "rebalance",
          JSON.stringify(await admin.rebalance({ dryRun: false }), (_k, v: unknown) =>
            typeof v === "bigint" ? String(v) : v,
          ),
        );
        await admin.setPaused({ subscriptionId: "sub3", paused: true });
        await admin.setDrained({ subscriptionId: "sub3", drained: true });
        await admin.setPaused({ subscriptionId: "sub3", paused: false });
        await writeFile(configFile, JSON.stringify({ ...raw, weeklyBudgetThreshold: 0.8 }, null, 2));
        record("reload summary", toJsonString(ReloadConfigResponseSchema, await admin.reloadConfig({})));

        // Upstream polls: a reading, then a 401 and a 500 that echo the token.
        await server.runJobs();
        clock.advance(100_000);
        await server.runJobs();
        // After a rejected token the poller waits ten intervals.
        clock.advance(1_000_000);
        await server.runJobs();
        expect(usage.seen).toEqual([
          `Bearer ${SECRETS.oauthAccess}`,
          `Bearer ${SECRETS.oauthAccess}`,
          `Bearer ${SECRETS.oauthAccess}`,
        ]);

        // Refused calls: no token, a wrong one, a prefix of a real one, roles that do not fit.
        record("no token", await errorText(as(undefined).allocate({ sessionId: "x" })));
        record("wrong token", await errorText(as(`${SECRETS.admin}-wrong`).getPoolStatus({})));
        record("token prefix", await errorText(as(SECRETS.admin.slice(0, 18)).getPoolStatus({})));
        record("client calls admin", await errorText(client.rebalance({})));
        record("reader allocates", await errorText(reader.allocate({ sessionId: "y" })));
        record("reader reloads", await errorText(reader.reloadConfig({})));
        record(
          "connect wrong token",
          await errorText(as(SECRETS.webhookSecret, "connect").release({ sessionId: "s1" })),
        );

        // Status, with sessions.
        const status = await reader.getPoolStatus({ includeSessions: true });
        record("status", toJsonString(GetPoolStatusResponseSchema, status));
        const sub1 = status.subscriptions.find((s) => s.id === "sub1")!;
        expect(sub1.usagePolling?.lastError).toMatch(/^upstream answered 500/);
        expect(status.subscriptions.find((s) => s.id === "sub2")!.usagePolling?.lastError).toMatch(
          /^credentials expired/,
        );

        // Every event, from the first.
        const head = BigInt(server.feed.headSeq);
        const events: string[] = [];
        const stop = new AbortController();
        for await (const res of reader.streamEvents({ afterSequence: 0n }, { signal: stop.signal })) {
          events.push(toJsonString(StreamEventsResponseSchema, res));
          if ((res.event?.sequence ?? 0n) >= head) break;
        }
        stop.abort();
        expect(events.length).toBeGreaterThan(10);
        for (const [i, e] of events.entries()) record(`event ${i}`, e);

        // Metrics, and what refused scrapes say.
        for (const [name, token] of [
          ["metrics (reader)", SECRETS.reader],
          ["metrics (client)", SECRETS.client],
          ["metrics (wrong)", "nope"],
          ["metrics (none)", undefined],
        ] as const) {
          const res = await fetch(
            `${server.url}/metrics`,
            token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } },
          );
          record(name, `${res.status} ${JSON.stringify([...res.headers])} ${await res.text()}`);
        }
        const health = createClient(Health, createGrpcTransport({ baseUrl: server.url }));
        record("health", JSON.stringify(await health.check({})));

        // The Slack digest, at its hour.
        clock.set("2026-11-23T11:00:00Z");
        await server.runJobs();

        // Webhook and Slack deliveries, once the dispatchers have caught up.
        const deadline = Date.now() + 10_000;
        while ((await reader.getPoolStatus({})).notifications?.pending !== 0 && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 20));
        }
        expect(receiver.deliveries.length).toBeGreaterThan(5);
        for (const [i, d] of receiver.deliveries.entries()) record(`webhook ${i}`, `${d.headers}\n${d.body}`);
        expect(slack.deliveries.some((d) => d.body.includes("daily digest"))).toBe(true);
        expect(slack.deliveries.length).toBeGreaterThan(3);
        for (const [i, d] of slack.deliveries.entries()) record(`slack ${i}`, `${d.headers}\n${d.body}`);
      } finally {
        await server.close();
      }

      // Config errors about tokens.
      for (const [name, text] of [
        ["token file: bad role", `admin:${SECRETS.admin}\nroot:${SECRETS.client}\n`],
        ["token file: short", `reader:${SECRETS.reader.slice(0, 10)}\n`],
        ["token file: space", `client:${SECRETS.client} ${SECRETS.reader}\n`],
      ] as const) {
        await writeFile(tokenFile, text);
        record(
          name,
          await loadConfigFile(configFile).then(
            () => "accepted",
            (e: unknown) => String(e),
          ),
        );
      }
      for (const env of [
        { AUTHPOOL_TOKENS: `boss:${SECRETS.admin}` },
        { AUTHPOOL_TOKENS: SECRETS.admin.slice(0, 12) },
      ]) {
        let text = "accepted";
        try {
          applyEnv(parseConfig({ ...raw, server: { port: 0 } }, configFile), env);
        } catch (e) {
          text = e instanceof ConfigError ? e.message : String(e);
        }
        record(`env ${Object.keys(env).join()}`, text);
      }
      try {
        parseConfig(
          {
            ...raw,
            server: { authTokens: [`${SECRETS.admin} x`] },
            notifications: { webhook: { url: receiver.url, secret: [SECRETS.webhookSecret] } },
          },
          configFile,
        );
      } catch (e) {
        record("config: inline errors", String(e));
      }
      try {
        parseConfig(
          { ...raw, notifications: { slack: { url: `hooks.slack.com/services/${SECRETS.slackToken}` } } },
          configFile,
        );
      } catch (e) {
        record("config: a Slack URL that is no URL", String(e));
      }
      try {
        applyEnv(parseConfig({ ...raw, server: { port: 0 } }, configFile), { AUTHPOOL_SLACK_URL: SECRETS.slackToken });
      } catch (e) {
        record("env AUTHPOOL_SLACK_URL", String(e));
      }

      for (const l of lines) record("log", l);
      expect(lines.length).toBeGreaterThan(20);
      // The pool wrote nothing in any config dir.
      await rm(tokenFile);
      await rm(configFile);
      expect((await fingerprint(dir)).filter((f) => /^sub\d/.test(f))).toEqual(
        dirsBefore.filter((f) => /^sub\d/.test(f)),
      );
    } finally {
      if (previousKey === undefined) delete process.env.ANTHROPIC_API_KEY;
      else process.env.ANTHROPIC_API_KEY = previousKey;
      await receiver.close();
      await slack.close();
      await usage.close();
    }

    const leaks = outputs.flatMap((o) =>
      needles.filter((n) => o.text.includes(n.text)).map((n) => `${n.name} in ${o.where}: ${o.text.slice(0, 300)}`),
    );
    expect(leaks).toEqual([]);
    // What was searched, so a scenario that silently produced nothing fails.
    const where = new Set(outputs.map((o) => o.where.replace(/ \d+$/, "")));
    for (const w of [
      "log",
      "status",
      "event",
      "webhook",
      "slack",
      "config: a Slack URL that is no URL",
      "env AUTHPOOL_SLACK_URL",
      "metrics (reader)",
      "wrong token",
      "reader allocates",
      "reload summary",
      "token file: bad role",
    ]) {
      expect(where.has(w), w).toBe(true);
    }
  });
});
