import type { PoolConfig } from "../config/index.js";
import type { ReloadSummary } from "./auth-pool-service.js";

/**
 * What a reload changes, and what it cannot change while running. The
 * listener, the store and the journal's cadence are set up once at start;
 * everything the pool decides with applies at once, and notification
 * channels whose settings changed are restarted (keeping their cursors).
 */

/** Settings read once at start: a change shows in the summary with this note. */
const AT_RESTART = " (applies after a restart)";

const RESTART_PATHS = new Set([
  "server",
  "store",
  "snapshot",
  "events",
  "sessions.sweepIntervalSeconds",
  "rebalancing.intervalSeconds",
  "transcripts.intervalSeconds",
  "limits.maxRequestBytes",
]);

/** diffConfig compares the running config with a newly read one. */
export function diffConfig(old: PoolConfig, next: PoolConfig): ReloadSummary {
  const before = new Map(old.subscriptions.map((s) => [s.id, s]));
  const after = new Map(next.subscriptions.map((s) => [s.id, s]));
  const added = [...after.keys()].filter((id) => !before.has(id));
  const removed = [...before.keys()].filter((id) => !after.has(id));
  const updated = [...after.keys()].filter((id) => before.has(id) && !same(before.get(id), after.get(id)));
  const settings: string[] = [];
  for (const key of Object.keys(next) as (keyof PoolConfig)[]) {
    if (key === "source" || key === "subscriptions") continue;
    const a: unknown = old[key];
    const b: unknown = next[key];
    if (same(a, b)) continue;
    if (isPlainObject(a) && isPlainObject(b) && !RESTART_PATHS.has(key)) {
      for (const sub of new Set([...Object.keys(a), ...Object.keys(b)])) {
        if (!same(a[sub], b[sub])) settings.push(describe(`${key}.${sub}`, a[sub], b[sub]));
      }
    } else {
      settings.push(annotate(key));
    }
  }
  return {
    source: next.source,
    changed: added.length + removed.length + updated.length + settings.length > 0,
    added,
    removed,
    updated,
    settings,
  };
}

function annotate(path: string): string {
  return RESTART_PATHS.has(path) ? `${path}${AT_RESTART}` : path;
}

/** ENDPOINTS are the notification endpoints a reload restarts: the summary says how each changed. */
const ENDPOINTS = new Set(["notifications.webhook", "notifications.slack"]);

/**
 * describe names a changed setting; an endpoint also says whether it was
 * added, removed, or which of its keys changed, never to what (a URL or a
 * secret is a credential).
 */
function describe(path: string, a: unknown, b: unknown): string {
  if (!ENDPOINTS.has(path)) return annotate(path);
  if (a === undefined) return `${path} (added)`;
  if (b === undefined) return `${path} (removed)`;
  if (!isPlainObject(a) || !isPlainObject(b)) return path;
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((k) => !same(a[k], b[k]));
  return `${path} (${keys.join(", ")} changed)`;
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
