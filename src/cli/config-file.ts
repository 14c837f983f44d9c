import { existsSync } from "node:fs";
import path from "node:path";
import { defaultConfigPath } from "../config/index.js";

/** OWN_CONFIG_FILE is the file `authpool init` writes and `authpool serve` looks for in the current directory. */
export const OWN_CONFIG_FILE = "authpool.yaml";

/** ConfigFileChoice is the config file serve loads, and what chose it. */
export interface ConfigFileChoice {
  file: string;
  /** "flag": --config; "env": AUTHPOOL_CONFIG; "own": ./authpool.yaml; "example": the demo pool's config. */
  kind: "flag" | "env" | "own" | "example";
}

/** ConfigFileOptions are where serve looks; tests pass their own. */
export interface ConfigFileOptions {
  flag: string | undefined;
  env: NodeJS.ProcessEnv;
  /** Default: the process's working directory. */
  cwd?: string;
  /** Default: existsSync. */
  exists?: (file: string) => boolean;
}

/**
 * chooseConfigFile picks serve's config: --config, else AUTHPOOL_CONFIG,
 * else ./authpool.yaml when it exists (what `authpool init` wrote), else
 * config/example.yaml, which `npm start` serves from a checkout.
 */
export function chooseConfigFile(options: ConfigFileOptions): ConfigFileChoice {
  if (options.flag !== undefined) return { file: options.flag, kind: "flag" };
  const fromEnv = options.env.AUTHPOOL_CONFIG;
  // An empty variable counts as unset, as applyEnv treats the others.
  if (fromEnv !== undefined && fromEnv !== "") return { file: fromEnv, kind: "env" };
  const own = path.join(options.cwd ?? process.cwd(), OWN_CONFIG_FILE);
  if ((options.exists ?? existsSync)(own)) return { file: own, kind: "own" };
  return { file: defaultConfigPath, kind: "example" };
}

/** describeChoice is the line serve prints once the file has loaded, so nobody has to guess which pool runs. */
export function describeChoice(choice: ConfigFileChoice): string {
  const file = path.resolve(choice.file);
  switch (choice.kind) {
    case "flag":
      return `config ${file} (--config)`;
    case "env":
      return `config ${file} (AUTHPOOL_CONFIG)`;
    case "own":
      return `config ${file} (./${OWN_CONFIG_FILE}; --config FILE or AUTHPOOL_CONFIG picks another)`;
    case "example":
      return `config ${file}: the demo pool (no ./${OWN_CONFIG_FILE} here; \`authpool init\` writes one for your accounts)`;
  }
}

/** missingExampleHint says what to do when serve found no config at all. */
export function missingExampleHint(): string {
  return `no config file: no ./${OWN_CONFIG_FILE} here and no ${defaultConfigPath}; run \`authpool init\` to write ./${OWN_CONFIG_FILE}, or pass --config FILE (or set AUTHPOOL_CONFIG)`;
}

/**
 * serveCommandFor is the exact command that serves `output` from the
 * current directory: plain `authpool serve` only when serve would choose
 * that file by itself.
 */
export function serveCommandFor(output: string, env: NodeJS.ProcessEnv, cwd = process.cwd()): string {
  const chosen = chooseConfigFile({ flag: undefined, env, cwd, exists: (file) => file === path.resolve(output) });
  if (chosen.kind === "own") return "authpool serve";
  const relative = path.relative(cwd, path.resolve(output));
  const shown = relative !== "" && !relative.startsWith("..") && !path.isAbsolute(relative) ? relative : output;
  return `authpool serve --config ${shellQuote(shown)}`;
}

/** shellQuote leaves plain paths alone and single-quotes the rest, so the command can be pasted. */
function shellQuote(text: string): string {
  return /^[A-Za-z0-9_./@%+=:,-]+$/.test(text) ? text : `'${text.replaceAll("'", `'\\''`)}'`;
}
