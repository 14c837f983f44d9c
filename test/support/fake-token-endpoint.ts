import { randomBytes } from "node:crypto";
import { type IncomingMessage, type ServerResponse, createServer } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * FakeTokenEndpoint plays Anthropic's OAuth token endpoint
 * (`POST /v1/oauth/token`, grant_type refresh_token) with the one rule that
 * breaks fleets: a refresh token is good for one use. A spent or unknown one
 * gets `400 {"error":"invalid_grant"}`, as upstream answers. Access tokens it
 * issued stay valid until their expiry (checked by the fake Messages API).
 * Tokens are random test strings; none is real.
 */
export interface FakeTokenEndpointOptions {
  /** Lifetime of issued access tokens, in seconds (Anthropic: about 8 h). Default 28,800. */
  accessTtlSeconds?: number;
  /** The client id requests must carry; absent: any. */
  clientId?: string;
  /** Epoch ms now; default Date.now (the real CLI uses the wall clock). */
  now?: () => number;
  /** Delay before each answer, in ms (a slow upstream widens races). Default 0. */
  latencyMs?: number;
}

/** TokenSet is what a login or a refresh hands out. */
export interface TokenSet {
  accessToken: string;
  refreshToken: string;
  /** Epoch ms. */
  expiresAt: number;
}

/** GrantOutcome is how one token request ended. */
export type GrantOutcome = "granted" | "invalid_grant" | "invalid_client" | "bad_request" | "unavailable";

export class FakeTokenEndpoint {
  /** One entry per token request, in arrival order (no token values). */
  readonly requests: { outcome: GrantOutcome; scope?: string }[] = [];
  /** While true, every token request gets 503 (an outage); nothing is spent. */
  unavailable = false;
  /** Every token this endpoint ever issued, for tests that check none leaked. */
  readonly issued: string[] = [];
  private readonly accessTtlSeconds: number;
  private readonly clientId: string | undefined;
  private readonly now: () => number;
  private readonly latencyMs: number;
  /** Refresh tokens not yet used. */
  private readonly live = new Set<string>();
  private readonly access = new Map<string, number>();
  private serial = 0;

  constructor(options: FakeTokenEndpointOptions = {}) {
    this.accessTtlSeconds = options.accessTtlSeconds ?? 28_800;
    this.clientId = options.clientId;
    this.now = options.now ?? Date.now;
    this.latencyMs = options.latencyMs ?? 0;
  }

  /** login issues a fresh token pair, as `claude login` would; `expiresAt` overrides the access token's expiry. */
  login(expiresAt?: number): TokenSet {
    return this.issue(expiresAt ?? this.now() + this.accessTtlSeconds * 1000);
  }

  /**
   * redeem spends a refresh token out of band, as another holder of the same
   * login would (a copy of the file elsewhere, a refresher that has not
   * written yet): the new pair, or undefined when the token was not live.
   */
  redeem(refreshToken: string): TokenSet | undefined {
    if (!this.live.delete(refreshToken)) return undefined;
    return this.issue(this.now() + this.accessTtlSeconds * 1000);
  }

  /** accessTokenValid says whether an access token was issued here and has not expired. */
  accessTokenValid(token: string): boolean {
    const expiresAt = this.access.get(token);
    return expiresAt !== undefined && expiresAt > this.now();
  }

  /** isLive says whether a refresh token can still be used. */
  isLive(refreshToken: string): boolean {
    return this.live.has(refreshToken);
  }

  get granted(): number {
    return this.requests.filter((r) => r.outcome === "granted").length;
  }

  get invalidGrants(): number {
    return this.requests.filter((r) => r.outcome === "invalid_grant").length;
  }

  /** handle answers one HTTP request: POST /v1/oauth/token, else 404. */
  readonly handle = (req: IncomingMessage, res: ServerResponse): void => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const answer = (status: number, body: unknown) => {
        const send = () => {
          res.writeHead(status, { "content-type": "application/json" });
          res.end(JSON.stringify(body));
        };
        if (this.latencyMs > 0) setTimeout(send, this.latencyMs);
        else send();
      };
      const path = new URL(req.url ?? "/", "http://x").pathname;
      if (req.method !== "POST" || path !== "/v1/oauth/token") {
        answer(404, { type: "error", error: { type: "not_found_error", message: `Not found: ${req.method} ${path}` } });
        return;
      }
      let body: Record<string, unknown>;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as Record<string, unknown>;
      } catch {
        this.requests.push({ outcome: "bad_request" });
        answer(400, { error: "invalid_request", error_description: "body is not JSON" });
        return;
      }
      const scope = typeof body["scope"] === "string" ? body["scope"] : undefined;
      const record = (outcome: GrantOutcome) =>
        this.requests.push({ outcome, ...(scope !== undefined ? { scope } : {}) });
      if (this.unavailable) {
        record("unavailable");
        answer(503, { type: "error", error: { type: "overloaded_error", message: "Overloaded" } });
        return;
      }
      if (body["grant_type"] !== "refresh_token" || typeof body["refresh_token"] !== "string") {
        record("bad_request");
        answer(400, { error: "invalid_request", error_description: "expected grant_type refresh_token" });
        return;
      }
      if (this.clientId !== undefined && body["client_id"] !== this.clientId) {
        record("invalid_client");
        answer(400, { error: "invalid_client", error_description: "Unknown client" });
        return;
      }
      const used = body["refresh_token"];
      if (!this.live.delete(used)) {
        record("invalid_grant");
        answer(400, { error: "invalid_grant", error_description: "Refresh token not found or invalid" });
        return;
      }
      const next = this.issue(this.now() + this.accessTtlSeconds * 1000);
      record("granted");
      answer(200, {
        token_type: "Bearer",
        access_token: next.accessToken,
        refresh_token: next.refreshToken,
        expires_in: this.accessTtlSeconds,
        scope: scope ?? "user:inference user:profile user:sessions:claude_code",
      });
    });
  };

  private issue(expiresAt: number): TokenSet {
    const n = ++this.serial;
    const tag = `${n}-${randomBytes(6).toString("hex")}`;
    const set = { accessToken: `sk-ant-oat01-fake-${tag}`, refreshToken: `sk-ant-ort01-fake-${tag}`, expiresAt };
    this.live.add(set.refreshToken);
    this.issued.push(set.accessToken, set.refreshToken);
    this.access.set(set.accessToken, expiresAt);
    return set;
  }
}

/** TokenServer is a FakeTokenEndpoint listening on loopback over plain HTTP. */
export interface TokenServer {
  /** The token endpoint's full URL (http://127.0.0.1:PORT/v1/oauth/token). */
  url: string;
  close(): Promise<void>;
}

/** serveTokenEndpoint listens on 127.0.0.1 (port 0) with the endpoint's handler. */
export async function serveTokenEndpoint(endpoint: FakeTokenEndpoint): Promise<TokenServer> {
  const server = createServer(endpoint.handle);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1/oauth/token`,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
