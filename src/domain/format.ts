/** formatPercent renders a 0-1 fraction for human-readable details: 0.823 -> "82.3%". */
export function formatPercent(fraction: number): string {
  return `${(fraction * 100).toFixed(1)}%`;
}

/** formatTime renders epoch ms for human-readable details (ISO 8601, UTC). */
export function formatTime(t: number): string {
  return new Date(t).toISOString();
}
