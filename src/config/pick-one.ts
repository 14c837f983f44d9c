import { describeFound, formatPath, type ConfigIssue, type ConfigPath } from "./errors.js";

/** Candidate is one key that may give a value: its path and what the file gave there. */
export type Candidate<T> = readonly [ConfigPath, T | undefined];

/**
 * pickOne returns the first given value among a canonical key and its
 * aliases. A second, different value is reported at the later key's path
 * (the alias), naming both keys.
 */
export function pickOne<T>(issues: ConfigIssue[], ...candidates: Candidate<T>[]): T | undefined {
  let chosen: Candidate<T> | undefined;
  for (const candidate of candidates) {
    const [path, value] = candidate;
    if (value === undefined) continue;
    if (chosen === undefined) {
      chosen = candidate;
      continue;
    }
    if (!Object.is(value, chosen[1])) {
      const [chosenPath, chosenValue] = chosen;
      issues.push({
        path: formatPath(path),
        expected:
          `expected only one of ${formatPath(chosenPath)} and ${formatPath(path)} (aliases), ` +
          `got both: ${describeFound(chosenPath, chosenValue)} and ${describeFound(path, value)}`,
      });
    }
  }
  return chosen?.[1];
}
