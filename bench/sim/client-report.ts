import { formatTable } from "../table.js";
import { type ClientMetrics, type SimMetrics, emptyClientMetrics } from "./run-simulation.js";

/** ClientRow is one client (or group of clients) in one mode, over the seeds. */
export interface ClientRow {
  mode: string;
  client: string;
  metrics: ClientMetrics;
  /** API-price dollars of the runs it asked for. */
  demandUsd: number;
}

/** addClientMetrics adds b into a. */
export function addClientMetrics(a: ClientMetrics, b: ClientMetrics): void {
  a.runs += b.runs;
  a.servedRuns += b.servedRuns;
  a.servedUsd += b.servedUsd;
  for (const w of b.waitsMs) a.waitsMs.push(w);
  a.expiredRuns += b.expiredRuns;
  a.fallbackRuns += b.fallbackRuns;
  a.fallbackUsd += b.fallbackUsd;
  for (const [kind, n] of Object.entries(b.limitRefusals)) a.limitRefusals[kind] = (a.limitRefusals[kind] ?? 0) + n;
}

/** byGroup adds up each seed's clients under the group `groupOf` names (people together, say). */
export function byGroup(list: readonly SimMetrics[], groupOf: (client: string) => string): Map<string, ClientMetrics> {
  const groups = new Map<string, ClientMetrics>();
  for (const m of list) {
    for (const [client, c] of m.byClient) {
      const g = groupOf(client);
      let sum = groups.get(g);
      if (sum === undefined) groups.set(g, (sum = emptyClientMetrics()));
      addClientMetrics(sum, c);
    }
  }
  return groups;
}

/** percentile is the nearest-rank p-th percentile (0-100) of xs, NaN for none. */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** BUDGET_LIMITS are the client limits in dollars; the others are sessions, share of slots and models. */
const BUDGET_LIMITS = ["weekly_usd", "five_hour_usd"];

/**
 * formatClientTable renders the clients' rows: runs served, runs that
 * waited for a slot (how long, and how many were placed before their wait
 * ran out), paid fallback, and runs its own limits refused (its budgets,
 * then its sessions, share and models).
 */
export function formatClientTable(rows: readonly ClientRow[], markdown: boolean): string {
  const pct = (part: number, whole: number) => (whole === 0 ? "–" : `${((100 * part) / whole).toFixed(1)}%`);
  const seconds = (ms: number) => (Number.isNaN(ms) ? "–" : `${Math.round(ms / 1000)} s`);
  return formatTable(
    [
      "wait queue",
      "client",
      "runs",
      "served",
      "waited",
      "wait p50",
      "wait p99",
      "placed after a wait",
      "paid fallback",
      "of its demand",
      "budget refusals",
      "other limit refusals",
    ],
    rows.map((r) => {
      const m = r.metrics;
      const refusals = (budget: boolean) =>
        Object.entries(m.limitRefusals).reduce(
          (n, [kind, k]) => n + (BUDGET_LIMITS.includes(kind) === budget ? k : 0),
          0,
        );
      return [
        r.mode,
        r.client,
        String(m.runs),
        pct(m.servedRuns, m.runs),
        pct(m.waitsMs.length, m.runs),
        seconds(percentile(m.waitsMs, 50)),
        seconds(percentile(m.waitsMs, 99)),
        String(m.waitsMs.length - m.expiredRuns),
        `$${m.fallbackUsd.toFixed(0)}`,
        pct(m.fallbackUsd, r.demandUsd),
        String(refusals(true)),
        String(refusals(false)),
      ];
    }),
    markdown,
  );
}
