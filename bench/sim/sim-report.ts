import { formatTable } from "../table.js";
import type { SimMetrics } from "./run-simulation.js";
import type { StrategyName } from "./scenario.js";

/** SizeResult is every strategy's metrics over the seeds of one pool size. */
export interface SizeResult {
  accounts: number;
  people: number;
  seeds: number;
  demandUsd: number;
  /** The owners' use outside the pool, in utilization dollars, over the seeds. */
  ownersUsd: number;
  runs: number;
  byStrategy: Map<StrategyName, SimMetrics[]>;
}

/** Totals are one strategy's metrics added up (or averaged) over the seeds. */
export interface Totals {
  refused: number;
  fallbackUsd: number;
  fallbackRuns: number;
  wastedUsd: number;
  servedBeforeFirstLimitUsd: number;
  moves: number;
  ownersRefusedUsd: number;
  /** Mean over accounts and seeds of the weekly utilization at the reset. */
  utilizationAtReset: number;
  /** Mean over seeds of the standard deviation across accounts. */
  utilizationSd: number;
  /** Mean over seeds of max - min across accounts. */
  utilizationRange: number;
}

/** totalsOf adds up one strategy's seeds. */
export function totalsOf(list: readonly SimMetrics[]): Totals {
  const sum = (f: (m: SimMetrics) => number) => list.reduce((s, m) => s + f(m), 0);
  const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
  const sd = (xs: number[]) => Math.sqrt(mean(xs.map((x) => (x - mean(xs)) ** 2)));
  return {
    refused: sum((m) => m.refused),
    fallbackUsd: sum((m) => m.fallbackUsd),
    fallbackRuns: sum((m) => m.fallbackRuns),
    wastedUsd: sum((m) => m.wastedUsd),
    servedBeforeFirstLimitUsd: sum((m) => m.servedBeforeFirstLimitUsd),
    moves: sum((m) => m.moves),
    ownersRefusedUsd: sum((m) => m.ownersRefusedUsd),
    utilizationAtReset: mean(list.flatMap((m) => m.weeklyUtilization)),
    utilizationSd: mean(list.map((m) => sd(m.weeklyUtilization))),
    utilizationRange: mean(list.map((m) => Math.max(...m.weeklyUtilization) - Math.min(...m.weeklyUtilization))),
  };
}

/** Verdict says, for one pool size, whether ours is strictly better than every other strategy. */
export interface Verdict {
  fewer429s: boolean;
  lessFallback: boolean;
  /** The strategies that tie or beat ours, per metric. */
  refusedBy: string[];
  fallbackBy: string[];
}

/** verdictOf compares one strategy with the others (all but `skip`) on 429s and paid fallback. */
export function verdictOf(result: SizeResult, ours: StrategyName, skip: readonly StrategyName[]): Verdict {
  const mine = totalsOf(result.byStrategy.get(ours)!);
  const refusedBy: string[] = [];
  const fallbackBy: string[] = [];
  for (const [name, list] of result.byStrategy) {
    if (name === ours || skip.includes(name)) continue;
    const t = totalsOf(list);
    if (t.refused <= mine.refused) refusedBy.push(name);
    if (t.fallbackUsd <= mine.fallbackUsd) fallbackBy.push(name);
  }
  return { fewer429s: refusedBy.length === 0, lessFallback: fallbackBy.length === 0, refusedBy, fallbackBy };
}

/** formatSizeTable renders one pool size's table. */
export function formatSizeTable(result: SizeResult, markdown: boolean): string {
  const rows = [...result.byStrategy].map(([name, list]) => {
    const t = totalsOf(list);
    return [
      name,
      String(t.refused),
      money(t.fallbackUsd),
      `${((100 * t.fallbackUsd) / result.demandUsd).toFixed(1)}%`,
      money(t.wastedUsd),
      `${((100 * t.servedBeforeFirstLimitUsd) / result.demandUsd).toFixed(1)}%`,
      `${(100 * t.utilizationAtReset).toFixed(1)}%`,
      t.utilizationSd.toFixed(3),
      t.utilizationRange.toFixed(2),
      String(t.moves),
      `${((100 * t.ownersRefusedUsd) / result.ownersUsd).toFixed(1)}%`,
    ];
  });
  return formatTable(
    [
      "strategy",
      "429s",
      "paid fallback",
      "of demand",
      "cut runs",
      "served before 1st 429",
      "weekly used at reset",
      "sd",
      "max-min",
      "moves",
      "owners' use refused",
    ],
    rows,
    markdown,
  );
}

function money(usd: number): string {
  return `$${usd.toFixed(0)}`;
}
