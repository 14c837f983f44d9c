import {
  DEFAULT_CLIENT,
  type EventOf,
  type Exclusion,
  type ExclusionReason,
  type LimitWindow,
  type PoolEvent,
  type RotationReason,
  type SubscriptionStatusName,
  relativeTime,
} from "../domain/index.js";
import { whenText } from "./human-time.js";
import { type SlackText, slackEscape as esc } from "./slack-payload.js";

/**
 * SlackContext is what an alert needs beyond its event: the time it is
 * read at (relative times are from it) and what the pool knows about an
 * account right now.
 */
export interface SlackContext {
  now: number;
  /** The subscription's email from the config, "" when none. */
  email(id: string): string;
  /** The end of the subscription's cooldown in force, if any. */
  cooldownEnd(id: string): number | undefined;
  /** When its weekly window resets, if upstream said. */
  weeklyReset(id: string): number | undefined;
}

/**
 * slackAlert puts an event into words a person can act on: which account,
 * what happened, why, and until when; undefined for events that are no
 * alert (bookkeeping).
 */
export function slackAlert(e: PoolEvent, ctx: SlackContext): SlackText | undefined {
  const account = (id: string) => accountText(id, ctx);
  switch (e.type) {
    case "limit_reached":
      return limitAlert(e, ctx);
    case "usage_threshold": {
      const details = [
        `${percent(e.value)} used (${e.basis === "upstream_seven_day" ? "as Claude reports it" : "of its weekly budget, counted by the pool"}).`,
      ];
      if (e.timeToExhaustionMs !== undefined) {
        details.push(`At the current rate it runs out ${relativeTime(e.at + e.timeToExhaustionMs, ctx.now)}.`);
      }
      details.push(weekResetText(e.subscriptionId, ctx));
      return {
        headline: `:chart_with_upwards_trend: ${account(e.subscriptionId)} passed ${percent(e.threshold)} of its week`,
        details,
      };
    }
    case "status_changed":
      return statusAlert(e, ctx);
    case "fallback_used": {
      const client = esc(e.client ?? DEFAULT_CLIENT);
      // The reason lists the exclusions too: each gets its own line instead.
      const details =
        e.clientLimit !== undefined
          ? [`Why: the client is over a limit of its own: ${esc(e.clientLimit.detail)}.`]
          : e.exclusions.length > 0
            ? [
                "No subscription could take it:",
                ...e.exclusions.map((x) => `• ${account(x.subscriptionId)}: ${exclusionText(x, ctx)}`),
              ]
            : [`Why: ${esc(e.reason)}.`];
      return {
        headline: `:money_with_wings: Session ${esc(e.sessionId)} of client *${client}* failed over to the paid API (${esc(e.provider)})`,
        details,
      };
    }
    case "client_limited":
      return {
        headline: `:no_entry_sign: Client *${esc(e.clientLimit.client)}* is refused new sessions (its ${esc(e.clientLimit.kind)} limit)`,
        details: [
          `Why: ${esc(e.clientLimit.detail)}.`,
          "Its fallback to the paid API is off: its calls get RESOURCE_EXHAUSTED until its use drops or its limit is raised.",
        ],
      };
    case "session_rotated":
      return {
        headline: `:twisted_rightwards_arrows: Session ${esc(e.sessionId)} moved from ${account(e.from)} to ${account(e.to)}`,
        details: [`Why: ${ROTATION_WORDS[e.reason]}${e.detail === "" ? "" : ` (${esc(e.detail)})`}.`],
      };
    case "rebalance_completed":
      return {
        headline: `:arrows_counterclockwise: Rebalancing (${e.trigger === "periodic" ? "periodic" : "asked for"}) moved ${plural(e.moves.length, "session")}`,
        details: e.moves.map((m) => `• ${esc(m.sessionId)}: ${account(m.from)} → ${account(m.to)}`),
      };
    case "session_allocated":
      return {
        headline: `:information_source: Session ${esc(e.sessionId)} of client *${esc(e.client ?? DEFAULT_CLIENT)}* started on ${account(e.subscriptionId)}`,
        details: [],
      };
    case "session_released":
      return {
        headline: `:information_source: Session ${esc(e.sessionId)} on ${account(e.subscriptionId)} ended (${e.reason})`,
        details: [],
      };
    default:
      return undefined;
  }
}

function limitAlert(e: EventOf<"limit_reached">, ctx: SlackContext): SlackText {
  const account = accountText(e.subscriptionId, ctx);
  const message = e.message === "" ? [] : [`> ${esc(e.message)}`];
  switch (e.kind) {
    case "upstream": {
      const scope = e.modelScope !== undefined && !e.window.includes(e.modelScope) ? ` (${e.modelScope} only)` : "";
      const until =
        e.resetsAt === undefined
          ? "New sessions go to other subscriptions; no reset time was given."
          : `New sessions go to other subscriptions until it resets ${whenText(e.resetsAt, ctx.now)}${e.estimated ? " (estimated)" : ""}.`;
      return {
        headline: `:no_entry: ${account} hit its ${WINDOW_WORDS[e.window]} limit${scope}`,
        details: [until, ...message],
      };
    }
    case "weekly_threshold":
      return {
        headline: `:warning: ${account} reached its weekly threshold`,
        details: [
          `${esc(e.message)}. Only high-priority sessions go there until its use drops or the week resets.`,
          weekResetText(e.subscriptionId, ctx),
        ],
      };
    case "sessions":
      return {
        headline: `:traffic_light: ${account} is full`,
        details: [`${esc(e.message)}; new sessions go to other subscriptions until some end.`],
      };
  }
}

function statusAlert(e: EventOf<"status_changed">, ctx: SlackContext): SlackText {
  const account = accountText(e.subscriptionId, ctx);
  if (e.to === "signed_out") {
    return {
      headline: `:lock: ${account} lost its login`,
      details: [
        `Why: ${esc(e.reason)}.`,
        "No sessions go there until it is logged in again (`claude /login` with its config dir as CLAUDE_CONFIG_DIR).",
      ],
    };
  }
  const details = [`Why: ${esc(e.reason)}.`];
  const end = e.to === "cooldown" ? ctx.cooldownEnd(e.subscriptionId) : undefined;
  if (end !== undefined && end > ctx.now) details.push(`Until ${whenText(end, ctx.now)}.`);
  return {
    headline: `${STATUS_EMOJI[e.to]} ${account} is now ${STATUS_WORDS[e.to]} (was ${STATUS_WORDS[e.from]})`,
    details,
  };
}

/** exclusionText says why an account could not take a session; a cooldown says until when, in plain words. */
function exclusionText(x: Exclusion, ctx: SlackContext): string {
  const end = x.reason === "cooldown" ? ctx.cooldownEnd(x.subscriptionId) : undefined;
  if (end !== undefined && end > ctx.now) return `in cooldown until ${whenText(end, ctx.now)}`;
  return x.detail === "" ? EXCLUSION_WORDS[x.reason] : `${EXCLUSION_WORDS[x.reason]} (${esc(x.detail)})`;
}

/** accountText names a subscription as "*sub1* (a@example.com)". */
export function accountText(id: string, ctx: Pick<SlackContext, "email">): string {
  const email = ctx.email(id);
  return email === "" ? `*${esc(id)}*` : `*${esc(id)}* (${esc(email)})`;
}

function weekResetText(id: string, ctx: SlackContext): string {
  const reset = ctx.weeklyReset(id);
  return reset === undefined || reset <= ctx.now
    ? "Claude has not said when its week resets."
    : `Its week resets ${whenText(reset, ctx.now)}.`;
}

/** percent renders a 0-1 fraction as "82%" (whole percent: a chat message is read at a glance). */
export function percent(fraction: number): string {
  return `${Math.round(fraction * 100)}%`;
}

/** plural: "1 session", "3 sessions". */
export function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}

/** WINDOW_WORDS names a limit window in a sentence ("its 5-hour limit"). */
export const WINDOW_WORDS: Readonly<Record<LimitWindow, string>> = {
  five_hour: "5-hour",
  seven_day: "weekly",
  seven_day_opus: "weekly Opus",
  seven_day_sonnet: "weekly Sonnet",
  overage: "overage",
  unknown: "usage",
};

const EXCLUSION_WORDS: Readonly<Record<ExclusionReason, string>> = {
  paused: "paused",
  draining: "draining",
  cooldown: "in cooldown",
  model_limit: "at its limit for this model",
  weekly_threshold: "over its weekly threshold",
  five_hour_exhausted: "5-hour window used up",
  sessions_full: "every session slot taken",
  throttled: "throttled",
  no_credentials: "no login",
  credentials_expired: "login expired",
  login_required: "needs a new login",
};

const ROTATION_WORDS: Readonly<Record<RotationReason, string>> = {
  rebalance: "rebalancing",
  cooldown: "its subscription hit a limit",
  drain: "its subscription is draining",
  not_eligible: "its subscription can no longer take it",
};

/** STATUS_WORDS names a status in a sentence ("is now in cooldown"). */
export const STATUS_WORDS: Readonly<Record<SubscriptionStatusName, string>> = {
  available: "available",
  approaching: "approaching its limits",
  limited: "limited",
  cooldown: "in cooldown",
  paused: "paused",
  draining: "draining",
  signed_out: "signed out",
};

const STATUS_EMOJI: Readonly<Record<SubscriptionStatusName, string>> = {
  available: ":large_green_circle:",
  approaching: ":large_yellow_circle:",
  limited: ":large_orange_circle:",
  cooldown: ":red_circle:",
  paused: ":double_vertical_bar:",
  draining: ":hourglass_flowing_sand:",
  signed_out: ":lock:",
};
