import { Code, ConnectError } from "@connectrpc/connect";
import { afterEach, describe, expect, it } from "vitest";
import { describeConnectError } from "../../src/cli/connect-errors.js";
import { failedCall, namingFailures } from "../../src/cli/failed-calls.js";
import type { AuthPoolClient } from "../../src/client/index.js";
import { type TestPool, startTestPool } from "../support/test-server.js";
import { runCli } from "./cli-process.js";

/**
 * A token the pool knows but that lacks the call's role: the CLI says which
 * role the call needs and that the token given lacks it, rather than asking
 * for a token as if none had been passed.
 */

const READER = "reader-roles-0123456789abcdef";
const CLIENT = "client-roles-0123456789abcdef";

let pool: TestPool | undefined;
afterEach(async () => {
  await pool?.close();
  pool = undefined;
});

function poolWithTokens(): Promise<TestPool> {
  return startTestPool({
    config: { server: { host: "127.0.0.1", port: 0, authTokens: [`reader:${READER}`, `client:${CLIENT}`] } },
  });
}

describe("a token without the call's role", () => {
  it.each([
    {
      name: "a reader token asking to rebalance",
      argv: ["rebalance", "--dry-run"],
      token: READER,
      role: "admin",
      method: "Rebalance",
    },
    {
      name: "a client token asking for the status",
      argv: ["status"],
      token: CLIENT,
      role: "reader",
      method: "GetPoolStatus",
    },
    {
      name: "a client token following events",
      argv: ["events"],
      token: CLIENT,
      role: "reader",
      method: "StreamEvents",
    },
  ])("should say which role $name needs (exit 4)", async ({ argv, token, role, method }) => {
    pool = await poolWithTokens();
    const res = await runCli([...argv, "--server", pool.server.url, "--token", token]);
    expect(res.code).toBe(4);
    expect(res.stderr).toContain("PERMISSION_DENIED");
    expect(res.stderr).toContain(`The token given lacks the ${role} role ${method} needs`);
    expect(res.stderr).not.toContain("Pass the bearer token");
    // Never the token itself.
    expect(res.stderr).not.toContain(token);
  });

  it("should still ask for a token when none was given", async () => {
    pool = await poolWithTokens();
    const res = await runCli(["status", "--server", pool.server.url]);
    expect(res.code).toBe(4);
    expect(res.stderr).toContain("Pass the bearer token with --token or AUTHPOOL_TOKEN");
  });

  it("should take the role from the method when the server's message does not name it", async () => {
    const refusing = { rebalance: () => Promise.reject(new ConnectError("forbidden", Code.PermissionDenied)) };
    const client = namingFailures(refusing as unknown as AuthPoolClient);
    const error = await client.rebalance({}).then(
      () => undefined,
      (e: unknown) => e,
    );
    if (!(error instanceof ConnectError)) throw new Error("the call should fail with a ConnectError");
    expect(failedCall(error)).toBe("rebalance");
    expect(describeConnectError(error, { url: "http://pool" }).message).toContain(
      "The token given lacks the admin role Rebalance needs: pass an admin token",
    );
  });
});
