/**
 * Anthropic API list prices by model id, for pricing token counts that came
 * without a dollar figure (transcript lines written since `costUSD` was
 * dropped). Like the CLI's own `total_cost_usd`, the result is an API-price
 * estimate, not a bill: subscriptions are limited by utilization.
 */

import type { TokenCounts } from "./usage.js";

/** ModelPrice is a model's list price in USD per million tokens. */
export interface ModelPrice {
  inputPerMTok: number;
  outputPerMTok: number;
  /** 5-minute cache write: 1.25 × input. */
  cacheWritePerMTok: number;
  /** Cache read (hit): 0.1 × input. */
  cacheReadPerMTok: number;
}

// Cache rates are written out rather than computed: 0.8 * 0.1 is 0.08000000000000002 in floats.
const OPUS_4_5: ModelPrice = { inputPerMTok: 5, outputPerMTok: 25, cacheWritePerMTok: 6.25, cacheReadPerMTok: 0.5 };
const OPUS_4: ModelPrice = { inputPerMTok: 15, outputPerMTok: 75, cacheWritePerMTok: 18.75, cacheReadPerMTok: 1.5 };
const SONNET: ModelPrice = { inputPerMTok: 3, outputPerMTok: 15, cacheWritePerMTok: 3.75, cacheReadPerMTok: 0.3 };
const HAIKU_4_5: ModelPrice = { inputPerMTok: 1, outputPerMTok: 5, cacheWritePerMTok: 1.25, cacheReadPerMTok: 0.1 };
const HAIKU_3_5: ModelPrice = { inputPerMTok: 0.8, outputPerMTok: 4, cacheWritePerMTok: 1, cacheReadPerMTok: 0.08 };
const HAIKU_3: ModelPrice = { inputPerMTok: 0.25, outputPerMTok: 1.25, cacheWritePerMTok: 0.3125, cacheReadPerMTok: 0.025 };

// A version must not run on into a longer one: "opus-4" must not take "opus-4-1" or a
// future "opus-4-6", yet must take "opus-4-20250514" (an 8-digit date is no version).
const END = String.raw`(?![-.]?\d{1,2}(?!\d))`;
const SEP = "[-.]";

/** Most specific first: the first pattern that matches the lower-cased id wins. */
const PRICE_TABLE: ReadonlyArray<readonly [RegExp, ModelPrice]> = [
  [new RegExp(`opus-4${SEP}5${END}`), OPUS_4_5],
  [new RegExp(`opus-4${SEP}1${END}`), OPUS_4],
  [new RegExp(`opus-4${END}`), OPUS_4],
  [new RegExp(`claude-3-opus${END}`), OPUS_4],
  [new RegExp(`sonnet-4${SEP}5${END}`), SONNET],
  [new RegExp(`sonnet-4${END}`), SONNET],
  [new RegExp(`claude-3${SEP}7-sonnet${END}`), SONNET],
  [new RegExp(`claude-3${SEP}5-sonnet${END}`), SONNET],
  [new RegExp(`haiku-4${SEP}5${END}`), HAIKU_4_5],
  [new RegExp(`claude-3${SEP}5-haiku${END}`), HAIKU_3_5],
  [new RegExp(`claude-3-haiku${END}`), HAIKU_3],
];

// An unlisted model of a known family is most likely a newer one: price it as the current generation.
const FAMILY_FALLBACK: ReadonlyArray<readonly [string, ModelPrice]> = [
  ["opus", OPUS_4_5],
  ["sonnet", SONNET],
  ["haiku", HAIKU_4_5],
];

/**
 * priceOf gives the list price for a model id such as
 * `claude-sonnet-4-5-20250929`. `known` is false when the id is not in the
 * table and the price is a guess: the current generation of the family the
 * id names (Opus 4.5, Sonnet 4.5, Haiku 4.5), or Sonnet for anything else.
 */
export function priceOf(model: string): { price: ModelPrice; known: boolean } {
  const id = model.toLowerCase();
  for (const [pattern, price] of PRICE_TABLE) {
    if (pattern.test(id)) return { price, known: true };
  }
  for (const [family, price] of FAMILY_FALLBACK) {
    if (id.includes(family)) return { price, known: false };
  }
  return { price: SONNET, known: false };
}

/**
 * costOfTokens prices token counts at the model's list price, in USD. A
 * count that is negative or not finite counts as 0.
 */
export function costOfTokens(model: string, tokens: TokenCounts): number {
  const { price } = priceOf(model);
  // Sum in "USD × 1e6" and divide once: fewer rounding steps than per-token dollar rates.
  const micro =
    count(tokens.inputTokens) * price.inputPerMTok +
    count(tokens.outputTokens) * price.outputPerMTok +
    count(tokens.cacheCreationInputTokens) * price.cacheWritePerMTok +
    count(tokens.cacheReadInputTokens) * price.cacheReadPerMTok;
  return micro / 1e6;
}

function count(value: number): number {
  return Number.isFinite(value) && value > 0 ? value : 0;
}
