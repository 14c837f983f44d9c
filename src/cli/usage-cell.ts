import type { Colors } from "./colors.js";
import { FigureBasis, ObservationSource, type UsageFigure } from "../../gen/authpool/v1/auth_pool_pb.js";
import { formatAge, formatDuration, secondsOf } from "./format-time.js";

const BAR_CELLS = 10;

/**
 * usageBar draws a percentage as `█████░░░░░  52%`. The bar stops at full
 * but the number does not: upstream figures may exceed 100.
 */
export function usageBar(percent: number, colors: Colors): string {
  const filled = Math.min(BAR_CELLS, Math.max(0, Math.round((percent / 100) * BAR_CELLS)));
  const paint = percent >= 100 ? colors.red : percent >= 80 ? colors.yellow : colors.green;
  // Empty runs stay unpainted: no stray escape codes around nothing.
  const bar =
    (filled > 0 ? paint("█".repeat(filled)) : "") +
    (filled < BAR_CELLS ? colors.dim("░".repeat(BAR_CELLS - filled)) : "");
  return `${bar} ${`${Math.round(percent)}%`.padStart(4)}`;
}

const SOURCE_NAMES: Record<ObservationSource, string> = {
  [ObservationSource.UNSPECIFIED]: "upstream",
  [ObservationSource.STREAM_EVENT]: "stream",
  [ObservationSource.RESPONSE_HEADERS]: "headers",
  [ObservationSource.REPORT]: "report",
  [ObservationSource.OAUTH_USAGE]: "oauth",
  [ObservationSource.TRANSCRIPT]: "transcript",
};

/**
 * figureTag says in brief what a percentage rests on: "oauth 42s",
 * "stale headers 20m", "learned" (local spend at the learned ratio) or
 * "budget" (local spend over the configured budget).
 */
export function figureTag(figure: UsageFigure | undefined): string {
  if (figure === undefined) return "";
  switch (figure.basis) {
    case FigureBasis.UPSTREAM:
    case FigureBasis.UPSTREAM_STALE: {
      const stale = figure.basis === FigureBasis.UPSTREAM_STALE ? "stale " : "";
      return `${stale}${SOURCE_NAMES[figure.source] ?? "upstream"} ${formatAge(secondsOf(figure.age))}`;
    }
    case FigureBasis.LEARNED_ESTIMATE:
      return "learned";
    case FigureBasis.BUDGET_ESTIMATE:
      return "budget";
    default:
      return "";
  }
}

/** UsageCellInput is one window's figure as the status table shows it. */
export interface UsageCellInput {
  percent: number;
  figure: UsageFigure | undefined;
  /** When the window resets (epoch ms), if known. */
  resetsAt: number | undefined;
  /** The server's clock (epoch ms): resets are shown relative to it. */
  now: number;
}

/** usageCell is the bar, the reset and the basis, one per line. */
export function usageCell(input: UsageCellInput, colors: Colors): string {
  const lines = [usageBar(input.percent, colors)];
  if (input.resetsAt !== undefined) {
    lines.push(colors.dim(`resets in ${formatDuration(input.resetsAt - input.now)}`));
  }
  const tag = figureTag(input.figure);
  if (tag !== "") lines.push(tag.startsWith("stale") ? colors.yellow(tag) : colors.dim(tag));
  return lines.join("\n");
}
