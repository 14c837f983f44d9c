import { formatFigures, runCrashTorture } from "./torture/crash-torture.js";
import { formatFailoverFigures, runFailoverTorture } from "./torture/failover-torture.js";

/**
 * npm run torture: the long crash run. The pool is killed with SIGKILL
 * (default 200 times) under concurrent load and restarted; its books must
 * match the clients' ledger after every restart. With --instances N (N > 1)
 * it is the failover run instead: N serve processes on one store, and each
 * kill takes the current leader down (it comes back as a standby) while the
 * others take over. Flags: --kills N, --seed S, --instances N (default 1),
 * --store sqlite|postgres (default sqlite; postgres: a fresh schema on
 * AUTHPOOL_BENCH_POSTGRES, else AUTHPOOL_TEST_POSTGRES, else the test server
 * on loopback), --clients N, --lanes N, --cli PATH (default
 * dist/src/cli/main.js), --quiet. Exits 1 on any violation, printing the
 * command that reproduces the run.
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
const instances = intFlag("instances") ?? 1;
const store = flag("store") ?? "sqlite";
if (store !== "sqlite" && store !== "postgres") {
  console.error(`--store: expected sqlite or postgres, got ${JSON.stringify(store)}`);
  process.exit(2);
}
if (instances < 1) {
  console.error("--instances: expected at least 1");
  process.exit(2);
}
const quiet = process.argv.includes("--quiet");
const common = {
  seed,
  kills,
  store,
  ...(intFlag("clients") !== undefined ? { clients: intFlag("clients")! } : {}),
  ...(intFlag("lanes") !== undefined ? { lanes: intFlag("lanes")! } : {}),
  ...(flag("cli") !== undefined ? { cli: flag("cli")! } : {}),
  log: (line: string) => {
    if (!quiet || line.startsWith("VIOLATION")) console.log(line);
  },
} as const;

let violations: string[];
let figures: string[];
if (instances === 1) {
  console.log(`crash torture: ${kills} kills, seed ${seed}, ${store}`);
  const result = await runCrashTorture(common);
  ({ violations } = result);
  figures = formatFigures(result);
} else {
  console.log(`failover torture: ${instances} instances on ${store}, ${kills} leader kills, seed ${seed}`);
  const result = await runFailoverTorture({ ...common, instances });
  ({ violations } = result);
  figures = formatFailoverFigures(result);
}
console.log("");
for (const line of figures) console.log(line);
if (violations.length > 0) {
  console.log("");
  for (const v of violations.slice(0, 50)) console.log(`  ${v}`);
  console.log(
    `\nFAILED: reproduce with npm run torture -- --instances ${instances} --store ${store} --kills ${kills} --seed ${seed}`,
  );
  process.exit(1);
}
console.log(
  instances === 1
    ? "\nOK: every acknowledged call was counted exactly once across every kill"
    : "\nOK: every acknowledged call was counted exactly once on every instance across every leader kill, and every takeover was within its bound",
);
process.exit(0);
