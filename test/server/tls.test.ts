import { textSink } from "../cli/text-sink.js";
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import https from "node:https";
import os from "node:os";
import path from "node:path";
import tls from "node:tls";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../../gen/grpc/health/v1/health_pb.js";
import { createAuthPoolClient } from "../../src/client/index.js";
import { runCli } from "../../src/cli/program.js";
import { ConfigError, parseConfig } from "../../src/config/index.js";
import { type TestPool, startTestPool, testConfigRaw } from "../support/test-server.js";
import { type TestCertificate, makeTestCertificate } from "../support/tls-cert.js";

/**
 * TLS end to end, with a certificate made when the test runs (openssl when
 * present, else node:crypto): gRPC, gRPC-Web and Connect over HTTP/2 and
 * HTTP/1.1 on one port chosen by ALPN, the CLI with --ca, buf curl, and the
 * config errors for bad files.
 */

const BUF = fileURLToPath(new URL("../../node_modules/.bin/buf", import.meta.url));
const run = promisify(execFile);
const ADMIN = "admin-tls-0123456789abcdef";
const READER = "reader-tls-0123456789abcdef";

let dir: string;
let cert: TestCertificate;
let pool: TestPool | undefined;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "authpool-tls-"));
  cert = await makeTestCertificate(dir);
  await writeFile(path.join(dir, "tokens"), `admin:${ADMIN}\nreader:${READER}\n`, { mode: 0o600 });
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
afterEach(async () => {
  await pool?.close();
  pool = undefined;
});

const tlsConfig = (c: TestCertificate, extra: Record<string, unknown> = {}) => ({
  server: { host: "127.0.0.1", port: 0, tls: { certFile: c.certFile, keyFile: c.keyFile }, ...extra },
});

/** alpn connects with TLS offering `protocols` and returns what the server chose. */
function alpn(url: string, protocols: string[]): Promise<string | false> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = tls.connect(
      { host: hostname, port: Number(port), ca: cert.cert, ALPNProtocols: protocols, servername: "localhost" },
      () => {
        resolve(socket.alpnProtocol ?? false);
        socket.destroy();
      },
    );
    socket.once("error", reject);
  });
}

function httpsGet(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    https
      .get(url, { ca: cert.cert, headers }, (res) => {
        let body = "";
        res.on("data", (c: Buffer) => (body += c.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .once("error", reject);
  });
}

describe("TLS", () => {
  it("serves gRPC, gRPC-Web and Connect over HTTP/2 and HTTP/1.1 on one port, by ALPN", async () => {
    pool = await startTestPool({ config: tlsConfig(cert) });
    const url = pool.server.url;
    expect(url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(await alpn(url, ["h2", "http/1.1"])).toBe("h2");
    expect(await alpn(url, ["http/1.1"])).toBe("http/1.1");

    const variants = [
      { protocol: "grpc" },
      { protocol: "grpc-web", httpVersion: "2" },
      { protocol: "grpc-web", httpVersion: "1.1" },
      { protocol: "connect", httpVersion: "2" },
      { protocol: "connect", httpVersion: "1.1" },
    ] as const;
    for (const [i, v] of variants.entries()) {
      const client = createAuthPoolClient(url, { ...v, ca: cert.cert });
      const res = await client.allocate({ sessionId: `s${i}` });
      expect(res.outcome.case, `${v.protocol} ${"httpVersion" in v ? v.httpVersion : "2"}`).toBe("subscription");
    }
    const status = await createAuthPoolClient(url, {
      protocol: "connect",
      httpVersion: "1.1",
      ca: cert.cert,
    }).getPoolStatus({});
    expect(status.totalSessions).toBe(variants.length);
    const health = createClient(Health, createGrpcTransport({ baseUrl: url, nodeOptions: { ca: cert.cert } }));
    expect((await health.check({})).status).toBe(Status.SERVING);
  });

  it("refuses cleartext clients and clients that do not trust the certificate", async () => {
    pool = await startTestPool({ config: tlsConfig(cert) });
    const url = pool.server.url;
    const untrusted = await createAuthPoolClient(url)
      .allocate({ sessionId: "x" })
      .catch((e: unknown) => e);
    expect(untrusted).toBeInstanceOf(ConnectError);
    const cleartext = await createAuthPoolClient(url.replace("https:", "http:"), { timeoutMs: 2000 })
      .allocate({ sessionId: "y" })
      .catch((e: unknown) => e);
    expect(cleartext).toBeInstanceOf(ConnectError);
    const http1 = await createAuthPoolClient(url.replace("https:", "http:"), {
      protocol: "connect",
      httpVersion: "1.1",
      timeoutMs: 2000,
    })
      .allocate({ sessionId: "z" })
      .catch((e: unknown) => e);
    expect(http1).toBeInstanceOf(ConnectError);
    // None of them got through.
    const status = await createAuthPoolClient(url, { ca: cert.cert }).getPoolStatus({});
    expect(status.totalSessions).toBe(0);
  });

  it("puts /metrics and the roles behind TLS too", async () => {
    pool = await startTestPool({ config: tlsConfig(cert, { authTokensFile: path.join(dir, "tokens") }) });
    const url = pool.server.url;
    expect((await httpsGet(`${url}/metrics`)).status).toBe(401);
    const metrics = await httpsGet(`${url}/metrics`, { authorization: `Bearer ${READER}` });
    expect(metrics.status).toBe(200);
    expect(metrics.body).toContain("authpool_sessions");
    await expect(
      createAuthPoolClient(url, { ca: cert.cert, token: READER }).allocate({ sessionId: "s" }),
    ).rejects.toMatchObject({
      code: Code.PermissionDenied,
    });
    expect(
      (await createAuthPoolClient(url, { ca: cert.cert, token: ADMIN }).allocate({ sessionId: "s" })).outcome.case,
    ).toBe("subscription");
  });

  it("is reached by the CLI with --ca or AUTHPOOL_CA, and not without", async () => {
    pool = await startTestPool({ config: tlsConfig(cert) });
    const url = pool.server.url;
    const cli = async (argv: string[], env: NodeJS.ProcessEnv = {}) => {
      const stdout = textSink();
      const stderr = textSink();
      const code = await runCli(argv, { stdout, stderr, env, home: dir });
      return { code, stdout: stdout.text(), stderr: stderr.text() };
    };
    const withFlag = await cli(["allocate", "--server", url, "--ca", cert.certFile, "--session", "cli-1", "--json"]);
    expect(withFlag.code, withFlag.stderr).toBe(0);
    expect(JSON.parse(withFlag.stdout)).toHaveProperty("subscription");
    const withEnv = await cli(["status", "--server", url, "--json"], { AUTHPOOL_CA: cert.certFile });
    expect(withEnv.code, withEnv.stderr).toBe(0);
    expect(JSON.parse(withEnv.stdout).totalSessions).toBe(1);
    const without = await cli(["status", "--server", url, "--json"]);
    expect(without.code).not.toBe(0);
    const missing = await cli(["status", "--server", url, "--ca", path.join(dir, "nope.pem")]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("nope.pem");
  });

  it("answers buf curl over TLS (gRPC, schema by reflection)", async () => {
    pool = await startTestPool({ config: tlsConfig(cert) });
    const { stdout } = await run(BUF, [
      "curl",
      "--protocol",
      "grpc",
      "--cacert",
      cert.certFile,
      "--data",
      '{"sessionId": "buf-1"}',
      `${pool.server.url}/authpool.v1.AuthPoolService/Allocate`,
    ]);
    expect(JSON.parse(stdout)).toHaveProperty("subscription");
  });

  it("works with a certificate made by node:crypto alone (the fallback when openssl is missing)", async () => {
    const own = await mkdtemp(path.join(dir, "node-"));
    const made = await makeTestCertificate(own, { via: "node" });
    expect(made.madeBy).toBe("node:crypto");
    pool = await startTestPool({ config: tlsConfig(made) });
    const res = await createAuthPoolClient(pool.server.url, { ca: made.cert }).allocate({ sessionId: "n" });
    expect(res.outcome.case).toBe("subscription");
  });

  it("closes promptly with a TLS event stream still open", async () => {
    pool = await startTestPool({ config: tlsConfig(cert) });
    const stream = createAuthPoolClient(pool.server.url, { ca: cert.cert }).streamEvents({ tail: true });
    const reading = (async () => {
      for await (const _ of stream) void _;
    })().catch(() => undefined);
    await createAuthPoolClient(pool.server.url, { ca: cert.cert }).allocate({ sessionId: "s" });
    const started = Date.now();
    await pool.close();
    pool = undefined;
    await reading;
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});

describe("TLS config errors", () => {
  const refuse = (tlsKeys: Record<string, unknown>): ConfigError => {
    const raw = { ...testConfigRaw(dir), server: { host: "127.0.0.1", port: 0, tls: tlsKeys } };
    try {
      parseConfig(raw, "/etc/authpool/pool.yaml");
    } catch (error) {
      if (error instanceof ConfigError) return error;
      throw error;
    }
    throw new Error("accepted");
  };

  it("names the config file, the key path and the file that cannot be read", () => {
    const missing = path.join(dir, "missing.pem");
    const error = refuse({ certFile: missing, keyFile: cert.keyFile });
    expect(error.file).toBe("/etc/authpool/pool.yaml");
    expect(error.path).toBe("server.tls.certFile");
    expect(error.message).toContain(
      `/etc/authpool/pool.yaml: server.tls.certFile: expected a readable PEM certificate file, got ${missing}: no such file`,
    );
    expect(refuse({ certFile: cert.certFile, keyFile: dir }).message).toContain(
      `server.tls.keyFile: expected a readable PEM private key file, got ${dir}: a directory`,
    );
  });

  it("refuses files that are not PEM of the right kind, and a key that is not the certificate's", async () => {
    expect(refuse({ certFile: cert.keyFile, keyFile: cert.keyFile }).path).toBe("server.tls.certFile");
    const error = refuse({ certFile: cert.certFile, keyFile: cert.certFile });
    expect(error.path).toBe("server.tls.keyFile");
    // The key of another certificate: the pair does not match.
    const other = await makeTestCertificate(await mkdtemp(path.join(dir, "other-")), { via: "node" });
    const mismatch = refuse({ certFile: cert.certFile, keyFile: other.keyFile });
    expect(mismatch.path).toBe("server.tls");
    expect(mismatch.message).not.toContain(other.key.toString("utf8").split("\n")[1]!);
  });

  it("requires both files", () => {
    expect(refuse({ certFile: cert.certFile }).path).toBe("server.tls.keyFile");
  });
});
