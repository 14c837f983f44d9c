/**
 * `authpool init`: find the Claude Code config dirs on this machine and write
 * a pool config with one subscription per dir. The dirs are only read, and
 * of `.credentials.json` only the subscription type and rate-limit tier are
 * looked at: no token is ever printed or written.
 */
import { lstat, mkdir, readdir, readFile, realpath, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import YAML from "yaml";
import { parseConfig, SUBSCRIPTION_ID_PATTERN } from "../config/index.js";
import { serveCommandFor } from "./config-file.js";

/** InitOptions configure one runInit call. */
export interface InitOptions {
  /** The home dir searched for `.claude`, `.claude-*` and `.config/claude`; `~` in paths expands to it. */
  home: string;
  /** Read for AUTHPOOL_CONFIG, which decides the command that serves the output. */
  env: NodeJS.ProcessEnv;
  /** More config dirs to include; each must exist and be a directory. */
  paths: string[];
  /** The config file to write. */
  output: string;
  /** Overwrite an existing output. */
  force: boolean;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

/** INIT_OUTPUT_EXISTS is the exit code when the output exists and force is off (EX_CANTCREAT). */
export const INIT_OUTPUT_EXISTS = 73;

type SubscriptionType = "claude-pro" | "claude-max";

/** Example weekly budgets in USD of API-equivalent use; the pool learns better figures from upstream readings. */
const WEEKLY_BUDGET_USD: Readonly<Record<SubscriptionType, number>> = { "claude-pro": 456, "claude-max": 2280 };

const CREDENTIALS_FILE = ".credentials.json";
const CLAUDE_JSON = ".claude.json";

/** FoundDir is one config dir and what was read from it. */
interface FoundDir {
  id: string;
  type: SubscriptionType;
  email: string;
  configDir: string;
  rateLimitTier?: string;
  notes: string[];
}

/**
 * runInit writes the config and resolves to the exit code: 0 written, 1 no
 * config dir found, 2 a given path is not a directory (or the output would
 * land in a config dir), INIT_OUTPUT_EXISTS.
 */
export async function runInit(options: InitOptions): Promise<number> {
  const home = path.resolve(options.home);
  const fail = (code: number, message: string) => {
    options.stderr.write(`authpool: ${message}\n`);
    return code;
  };

  const given: string[] = [];
  for (const raw of options.paths) {
    const dir = expandHome(raw, home);
    const info = await stat(dir).catch(() => undefined);
    if (info === undefined) return fail(2, `${raw}: no such directory`);
    if (!info.isDirectory()) return fail(2, `${raw}: not a directory`);
    given.push(dir);
  }
  const output = expandHome(options.output, home);
  if (!options.force && (await exists(output))) {
    return fail(INIT_OUTPUT_EXISTS, `${output} exists; pass --force to overwrite it`);
  }

  const dirs: string[] = [];
  const seen = new Set<string>();
  for (const dir of [...(await homeCandidates(home)), ...given]) {
    const real = await realpath(dir).catch(() => dir);
    if (seen.has(real)) continue;
    seen.add(real);
    if (!(await isConfigDir(dir, home))) {
      if (given.includes(dir)) {
        options.stderr.write(
          `authpool: skipped ${dir}: no ${CREDENTIALS_FILE} or ${CLAUDE_JSON} (log in once with CLAUDE_CONFIG_DIR=${dir} claude)\n`,
        );
      }
      continue;
    }
    // A config dir path becomes CLAUDE_CONFIG_DIR; the config refuses control characters in it.
    if (/[\u0000-\u001f\u007f]/.test(dir)) {
      options.stderr.write("authpool: skipped a config dir whose path has control characters\n");
      continue;
    }
    dirs.push(dir);
  }
  if (dirs.length === 0) {
    return fail(
      1,
      `no Claude config dirs found (looked for ${path.join(home, ".claude")}, ${path.join(home, ".claude-*")}, ` +
        `${path.join(home, ".config", "claude")}${given.length > 0 ? " and the given paths" : ""}); ` +
        "pass the dirs to include, or log in first with CLAUDE_CONFIG_DIR=<dir> claude",
    );
  }
  const inside = dirs.find((dir) => isWithin(output, dir));
  if (inside !== undefined) return fail(2, `${output} is inside the config dir ${inside}; write the config elsewhere`);

  const used = new Set<string>();
  const found: FoundDir[] = [];
  for (const dir of dirs) found.push(await readConfigDir(dir, home, used));

  const text = renderConfig(found);
  // What we wrote must load; if it does not, that is a bug here, not the user's.
  parseConfig(YAML.parse(text) as unknown, output, { homeDir: home });

  await mkdir(path.dirname(output), { recursive: true });
  try {
    // 0600: the file may later hold bearer tokens and webhook secrets.
    await writeFile(output, text, { flag: options.force ? "w" : "wx", mode: 0o600 });
  } catch (error) {
    if (errorCode(error) === "EEXIST")
      return fail(INIT_OUTPUT_EXISTS, `${output} exists; pass --force to overwrite it`);
    throw error;
  }

  for (const dir of found) {
    for (const message of dir.notes) options.stderr.write(`authpool: ${dir.id}: ${message}\n`);
  }
  options.stdout.write(summaryTable(found));
  options.stdout.write(
    `wrote ${output} (${found.length} subscription${found.length === 1 ? "" : "s"}); ` +
      `check the types and budgets, then start the pool with: ${serveCommandFor(output, options.env)}\n`,
  );
  return 0;
}

/** homeCandidates lists `<home>/.claude`, `<home>/.claude-*` (sorted) and `<home>/.config/claude` that are directories. */
async function homeCandidates(home: string): Promise<string[]> {
  const entries = await readdir(home).catch(() => [] as string[]);
  const named = entries.filter((name) => name.startsWith(".claude-")).sort();
  const candidates = [
    path.join(home, ".claude"),
    ...named.map((name) => path.join(home, name)),
    path.join(home, ".config", "claude"),
  ];
  const dirs: string[] = [];
  for (const dir of candidates) {
    // stat, not lstat: a symlink to a config dir counts.
    if ((await stat(dir).catch(() => undefined))?.isDirectory()) dirs.push(dir);
  }
  return dirs;
}

async function isConfigDir(dir: string, home: string): Promise<boolean> {
  const files = [path.join(dir, CREDENTIALS_FILE), path.join(dir, CLAUDE_JSON)];
  if (isDefaultDir(dir, home)) files.push(path.join(home, CLAUDE_JSON));
  for (const file of files) if (await exists(file)) return true;
  return false;
}

/** Without CLAUDE_CONFIG_DIR, Claude Code keeps `.claude.json` in the home dir, next to `.claude`. */
function isDefaultDir(dir: string, home: string): boolean {
  return dir === path.join(home, ".claude");
}

async function readConfigDir(dir: string, home: string, used: Set<string>): Promise<FoundDir> {
  const notes: string[] = [];
  const { type, rateLimitTier } = await readSubscriptionType(dir, notes);
  const email = await readEmail(dir, home, notes);
  const id = uniqueId(baseId(dir, home), used);
  return { id, type, email, configDir: dir, notes, ...(rateLimitTier !== undefined ? { rateLimitTier } : {}) };
}

/**
 * readSubscriptionType reads claudeAiOauth.subscriptionType and rateLimitTier.
 * Nothing else of the file is kept, and parser messages are never shown:
 * they can quote the file, token included.
 */
async function readSubscriptionType(
  dir: string,
  notes: string[],
): Promise<{ type: SubscriptionType; rateLimitTier?: string }> {
  const assumed = (why: string) => {
    notes.push(`${why}; assumed claude-pro (edit type if wrong)`);
    return { type: "claude-pro" as const };
  };
  const file = await readJson(path.join(dir, CREDENTIALS_FILE));
  if (file.kind === "missing") return assumed(`no ${CREDENTIALS_FILE} (macOS keeps the token in the keychain)`);
  if (file.kind === "unreadable") return assumed(`cannot read ${CREDENTIALS_FILE} (${file.reason})`);
  const oauth = field(file.value, "claudeAiOauth");
  const subscriptionType = field(oauth, "subscriptionType");
  const tier = field(oauth, "rateLimitTier");
  // Only short plain words are ever echoed, so nothing secret can slip into the output.
  const rateLimitTier = typeof tier === "string" && /^[A-Za-z0-9_.-]{1,64}$/.test(tier) ? tier : undefined;
  const withTier = (type: SubscriptionType) => ({ type, ...(rateLimitTier !== undefined ? { rateLimitTier } : {}) });
  switch (subscriptionType) {
    case "pro":
      return withTier("claude-pro");
    case "max":
    case "team":
    case "enterprise":
      return withTier("claude-max");
    case undefined:
      return assumed(`no claudeAiOauth.subscriptionType in ${CREDENTIALS_FILE}`);
    default:
      return assumed(
        typeof subscriptionType === "string" && /^[a-z_]{1,32}$/.test(subscriptionType)
          ? `unknown subscriptionType "${subscriptionType}"`
          : "unrecognised subscriptionType",
      );
  }
}

/** readEmail reads oauthAccount.emailAddress from `<dir>/.claude.json` (for `~/.claude` also `~/.claude.json`), else "". */
async function readEmail(dir: string, home: string, notes: string[]): Promise<string> {
  const files = [path.join(dir, CLAUDE_JSON)];
  if (isDefaultDir(dir, home)) files.push(path.join(home, CLAUDE_JSON));
  for (const file of files) {
    const read = await readJson(file);
    const email = read.kind === "ok" ? field(field(read.value, "oauthAccount"), "emailAddress") : undefined;
    if (typeof email === "string" && email.trim() !== "" && !/[\u0000-\u001f\u007f]/.test(email)) return email.trim();
  }
  notes.push(`no oauthAccount.emailAddress in ${CLAUDE_JSON}; email left empty`);
  return "";
}

type JsonRead = { kind: "ok"; value: unknown } | { kind: "missing" } | { kind: "unreadable"; reason: string };

async function readJson(file: string): Promise<JsonRead> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    const code = errorCode(error);
    if (code === "ENOENT" || code === "ENOTDIR") return { kind: "missing" };
    return { kind: "unreadable", reason: code ?? "unknown error" };
  }
  try {
    return { kind: "ok", value: JSON.parse(text) as unknown };
  } catch {
    return { kind: "unreadable", reason: "not JSON" };
  }
}

/**
 * baseId names a subscription after its dir: `~/.claude` is "default",
 * `.claude-work` is "work", and a bare `claude`/`.claude` dir elsewhere is
 * named after its parent (`~/.config/claude` is "config").
 */
function baseId(dir: string, home: string): string {
  if (isDefaultDir(dir, home)) return "default";
  let name = path.basename(dir).replace(/^\.+/, "");
  const suffix = /^claude[-_.](.+)$/i.exec(name);
  if (suffix?.[1] !== undefined) name = suffix[1];
  else if (name.toLowerCase() === "claude") name = path.basename(path.dirname(dir)).replace(/^\.+/, "");
  const id = name
    .replace(/[^A-Za-z0-9._-]+/g, "-")
    .slice(0, 56)
    .replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, "");
  return id === "" ? "default" : id;
}

function uniqueId(base: string, used: Set<string>): string {
  let id = base;
  for (let n = 2; used.has(id); n++) id = `${base}-${n}`;
  if (!SUBSCRIPTION_ID_PATTERN.test(id)) throw new Error(`authpool init made an invalid subscription id "${id}"`);
  used.add(id);
  return id;
}

function renderConfig(found: readonly FoundDir[]): string {
  const doc = new YAML.Document({
    subscriptions: found.map((f) => ({
      id: f.id,
      type: f.type,
      email: f.email,
      configDir: f.configDir,
      weeklyBudgetUsd: WEEKLY_BUDGET_USD[f.type],
    })),
  });
  doc.commentBefore = [
    " Auth Pool config written by `authpool init`: one subscription per Claude Code",
    " config dir found. Every other key (fallback, sessions, cooldown, upstream,",
    " notifications, server, store, ...) is optional and documented, with its",
    " default, in config/example.yaml of the auth-pool package.",
    "",
    " weeklyBudgetUsd is what a week of the subscription is worth in USD of",
    " API-equivalent use. The values below are example guesses (Pro 456, Max 2280):",
    " tune them; the pool prefers Claude's own utilization readings once it has them.",
    " It reads them from each account's usage endpoint (what /usage shows in Claude",
    " Code; no message quota) every 90 s with the login in its config dir:",
    " `upstream: { enabled: false }` turns that off.",
    "",
    " The pool may spend each account's whole week. On an account its owner also",
    " uses personally (claude.ai, their own Claude Code), add",
    " `weeklyBudgetThreshold: auto` to keep back what they are measured to use.",
  ].join("\n");
  const items = doc.get("subscriptions");
  if (YAML.isSeq(items)) {
    items.items.forEach((item, i) => {
      if (!YAML.isMap(item)) return;
      const tier = found[i]?.rateLimitTier;
      if (tier !== undefined) item.commentBefore = ` rateLimitTier: ${tier}`;
      const budget = item.get("weeklyBudgetUsd", true);
      if (YAML.isScalar(budget)) budget.comment = " API-equivalent guess: tune it";
    });
  }
  return doc.toString();
}

function summaryTable(found: readonly FoundDir[]): string {
  const rows = [["id", "type", "email", "configDir"], ...found.map((f) => [f.id, f.type, f.email || "-", f.configDir])];
  const widths = [0, 1, 2].map((col) => Math.max(...rows.map((row) => row[col]?.length ?? 0)));
  return rows
    .map((row) => row.map((cell, col) => (col < 3 ? cell.padEnd(widths[col] ?? 0) : cell)).join("  "))
    .join("\n")
    .concat("\n");
}

function expandHome(raw: string, home: string): string {
  if (raw === "~") return home;
  if (raw.startsWith("~/")) return path.resolve(home, raw.slice(2));
  return path.resolve(raw);
}

function isWithin(file: string, dir: string): boolean {
  const relative = path.relative(dir, file);
  return relative !== "" && !relative.startsWith("..") && !path.isAbsolute(relative);
}

async function exists(file: string): Promise<boolean> {
  return (await lstat(file).catch(() => undefined)) !== undefined;
}

function field(value: unknown, key: string): unknown {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)[key]
    : undefined;
}

function errorCode(error: unknown): string | undefined {
  const code = field(error, "code");
  return typeof code === "string" ? code : undefined;
}
