import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Code } from "@connectrpc/connect";
import { afterEach, describe, expect, it } from "vitest";
import { Health } from "../../gen/grpc/health/v1/health_pb.js";
import { createAuthPoolClient } from "../../src/client/index.js";
import { type TestPool, startTestPool } from "../support/test-server.js";

let pool: TestPool | undefined;
afterEach(async () => {
  await pool?.close();
  pool = undefined;
});

const token = "tok-0123456789abcdef";

describe("bearer authentication", () => {
  it("requires a configured token on AuthPoolService, leaves health open", async () => {
    pool = await startTestPool({
      config: { server: { host: "127.0.0.1", port: 0, authTokens: [token, "tok-second-token-xyz"] } },
    });
    const url = pool.server.url;
    await expect(createAuthPoolClient(url).allocate({ sessionId: "s" })).rejects.toMatchObject({
      code: Code.Unauthenticated,
    });
    const wrong = createAuthPoolClient(url, { token: "tok-0123456789abcdeX" });
    const err = await wrong.getPoolStatus({}).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: Code.Unauthenticated });
    expect(String((err as Error).message)).not.toContain("tok-0123456789abcdeX");
    for (const t of [token, "tok-second-token-xyz"]) {
      const res = await createAuthPoolClient(url, { token: t }).allocate({ sessionId: `s-${t}` });
      expect(res.outcome.case).toBe("subscription");
    }
    const health = createClient(Health, createGrpcTransport({ baseUrl: url }));
    expect((await health.check({})).status).toBe(1);
    // Nothing was allocated by the refused calls.
    const status = await createAuthPoolClient(url, { token, protocol: "connect" }).getPoolStatus({});
    expect(status.totalSessions).toBe(2);
  });

  it("is off without tokens", async () => {
    pool = await startTestPool();
    const res = await createAuthPoolClient(pool.server.url).allocate({ sessionId: "s" });
    expect(res.outcome.case).toBe("subscription");
  });
});
