import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../../src/cli/program.js";
import { type TestPool, startTestPool } from "../support/test-server.js";
import { type TestCertificate, makeTestCertificate } from "../support/tls-cert.js";
import { textSink } from "./text-sink.js";

/**
 * A URL and a pool that disagree about TLS: the CLI names the cause and the
 * fix instead of connect-node's CANCELED or INTERNAL, and stops (exit 3),
 * `events` included, which would otherwise retry forever.
 */

// One certificate for the file, in a temp dir removed at the end; one pool per test.
let dir: string;
let cert: TestCertificate;
let pool: TestPool | undefined;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "authpool-tls-hints-"));
  cert = await makeTestCertificate(dir);
});
afterAll(() => rm(dir, { recursive: true, force: true }));
afterEach(async () => {
  await pool?.close();
  pool = undefined;
});

async function tlsPool(): Promise<TestPool> {
  return startTestPool({
    config: { server: { host: "127.0.0.1", port: 0, tls: { certFile: cert.certFile, keyFile: cert.keyFile } } },
  });
}

async function cli(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = textSink();
  const stderr = textSink();
  const code = await runCli(argv, { stdout, stderr, env: {}, home: dir });
  return { code, stdout: stdout.text(), stderr: stderr.text() };
}

describe("the CLI against a TLS pool", () => {
  it.each([["status"], ["events", "--no-follow"], ["events"]])(
    "should tell `%s` over http:// to use https://",
    async (...command) => {
      pool = await tlsPool();
      const https = pool.server.url;
      const res = await cli([...command, "--server", https.replace("https:", "http:")]);
      expect(res.code).toBe(3);
      expect(res.stderr).toContain("most likely serves TLS");
      expect(res.stderr).toContain(`Use ${https} (https://, not http://)`);
      expect(res.stderr).not.toContain("CANCELED");
    },
  );

  it.each([["status"], ["events"]])(
    "should tell `%s` over https:// without --ca to pass the certificate",
    async (...command) => {
      pool = await tlsPool();
      const res = await cli([...command, "--server", pool.server.url]);
      expect(res.code).toBe(3);
      expect(res.stderr).toContain("has a certificate this machine does not trust (self-signed certificate)");
      expect(res.stderr).toContain("--ca FILE or AUTHPOOL_CA");
    },
  );

  it("should say a --ca that is not the pool's certificate is the wrong one", async () => {
    pool = await tlsPool();
    const other = await makeTestCertificate(await mkdtemp(path.join(dir, "other-")));
    const res = await cli(["status", "--server", pool.server.url, "--ca", other.certFile]);
    expect(res.code).toBe(3);
    expect(res.stderr).toContain(`${other.certFile} is not the certificate that signed it`);
  });

  it("should tell https:// against a cleartext pool to use http://", async () => {
    pool = await startTestPool();
    const http = pool.server.url;
    const res = await cli(["status", "--server", http.replace("http:", "https:")]);
    expect(res.code).toBe(3);
    expect(res.stderr).toContain(`Use ${http} (http://, not https://)`);
  });
});
