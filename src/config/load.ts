/**
 * Reading a config: file -> parsed document -> schema -> resolved PoolConfig.
 * Every failure along the way is a ConfigError naming the file.
 */
import { readFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import YAML from "yaml";
import { ConfigError, type ConfigIssue } from "./errors.js";
import { fallbackPhrase, issuesFromZod } from "./issues.js";
import { resolveConfig } from "./resolve.js";
import { rawConfigSchema } from "./schema.js";
import type { LoadOptions, PoolConfig } from "./types.js";

/** INLINE_SOURCE is the source name for configs that did not come from a file. */
export const INLINE_SOURCE = "<inline>";

// One bad file should not produce pages of output; the first issues are
// enough to start fixing.
const MAX_ISSUES = 20;

/**
 * loadConfigFile reads, validates and resolves a config file. `.json` is
 * parsed as JSON, `.yaml`/`.yml` as YAML; any other name is tried as JSON,
 * then as YAML. Throws ConfigError for a missing, unreadable, unparseable or
 * invalid file.
 */
export async function loadConfigFile(file: string, options: LoadOptions = {}): Promise<PoolConfig> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    throw new ConfigError(file, [{ path: "", expected: `expected a readable config file, got ${errorText(error)}` }]);
  }
  return parseConfig(parseText(file, text.replace(/^\uFEFF/, "")), file, options);
}

/**
 * parseConfig validates and resolves an already-parsed config document;
 * `source` names it in errors and becomes PoolConfig.source, and `./`
 * config dirs are taken from its directory. Throws ConfigError.
 */
export function parseConfig(raw: unknown, source: string, options: LoadOptions = {}): PoolConfig {
  const parsed = rawConfigSchema.safeParse(raw, { error: fallbackPhrase });
  if (!parsed.success) fail(source, issuesFromZod(parsed.error, raw, rawConfigSchema));

  const homeDir = path.resolve(options.homeDir ?? os.homedir());
  const baseDir = path.resolve(options.baseDir ?? (source === INLINE_SOURCE ? "." : path.dirname(source)));
  const resolved = resolveConfig(parsed.data, source, homeDir, baseDir);
  if (!resolved.ok) fail(source, resolved.issues);
  return resolved.config;
}

function fail(file: string, issues: readonly ConfigIssue[]): never {
  const [first, ...rest] = issues.slice(0, MAX_ISSUES);
  // An empty list would mean a failed parse with nothing to say; still fail.
  throw new ConfigError(file, [first ?? { path: "", expected: "expected a valid config" }, ...rest]);
}

function parseText(file: string, text: string): unknown {
  const ext = path.extname(file).toLowerCase();
  if (ext === ".json") return parseJson(file, text);
  if (ext === ".yaml" || ext === ".yml") return parseYaml(file, text);
  try {
    return JSON.parse(text) as unknown;
  } catch {
    // YAML is a superset of JSON, so its error is the more useful one.
    return parseYaml(file, text);
  }
}

function parseJson(file: string, text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    const message = errorText(error);
    const { line, column } = jsonPosition(message, text);
    throw new ConfigError(file, [
      {
        path: "",
        expected: `expected valid JSON, got a syntax error: ${message}`,
        ...(line !== undefined ? { line, column } : {}),
      },
    ]);
  }
}

function parseYaml(file: string, text: string): unknown {
  // parseDocument rather than parse: warnings (e.g. an unknown tag that would
  // silently turn a number into a string) are treated as errors too.
  const lineCounter = new YAML.LineCounter();
  const doc = YAML.parseDocument(text, { prettyErrors: false, lineCounter });
  const problem = doc.errors[0] ?? doc.warnings[0];
  if (problem !== undefined) {
    const position = lineCounter.linePos(problem.pos[0]);
    throw new ConfigError(file, [
      {
        path: "",
        expected: `expected valid YAML, got: ${problem.message}`,
        line: position.line,
        column: position.col,
      },
    ]);
  }
  try {
    return doc.toJS() as unknown;
  } catch (error) {
    // toJS throws for alias bombs (too many *anchor expansions).
    throw new ConfigError(file, [{ path: "", expected: `expected valid YAML, got: ${errorText(error)}` }]);
  }
}

// V8 reports "(line L column C)" in newer versions and "at position N" in
// older ones; derive line and column from either.
function jsonPosition(message: string, text: string): { line?: number; column?: number } {
  const lineCol = /line (\d+) column (\d+)/.exec(message);
  if (lineCol) return { line: Number(lineCol[1]), column: Number(lineCol[2]) };
  const position = /position (\d+)/.exec(message);
  if (position) {
    const before = text.slice(0, Number(position[1]));
    const lines = before.split("\n");
    return { line: lines.length, column: (lines[lines.length - 1]?.length ?? 0) + 1 };
  }
  if (/end of JSON input/.test(message)) {
    const lines = text.split("\n");
    return { line: lines.length, column: (lines[lines.length - 1]?.length ?? 0) + 1 };
  }
  return {};
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
