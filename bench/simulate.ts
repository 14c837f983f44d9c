import { runSimulation } from "./sim/run-simulation.js";
import { type SizeResult, formatSizeTable, totalsOf, verdictOf } from "./sim/sim-report.js";
import { OURS, OURS_DEFAULTS, STRATEGIES, createScenario, createStrategy } from "./sim/scenario.js";

/**
 * npm run simulate: a seeded working week replayed against simulated Claude
 * accounts, once per strategy, for several seeds and pool sizes. Ours goes
 * through the real domain (Pool.run); the others are what a gateway could
 * use instead. Same seeds, same numbers, on any machine.
 *
 *   npm run simulate -- [--seeds 5] [--sizes 3,8,20] [--markdown]
 */
const args = process.argv.slice(2);
const option = (name: string): string | undefined => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const seedCount = Number(option("seeds") ?? 5);
const sizes = (option("sizes") ?? "3,8,20").split(",").map(Number);
const markdown = args.includes("--markdown");

const results: SizeResult[] = [];
for (const accounts of sizes) {
  const result: SizeResult = { accounts, people: 0, seeds: seedCount, demandUsd: 0, runs: 0, byStrategy: new Map() };
  for (let seed = 1; seed <= seedCount; seed++) {
    const scenario = createScenario({ seed, accounts });
    result.people = scenario.workload.people;
    result.demandUsd += scenario.workload.demandUsd;
    result.runs += scenario.workload.sessions.reduce((n, s) => n + s.turns.length, 0);
    for (const name of STRATEGIES) {
      const metrics = runSimulation(scenario.workload, scenario.accounts(), scenario.external, createStrategy(name, scenario));
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

console.log(`\nverdict ("${OURS}" against every other strategy but "${OURS_DEFAULTS}", totals over the seeds):`);
let all = true;
for (const r of results) {
  const v = verdictOf(r, OURS, [OURS_DEFAULTS]);
  all &&= v.fewer429s && v.lessFallback;
  const mine = totalsOf(r.byStrategy.get(OURS)!);
  const rr = totalsOf(r.byStrategy.get("round-robin")!);
  const fewer = rr.refused === 0 ? 0 : 100 * (1 - mine.refused / rr.refused);
  const cheaper = rr.fallbackUsd === 0 ? 0 : 100 * (1 - mine.fallbackUsd / rr.fallbackUsd);
  console.log(
    `${String(r.accounts).padStart(3)} accounts: 429s ${v.fewer429s ? "PASS strictly fewer" : `MISS (tied or beaten by ${v.refusedBy.join(", ")})`}; ` +
      `paid fallback ${v.lessFallback ? "PASS strictly less" : `MISS (tied or beaten by ${v.fallbackBy.join(", ")})`}; ` +
      `vs round-robin: ${fewer.toFixed(0)}% fewer 429s, ${cheaper.toFixed(0)}% less paid fallback`,
  );
}
console.log(all ? "ours is strictly better on 429s and paid fallback at every size" : "ours is NOT strictly better everywhere (see above)");
