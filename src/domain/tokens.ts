import type { TokenCounts } from "./usage.js";

/** Arithmetic on TokenCounts: one place for the four fields, so none is ever forgotten. */

/** zeroTokens is a fresh, empty count (callers add into it). */
export function zeroTokens(): TokenCounts {
  return { inputTokens: 0, outputTokens: 0, cacheCreationInputTokens: 0, cacheReadInputTokens: 0 };
}

/** tokenTotal sums the four counts. */
export function tokenTotal(t: TokenCounts): number {
  return t.inputTokens + t.outputTokens + t.cacheCreationInputTokens + t.cacheReadInputTokens;
}

/** addTokens adds t into `into`. */
export function addTokens(into: TokenCounts, t: TokenCounts): void {
  into.inputTokens += t.inputTokens;
  into.outputTokens += t.outputTokens;
  into.cacheCreationInputTokens += t.cacheCreationInputTokens;
  into.cacheReadInputTokens += t.cacheReadInputTokens;
}

/** subtractTokens takes t out of `from`, never below zero. */
export function subtractTokens(from: TokenCounts, t: TokenCounts): void {
  from.inputTokens = Math.max(0, from.inputTokens - t.inputTokens);
  from.outputTokens = Math.max(0, from.outputTokens - t.outputTokens);
  from.cacheCreationInputTokens = Math.max(0, from.cacheCreationInputTokens - t.cacheCreationInputTokens);
  from.cacheReadInputTokens = Math.max(0, from.cacheReadInputTokens - t.cacheReadInputTokens);
}

/** tokenGrowth is how much each count rose from `before` to `now` (never negative). */
export function tokenGrowth(now: TokenCounts, before: TokenCounts): TokenCounts {
  const grown = { ...now };
  subtractTokens(grown, before);
  return grown;
}

/** maxTokens is the larger of each count; a copy of a when b is absent. */
export function maxTokens(a: TokenCounts, b: TokenCounts | undefined): TokenCounts {
  if (b === undefined) return { ...a };
  return {
    inputTokens: Math.max(a.inputTokens, b.inputTokens),
    outputTokens: Math.max(a.outputTokens, b.outputTokens),
    cacheCreationInputTokens: Math.max(a.cacheCreationInputTokens, b.cacheCreationInputTokens),
    cacheReadInputTokens: Math.max(a.cacheReadInputTokens, b.cacheReadInputTokens),
  };
}
