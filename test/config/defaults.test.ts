/**
 * configDefaults is the one list of defaults; config/example.yaml and the
 * README's configuration table repeat them for readers. These tests keep
 * the copies equal to it (load.test.ts, "applies every default", checks the
 * resolver applies it).
 */
import { readFileSync } from "node:fs";
import { isDeepStrictEqual } from "node:util";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import YAML from "yaml";
import { FIVE_HOUR_CAP_UNPOLLED } from "../../src/config/defaults.js";
import { configDefaults, parseConfig } from "../../src/config/index.js";

const repoRoot = fileURLToPath(new URL("../../", import.meta.url));

type Found = { value: unknown } | undefined;

/** leaves lists the values below an object that are not objects themselves (lists included), by dotted path. */
function leaves(value: unknown, prefix = ""): [string, unknown][] {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return [[prefix, value]];
  return Object.entries(value).flatMap(([key, child]) => leaves(child, prefix === "" ? key : `${prefix}.${key}`));
}

/** at finds a dotted path's value, telling a value that is absent from one that is undefined. */
function at(root: unknown, dotted: string): Found {
  let current = root;
  for (const key of dotted.split(".")) {
    if (typeof current !== "object" || current === null || !Object.hasOwn(current, key)) return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return { value: current };
}

/** Config keys whose defaults configDefaults keeps under another name. */
const RENAMED: [configPrefix: string, defaultsPrefix: string][] = [
  ["notifications.webhook.", "webhook."],
  ["notifications.slack.", "slack."],
  ["clients.<name>.", "client."],
];

/** defaultOf finds a config key's entry in configDefaults, if it has one. */
function defaultOf(configPath: string): Found {
  const renamed = RENAMED.find(([from]) => configPath.startsWith(from));
  return at(configDefaults, renamed ? renamed[1] + configPath.slice(renamed[0].length) : configPath);
}

describe("config/example.yaml", () => {
  const example: unknown = YAML.parse(readFileSync(`${repoRoot}config/example.yaml`, "utf8"));
  // What the resolver gives a key it has no configDefaults entry for (lowPriorityThreshold: "auto").
  const minimal = parseConfig(
    { subscriptions: [{ id: "a", type: "claude-pro", configDir: "/srv/a", weeklyBudgetUsd: 1 }] },
    "<inline>",
  );

  // Where the example shows something other than the default on purpose.
  const DEPARTURES = new Map([
    ["subscriptions", "the demo pool's accounts; there is no default"],
    ["notifications.rules", "example rules; the default is none"],
    ["upstream.enabled", "off only because the demo pool's logins are fake"],
  ]);

  it("shows the default for every key it sets, apart from its departures", () => {
    const wrong = leaves(example).flatMap(([key, shown]) => {
      if (DEPARTURES.has(key)) return [];
      const fallback = defaultOf(key) ?? at(minimal, key);
      if (fallback === undefined) return [`${key}: no default to compare with`];
      return isDeepStrictEqual(shown, fallback.value)
        ? []
        : [`${key}: shows ${JSON.stringify(shown)}, the default is ${JSON.stringify(fallback.value)}`];
    });
    expect(wrong).toEqual([]);
  });

  it.each([...DEPARTURES])("still departs at %s (%s)", (key) => {
    const shown = at(example, key);
    expect(shown, `${key} is gone from the example: drop it from DEPARTURES`).toBeDefined();
    const fallback = defaultOf(key) ?? at(minimal, key);
    if (fallback !== undefined) expect(shown?.value).not.toEqual(fallback.value);
  });
});

describe("README's configuration table", () => {
  const readme = readFileSync(`${repoRoot}README.md`, "utf8");
  const section = readme.split(/^## /m).find((s) => s.startsWith("Configuration\n")) ?? "";
  const rows = section.split("\n").filter((line) => line.startsWith("| `"));

  /** Each key the table names, as a full path, with the text of its default and the whole default cell. */
  const cells = new Map<string, string>();
  const defaultCells = new Map<string, string>();
  const unreadable: string[] = [];
  for (const row of rows) {
    const [keyCell = "", defaultCell = ""] = row
      .split("|")
      .slice(1)
      .map((cell) => cell.trim());
    const names = [...withoutAsides(keyCell).matchAll(/`([^`]+)`/g)].flatMap(([, name]) => expandBraces(name ?? ""));
    // `sessions.activeMinutes`, `staleMinutes`: a name without a dot is a sibling of the first.
    const first = names[0] ?? "";
    const keys = names.map((name) => (name.includes(".") ? name : first.slice(0, first.lastIndexOf(".") + 1) + name));
    for (const key of keys) defaultCells.set(key, defaultCell);
    const texts = withoutAsides(defaultCell).split(", ");
    // One text for several keys only when it is no value ("—"): then none of them has one.
    const shared = texts.length === 1 && scalar(texts[0] ?? "") === undefined;
    if (texts.length !== keys.length && !shared) unreadable.push(row);
    else for (const [i, key] of keys.entries()) cells.set(key, (shared ? texts[0] : texts[i]) ?? "");
  }

  // Defaults the table states in words, in another key's row: the words must carry the value.
  const IN_WORDS: [leaf: string, key: string, words: string][] = [
    ["fiveHourBudgetDivisor", "subscriptions[].fiveHourBudgetUsd", `weekly / ${configDefaults.fiveHourBudgetDivisor}`],
    ["lowPriorityShareOfThreshold", "lowPriorityThreshold", `× ${configDefaults.lowPriorityShareOfThreshold}`],
  ];
  // Defaults the table names without their value ("Claude Code's client id") or leaves to the example.
  const UNSTATED = ["notificationChannels", "upstream.endpoint", "credentials.clientId"];

  it("is read whole: each row has a default for each key, or one for all", () => {
    expect(rows.length).toBeGreaterThan(20);
    expect(unreadable).toEqual([]);
  });

  it("gives configDefaults' value for every default it shows as a value", () => {
    const wrong = [...cells].flatMap(([key, text]) => {
      const shown = scalar(text);
      const fallback = defaultOf(key);
      if (shown === undefined || fallback === undefined) return [];
      return isDeepStrictEqual(shown.value, fallback.value)
        ? []
        : [`${key}: shows ${text}, the default is ${JSON.stringify(fallback.value)}`];
    });
    expect(wrong).toEqual([]);
  });

  it("shows every default", () => {
    const shown = new Set(
      [...cells].filter(([key, text]) => defaultOf(key) !== undefined && scalar(text) !== undefined).map(([k]) => k),
    );
    const asConfigKey = (leaf: string) => {
      const renamed = RENAMED.find(([, to]) => leaf.startsWith(to));
      return renamed ? renamed[0] + leaf.slice(renamed[1].length) : leaf;
    };
    const elsewhere = new Set([...UNSTATED, ...IN_WORDS.map(([leaf]) => leaf)]);
    const missing = leaves(configDefaults)
      .map(([leaf]) => leaf)
      .filter((leaf) => !shown.has(asConfigKey(leaf)) && !elsewhere.has(leaf));
    expect(missing).toEqual([]);
    for (const [leaf, key, words] of IN_WORDS) expect(defaultCells.get(key), leaf).toContain(words);
  });

  it("gives the unpolled 5-hour cap", () => {
    expect(defaultCells.get("upstream.fiveHourCap")).toContain(`${FIVE_HOUR_CAP_UNPOLLED} for an account not polled`);
  });
});

/** withoutAsides drops parenthesised remarks: "(alias `weeklyBudget`)", "(a week)". */
function withoutAsides(text: string): string {
  return text.replace(/\s*\([^()]*\)/g, "").trim();
}

/** expandBraces: `health.weights.{weekly,idle}` names health.weights.weekly and health.weights.idle. */
function expandBraces(name: string): string[] {
  const match = /^(.*)\{([^}]*)\}$/.exec(name);
  return match ? (match[2] ?? "").split(",").map((part) => (match[1] ?? "") + part) : [name];
}

/** scalar reads a default written as a value: 15, true, `UTC`, `[]`; undefined for words, "—" or "required". */
function scalar(text: string): Found {
  if (/^-?\d+(\.\d+)?$/.test(text)) return { value: Number(text) };
  if (text === "true" || text === "false") return { value: text === "true" };
  const code = /^`([^`]*)`$/.exec(text)?.[1];
  if (code === undefined) return undefined;
  if (code === "[]") return { value: [] };
  if (code === '""') return { value: "" };
  return { value: code };
}
