/**
 * The server's TLS certificate and key, read from PEM files. Read when the
 * config is loaded (so a bad file stops start-up and a reload with the key
 * path, not the first handshake) and again by the server at start.
 */
import { readFileSync } from "node:fs";
import { createSecureContext } from "node:tls";
import { fileErrorText } from "./auth-tokens.js";
import type { ConfigIssue } from "./errors.js";
import type { TlsConfig } from "./types.js";

/** TlsCredentials are the PEM contents a TLS server is started with. */
export interface TlsCredentials {
  readonly cert: Buffer;
  readonly key: Buffer;
}

/** TlsReadResult is the credentials, or issues naming the key path (server.tls.certFile, ...) and the file. */
export type TlsReadResult =
  | { readonly ok: true; readonly credentials: TlsCredentials }
  | { readonly ok: false; readonly issues: readonly ConfigIssue[] };

/**
 * readTlsCredentials reads the certificate chain and the private key and
 * checks that they form a usable pair. Issues never quote the key: OpenSSL's
 * reason ("key values mismatch") is enough.
 */
export function readTlsCredentials(tls: TlsConfig): TlsReadResult {
  const issues: ConfigIssue[] = [];
  const read = (key: "certFile" | "keyFile", what: string, marker: RegExp): Buffer | undefined => {
    const file = tls[key];
    let content: Buffer;
    try {
      content = readFileSync(file);
    } catch (error) {
      issues.push({
        path: `server.tls.${key}`,
        expected: `expected a readable ${what} file, got ${file}: ${fileErrorText(error)}`,
      });
      return undefined;
    }
    if (!marker.test(content.toString("latin1"))) {
      issues.push({
        path: `server.tls.${key}`,
        expected: `expected a ${what} file, got ${file} without a PEM block of that kind`,
      });
      return undefined;
    }
    return content;
  };
  const cert = read("certFile", "PEM certificate", /-----BEGIN CERTIFICATE-----/);
  const key = read("keyFile", "PEM private key", /-----BEGIN [A-Z ]*PRIVATE KEY-----/);
  if (cert === undefined || key === undefined) return { ok: false, issues };
  try {
    createSecureContext({ cert, key });
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return {
      ok: false,
      issues: [
        {
          path: "server.tls",
          expected: `expected keyFile to hold the private key of certFile's certificate, got: ${reason}`,
        },
      ],
    };
  }
  return { ok: true, credentials: { cert, key } };
}
