import { type Timestamp, timestampMs } from "@bufbuild/protobuf/wkt";
import {
  FigureBasis,
  type GetPoolStatusResponse,
  type SubscriptionStatus,
  SubscriptionState,
  type UsageFigure,
} from "../../gen/authpool/v1/auth_pool_pb.js";
import { stateName } from "../cli/enum-names.js";
import { MIN_RESERVE } from "../domain/reserve.js";
import { el } from "./dom.js";
import { agoText, untilText } from "./pool-figures.js";

/** Action is what an operator can do to one subscription from its row. */
export type Action = { kind: "pause" | "resume" | "drain" | "undrain"; subscriptionId: string };

const PROBLEMS = new Set([
  SubscriptionState.COOLDOWN,
  SubscriptionState.LIMITED,
  SubscriptionState.PAUSED,
  SubscriptionState.SIGNED_OUT,
  SubscriptionState.DRAINING,
  SubscriptionState.APPROACHING,
]);

/**
 * renderSubscriptions fills the table: one row per subscription with its
 * windows (upstream figures with their age, else the pool's estimate),
 * resets counted down from `now`, why it is not available, sessions and
 * health. On a narrow screen the stylesheet turns rows into cards.
 */
export function renderSubscriptions(
  table: HTMLTableElement,
  status: GetPoolStatusResponse,
  now: number,
  options: { problemsOnly: boolean; act: (action: Action) => void },
): void {
  const rows = status.subscriptions.filter((s) => !options.problemsOnly || PROBLEMS.has(s.status));
  const head = el(
    "thead",
    {},
    el(
      "tr",
      {},
      ...["Subscription", "Status", "5-hour window", "Week", "Sessions", "Health", ""].map((h) => el("th", {}, h)),
    ),
  );
  const body = el("tbody", {}, ...rows.map((s) => row(s, now, options.act)));
  if (rows.length === 0) body.append(el("tr", {}, el("td", { colspan: "7" }, "Nothing to show.")));
  table.replaceChildren(head, body);
}

function row(s: SubscriptionStatus, now: number, act: (action: Action) => void): HTMLTableRowElement {
  const paused = s.status === SubscriptionState.PAUSED;
  const draining = s.status === SubscriptionState.DRAINING;
  const button = (label: string, kind: Action["kind"]) => {
    const b = el("button", { type: "button", class: "action", "data-action": kind }, label);
    b.addEventListener("click", () => act({ kind, subscriptionId: s.id }));
    return b;
  };
  return el(
    "tr",
    { "data-subscription": s.id, class: `state-${stateName(s.status)}` },
    cell("Subscription", el("strong", {}, s.id), el("div", { class: "sub" }, s.email)),
    cell(
      "Status",
      el("span", { class: `badge state-${stateName(s.status)}` }, stateName(s.status).replaceAll("_", " ")),
      el("div", { class: "sub" }, why(s, now)),
    ),
    cell(
      "5-hour window",
      meter(s.fiveHour?.percentUsed ?? s.fiveHourWindow?.percentUsed ?? 0, 100),
      el("div", { class: "sub" }, figureText(s.fiveHour, now, s.fiveHourWindow?.end)),
    ),
    cell(
      "Week",
      meter(s.weeklyPercentUsed, s.weeklyThreshold * 100),
      el("div", { class: "sub" }, figureText(s.weekly, now)),
      ...ownerText(s).map((t) => el("div", { class: "sub" }, t)),
    ),
    cell("Sessions", `${s.sessionCount} / ${s.maxSessions}`),
    cell("Health", String(Math.round(s.healthScore))),
    el(
      "td",
      { class: "actions" },
      paused ? button("Resume", "resume") : button("Pause", "pause"),
      draining ? button("Undrain", "undrain") : button("Drain", "drain"),
    ),
  );
}

/** cell: a labelled cell; on a phone the label shows beside its one content box. */
function cell(label: string, ...children: (Node | string)[]): HTMLTableCellElement {
  return el("td", { "data-label": label }, el("div", { class: "cell" }, ...children));
}

/** meter: a bar filled to `percent`, with a mark where new sessions stop. */
function meter(percent: number, stopAt: number): HTMLElement {
  const shown = Math.max(0, Math.min(100, percent));
  const level = percent >= stopAt ? "full" : percent >= 0.8 * stopAt ? "high" : "ok";
  const bar = el(
    "div",
    {
      class: "meter",
      role: "meter",
      "aria-valuenow": percent.toFixed(0),
      "aria-valuemin": "0",
      "aria-valuemax": "100",
    },
    el("div", { class: `fill ${level}`, style: `width:${shown}%` }),
  );
  if (stopAt < 100)
    bar.append(el("div", { class: "stop", style: `left:${stopAt}%`, title: `stops at ${stopAt.toFixed(0)}%` }));
  bar.append(el("span", { class: "value" }, `${percent.toFixed(0)}%`));
  return bar;
}

/** figureText: where a figure comes from and when its window resets. */
function figureText(f: UsageFigure | undefined, now: number, windowEnd?: Timestamp): string {
  const parts: string[] = [];
  const resets = f?.resetsAt ?? windowEnd;
  if (resets !== undefined) parts.push(`resets ${untilText(timestampMs(resets), now)}`);
  if (f !== undefined) {
    if (f.basis === FigureBasis.UPSTREAM || f.basis === FigureBasis.UPSTREAM_STALE) {
      const age = f.observedAt === undefined ? "" : ` ${agoText(timestampMs(f.observedAt), now)}`;
      parts.push(`${f.basis === FigureBasis.UPSTREAM_STALE ? "stale " : ""}upstream${age}`);
    } else parts.push("estimate");
  }
  return parts.join(" · ");
}

/**
 * ownerText: the account's use outside the pool this week, and what is kept
 * back for it (nothing under the reserve's own noise floor).
 */
function ownerText(s: SubscriptionStatus): string[] {
  const o = s.ownerUse;
  if (o === undefined || (o.outsideWeek < MIN_RESERVE && o.keptBack <= 0)) return [];
  const used = `${(100 * o.outsideWeek).toFixed(0)}% used outside the pool`;
  return [o.learned ? `${used} · ${(100 * o.keptBack).toFixed(0)}% kept back` : used];
}

/** why says what keeps a subscription from taking sessions, or what it is close to. */
function why(s: SubscriptionStatus, now: number): string {
  if (s.cooldown !== undefined) {
    const until = s.cooldown.until === undefined ? "" : `, ends ${untilText(timestampMs(s.cooldown.until), now)}`;
    return `${s.cooldown.reason}${until}`;
  }
  if (s.throttle?.until !== undefined) return `throttled, ${untilText(timestampMs(s.throttle.until), now)}`;
  if (s.status === SubscriptionState.LIMITED) {
    return s.sessionCount >= s.maxSessions
      ? "every session slot taken"
      : `week at ${s.weeklyPercentUsed.toFixed(0)}% of ${(s.weeklyThreshold * 100).toFixed(0)}%`;
  }
  return s.warnings.join("; ");
}
