import * as http2 from "node:http2";
import * as net from "node:net";
import { Duplex } from "node:stream";
import { fileURLToPath } from "node:url";
import { createClient, Code, ConnectError, type ConnectRouter, type Transport } from "@connectrpc/connect";
import {
  connectNodeAdapter,
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  file_grpc_health_v1_health,
  Health,
  HealthCheckResponse_ServingStatus as Status,
} from "../../gen/grpc/health/v1/health_pb.js";
import { registerHealth } from "../../src/server/health.js";
import { listen, type Listener, type RequestHandler } from "../../src/server/listener.js";
import { registerReflection } from "../../src/server/reflection.js";

const HOST = "127.0.0.1";

/** A handler that holds every response until the test releases it. */
function slowHandler(): {
  handler: RequestHandler;
  /** Resolves once n requests have reached the handler. */
  arrived: (n: number) => Promise<void>;
  release: () => void;
} {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let count = 0;
  const waiters: { n: number; resolve: () => void }[] = [];
  const handler: RequestHandler = (_req, res) => {
    count++;
    for (const w of waiters) if (count >= w.n) w.resolve();
    void released.then(() => res.end("done"));
  };
  const arrived = (n: number): Promise<void> =>
    new Promise((resolve) => (count >= n ? resolve() : waiters.push({ n, resolve })));
  return { handler, arrived, release };
}

/** Resolves with the connect error code, e.g. "ECONNREFUSED". */
function connectError(port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = net.connect(port, HOST);
    socket.once("connect", () => {
      socket.destroy();
      resolve(undefined);
    });
    socket.once("error", (err: NodeJS.ErrnoException) => resolve(err.code));
  });
}

/** http2 request with a Connect JSON body; resolves with status and body. */
function h2Post(
  session: http2.ClientHttp2Session,
  path: string,
  body: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ":method": "POST", ":path": path, "content-type": "application/json" });
    let status = 0;
    let text = "";
    stream.setEncoding("utf8");
    stream.on("response", (headers) => (status = Number(headers[":status"])));
    stream.on("data", (chunk: string) => (text += chunk));
    stream.on("error", reject);
    // 'close' without a response: the server cut the connection.
    stream.on("close", () => {
      if (status === 0) reject(new Error(`stream closed without a response, rst code ${stream.rstCode}`));
      else resolve({ status, body: text });
    });
    stream.end(body);
  });
}

/**
 * A client connection that writes its first chunk (the HTTP/2 preface) in two
 * pieces, so the listener has to wait for more bytes before it can decide.
 */
function splitFirstWrite(port: number): Duplex {
  const socket = net.connect(port, HOST).setNoDelay(true);
  let first = true;
  const duplex = new Duplex({
    write(chunk: Buffer, _encoding, callback) {
      if (!first) {
        socket.write(chunk, callback);
        return;
      }
      first = false;
      const rest = (): void => void socket.write(chunk.subarray(7), callback);
      // The server shares this event loop: two turns let it read the first piece alone.
      const split = (): void => void socket.write(chunk.subarray(0, 7), () => setImmediate(() => setImmediate(rest)));
      if (socket.connecting) socket.once("connect", split);
      else split();
    },
    read() {},
    final(callback) {
      socket.end(callback);
    },
    destroy(err, callback) {
      socket.destroy();
      callback(err);
    },
  });
  socket.on("data", (data: Buffer) => duplex.push(data));
  socket.on("end", () => duplex.push(null));
  socket.on("error", (err) => duplex.destroy(err));
  return duplex;
}

describe("listen: one port for HTTP/2 and HTTP/1.1", () => {
  let listener: Listener;
  let serving = true;
  const httpVersions: string[] = [];
  const grpcJsClients: grpc.Client[] = [];

  beforeAll(async () => {
    const routes = (router: ConnectRouter): void => {
      registerHealth(router, () => serving);
      registerReflection(router, [file_grpc_health_v1_health]);
    };
    const adapter = connectNodeAdapter({ routes });
    listener = await listen(
      (req, res) => {
        httpVersions.push(req.httpVersion);
        adapter(req, res);
      },
      { host: HOST, port: 0 },
    );
  });

  afterAll(async () => {
    for (const client of grpcJsClients) client.close();
    await listener?.close({ graceMs: 1_000 });
  });

  const check = async (transport: Transport, service = ""): Promise<Status> =>
    (await createClient(Health, transport).check({ service })).status;

  it("reports the actual port", () => {
    expect(listener.port).toBeGreaterThan(0);
    expect(listener.url).toBe(`http://${HOST}:${listener.port}`);
  });

  it("serves a Connect client over HTTP/1.1", async () => {
    const transport = createConnectTransport({ baseUrl: listener.url, httpVersion: "1.1" });
    expect(await check(transport)).toBe(Status.SERVING);
    expect(httpVersions.at(-1)).toBe("1.1");
  });

  it("serves a Connect client over HTTP/2", async () => {
    const transport = createConnectTransport({ baseUrl: listener.url, httpVersion: "2" });
    expect(await check(transport, "authpool.v1.AuthPoolService")).toBe(Status.SERVING);
    expect(httpVersions.at(-1)).toBe("2.0");
  });

  it("serves a gRPC client over HTTP/2", async () => {
    const transport = createGrpcTransport({ baseUrl: listener.url });
    expect(await check(transport)).toBe(Status.SERVING);
    expect(httpVersions.at(-1)).toBe("2.0");
  });

  it("serves a gRPC-Web client over HTTP/1.1", async () => {
    const transport = createGrpcWebTransport({ baseUrl: listener.url, httpVersion: "1.1" });
    expect(await check(transport)).toBe(Status.SERVING);
    expect(httpVersions.at(-1)).toBe("1.1");
  });

  it("serves a stock @grpc/grpc-js client", async () => {
    const protoUrl = new URL("../../proto-vendor/grpc/health/v1/health.proto", import.meta.url);
    const protoPath = fileURLToPath(protoUrl);
    const definition = protoLoader.loadSync(protoPath, { enums: String });
    const pkg = grpc.loadPackageDefinition(definition) as unknown as {
      grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } };
    };
    type HealthClient = grpc.Client & {
      check(req: { service: string }, cb: grpc.requestCallback<{ status: string }>): grpc.ClientUnaryCall;
    };
    const client = new pkg.grpc.health.v1.Health(
      `${HOST}:${listener.port}`,
      grpc.credentials.createInsecure(),
    ) as unknown as HealthClient;
    grpcJsClients.push(client);
    const call = (service: string): Promise<{ status: string }> =>
      new Promise((resolve, reject) => {
        client.check({ service }, (err, res) => (err || !res ? reject(err) : resolve(res)));
      });
    expect(await call("")).toEqual({ status: "SERVING" });
    await expect(call("no.such.Service")).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
    expect(httpVersions.at(-1)).toBe("2.0");
  });

  it("serves plain fetch (HTTP/1.1, Connect JSON)", async () => {
    const res = await fetch(`${listener.url}/grpc.health.v1.Health/Check`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "SERVING" });
    expect(httpVersions.at(-1)).toBe("1.1");
  });

  it("waits for a split HTTP/2 preface", async () => {
    const session = http2.connect(listener.url, { createConnection: () => splitFirstWrite(listener.port) });
    try {
      const res = await h2Post(session, "/grpc.health.v1.Health/Check", "{}");
      expect(res).toEqual({ status: 200, body: '{"status":"SERVING"}' });
    } finally {
      session.close();
    }
  });

  it("answers NOT_FOUND for unknown services and NOT_SERVING when not serving", async () => {
    const transport = createGrpcTransport({ baseUrl: listener.url });
    await expect(check(transport, "no.such.Service")).rejects.toSatisfy(
      (err) => ConnectError.from(err).code === Code.NotFound,
    );
    serving = false;
    try {
      expect(await check(transport)).toBe(Status.NOT_SERVING);
    } finally {
      serving = true;
    }
  });

  it("streams Watch", async () => {
    const client = createClient(Health, createGrpcTransport({ baseUrl: listener.url }));
    const abort = new AbortController();
    const stream = client.watch({ service: "" }, { signal: abort.signal });
    const first = await stream[Symbol.asyncIterator]().next();
    abort.abort();
    expect(first.value?.status).toBe(Status.SERVING);
    const unknown = client.watch({ service: "nope" }, { signal: AbortSignal.timeout(5_000) });
    for await (const res of unknown) {
      expect(res.status).toBe(Status.SERVICE_UNKNOWN);
      break;
    }
  });

  it("survives a connection reset before the protocol is known", async () => {
    await new Promise<void>((resolve, reject) => {
      const socket = net.connect(listener.port, HOST, () => {
        // Two loop turns: the server (same loop) accepts and reads the
        // partial preface, so the reset hits a socket still being sniffed.
        socket.write("PRI * HTTP/2", () =>
          setImmediate(() =>
            setImmediate(() => {
              socket.resetAndDestroy();
              resolve();
            }),
          ),
        );
      });
      socket.on("error", reject);
    });
    const transport = createConnectTransport({ baseUrl: listener.url, httpVersion: "1.1" });
    expect(await check(transport)).toBe(Status.SERVING);
  });
});

describe("Listener.close", () => {
  it("lets an in-flight HTTP/1.1 request finish, then refuses connections", async () => {
    const slow = slowHandler();
    const listener = await listen(slow.handler, { host: HOST, port: 0 });
    const response = fetch(listener.url);
    await slow.arrived(1);
    expect(listener.inFlight()).toBe(1);

    let closed = false;
    const closing = listener.close().then(() => (closed = true));
    expect(await connectError(listener.port)).toBe("ECONNREFUSED");
    expect(closed).toBe(false);

    slow.release();
    expect(await (await response).text()).toBe("done");
    await closing;
    expect(listener.inFlight()).toBe(0);
  });

  it("lets an in-flight HTTP/2 request finish after GOAWAY", async () => {
    const slow = slowHandler();
    const listener = await listen(slow.handler, { host: HOST, port: 0 });
    const session = http2.connect(listener.url);
    const goaway = new Promise<void>((resolve) => session.once("goaway", () => resolve()));
    const response = h2Post(session, "/", "");
    await slow.arrived(1);

    const closing = listener.close();
    await goaway;
    expect(listener.inFlight()).toBe(1);
    slow.release();
    expect(await response).toEqual({ status: 200, body: "done" });
    await closing;
    expect(listener.inFlight()).toBe(0);
    expect(await connectError(listener.port)).toBe("ECONNREFUSED");
  });

  it("cuts requests still running after the grace period", async () => {
    const slow = slowHandler(); // never released
    const listener = await listen(slow.handler, { host: HOST, port: 0 });
    // Settled handlers now: they fail during close(), before the assertions.
    const h1 = fetch(listener.url).then(
      () => "answered",
      () => "cut",
    );
    const session = http2.connect(listener.url);
    session.on("error", () => {});
    const h2 = h2Post(session, "/", "").then(
      () => "answered",
      () => "cut",
    );
    await slow.arrived(2);
    expect(listener.inFlight()).toBe(2);

    await listener.close({ graceMs: 50 });
    expect(await h1).toBe("cut");
    expect(await h2).toBe("cut");
    expect(listener.inFlight()).toBe(0);
  });

  it("closes idle keep-alive and silent connections at once", async () => {
    const listener = await listen((_req, res) => res.end("ok"), { host: HOST, port: 0 });
    const keepAlive = await fetch(listener.url); // undici keeps this socket open
    expect(await keepAlive.text()).toBe("ok");
    const session = http2.connect(listener.url);
    expect((await h2Post(session, "/", "")).body).toBe("ok");
    const silent = net.connect(listener.port, HOST);
    silent.on("error", () => {});
    await new Promise((resolve) => silent.once("connect", resolve));

    // A 10 s grace period: finishing well inside the test timeout shows that
    // nothing waited for it.
    const started = Date.now();
    await listener.close();
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});
