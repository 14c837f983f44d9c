import type { SubscriptionStatus } from "../../gen/authpool/v1/auth_pool_pb.js";
import type { Colors } from "./colors.js";
import { stateName } from "./enum-names.js";
import { formatDuration } from "./format-time.js";
import { cooldownUntil, fiveHourPercent, statusCell, warningsOf } from "./subscription-cells.js";

/** COMPACT_WIDTH is the most columns a compact line takes: it fits a 100-column terminal without wrapping. */
export const COMPACT_WIDTH = 100;

const ID_WIDTH = { min: 12, max: 24 };

/** A cell: its text (which sets the width) and the colour it is printed in. */
interface Cell {
  text: string;
  width: number;
  align: "left" | "right";
  paint?: (s: string) => string;
  /** Clip in the middle: ids differ at their end (pro-1, pro-2). */
  keepEnd?: boolean;
}

/**
 * compactStatus renders one line per subscription (`status --compact`):
 * id, status, health, 5-hour and weekly use, sessions, then a note (the
 * cooldown left, else the warnings), clipped so no line passes
 * COMPACT_WIDTH columns. A pool of fifty subscriptions is fifty lines.
 */
export function compactStatus(subs: readonly SubscriptionStatus[], now: number, colors: Colors): string {
  const idWidth = Math.min(ID_WIDTH.max, Math.max(ID_WIDTH.min, ...subs.map((s) => s.id.length)));
  const columns = (id: string, status: Cell, health: string, fiveHour: Cell, weekly: Cell, sessions: string) => [
    { text: id, width: idWidth, align: "left", keepEnd: true } as Cell,
    status,
    { text: health, width: 6, align: "right" } as Cell,
    fiveHour,
    weekly,
    { text: sessions, width: 9, align: "right" } as Cell,
  ];
  const head = columns(
    "subscription",
    { text: "status", width: 11, align: "left" },
    "health",
    { text: "5-hour", width: 6, align: "right" },
    { text: "weekly", width: 6, align: "right" },
    "sessions",
  );
  const lines = [line(head, "note", (s) => colors.bold(s))];
  for (const s of subs) {
    const row = columns(
      s.id,
      { text: stateName(s.status), width: 11, align: "left", paint: () => statusCell(s.status, colors) },
      s.healthScore.toFixed(1),
      percentCell(fiveHourPercent(s), colors),
      percentCell(s.weeklyPercentUsed, colors),
      `${s.sessionCount}/${s.maxSessions}`,
    );
    lines.push(line(row, noteOf(s, now), colors.yellow));
  }
  return lines.join("\n");
}

function percentCell(percent: number, colors: Colors): Cell {
  const paint = percent >= 100 ? colors.red : percent >= 80 ? colors.yellow : undefined;
  return { text: `${Math.round(percent)}%`, width: 6, align: "right", ...(paint !== undefined ? { paint } : {}) };
}

function noteOf(s: SubscriptionStatus, now: number): string {
  const until = cooldownUntil(s);
  const notes = until === undefined ? [] : [`cooldown ${formatDuration(until - now)} left`];
  return [...notes, ...warningsOf(s)].join("; ");
}

/** line lays the cells out two spaces apart and gives the note what is left of COMPACT_WIDTH. */
function line(cells: readonly Cell[], note: string, paintNote: (s: string) => string): string {
  const out: string[] = [];
  let used = 0;
  for (const cell of cells) {
    const text = cell.keepEnd === true ? clipMiddle(cell.text, cell.width) : clip(cell.text, cell.width);
    const pad = " ".repeat(cell.width - text.length);
    const shown = cell.paint === undefined ? text : cell.paint(text);
    out.push(cell.align === "left" ? shown + pad : pad + shown);
    used += cell.width + 2;
  }
  const room = COMPACT_WIDTH - used;
  const row = out.join("  ");
  return note === "" ? row.trimEnd() : `${row}  ${paintNote(clip(note, room))}`;
}

/** clipMiddle cuts text to width columns in the middle, keeping more of its end. */
function clipMiddle(text: string, width: number): string {
  if (text.length <= width) return text;
  const head = Math.floor((width - 1) / 2);
  return `${text.slice(0, head)}…${text.slice(text.length - (width - 1 - head))}`;
}

/** clip cuts text to width columns, marking the cut with "…". */
function clip(text: string, width: number): string {
  return text.length <= width ? text : `${text.slice(0, Math.max(0, width - 1))}…`;
}
