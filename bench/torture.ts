import { formatFigures, runCrashTorture } from "./torture/crash-torture.js";

/**
 * npm run torture: the long crash run. The pool is killed with SIGKILL
 * (default 200 times) under concurrent load and restarted; its books must
 * match the clients' ledger after every restart. Flags: --kills N, --seed S,
 * --clients N, --lanes N, --cli PATH (default dist/src/cli/main.js), --quiet. Exits 1 on any violation, printing the
 * seed that reproduces the run.
 */
function flag(name: string): string | undefined {
  const args = process.argv.slice(2);
  const i = args.indexOf(`--${name}`);
  if (i >= 0) return args[i + 1];
  return args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
}

function intFlag(name: string): number | undefined {
  const text = flag(name);
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) {
    console.error(`--${name}: expected a non-negative integer, got ${JSON.stringify(text)}`);
    process.exit(2);
  }
  return n;
}

const seed = intFlag("seed") ?? Math.floor(Math.random() * 2 ** 31);
const kills = intFlag("kills") ?? 200;
const quiet = process.argv.includes("--quiet");
console.log(`crash torture: ${kills} kills, seed ${seed}`);
const result = await runCrashTorture({
  seed,
  kills,
  ...(intFlag("clients") !== undefined ? { clients: intFlag("clients")! } : {}),
  ...(intFlag("lanes") !== undefined ? { lanes: intFlag("lanes")! } : {}),
  ...(flag("cli") !== undefined ? { cli: flag("cli")! } : {}),
  log: (line) => {
    if (!quiet || line.startsWith("VIOLATION")) console.log(line);
  },
});
console.log("");
for (const line of formatFigures(result)) console.log(line);
if (result.violations.length > 0) {
  console.log("");
  for (const v of result.violations.slice(0, 50)) console.log(`  ${v}`);
  console.log(`\nFAILED: reproduce with npm run torture -- --kills ${kills} --seed ${result.seed}`);
  process.exit(1);
}
console.log("\nOK: every acknowledged call was counted exactly once across every kill");
process.exit(0);
