import { toJson } from "@bufbuild/protobuf";
import { EventSchema, EventType } from "../../gen/authpool/v1/auth_pool_pb.js";
import type { WebhookConfig } from "../config/index.js";
import type { PublicEvent } from "../server/event-to-proto.js";
import { linkedAbort, retryAfterMs } from "./retry.js";
import { SIGNATURE_HEADER, signWebhook } from "./signature.js";

/** EVENT_ID_HEADER carries the event's sequence: receivers dedupe on it (delivery is at-least-once). */
export const EVENT_ID_HEADER = "X-AuthPool-Event-Id";
/** TIMESTAMP_HEADER carries the attempt's unix time in seconds (the same `t` the signature signs). */
export const TIMESTAMP_HEADER = "X-AuthPool-Timestamp";
/** WEBHOOK_USER_AGENT identifies deliveries. */
export const WEBHOOK_USER_AGENT = "auth-pool-webhook/1";

/** webhookBody renders an event as the JSON a receiver gets: `{type, sequence, event}`. */
export function webhookBody(pub: PublicEvent): string {
  return JSON.stringify({
    type: EventType[pub.type]?.toLowerCase() ?? "unspecified",
    sequence: String(pub.message.sequence),
    event: toJson(EventSchema, pub.message),
  });
}

/** WebhookTarget is a configured endpoint made ready to post to and safe to describe. */
export interface WebhookTarget {
  /** The request URL, without any user:password (fetch refuses those; they become a header). */
  readonly url: string;
  /** Origin and path only: what logs and status may show. */
  readonly display: string;
  readonly secret: string | undefined;
  readonly timeoutMs: number;
  readonly authorization: string | undefined;
  /** redact removes the secret, credentials, the query and anything shaped like a signature from text. */
  redact(text: string): string;
}

/** TargetConfig is what posting needs of a configured endpoint. */
export type TargetConfig = Pick<WebhookConfig, "url" | "secret" | "timeoutMs">;

/**
 * webhookTarget prepares a configured endpoint for posting. With
 * `secretPath` the URL's path is a credential too (a Slack incoming
 * webhook's is): logs and status then show only the origin.
 */
export function webhookTarget(config: TargetConfig, options: { secretPath?: boolean } = {}): WebhookTarget {
  const parsed = new URL(config.url);
  const rawUser = parsed.username;
  const rawPassword = parsed.password;
  const username = decodeURIComponent(parsed.username);
  const password = decodeURIComponent(parsed.password);
  const authorization =
    username !== "" || password !== ""
      ? `Basic ${Buffer.from(`${username}:${password}`).toString("base64")}`
      : undefined;
  parsed.username = "";
  parsed.password = "";
  const url = parsed.toString();
  const display = options.secretPath === true ? `${parsed.origin}/…` : `${parsed.origin}${parsed.pathname}`;
  // A URL may carry a token in its query; credentials and the secret may turn
  // up in an error text or a receiver's echo. Longest first, so a value that
  // contains another is removed whole.
  const urls = [config.url, url].sort((a, b) => b.length - a.length);
  // A secret path's long segments are hidden one by one too: an error may quote just the token part.
  const pathParts =
    options.secretPath === true ? [parsed.pathname, ...parsed.pathname.split("/")].filter((p) => p.length >= 8) : [];
  const hidden = [parsed.search, parsed.hash, config.secret, ...pathParts, username, rawUser, password, rawPassword]
    .filter((s): s is string => s !== undefined && s.length > 0)
    .sort((a, b) => b.length - a.length);
  const redact = (text: string): string => {
    let out = text;
    for (const u of urls) out = out.split(u).join(display);
    for (const h of hidden) out = out.split(h).join("[redacted]");
    // A receiver echoing our headers back must not put a signature into status.
    return out.replace(/[0-9a-f]{64}/gi, "[redacted]");
  };
  return { url, display, secret: config.secret, timeoutMs: config.timeoutMs, authorization, redact };
}

/** AttemptOutcome is what one POST came to. */
export type AttemptOutcome =
  | { kind: "delivered"; status: number }
  /** A transient failure: try the same event again (after retryAfterMs when the receiver said so). */
  | { kind: "retry"; error: string; retryAfterMs?: number }
  /** The receiver refused this event for good (a non-retryable status). */
  | { kind: "refused"; status: number; error: string };

/** WebhookDelivery is one event ready to post. */
export interface WebhookDelivery {
  id: string;
  body: string;
}

const SNIPPET_CHARS = 200;
const ACK_READ_BYTES = 64 * 1024;

/**
 * postWebhook makes one attempt: a signed POST bounded by the target's
 * timeout and by `closing`. It never throws; errors it returns are redacted.
 */
export async function postWebhook(
  target: WebhookTarget,
  delivery: WebhookDelivery,
  closing: AbortSignal,
  nowMs: number = Date.now(),
): Promise<AttemptOutcome> {
  const t = Math.floor(nowMs / 1000);
  const headers: Record<string, string> = {
    "content-type": "application/json",
    "user-agent": WEBHOOK_USER_AGENT,
    [EVENT_ID_HEADER]: delivery.id,
    [TIMESTAMP_HEADER]: String(t),
  };
  if (target.secret !== undefined) headers[SIGNATURE_HEADER] = signWebhook(target.secret, t, delivery.body);
  if (target.authorization !== undefined) headers.authorization = target.authorization;
  // One signal per attempt for both the close and the timeout, released
  // after the body is read so no listener outlives the attempt.
  const attempt = linkedAbort(closing);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    attempt.abort(new Error("timeout"));
  }, target.timeoutMs);
  const where = `POST ${target.display}`;
  try {
    const res = await fetch(target.url, {
      method: "POST",
      headers,
      body: delivery.body,
      signal: attempt.signal,
      // Following a redirect would turn the POST into a GET, or send a signed body elsewhere.
      redirect: "manual",
    });
    if (res.status >= 200 && res.status < 300) {
      // Reading a small ack lets the connection be reused; a huge one is cut off.
      await readText(res, ACK_READ_BYTES);
      return { kind: "delivered", status: res.status };
    }
    const snippet = (await readText(res, SNIPPET_CHARS * 4)).replace(/\s+/g, " ").trim().slice(0, SNIPPET_CHARS);
    const error = target.redact(`${where}: HTTP ${res.status}${snippet === "" ? "" : `: ${snippet}`}`);
    if (retryable(res.status)) {
      const after = retryAfterMs(res.headers.get("retry-after"), nowMs);
      return after === undefined ? { kind: "retry", error } : { kind: "retry", error, retryAfterMs: after };
    }
    return { kind: "refused", status: res.status, error };
  } catch (e) {
    if (timedOut && !closing.aborted)
      return { kind: "retry", error: `${where}: no response within ${target.timeoutMs} ms` };
    return { kind: "retry", error: target.redact(`${where}: ${describeError(e)}`) };
  } finally {
    clearTimeout(timer);
    attempt.release();
  }
}

/** retryable: timeouts, rate limits and server errors pass; other statuses are the receiver's answer. */
function retryable(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/** readText reads at most maxBytes of a body and drops the rest; a body that fails to read counts as empty. */
async function readText(res: Response, maxBytes: number): Promise<string> {
  if (res.body === null) return "";
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < maxBytes) {
      const { done, value } = await reader.read();
      if (done) return Buffer.concat(chunks).toString("utf8");
      chunks.push(value);
      size += value.byteLength;
    }
    await reader.cancel().catch(() => {});
  } catch {
    // The status already says what happened; the body was a courtesy.
  }
  return Buffer.concat(chunks).toString("utf8").slice(0, maxBytes);
}

function describeError(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const cause = e.cause instanceof Error ? e.cause.message : undefined;
  return cause !== undefined && cause !== e.message ? `${e.message} (${cause})` : e.message;
}
