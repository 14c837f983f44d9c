import type { StatusResult } from "../domain/index.js";
import type { PoolWriter } from "../runtime/pool-writer.js";
import { bearerAllowed } from "./bearer-auth.js";

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

/**
 * metricsFallback answers what is not an RPC: `GET /metrics` (behind the
 * bearer token when authentication is on), 404 for anything else.
 */
export function metricsFallback(options: {
  writer: PoolWriter;
  authTokens: readonly string[];
  webhookPending: () => number | undefined;
}): (req: Request, res: Response) => void {
  const reply = (res: Response, status: number, headers: Record<string, string>, body: string) => {
    res.writeHead(status, headers);
    res.end(body);
  };
  return (req, res) => {
    const path = (req.url ?? "").split("?")[0];
    if (path !== "/metrics" || req.method !== "GET") {
      reply(res, 404, { "content-type": "text/plain" }, "not found\n");
      return;
    }
    if (!bearerAllowed(options.authTokens, req.headers.authorization)) {
      reply(res, 401, { "content-type": "text/plain", "www-authenticate": "Bearer" }, "unauthenticated\n");
      return;
    }
    options.writer.submit({ kind: "status", includeSessions: false }).then(
      (status) => {
        const pending = options.webhookPending();
        const body = renderMetrics(status, {
          durableSeq: options.writer.durableSeq,
          ...(pending !== undefined ? { webhookPending: pending } : {}),
        });
        reply(res, 200, { "content-type": "text/plain; version=0.0.4" }, body);
      },
      (error: unknown) => reply(res, 503, { "content-type": "text/plain" }, `${String(error)}\n`),
    );
  };
}

/**
 * renderMetrics writes the pool's status in the Prometheus text format
 * (version 0.0.4): one gauge family per figure an operator graphs or alerts
 * on, labelled by subscription. Everything comes from one status decision,
 * so the figures are consistent with each other.
 */
export function renderMetrics(status: StatusResult, extra: { durableSeq: number; webhookPending?: number }): string {
  const lines: string[] = [];
  const family = (name: string, help: string, samples: [labels: string, value: number][]) => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`);
    for (const [labels, value] of samples) lines.push(`${name}${labels} ${Number.isFinite(value) ? value : 0}`);
  };
  const per = (f: (v: StatusResult["views"][number]) => number): [string, number][] =>
    status.views.map((v) => [`{subscription="${escape(v.cfg.id)}"}`, f(v)]);

  family("authpool_subscription_health_score", "Health score 0-100 (higher is healthier).", per((v) => v.health.score));
  family("authpool_subscription_weekly_used_usd", "Cost in the rolling 7 days (USD, API-price estimate).", per((v) => v.weeklyUsedUsd));
  family("authpool_subscription_weekly_budget_usd", "Configured weekly budget (USD).", per((v) => v.cfg.weeklyBudgetUsd));
  family("authpool_subscription_weekly_used_ratio", "Share of the weekly limit used (upstream when known), 0-1.", per((v) => v.weeklyFraction));
  family("authpool_subscription_five_hour_used_ratio", "Share of the current 5-hour window used, 0-1.", per((v) => v.fiveHourFraction));
  family(
    "authpool_subscription_external_weekly_usd",
    "Use in the rolling 7 days found in transcripts, not reported through the pool (USD).",
    per((v) => v.weeklyExternalUsd),
  );
  family(
    "authpool_subscription_upstream_utilization_ratio",
    "Latest upstream utilization per window whose reset has not passed, 0-1.",
    status.views.flatMap((v) =>
      v.upstream.map((u): [string, number] => [`{subscription="${escape(v.cfg.id)}",window="${u.window}"}`, u.observation.utilization]),
    ),
  );
  family(
    "authpool_subscription_upstream_age_seconds",
    "Age of the latest upstream observation per window.",
    status.views.flatMap((v) =>
      v.upstream.map((u): [string, number] => [
        `{subscription="${escape(v.cfg.id)}",window="${u.window}"}`,
        Math.max(0, (status.now - u.observation.observedAt) / 1000),
      ]),
    ),
  );
  family("authpool_subscription_burn_rate_usd_per_hour", "Cost of the trailing hour (USD).", per((v) => v.burnRateUsdPerHour));
  family("authpool_subscription_sessions", "Sessions held.", per((v) => v.sessionCount));
  family("authpool_subscription_active_sessions", "Sessions active within sessions.activeMinutes.", per((v) => v.activeSessions));
  family("authpool_subscription_max_sessions", "Configured session limit.", per((v) => v.cfg.maxSessions));
  family(
    "authpool_subscription_cooldown_until_seconds",
    "End of the cooldown in force (Unix seconds), 0 when none.",
    per((v) => (v.cooldown === undefined ? 0 : Math.floor(v.cooldown.until / 1000))),
  );
  family(
    "authpool_subscription_status",
    "1 for the subscription's current status.",
    status.views.flatMap((v) =>
      STATUSES.map((s): [string, number] => [`{subscription="${escape(v.cfg.id)}",status="${s}"}`, v.status === s ? 1 : 0]),
    ),
  );
  family("authpool_sessions", "Sessions held across the pool.", [["", status.totalSessions]]);
  family("authpool_event_sequence", "Sequence of the last durable event.", [["", extra.durableSeq]]);
  if (extra.webhookPending !== undefined) {
    family("authpool_webhook_pending_events", "Events after the webhook's delivered cursor.", [["", extra.webhookPending]]);
  }
  return `${lines.join("\n")}\n`;
}

const STATUSES = ["available", "approaching", "limited", "cooldown", "paused"] as const;

function escape(label: string): string {
  return label.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}
