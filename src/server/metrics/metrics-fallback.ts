import { Code } from "@connectrpc/connect";
import type { Registry } from "prom-client";
import { type AuthDecision, type BearerAuth, METRICS_ROLE } from "../bearer-auth.js";

/** A minimal view of Node's request and response, HTTP/1.1 and HTTP/2 alike. */
interface Request {
  url?: string;
  method?: string;
  headers: { authorization?: string | undefined };
}
interface Response {
  writeHead(status: number, headers: Record<string, string>): unknown;
  end(body: string): unknown;
}

/** MetricsFallback is a Connect fallback handler: it answers what is not an RPC. */
export type MetricsFallback = (req: Request, res: Response) => void;

const TEXT = { "content-type": "text/plain" };

/**
 * metricsFallback answers GET /metrics from the registry, 404 otherwise.
 * With authentication on it needs a token with the reader role (or admin):
 * 401 without a valid token, 403 with one that lacks the role.
 */
export function metricsFallback(registry: Registry, auth: BearerAuth): MetricsFallback {
  return (req, res) => {
    const path = (req.url ?? "").split("?")[0];
    if (path !== "/metrics" || req.method !== "GET") {
      reply(res, 404, TEXT, "not found\n");
      return;
    }
    const decision = auth.check(req.headers.authorization, METRICS_ROLE, "GET /metrics");
    if (!decision.ok) {
      refuse(res, decision);
      return;
    }
    registry.metrics().then(
      (body) => reply(res, 200, { "content-type": registry.contentType }, body),
      (error: unknown) => reply(res, 503, TEXT, `${String(error)}\n`),
    );
  };
}

function refuse(res: Response, decision: Extract<AuthDecision, { ok: false }>): void {
  if (decision.code === Code.PermissionDenied) reply(res, 403, TEXT, `${decision.message}\n`);
  else reply(res, 401, { ...TEXT, "www-authenticate": "Bearer" }, "unauthenticated\n");
}

function reply(res: Response, status: number, headers: Record<string, string>, body: string): void {
  res.writeHead(status, headers);
  res.end(body);
}
