import { createHmac, timingSafeEqual } from "node:crypto";

/**
 * Webhook signatures, Stripe-style: the header carries the signing time and
 * an HMAC-SHA256 of "<time>.<body>" under the shared secret. Signing the time
 * with the body lets a receiver reject a captured request replayed later.
 */

/** SIGNATURE_HEADER is the request header that carries the signature. */
export const SIGNATURE_HEADER = "X-AuthPool-Signature";

/** DEFAULT_TOLERANCE_SECONDS is how far a signature's time may be from the receiver's clock. */
export const DEFAULT_TOLERANCE_SECONDS = 300;

/** signWebhook returns the signature header value `t=<seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`. */
export function signWebhook(secret: string, timestampSeconds: number, body: string | Uint8Array): string {
  const t = Math.floor(timestampSeconds);
  return `t=${t},v1=${digest(secret, t, body)}`;
}

/** VerifyOptions tune verifyWebhook; both default sensibly. */
export interface VerifyOptions {
  /** Largest accepted distance between the signed time and now, either way (default 300). */
  toleranceSeconds?: number;
  /** The receiver's current time in unix seconds (default: the wall clock). */
  nowSeconds?: number;
}

/**
 * verifyWebhook checks a signature header against the raw request body (the
 * exact bytes received, before any JSON parsing): true only when the time is
 * within tolerance and some v1 signature matches. Comparison is constant-time.
 */
export function verifyWebhook(
  secret: string,
  header: string | null | undefined,
  body: string | Uint8Array,
  options: VerifyOptions = {},
): boolean {
  if (header == null) return false;
  let t: number | undefined;
  const candidates: string[] = [];
  for (const part of header.split(",")) {
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (key === "t" && /^\d+$/.test(value)) t = Number(value);
    // Several v1 values may be sent while a secret is being rotated.
    else if (key === "v1") candidates.push(value);
  }
  if (t === undefined || candidates.length === 0) return false;
  const tolerance = options.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  const now = options.nowSeconds ?? Date.now() / 1000;
  if (Math.abs(now - t) > tolerance) return false;
  const expected = Buffer.from(digest(secret, t, body), "hex");
  let ok = false;
  for (const c of candidates) {
    if (!/^[0-9a-f]+$/i.test(c)) continue;
    const given = Buffer.from(c, "hex");
    // timingSafeEqual throws on unequal lengths; a length is no secret.
    if (given.length === expected.length && timingSafeEqual(given, expected)) ok = true;
  }
  return ok;
}

function digest(secret: string, t: number, body: string | Uint8Array): string {
  return createHmac("sha256", secret).update(`${t}.`).update(body).digest("hex");
}
