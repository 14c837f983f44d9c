import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { afterEach, describe, expect, it } from "vitest";
import { type TestPool, startTestPool } from "../support/test-server.js";

/**
 * A gateway may call the pool with a stock gRPC client it did not generate
 * with buf. This one loads the .proto at run time, as grpc-js users do.
 */
const protoPath = fileURLToPath(new URL("../../proto/authpool/v1/auth_pool.proto", import.meta.url));

interface GrpcJsClient extends grpc.Client {
  Allocate(req: object, cb: (err: grpc.ServiceError | null, res: Record<string, unknown>) => void): void;
  Release(req: object, cb: (err: grpc.ServiceError | null, res: Record<string, unknown>) => void): void;
  AllocateWatch(req: object): grpc.ClientReadableStream<Record<string, unknown>>;
}

function stockClient(url: string): GrpcJsClient {
  const def = protoLoader.loadSync(protoPath, {
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
    includeDirs: [fileURLToPath(new URL("../../proto", import.meta.url))],
  });
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    authpool: { v1: { AuthPoolService: new (addr: string, creds: grpc.ChannelCredentials) => GrpcJsClient } };
  };
  return new pkg.authpool.v1.AuthPoolService(url.replace(/^http:\/\//, ""), grpc.credentials.createInsecure());
}

function call<T>(fn: (cb: (err: grpc.ServiceError | null, res: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => fn((err, res) => (err ? reject(err) : resolve(res))));
}

let pool: TestPool | undefined;
let client: GrpcJsClient | undefined;
afterEach(async () => {
  client?.close();
  await pool?.close();
  pool = undefined;
});

describe("a stock @grpc/grpc-js client", () => {
  it("allocates and releases", async () => {
    pool = await startTestPool();
    client = stockClient(pool.server.url);
    const c = client;
    const res = await call<Record<string, unknown>>((cb) =>
      c.Allocate({ session_id: "g1", priority: "PRIORITY_HIGH" }, cb),
    );
    expect(res.session_id).toBe("g1");
    expect(res.outcome).toBe("subscription");
    const grant = res.subscription as { subscription_id: string; config_dir: string; resumed: boolean };
    expect(grant.config_dir).toBe(`${pool.dir}/${grant.subscription_id}`);
    expect(grant.resumed).toBe(false);
    const released = await call<Record<string, unknown>>((cb) => c.Release({ session_id: "g1" }, cb));
    expect(released.released).toBe(true);
  });

  it("watches a waiting allocation: its places in the queue, then the grant; a cancel leaves the queue", async () => {
    pool = await startTestPool({
      config: {
        subscriptions: [
          { id: "solo", type: "claude-max", configDir: "/tmp/solo", weeklyBudgetUsd: 1000, maxSessions: 1 },
        ],
      },
    });
    client = stockClient(pool.server.url);
    const c = client;
    await call((cb) => c.Allocate({ session_id: "holder" }, cb));
    const read = (stream: grpc.ClientReadableStream<Record<string, unknown>>) => {
      const messages: Record<string, unknown>[] = [];
      const ended = new Promise<grpc.StatusObject>((resolve) => {
        stream.on("data", (m: Record<string, unknown>) => messages.push(m));
        stream.on("status", resolve);
        stream.on("error", () => {});
      });
      return { messages, ended };
    };
    const leaving = c.AllocateWatch({ request: { session_id: "leaving", client: "a", wait: true } });
    const left = read(leaving);
    const staying = read(c.AllocateWatch({ request: { session_id: "staying", client: "b", wait: true } }));
    await until(() => left.messages.length === 1 && staying.messages.length === 1);
    expect(left.messages[0]).toMatchObject({ update: "queued", queued: { position: 1, waiting: 1 } });
    expect(staying.messages[0]).toMatchObject({ update: "queued", queued: { position: 2, waiting: 2 } });
    leaving.cancel();
    expect((await left.ended).code).toBe(grpc.status.CANCELLED);
    await until(() => staying.messages.length === 2);
    expect(staying.messages[1]).toMatchObject({ queued: { position: 1, waiting: 1 } });
    expect((await pool.grpc.getPoolStatus({})).waiting).toBe(1);
    await call((cb) => c.Release({ session_id: "holder" }, cb));
    expect((await staying.ended).code).toBe(grpc.status.OK);
    expect(staying.messages.at(-1)).toMatchObject({
      update: "allocated",
      allocated: {
        session_id: "staying",
        client: "b",
        outcome: "subscription",
        subscription: { subscription_id: "solo" },
      },
    });
  });

  it("receives INVALID_ARGUMENT with the field named", async () => {
    pool = await startTestPool();
    client = stockClient(pool.server.url);
    const c = client;
    const err = await call((cb) => c.Release({ session_id: "" }, cb)).catch((e: grpc.ServiceError) => e);
    expect((err as grpc.ServiceError).code).toBe(grpc.status.INVALID_ARGUMENT);
    expect((err as grpc.ServiceError).details).toMatch(/session_id/);
  });
});

async function until(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("timed out waiting for the condition");
    await new Promise((r) => setTimeout(r, 10));
  }
}
