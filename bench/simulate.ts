import { BATCH, BOT, clientLimits } from "./sim/client-workload.js";
import { type ClientRow, byGroup, formatClientTable } from "./sim/client-report.js";
import { formatHerding, runHerding } from "./sim/herding.js";
import { runSimulation } from "./sim/run-simulation.js";
import { type SizeResult, formatSizeTable, totalsOf, verdictOf } from "./sim/sim-report.js";
import {
  OURS,
  JUDGED_ROWS,
  POOL_ROWS,
  STRATEGIES,
  type StrategyName,
  createScenario,
  createStrategy,
  mergeRaw,
  poolStrategyFor,
  simPoolConfig,
} from "./sim/scenario.js";

/**
 * npm run simulate: a seeded working week replayed against simulated Claude
 * accounts, once per strategy, for several seeds and pool sizes. Ours goes
 * through the real domain (Pool.run); the others are what a gateway could
 * use instead. Then the same week with clients (a bot, people, a batch job)
 * with the wait queue off and on, and an account reaching its limit with
 * 15 sessions on it. Same seeds, same numbers, on any machine.
 *
 *   npm run simulate -- [--seeds 5] [--sizes 3,8,20] [--clients-size 8]
 *                       [--clients-load 1.1,1.8] [--sections tables,clients,herding]
 *                       [--config JSON] [--markdown]
 *
 * --config gives raw config keys in place of the defaults, under each pool
 * row's profile (a key the profile sets stays the profile's), and to the
 * clients' and herding's pools: '{"pacing":false}' or
 * '{"upstream":{"staleAfterSeconds":900}}' shows what a default is worth.
 */
const args = process.argv.slice(2);
const option = (name: string): string | undefined => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const seedCount = Number(option("seeds") ?? 5);
const sizes = (option("sizes") ?? "3,8,20").split(",").map(Number);
const clientsSize = Number(option("clients-size") ?? 8);
const clientsLoads = (option("clients-load") ?? "1.1,1.8").split(",").map(Number);
const sections = new Set((option("sections") ?? "tables,clients,herding").split(","));
const markdown = args.includes("--markdown");
const overlay = JSON.parse(option("config") ?? "{}") as Record<string, unknown>;

if (sections.has("tables")) await tables();
if (sections.has("clients")) await clients();
if (sections.has("herding")) await herding();

/** tables: every strategy at every size, and the verdicts on the pool's rows. */
async function tables(): Promise<void> {
  const results: SizeResult[] = [];
  for (const accounts of sizes) {
    const result: SizeResult = {
      accounts,
      people: 0,
      seeds: seedCount,
      demandUsd: 0,
      ownersUsd: 0,
      runs: 0,
      byStrategy: new Map(),
    };
    for (let seed = 1; seed <= seedCount; seed++) {
      const scenario = createScenario({ seed, accounts });
      result.people = scenario.workload.people;
      result.demandUsd += scenario.workload.demandUsd;
      result.ownersUsd += scenario.external.reduce((sum, u) => sum + u.usageUsd, 0);
      result.runs += scenario.workload.sessions.reduce((n, s) => n + s.turns.length, 0);
      for (const name of STRATEGIES) {
        const metrics = await runSimulation(
          scenario.workload,
          scenario.accounts(),
          scenario.external,
          createStrategy(name, scenario, overlay),
        );
        const list = result.byStrategy.get(name) ?? [];
        list.push(metrics);
        result.byStrategy.set(name, list);
      }
    }
    results.push(result);
    console.log(
      `\n${accounts} accounts, ${result.people} people, ${seedCount} seeds: ${result.runs} runs, $${result.demandUsd.toFixed(0)} of work at API prices`,
    );
    console.log(formatSizeTable(result, markdown));
  }

  console.log("\nverdict (each pool row against every strategy that is not the pool, totals over the seeds):");
  const passes = new Map<StrategyName, boolean>(JUDGED_ROWS.map((name) => [name, true]));
  for (const r of results) {
    const rr = totalsOf(r.byStrategy.get("round-robin")!);
    const tuned = totalsOf(r.byStrategy.get(OURS)!);
    for (const name of POOL_ROWS) {
      const v = verdictOf(r, name, POOL_ROWS);
      const mine = totalsOf(r.byStrategy.get(name)!);
      const ofTuned = mine.fallbackUsd / tuned.fallbackUsd;
      const nearTuned = name === OURS || ofTuned <= 1.1;
      const judged = passes.get(name);
      if (judged !== undefined) passes.set(name, judged && v.fewer429s && v.lessFallback && nearTuned);
      const pass = (ok: boolean, yes: string, no: string) =>
        judged === undefined ? (ok ? yes : no) : ok ? `PASS ${yes}` : `MISS ${no}`;
      console.log(
        `${String(r.accounts).padStart(3)} accounts, ${name.padEnd(26)}: ` +
          (judged === undefined ? "(not judged) " : "") +
          `429s ${pass(v.fewer429s, "strictly fewer", `(tied or beaten by ${v.refusedBy.join(", ")})`)}; ` +
          `paid fallback ${pass(v.lessFallback, "strictly less", `(tied or beaten by ${v.fallbackBy.join(", ")})`)}; ` +
          `vs round-robin: ${change(mine.refused, rr.refused, "fewer")} 429s, ${change(mine.fallbackUsd, rr.fallbackUsd, "less")} paid fallback` +
          (name === OURS
            ? ""
            : `; paid fallback ${ofTuned.toFixed(2)}x "${OURS}"'s` +
              (judged === undefined ? "" : `: ${nearTuned ? "PASS within 10%" : "MISS"}`)) +
          `; owners' use refused ${percentOf(mine.ownersRefusedUsd, r.ownersUsd)}`,
      );
    }
  }
  for (const [name, pass] of passes) {
    const goal = name === OURS ? "" : `, and paid fallback within 10% of "${OURS}"'s`;
    console.log(
      `${name}: strictly better than every other strategy on 429s and paid fallback${goal}: ${pass ? "at every size" : "NOT at every size"}`,
    );
  }
}

/** percentOf: part as a percentage of whole, one decimal. */
function percentOf(part: number, whole: number): string {
  return whole === 0 ? "-" : `${((100 * part) / whole).toFixed(1)}%`;
}

/** change says how mine compares with theirs: "91% fewer" (or "less"), or "2.08x the". */
function change(mine: number, theirs: number, fewer: "fewer" | "less"): string {
  if (mine <= theirs) return theirs === 0 ? "the same" : `${(100 * (1 - mine / theirs)).toFixed(0)}% ${fewer}`;
  return theirs === 0 ? "more" : `${(mine / theirs).toFixed(2)}x the`;
}

/**
 * clients: the week with clients at one size, for each demand load (the
 * team's demand over the pool's weekly capacity), out of the box with the
 * clients' limits, the wait queue off (a run nothing can take goes to the
 * paid API at once) and on (it waits up to queue.maxWaitSeconds).
 */
async function clients(): Promise<void> {
  for (const load of clientsLoads) await clientsAt(load);
}

async function clientsAt(load: number): Promise<void> {
  const rows: ClientRow[] = [];
  const group = (client: string) => (client.startsWith("person-") ? "people" : client);
  let people = 0;
  let runs = 0;
  const demand = new Map<string, number>();
  for (const [mode, wait] of [
    ["off", false],
    ["on", true],
  ] as const) {
    const list = [];
    for (let seed = 1; seed <= seedCount; seed++) {
      const scenario = createScenario({ seed, accounts: clientsSize, clients: true, load });
      const config = simPoolConfig(
        clientsSize,
        scenario.nominalWeeklyUsd,
        "defaults",
        mergeRaw(overlay, { clients: clientLimits(scenario.workload) }),
      );
      list.push(
        await runSimulation(
          scenario.workload,
          scenario.accounts(),
          scenario.external,
          poolStrategyFor(`clients, ${mode}`, config, { wait }),
        ),
      );
      if (wait) continue;
      people = scenario.workload.people;
      for (const s of scenario.workload.sessions) {
        runs += s.turns.length;
        const g = group(s.client ?? "default");
        demand.set(g, (demand.get(g) ?? 0) + s.turns.reduce((sum, t) => sum + t.costUsd, 0));
      }
    }
    const groups = byGroup(list, group);
    for (const client of [BOT, BATCH, "people"]) {
      rows.push({
        mode,
        client: client === "people" ? `people (${people})` : client,
        metrics: groups.get(client)!,
        demandUsd: demand.get(client) ?? 0,
      });
    }
  }
  console.log(
    `\nclients: ${clientsSize} accounts, ${people} people, ${BOT} and ${BATCH}, demand ${load}x the capacity, ${seedCount} seeds: ${runs} runs; "auth pool, defaults" with the clients' limits`,
  );
  console.log(formatClientTable(rows, markdown));
}

/**
 * herding: an account reaching its limit with 15 sessions on it, out of the
 * box (which polls, as the tuned pool does) and without polling, where the
 * limit is met by a 429 and the account comes back from a cooldown.
 */
async function herding(): Promise<void> {
  console.log("\nherding: where the sessions of an account that reached its limit go");
  for (const [label, config] of [
    ["defaults", overlay],
    ["defaults, not polled", mergeRaw(overlay, { upstream: { enabled: false } })],
  ] as const) {
    console.log(`\n${formatHerding(await runHerding({ profile: "defaults", label, config }), markdown)}`);
  }
}
