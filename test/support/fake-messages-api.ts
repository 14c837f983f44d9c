import { randomBytes } from "node:crypto";
import http from "node:http";
import type net from "node:net";

/**
 * A fake Anthropic Messages API for the real Claude CLI
 * (`ANTHROPIC_BASE_URL=<url>`): `POST /v1/messages` answers a normal
 * success stream saying "4" (the SSE shape Claude Code 2.1.328 accepts, as
 * captured in test/fixtures/claude-cli-real), or 401 when the bearer token
 * is not one `authorize` accepts (an expired or unknown OAuth token, as
 * upstream answers). Loopback only; requests are recorded without headers.
 */
export interface FakeMessagesApi {
  url: string;
  /** One entry per request: path, whether the token was accepted, the status sent. */
  requests: { path: string; authorized: boolean; status: number }[];
  close(): Promise<void>;
}

const USAGE = { input_tokens: 3, cache_creation_input_tokens: 1234, cache_read_input_tokens: 15000, output_tokens: 12 };

/** startFakeMessagesApi listens on 127.0.0.1 (port 0). */
export async function startFakeMessagesApi(options: {
  authorize: (token: string) => boolean;
}): Promise<FakeMessagesApi> {
  const requests: FakeMessagesApi["requests"] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const path = new URL(req.url ?? "/", "http://x").pathname;
      const auth = req.headers.authorization ?? "";
      const token = auth.startsWith("Bearer ") ? auth.slice("Bearer ".length) : String(req.headers["x-api-key"] ?? "");
      const authorized = options.authorize(token);
      const json = (status: number, body: unknown) => {
        requests.push({ path, authorized, status });
        res.writeHead(status, { "content-type": "application/json", "request-id": requestId() });
        res.end(JSON.stringify(body));
      };
      if (req.method !== "POST" || !/\/v1\/messages\/?$/.test(path)) {
        json(404, { type: "error", error: { type: "not_found_error", message: `Not found: ${req.method} ${path}` } });
        return;
      }
      if (!authorized) {
        json(401, {
          type: "error",
          error: {
            type: "authentication_error",
            message: "OAuth token has expired. Please obtain a new token or refresh your existing token.",
          },
        });
        return;
      }
      let model = "claude-sonnet-5-5";
      try {
        const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { model?: string };
        if (typeof body.model === "string") model = body.model;
      } catch {
        // keep the default model
      }
      requests.push({ path, authorized, status: 200 });
      streamAnswer(res, model, "4");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function requestId(): string {
  return `req_fake${randomBytes(8).toString("hex")}`;
}

/** streamAnswer writes one text answer as the Messages API's SSE events. */
function streamAnswer(res: http.ServerResponse, model: string, text: string): void {
  res.writeHead(200, {
    "content-type": "text/event-stream",
    "cache-control": "no-cache",
    "request-id": requestId(),
    "anthropic-ratelimit-unified-status": "allowed",
    "anthropic-ratelimit-unified-representative-claim": "five_hour",
  });
  const event = (name: string, data: unknown) => res.write(`event: ${name}\ndata: ${JSON.stringify(data)}\n\n`);
  const usage = {
    ...USAGE,
    cache_creation: { ephemeral_5m_input_tokens: 1234, ephemeral_1h_input_tokens: 0 },
    service_tier: "standard",
  };
  event("message_start", {
    type: "message_start",
    message: {
      id: `msg_fake${randomBytes(9).toString("hex")}`,
      type: "message",
      role: "assistant",
      model,
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: { ...usage, output_tokens: 1 },
    },
  });
  event("content_block_start", { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } });
  event("content_block_delta", { type: "content_block_delta", index: 0, delta: { type: "text_delta", text } });
  event("content_block_stop", { type: "content_block_stop", index: 0 });
  event("message_delta", {
    type: "message_delta",
    delta: { stop_reason: "end_turn", stop_sequence: null },
    usage: USAGE,
  });
  event("message_stop", { type: "message_stop" });
  res.end();
}
