import type { LimitWindow, SubscriptionStatusName } from "../domain/index.js";
import { dayText, utcTime, whenText } from "./human-time.js";
import { STATUS_WORDS, WINDOW_WORDS, accountText, percent, plural } from "./slack-alert.js";
import { type SlackText, slackEscape as esc } from "./slack-payload.js";

/** DigestAccount is one subscription's day, as the digest reports it. */
export interface DigestAccount {
  id: string;
  email: string;
  status: SubscriptionStatusName;
  /** Weekly share used, 0-1 (may exceed 1). */
  weeklyUsed: number;
  /** When the week resets, if upstream said. */
  weeklyReset?: number;
  weeklyUsd: number;
  /** Recorded cost in the last 24 hours. */
  dayUsd: number;
  /** The window of each limit it hit in the last 24 hours. */
  limits: LimitWindow[];
}

/** DigestInput is the pool's last 24 hours. */
export interface DigestInput {
  now: number;
  accounts: DigestAccount[];
  /** Sessions sent to the paid API in the last 24 hours, by client. */
  fallbacks: ReadonlyMap<string, number>;
}

/**
 * digestText summarises a day in one message: per subscription its weekly
 * use and when the week resets, the limits it hit, what it cost, and what
 * state it is in; then what failed over to the paid API.
 */
export function digestText(input: DigestInput): SlackText {
  const { now } = input;
  const details = input.accounts.map((a) => {
    const reset = a.weeklyReset !== undefined && a.weeklyReset > now ? `, resets ${whenText(a.weeklyReset, now)}` : "";
    const limits =
      a.limits.length === 0 ? "no limit hit" : `${plural(a.limits.length, "limit")} hit (${limitWindows(a.limits)})`;
    return (
      `• ${accountText(a.id, { email: () => a.email })}: weekly ${percent(a.weeklyUsed)} used${reset}; ${limits}; ` +
      `${usd(a.dayUsd)} in 24 h, ${usd(a.weeklyUsd)} this week; ${STATUS_WORDS[a.status]}`
    );
  });
  const total = [...input.fallbacks.values()].reduce((a, b) => a + b, 0);
  if (total === 0) details.push("No session failed over to the paid API.");
  else {
    const byClient = [...input.fallbacks]
      .sort(([a, x], [b, y]) => y - x || a.localeCompare(b))
      .map(([client, n]) => `${esc(client)} ${n}`)
      .join(", ");
    details.push(
      `:money_with_wings: ${plural(total, "session")} failed over to the paid API (by client: ${byClient}).`,
    );
  }
  return {
    headline: `:bar_chart: *Auth Pool daily digest*, the 24 h to ${dayText(now)} ${utcTime(now, now)}`,
    details,
  };
}

/** limitWindows: "5-hour ×2, weekly". */
function limitWindows(windows: LimitWindow[]): string {
  const counts = new Map<LimitWindow, number>();
  for (const w of windows) counts.set(w, (counts.get(w) ?? 0) + 1);
  return [...counts].map(([w, n]) => (n === 1 ? WINDOW_WORDS[w] : `${WINDOW_WORDS[w]} ×${n}`)).join(", ");
}

function usd(amount: number): string {
  return `$${amount.toFixed(2)}`;
}
