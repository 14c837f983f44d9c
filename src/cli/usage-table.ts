import Table from "cli-table3";
import type { GetUsageResponse, UsageRow } from "../../gen/authpool/v1/auth_pool_pb.js";
import type { Colors } from "./colors.js";
import { formatTime, millisOf } from "./format-time.js";

/** UsageTableOptions: how to render a GetUsage reply. */
export interface UsageTableOptions {
  /** What the rows are keyed by, as `--by` spells it: client, subscription or model. */
  by: string;
  colors: Colors;
}

/**
 * renderUsage renders a GetUsage reply for a person: a heading with the
 * period and the total, then one row per key in the order the server sent
 * them (largest cost first) with its cost, tokens, requests and share of
 * the total cost, and a total row when there is more than one.
 */
export function renderUsage(res: GetUsageResponse, options: UsageTableOptions): string {
  const { colors } = options;
  const total = res.rows.reduce((sum, r) => sum + r.costUsd, 0);
  const requests = res.rows.reduce((sum, r) => sum + r.requests, 0);
  const from = millisOf(res.from);
  const to = millisOf(res.to);
  const parts = [`${colors.bold("Usage")} by ${options.by}`];
  if (from !== undefined && to !== undefined) parts.push(`${formatTime(from)} to ${formatTime(to)}`);
  parts.push(`${usd(total)} in ${requests} request${requests === 1 ? "" : "s"}`);
  const heading = parts.join(" · ");
  if (res.rows.length === 0) return `${heading}\nnothing recorded in this period`;

  const head = [options.by, "cost", "input", "output", "cache write", "cache read", "requests", "share"];
  const table = new Table({
    head: head.map((h) => colors.bold(h)),
    colAligns: ["left", ...head.slice(1).map(() => "right" as const)],
    style: { head: [], border: [] },
  });
  for (const r of res.rows) table.push(usageRow(r.key, r, total));
  if (res.rows.length > 1) {
    const sum = (pick: (r: UsageRow) => bigint) => res.rows.reduce((n, r) => n + pick(r), 0n);
    table.push(
      usageRow(
        colors.bold("total"),
        {
          costUsd: total,
          inputTokens: sum((r) => r.inputTokens),
          outputTokens: sum((r) => r.outputTokens),
          cacheCreationInputTokens: sum((r) => r.cacheCreationInputTokens),
          cacheReadInputTokens: sum((r) => r.cacheReadInputTokens),
          requests,
        },
        total,
      ),
    );
  }
  return `${heading}\n${table.toString()}`;
}

type UsageFigures = Pick<
  UsageRow,
  "costUsd" | "inputTokens" | "outputTokens" | "cacheCreationInputTokens" | "cacheReadInputTokens" | "requests"
>;

function usageRow(label: string, r: UsageFigures, total: number): string[] {
  return [
    label,
    usd(r.costUsd),
    formatCount(r.inputTokens),
    formatCount(r.outputTokens),
    formatCount(r.cacheCreationInputTokens),
    formatCount(r.cacheReadInputTokens),
    String(r.requests),
    // Nothing spent (token counts without a price): a share of nothing says nothing.
    total > 0 ? `${((r.costUsd / total) * 100).toFixed(1)}%` : "",
  ];
}

/** usd renders dollars for a table cell: "$12.30". */
export function usd(n: number): string {
  return `$${n.toFixed(2)}`;
}

/**
 * formatCount renders a token count for a narrow column: "950", "41.2k",
 * "1.5M", "2.0B". --json has the exact figures.
 */
export function formatCount(count: bigint): string {
  const n = Number(count);
  const size = Math.abs(n);
  // Each unit up to where toFixed(1) would round to 1000 of it.
  if (size < 1_000) return String(n);
  if (size < 999_950) return `${(n / 1e3).toFixed(1)}k`;
  if (size < 999_950_000) return `${(n / 1e6).toFixed(1)}M`;
  return `${(n / 1e9).toFixed(1)}B`;
}
