import { Code, type ConnectError } from "@connectrpc/connect";

/** PoolTarget is the pool a command talked to: its URL and the --ca file it trusted, if any. */
export interface PoolTarget {
  url: string;
  caFile?: string;
}

// Node's codes for a certificate chain nobody here vouches for: the pool's
// own (self-signed) certificate, or one signed by a private CA.
const UNTRUSTED_CODES = new Set([
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "CERT_UNTRUSTED",
  "CERT_SIGNATURE_FAILURE",
]);

/**
 * tlsMismatch explains a call that failed because the client and the pool
 * disagree about TLS, with what to do, or returns undefined. connect-node
 * reports these as codes that say nothing of the cause: an http:// URL
 * against a TLS pool is CANCELED ("http/2 stream closed with error code
 * CANCEL") over HTTP/2 and a reset socket over HTTP/1.1; an untrusted
 * certificate is INTERNAL ("self-signed certificate").
 */
export function tlsMismatch(error: ConnectError, target: PoolTarget): string | undefined {
  const url = safeUrl(target.url);
  if (url === undefined) return undefined;
  const codes = causeCodes(error);
  if (url.protocol === "https:") {
    if ([...codes].some((c) => UNTRUSTED_CODES.has(c))) {
      const given =
        target.caFile === undefined
          ? "Pass the pool's certificate (or the CA that signed it) with --ca FILE or AUTHPOOL_CA."
          : `${target.caFile} is not the certificate that signed it: pass the pool's own certificate (or its CA) with --ca.`;
      return `the pool at ${target.url} has a certificate this machine does not trust (${error.rawMessage}).\n${given}`;
    }
    if (codes.has("ERR_TLS_CERT_ALTNAME_INVALID")) {
      return `the pool's certificate is not for ${url.hostname} (${error.rawMessage}).\nUse the host name the certificate was issued for in --server.`;
    }
    if (codes.has("CERT_HAS_EXPIRED")) {
      return `the pool at ${target.url} serves an expired certificate; renew server.tls.certFile on the pool.`;
    }
    if (codes.has("EPROTO") || /wrong version number|packet length too long/i.test(error.rawMessage)) {
      url.protocol = "http:";
      return `the pool at ${target.url} does not speak TLS.\nUse ${origin(url)} (http://, not https://).`;
    }
    return undefined;
  }
  const dropped =
    (error.code === Code.Canceled && /stream closed with error code CANCEL/i.test(error.rawMessage)) ||
    codes.has("ECONNRESET") ||
    /socket hang up/i.test(error.rawMessage);
  if (url.protocol === "http:" && dropped) {
    url.protocol = "https:";
    return (
      `the pool at ${target.url} closed the connection without answering: it most likely serves TLS.\n` +
      `Use ${origin(url)} (https://, not http://), with --ca FILE or AUTHPOOL_CA when its certificate is its own.`
    );
  }
  return undefined;
}

function causeCodes(error: ConnectError): Set<string> {
  const codes = new Set<string>();
  let cause: unknown = error.cause;
  for (let depth = 0; depth < 6 && typeof cause === "object" && cause !== null; depth++) {
    const code = (cause as { code?: unknown }).code;
    if (typeof code === "string") codes.add(code);
    cause = (cause as { cause?: unknown }).cause;
  }
  return codes;
}

function safeUrl(text: string): URL | undefined {
  try {
    return new URL(text);
  } catch {
    return undefined;
  }
}

/** origin renders a URL without the trailing slash URL.toString adds. */
function origin(url: URL): string {
  return url.toString().replace(/\/$/, "");
}
