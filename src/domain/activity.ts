import type { PoolSettings } from "./settings.js";
import type { SessionState } from "./state.js";
import { MINUTE_MS } from "./time.js";

/** SessionActivity classifies a session by the time since its last activity. */
export type SessionActivity = "active" | "idle" | "stale";

/** sessionActivity: active within activeMinutes, stale after staleMinutes, idle between. */
export function sessionActivity(
  session: SessionState,
  now: number,
  settings: Pick<PoolSettings, "sessions">,
): SessionActivity {
  const quiet = now - session.lastActivityAt;
  if (quiet >= settings.sessions.staleMinutes * MINUTE_MS) return "stale";
  if (quiet >= settings.sessions.activeMinutes * MINUTE_MS) return "idle";
  return "active";
}
