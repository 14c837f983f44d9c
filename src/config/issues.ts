/**
 * Translates zod issues into ConfigIssues: `a.b[1].c` paths, "expected X,
 * got Y" texts, and a did-you-mean for unknown keys, since a typo'd key is
 * the most common config mistake.
 */
import { z } from "zod";
import { describeFound, formatPath, type ConfigIssue, type ConfigPath } from "./errors.js";

/**
 * fallbackPhrase is the per-parse error map: it names the expected shape for
 * the few schemas (plain objects and lists) that carry no phrase of their own.
 */
export const fallbackPhrase: z.core.$ZodErrorMap = (issue) => {
  if (issue.code === "invalid_type") {
    const names: Record<string, string> = {
      object: "an object",
      array: "a list",
      string: "a string",
      number: "a number",
      boolean: "true or false",
    };
    return names[issue.expected] ?? `a value of type ${issue.expected}`;
  }
  return undefined;
};

/** issuesFromZod converts a failed parse of input against schema into ConfigIssues. */
export function issuesFromZod(error: z.ZodError, input: unknown, schema: z.ZodType): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  for (const issue of error.issues) {
    const path: ConfigPath = issue.path.map((key) => (typeof key === "symbol" ? String(key) : key));
    if (issue.code === "unrecognized_keys") {
      const known = knownKeysAt(schema, path);
      for (const key of issue.keys) {
        out.push({
          path: formatPath([...path, key]),
          expected: `expected a known key, got unknown key ${JSON.stringify(key)} (${hint(key, known)})`,
        });
      }
      continue;
    }
    const value = valueAt(input, path);
    const found = value === undefined ? "but it is missing" : `got ${describeFound(path, value)}`;
    out.push({ path: formatPath(path), expected: `expected ${issue.message}, ${found}` });
  }
  return out;
}

function hint(key: string, known: readonly string[]): string {
  const suggestion = closest(key, known);
  if (suggestion !== undefined) return `did you mean ${JSON.stringify(suggestion)}?`;
  return known.length > 0 ? `known keys here: ${known.join(", ")}` : "no keys are allowed here";
}

function valueAt(input: unknown, path: ConfigPath): unknown {
  let current = input;
  for (const key of path) {
    if (typeof current !== "object" || current === null) return undefined;
    current = Object.hasOwn(current, key) ? (current as Record<string | number, unknown>)[key] : undefined;
  }
  return current;
}

// Walks the schema the same way the issue path walks the input, to list the
// keys that would have been accepted where the unknown one was found.
function knownKeysAt(schema: z.ZodType, path: ConfigPath): string[] {
  let current: unknown = schema;
  for (const key of path) {
    current = unwrap(current);
    if (current instanceof z.ZodObject && typeof key === "string") {
      current = (current.shape as Record<string, unknown>)[key];
    } else if (current instanceof z.ZodArray && typeof key === "number") {
      current = current.element;
    } else {
      return [];
    }
  }
  current = unwrap(current);
  return current instanceof z.ZodObject ? Object.keys(current.shape) : [];
}

function unwrap(schema: unknown): unknown {
  let current = schema;
  while (current instanceof z.ZodOptional || current instanceof z.ZodNullable) {
    current = current.unwrap();
  }
  return current;
}

// A suggestion further away than about a third of the word is noise.
function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(1, Math.floor(word.length / 3)) + 1;
  for (const candidate of candidates) {
    const distance = candidate.toLowerCase() === word.toLowerCase() ? 0 : editDistance(word, candidate);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}
