import { timestampMs } from "@bufbuild/protobuf/wkt";
import uPlot from "uplot";
import type { GetUsageHistoryResponse } from "../../gen/authpool/v1/auth_pool_pb.js";
import { usdText } from "./pool-figures.js";

/** SERIES_SHOWN: beyond this many keys the rest is summed as "other", so the chart stays readable. */
const SERIES_SHOWN = 6;
const COLORS = ["#2563eb", "#16a34a", "#d97706", "#9333ea", "#dc2626", "#0891b2", "#6b7280"];

/**
 * UsageChart draws GetUsageHistory as stacked-free lines of cost per
 * series (uPlot: 50 kB, canvas, fast with a thousand points), plus the
 * runs sent to the paid API as a note under it.
 */
export class UsageChart {
  private plot: uPlot | undefined;
  private readonly root: HTMLElement;

  constructor(root: HTMLElement) {
    this.root = root;
    new ResizeObserver(() => this.plot?.setSize(this.size())).observe(root);
  }

  show(history: GetUsageHistoryResponse): { fallbacks: number; limits: number } {
    const series = history.series;
    const xs = (series[0]?.points ?? []).map((p) => timestampMs(p.start!) / 1000);
    const shown = series.slice(0, SERIES_SHOWN);
    const rest = series.slice(SERIES_SHOWN);
    const lines = shown.map((s) => ({ label: s.key, values: s.points.map((p) => p.costUsd) }));
    if (rest.length > 0)
      lines.push({
        label: `other (${rest.length})`,
        values: xs.map((_, i) => rest.reduce((sum, s) => sum + (s.points[i]?.costUsd ?? 0), 0)),
      });
    let fallbacks = 0;
    let limits = 0;
    for (const s of series)
      for (const p of s.points) {
        fallbacks += p.fallbacks;
        limits += p.limitsHit;
      }
    this.plot?.destroy();
    this.plot = new uPlot(
      {
        ...this.size(),
        scales: { x: { time: true } },
        axes: [{}, { values: (_u, ticks) => ticks.map((t) => usdText(t)), size: 60 }],
        series: [
          {},
          ...lines.map((l, i) => ({
            label: l.label,
            stroke: COLORS[i % COLORS.length],
            width: 2,
            value: (_u: uPlot, v: number | null) => (v === null ? "-" : usdText(v)),
          })),
        ],
        legend: { live: false },
      },
      [xs, ...lines.map((l) => l.values)],
      this.root,
    );
    return { fallbacks, limits };
  }

  private size(): { width: number; height: number } {
    const width = Math.max(280, this.root.clientWidth);
    return { width, height: Math.round(Math.min(320, Math.max(180, width * 0.35))) };
  }
}
