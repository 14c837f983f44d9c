/**
 * Config errors carry where (file, key path) and what was expected, so an
 * operator can fix the file without reading the source.
 */

/** ConfigPath is a key path into the config: object keys and array indexes. */
export type ConfigPath = readonly (string | number)[];

/** ConfigIssue is one problem found in a config. */
export interface ConfigIssue {
  /** Key path in `a.b[1].c` form; "" for the whole document or the file itself. */
  readonly path: string;
  /** What was expected, usually with what was found ("expected a number > 0, got -5"). */
  readonly expected: string;
  /** 1-based position, when a parser reported one. */
  readonly line?: number;
  readonly column?: number;
}

/**
 * ConfigError is thrown for any config that cannot be used: unreadable file,
 * bad syntax, or a value that fails validation. `file`, `path` and
 * `expected` describe the first issue; `issues` holds all of them, one per
 * line of the message, each line shaped `<file>: <path>: <expected>`.
 */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
  readonly file: string;
  readonly path: string;
  readonly expected: string;
  readonly line?: number;
  readonly column?: number;
  readonly issues: readonly ConfigIssue[];

  constructor(file: string, issues: readonly [ConfigIssue, ...ConfigIssue[]]) {
    super(issues.map((issue) => formatIssueLine(file, issue)).join("\n"));
    const first = issues[0];
    this.file = file;
    this.path = first.path;
    this.expected = first.expected;
    if (first.line !== undefined) this.line = first.line;
    if (first.column !== undefined) this.column = first.column;
    this.issues = issues;
  }
}

/**
 * formatIssueLine renders one issue as `<file>: <path>: <expected>`. A parser
 * position takes the path's place; an issue about the whole document or file
 * has neither and reads `<file>: <expected>`.
 */
export function formatIssueLine(file: string, issue: ConfigIssue): string {
  if (issue.line !== undefined) {
    return `${file}: line ${issue.line}, column ${issue.column ?? 1}: ${issue.expected}`;
  }
  return issue.path === "" ? `${file}: ${issue.expected}` : `${file}: ${issue.path}: ${issue.expected}`;
}

/** formatPath renders a key path as `a.b[1].c`. */
export function formatPath(path: ConfigPath): string {
  let out = "";
  for (const key of path) {
    if (typeof key === "number") out += `[${key}]`;
    else if (/^[A-Za-z_$][\w$]*$/.test(key)) out += out === "" ? key : `.${key}`;
    // Keys that are not identifiers (typos with spaces, "__proto__"-like junk)
    // are quoted so the path stays unambiguous.
    else out += `[${JSON.stringify(key)}]`;
  }
  return out;
}

const MAX_SHOWN = 80;

/**
 * describeValue renders a found value for an error message. Strings are
 * JSON-quoted so invisible characters (NUL, newlines) show up; long values
 * are cut so one bad entry cannot flood the log.
 */
export function describeValue(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value === null) return "null";
  if (Array.isArray(value)) return value.length === 0 ? "[]" : "a list";
  if (typeof value === "object") return "an object";
  const text = typeof value === "string" ? JSON.stringify(value) : String(value);
  return text.length > MAX_SHOWN ? `${text.slice(0, MAX_SHOWN)}…` : text;
}

/**
 * describeFound is describeValue for the value found at path, except that
 * secrets are never echoed: error messages end up in logs. A value is hidden
 * when any key on its path names a secret, so an element of a token list
 * (`server.authTokens[0]`) is hidden too; a key naming a file of secrets
 * (`authTokensFile`) holds only a path, which is shown. A Slack
 * incoming-webhook URL is a credential as a whole.
 */
export function describeFound(path: ConfigPath, value: unknown): string {
  const secret =
    path.some((key) => typeof key === "string" && /secret|token|password/i.test(key) && !/File$/.test(key)) ||
    (path.includes("slack") && path.includes("url"));
  if (secret && value !== undefined) return "a hidden value";
  return describeValue(value);
}
