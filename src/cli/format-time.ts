import type { Duration, Timestamp } from "@bufbuild/protobuf/wkt";

/** millisOf returns a Timestamp as epoch milliseconds, or undefined when unset (or zero, proto's "unset"). */
export function millisOf(ts: Timestamp | undefined): number | undefined {
  if (ts === undefined) return undefined;
  const ms = Number(ts.seconds) * 1000 + Math.floor(ts.nanos / 1e6);
  return ms === 0 ? undefined : ms;
}

/** secondsOf returns a Duration in whole seconds (0 when unset). */
export function secondsOf(d: Duration | undefined): number {
  return d === undefined ? 0 : Number(d.seconds);
}

/**
 * formatDuration renders a span for a narrow column: "42s", "12m", "3h 5m",
 * "2d 4h". Two units at most; more precision than that is noise at a glance.
 */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 24) return m % 60 === 0 ? `${h}h` : `${h}h ${m % 60}m`;
  const d = Math.floor(h / 24);
  return h % 24 === 0 ? `${d}d` : `${d}d ${h % 24}h`;
}

/** formatAge renders how old an observation is, coarsely: "42s", "20m", "3h". */
export function formatAge(seconds: number): string {
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)}m`;
  return `${Math.round(seconds / 3600)}h`;
}

/** formatTime renders epoch milliseconds as a compact UTC time: "2026-11-23 15:00Z". */
export function formatTime(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 16).replace("T", " ")}Z`;
}
