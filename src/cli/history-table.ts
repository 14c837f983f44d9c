import Table from "cli-table3";
import { type GetUsageHistoryResponse, HistoryResolution } from "../../gen/authpool/v1/auth_pool_pb.js";
import type { Colors } from "./colors.js";
import { formatTime, millisOf } from "./format-time.js";
import { usd } from "./usage-table.js";

/**
 * renderHistory renders a GetUsageHistory reply for a person: one row per
 * hour or day (cost, runs, usage limits hit, runs sent to the paid API, and
 * who spent most in it), then each series' total. Periods with nothing
 * in them are left out: over 35 days the quiet ones would bury the rest.
 */
export function renderHistory(res: GetUsageHistoryResponse, options: { by: string; colors: Colors }): string {
  const { colors } = options;
  const daily = res.resolution === HistoryResolution.DAY;
  const from = millisOf(res.from);
  const until = millisOf(res.until);
  const total = res.series.reduce((sum, s) => sum + s.totalCostUsd, 0);
  const heading = [
    `${colors.bold("Usage history")} per ${daily ? "day" : "hour"}${options.by === "pool" ? "" : ` by ${options.by}`}`,
    ...(from !== undefined && until !== undefined ? [`${formatTime(from)} to ${formatTime(until)}`] : []),
    usd(total),
  ].join(" · ");
  const periods = res.series[0]?.points.length ?? 0;
  const head = ["period", "cost", "runs", "limits hit", "paid API runs", ...(options.by === "pool" ? [] : ["most"])];
  const table = new Table({
    head: head.map((h) => colors.bold(h)),
    colAligns: ["left", "right", "right", "right", "right", "left"],
    style: { head: [], border: [] },
  });
  for (let i = 0; i < periods; i++) {
    let cost = 0;
    let runs = 0;
    let limits = 0;
    let fallbacks = 0;
    let top: { key: string; cost: number } | undefined;
    for (const s of res.series) {
      const p = s.points[i]!;
      cost += p.costUsd;
      runs += p.runs;
      limits += p.limitsHit;
      fallbacks += p.fallbacks;
      if (p.costUsd > 0 && (top === undefined || p.costUsd > top.cost)) top = { key: s.key, cost: p.costUsd };
    }
    if (cost === 0 && runs === 0 && limits === 0 && fallbacks === 0) continue;
    const start = millisOf(res.series[0]!.points[i]!.start) ?? 0;
    const period = daily ? new Date(start).toISOString().slice(0, 10) : formatTime(start);
    const most = top === undefined ? "" : `${top.key} ${usd(top.cost)}`;
    table.push([
      period,
      usd(cost),
      String(runs),
      String(limits),
      String(fallbacks),
      ...(options.by === "pool" ? [] : [most]),
    ]);
  }
  if (table.length === 0) return `${heading}\nnothing recorded in this period`;
  const totals =
    options.by === "pool" ? "" : `\n${res.series.map((s) => `${s.key} ${usd(s.totalCostUsd)}`).join(" · ")}`;
  return `${heading}\n${table.toString()}${totals}`;
}
