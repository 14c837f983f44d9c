import "uplot/dist/uPlot.min.css";
import "./style.css";
import { timestampFromMs, timestampMs } from "@bufbuild/protobuf/wkt";
import {
  type GetPoolStatusResponse,
  type HistoryGroupBy,
  HistoryResolution,
} from "../../gen/authpool/v1/auth_pool_pb.js";
import { byId, el } from "./dom.js";
import { prependEvent } from "./events-view.js";
import { type PoolClient, connectPool, needsToken, refusalText, saveToken, savedToken } from "./pool-connection.js";
import { poolFigures, untilText, usdText } from "./pool-figures.js";
import { type Action, renderSubscriptions } from "./subscriptions-view.js";
import { UsageChart } from "./usage-chart.js";

/**
 * The dashboard: status on load and after every event (the stream says
 * when something changed), countdowns every second from the last status,
 * the usage chart from GetUsageHistory. Changes (pause, resume, drain,
 * rebalance) ask for confirmation; the pool decides whether the token may.
 */

const HOUR = 3_600_000;
let client: PoolClient = connectPool(savedToken());
let status: GetPoolStatusResponse | undefined;
/** Pool time minus this browser's: countdowns follow the pool's clock. */
let skew = 0;
let streamAbort: AbortController | undefined;
const chart = new UsageChart(byId("chart"));

const now = () => Date.now() + skew;

async function refresh(): Promise<void> {
  try {
    status = await client.getPoolStatus({});
    skew = status.now === undefined ? 0 : timestampMs(status.now) - Date.now();
    byId("login").hidden = true;
    byId("main").hidden = false;
    setConnection("live");
    render();
  } catch (error) {
    if (needsToken(error)) return askForToken();
    setConnection(refusalText(error));
  }
}

function render(): void {
  if (status === undefined) return;
  const t = now();
  const f = poolFigures(status, t);
  byId("totals").replaceChildren(
    el("span", {}, `${f.available} of ${f.total} subscriptions available`),
    el("span", {}, `${f.sessions} / ${f.maxSessions} sessions`),
    el("span", {}, `${usdText(f.capacityLeftUsd)} of weekly capacity left`),
    el(
      "span",
      { class: "forecast" },
      f.exhaustedAt === undefined
        ? "nothing burning"
        : `${usdText(f.burnUsdPerHour)}/h: runs out ${untilText(f.exhaustedAt, t)}`,
    ),
  );
  renderSubscriptions(byId<HTMLTableElement>("subscriptions"), status, t, {
    problemsOnly: byId<HTMLInputElement>("problems").checked,
    act,
  });
}

async function act(action: Action): Promise<void> {
  const verb = { pause: "Pause", resume: "Resume", drain: "Drain", undrain: "Undrain" }[action.kind];
  const done = { pause: "Paused", resume: "Resumed", drain: "Drained", undrain: "Undrained" }[action.kind];
  if (!confirm(`${verb} ${action.subscriptionId}?`)) return;
  await run(async () => {
    if (action.kind === "pause" || action.kind === "resume")
      await client.setPaused({ subscriptionId: action.subscriptionId, paused: action.kind === "pause" });
    else await client.setDrained({ subscriptionId: action.subscriptionId, drained: action.kind === "drain" });
    return `${done} ${action.subscriptionId}.`;
  });
}

/** run makes a change and says what it did, or why the pool refused it. */
async function run(call: () => Promise<string>): Promise<void> {
  const notice = byId("notice");
  try {
    notice.textContent = await call();
    notice.className = "notice ok";
    await refresh();
  } catch (error) {
    notice.textContent = refusalText(error);
    notice.className = "notice refused";
  }
}

let refreshTimer: ReturnType<typeof setTimeout> | undefined;

/** refreshSoon reads the status once after a burst of events, not once per event. */
function refreshSoon(): void {
  if (refreshTimer !== undefined) return;
  refreshTimer = setTimeout(() => {
    refreshTimer = undefined;
    void refresh();
  }, 300);
}

/** follow streams live events, refreshing the status after each (at most every 300 ms); it reconnects after a loss. */
async function follow(): Promise<void> {
  streamAbort?.abort();
  const abort = new AbortController();
  streamAbort = abort;
  for (let attempt = 0; !abort.signal.aborted; attempt++) {
    try {
      for await (const res of client.streamEvents({ tail: true }, { signal: abort.signal })) {
        attempt = 0;
        setConnection("live");
        if (res.event !== undefined) prependEvent(byId<HTMLOListElement>("events"), res.event);
        refreshSoon();
      }
    } catch (error) {
      if (abort.signal.aborted) return;
      if (needsToken(error)) return askForToken();
      setConnection(`events: ${refusalText(error)}`);
    }
    await new Promise((r) => setTimeout(r, Math.min(30_000, 1000 * 2 ** attempt)));
  }
}

async function loadChart(): Promise<void> {
  const days = Number(byId<HTMLSelectElement>("range").value);
  const until = now();
  try {
    const history = await client.getUsageHistory({
      from: timestampFromMs(until - days * 24 * HOUR),
      groupBy: Number(byId<HTMLSelectElement>("group").value) as HistoryGroupBy,
      resolution: days > 2 ? HistoryResolution.DAY : HistoryResolution.HOUR,
    });
    const { fallbacks, limits } = chart.show(history);
    byId("chart-note").textContent =
      `Cost at API prices per ${days > 2 ? "day" : "hour"}. ` +
      `${limits} usage limit${limits === 1 ? "" : "s"} hit, ${fallbacks} run${fallbacks === 1 ? "" : "s"} sent to the paid API.`;
  } catch (error) {
    byId("chart-note").textContent = refusalText(error);
  }
}

function setConnection(text: string): void {
  const node = byId("connection");
  node.textContent = text;
  node.className = `connection ${text === "live" ? "live" : "down"}`;
}

function askForToken(): void {
  streamAbort?.abort();
  // A token the pool did not take is forgotten, and the operator is told.
  byId("token-refused").textContent = savedToken() === undefined ? "" : "That token was not accepted.";
  saveToken(undefined);
  byId("main").hidden = true;
  byId("login").hidden = false;
  byId<HTMLInputElement>("token").focus();
}

function start(): void {
  void refresh().then(() => {
    if (status === undefined) return;
    void follow();
    void loadChart();
  });
}

byId<HTMLFormElement>("login").addEventListener("submit", (e) => {
  e.preventDefault();
  const token = byId<HTMLInputElement>("token").value.trim();
  saveToken(token === "" ? undefined : token);
  client = connectPool(token === "" ? undefined : token);
  start();
});
byId("problems").addEventListener("change", render);
byId("group").addEventListener("change", () => void loadChart());
byId("range").addEventListener("change", () => void loadChart());
byId("rebalance").addEventListener("click", () => {
  if (confirm("Rebalance idle sessions now?"))
    void run(async () => {
      const r = await client.rebalance({ dryRun: false });
      return `Rebalanced: ${r.moves.length} session${r.moves.length === 1 ? "" : "s"} moved.`;
    });
});
setInterval(render, 1000);
setInterval(() => void loadChart(), 5 * 60_000);
start();
