import { statSync } from "node:fs";
import net from "node:net";
import type { PoolConfig } from "../config/index.js";

/**
 * ExposureWarning is one way a pool's configuration leaves it more open
 * than its operator likely meant; the server logs each at start.
 */
export interface ExposureWarning {
  /**
   * open: listening beyond loopback without authentication (the serve
   * command also prints it as a plain line on stderr); cleartext: tokens
   * sent without TLS beyond loopback; inline-tokens: tokens written in the
   * main config file; token-file-mode: a token file others can read.
   */
  readonly kind: "open" | "cleartext" | "inline-tokens" | "token-file-mode";
  readonly message: string;
  /** Log fields: addresses, paths and counts, never a token. */
  readonly fields: Readonly<Record<string, unknown>>;
}

/**
 * exposureWarnings checks the server settings against the address actually
 * bound (port 0 becomes a real port). A pool on a shared network without
 * tokens lets anyone allocate, report, pause, drain and reload: that is the
 * loud one.
 */
export function exposureWarnings(
  server: PoolConfig["server"],
  bound: { host: string; port: number },
): ExposureWarning[] {
  const out: ExposureWarning[] = [];
  const address = `${net.isIPv6(bound.host) ? `[${bound.host}]` : bound.host}:${bound.port}`;
  const beyondLoopback = !isLoopbackHost(bound.host);
  if (beyondLoopback && server.authTokens.length === 0) {
    out.push({
      kind: "open",
      message:
        `SERVING ON ${address}, A NON-LOOPBACK ADDRESS, WITHOUT AUTHENTICATION: anyone who can reach it can allocate ` +
        "sessions, report usage, pause, drain and reload the pool. Set AUTHPOOL_TOKENS or server.authTokensFile, or " +
        "listen on 127.0.0.1.",
      fields: { address },
    });
  }
  if (beyondLoopback && server.authTokens.length > 0 && server.tls === undefined) {
    out.push({
      kind: "cleartext",
      message: `bearer tokens travel in cleartext to ${address}: set server.tls (or terminate TLS in front of the pool)`,
      fields: { address },
    });
  }
  const inline = server.authTokens.filter((t) => t.from === "config").length;
  if (inline > 0) {
    out.push({
      kind: "inline-tokens",
      message:
        "BEARER TOKENS IN THE CONFIG FILE (server.authTokens) ARE DISCOURAGED: the file is shared, copied and " +
        "reloaded like any config. Move them to server.authTokensFile (one role:token per line, mode 600) or AUTHPOOL_TOKENS.",
      fields: { tokens: inline },
    });
  }
  const file = server.authTokensFile;
  if (file !== undefined && process.platform !== "win32") {
    try {
      const mode = statSync(file).mode & 0o777;
      if ((mode & 0o077) !== 0) {
        out.push({
          kind: "token-file-mode",
          message: `the token file can be read by other users (mode ${mode.toString(8)}): chmod 600 it`,
          fields: { file },
        });
      }
    } catch {
      // Read at load; gone since: nothing to warn about that the next load will not say.
    }
  }
  return out;
}

/**
 * isLoopbackHost says whether a listen address only accepts connections
 * from this machine: localhost, 127.0.0.0/8, ::1 (in any spelling) and
 * IPv4-mapped 127/8. "", 0.0.0.0, :: and any other name are taken as
 * reachable from elsewhere.
 */
export function isLoopbackHost(host: string): boolean {
  const h = host
    .trim()
    .toLowerCase()
    .replace(/^\[(.*)\]$/, "$1");
  if (h === "localhost" || h.endsWith(".localhost")) return true;
  if (net.isIPv4(h)) return LOOPBACK.check(h, "ipv4");
  if (net.isIPv6(h)) return LOOPBACK.check(h, "ipv6");
  return false;
}

const LOOPBACK = new net.BlockList();
LOOPBACK.addSubnet("127.0.0.0", 8, "ipv4");
LOOPBACK.addAddress("::1", "ipv6");
LOOPBACK.addSubnet("::ffff:127.0.0.0", 104, "ipv6");
