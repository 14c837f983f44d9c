import { execFile } from "node:child_process";
import http from "node:http";
import type net from "node:net";
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import tls from "node:tls";
import { promisify } from "node:util";

/**
 * A CONNECT proxy that answers the tunnels itself: it terminates TLS with a
 * leaf certificate for Anthropic's fixed hosts, signed by a throwaway CA
 * made when the test runs, and hands the decrypted requests to `handler`.
 * A program told `HTTPS_PROXY=<url>` and `NODE_EXTRA_CA_CERTS=<caFile>`
 * (the real Claude CLI honours both) then reaches a local fake instead of
 * platform.claude.com or api.anthropic.com. Nothing leaves the machine: a
 * tunnel is never forwarded. Needs `openssl` on PATH.
 */
export interface MitmProxy {
  /** http://127.0.0.1:PORT, for HTTPS_PROXY. */
  url: string;
  /** The throwaway CA (PEM), for NODE_EXTRA_CA_CERTS. */
  caFile: string;
  /** Every CONNECT target seen ("platform.claude.com:443"), in order. */
  tunnels: string[];
  /** Every tunnelled request: host, method and path (no headers, no bodies). */
  requests: { host: string; method: string; path: string }[];
  close(): Promise<void>;
}

/** MITM_HOSTS are the names the leaf certificate covers. */
export const MITM_HOSTS = [
  "platform.claude.com",
  "api.anthropic.com",
  "*.anthropic.com",
  "anthropic.com",
  "claude.ai",
  "*.claude.ai",
  "claude.com",
  "*.claude.com",
] as const;

const run = promisify(execFile);

/** hasOpenssl says whether the certificates can be made here. */
export async function hasOpenssl(): Promise<boolean> {
  try {
    await run("openssl", ["version"]);
    return true;
  } catch {
    return false;
  }
}

/** startMitmProxy writes the CA and leaf into `dir` and listens on 127.0.0.1 (port 0). */
export async function startMitmProxy(options: {
  dir: string;
  handler: (req: http.IncomingMessage, res: http.ServerResponse) => void;
}): Promise<MitmProxy> {
  const { caFile, certFile, keyFile } = await makeMitmCertificates(options.dir);
  const secureContext = tls.createSecureContext({ cert: await readFile(certFile), key: await readFile(keyFile) });
  const tunnels: string[] = [];
  const requests: MitmProxy["requests"] = [];
  const inner = http.createServer((req, res) => {
    const host = (req.socket as net.Socket & { tunnelHost?: string }).tunnelHost ?? "";
    requests.push({ host, method: req.method ?? "", path: new URL(req.url ?? "/", "http://x").pathname });
    options.handler(req, res);
  });
  const sockets = new Set<net.Socket>();
  const proxy = http.createServer((_req, res) => {
    res.writeHead(405, { "content-type": "text/plain" });
    res.end("CONNECT only\n");
  });
  proxy.on("connect", (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    tunnels.push(req.url ?? "");
    socket.write("HTTP/1.1 200 Connection Established\r\n\r\n");
    if (head.length > 0) socket.unshift(head);
    const secure = new tls.TLSSocket(socket, { isServer: true, secureContext });
    secure.on("error", () => {});
    (secure as tls.TLSSocket & { tunnelHost?: string }).tunnelHost = (req.url ?? "").replace(/:\d+$/, "");
    inner.emit("connection", secure);
  });
  await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  const port = (proxy.address() as net.AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    caFile,
    tunnels,
    requests,
    close: async () => {
      for (const s of sockets) s.destroy();
      inner.closeAllConnections();
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
    },
  };
}

/** makeMitmCertificates writes ca.pem, leaf.pem and leaf.key (RSA 2048, two days) into dir. */
export async function makeMitmCertificates(
  dir: string,
): Promise<{ caFile: string; certFile: string; keyFile: string }> {
  const at = (name: string) => path.join(dir, name);
  await run("openssl", [
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-days",
    "2",
    "-subj",
    "/CN=authpool test throwaway CA",
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
    "-keyout",
    at("ca.key"),
    "-out",
    at("ca.pem"),
  ]);
  await run("openssl", [
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-subj",
    "/CN=platform.claude.com",
    "-keyout",
    at("leaf.key"),
    "-out",
    at("leaf.csr"),
  ]);
  await writeFile(
    at("leaf.ext"),
    [
      `subjectAltName=${MITM_HOSTS.map((h) => `DNS:${h}`).join(",")}`,
      "basicConstraints=CA:FALSE",
      "extendedKeyUsage=serverAuth",
      "",
    ].join("\n"),
  );
  await run("openssl", [
    "x509",
    "-req",
    "-in",
    at("leaf.csr"),
    "-CA",
    at("ca.pem"),
    "-CAkey",
    at("ca.key"),
    "-CAcreateserial",
    "-days",
    "2",
    "-extfile",
    at("leaf.ext"),
    "-out",
    at("leaf.pem"),
  ]);
  return { caFile: at("ca.pem"), certFile: at("leaf.pem"), keyFile: at("leaf.key") };
}
