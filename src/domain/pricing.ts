/**
 * Prices for token counts that came without a dollar figure (transcript
 * lines written since `costUSD` was dropped). Like the CLI's own
 * `total_cost_usd`, the result is an API-price figure, not a bill:
 * subscriptions are limited by utilization.
 *
 * The CLI knows prices we do not (a model newer than this table), and it
 * writes its own figures: `modelUsage[model].costUSD` in every result and in
 * a transcript's `cost-state` row. Those teach the pool a price per model
 * (LearnedPrice), which wins over the table. One figure per model and run
 * cannot fix four rates, so what is learned is a scale on the family's list
 * rates: Anthropic's rates keep fixed ratios (cache write 1.25 × input,
 * cache read 0.1 ×, output 5 × on every current model), so a scale is exact
 * whenever the ratios hold, and reproduces the CLI's figure for the mix it
 * was learned from in any case.
 */

import type { ModelUsage, TokenCounts } from "./usage.js";

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
const HAIKU_3: ModelPrice = {
  inputPerMTok: 0.25,
  outputPerMTok: 1.25,
  cacheWritePerMTok: 0.3125,
  cacheReadPerMTok: 0.025,
};

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
  return costAt(priceOf(model).price, tokens);
}

/** LearnedPrice is what the CLI's own figures for a model taught: a scale on the table's rates. */
export interface LearnedPrice {
  /** CLI cost ÷ the table's cost for the same tokens. */
  scale: number;
  /** Epoch ms of the figure it was learned from. */
  at: number;
}

/**
 * PriceBasis says where a dollar figure came from: the CLI's own figure
 * (`line`: a transcript line's costUSD), a rate learned from the CLI's
 * figures (`cli`), the table for a model it lists (`list`), or the table's
 * guess for a model it does not (`estimate`).
 */
export type PriceBasis = "line" | "cli" | "list" | "estimate";

/** isEstimate: the figure is the pool's own table price, not the CLI's. */
export function isEstimate(basis: PriceBasis): boolean {
  return basis === "list" || basis === "estimate";
}

/**
 * learnPrice reads a price from one model's entry of a `modelUsage` the CLI
 * wrote. Undefined when the entry cannot teach one: no cost (the CLI did not
 * know the price either, or the run was free) or no tokens.
 */
export function learnPrice(model: string, usage: ModelUsage, at: number): LearnedPrice | undefined {
  const table = costOfTokens(model, usage);
  if (!(usage.costUsd > 0) || !Number.isFinite(usage.costUsd) || !(table > 0)) return undefined;
  const scale = usage.costUsd / table;
  return Number.isFinite(scale) ? { scale, at } : undefined;
}

/** priceTokens prices tokens by what the CLI taught for the model, else by the table. */
export function priceTokens(
  model: string,
  tokens: TokenCounts,
  learned: LearnedPrice | undefined,
): { costUsd: number; basis: PriceBasis } {
  const { price, known } = priceOf(model);
  const listed = costAt(price, tokens);
  if (learned !== undefined) return { costUsd: listed * learned.scale, basis: "cli" };
  return { costUsd: listed, basis: known ? "list" : "estimate" };
}

/** ratesOf is the per-million-token rates a model is priced at, learned scale applied. */
export function ratesOf(model: string, learned: LearnedPrice | undefined): { price: ModelPrice; basis: PriceBasis } {
  const { price, known } = priceOf(model);
  if (learned === undefined) return { price, basis: known ? "list" : "estimate" };
  const k = learned.scale;
  return {
    price: {
      inputPerMTok: price.inputPerMTok * k,
      outputPerMTok: price.outputPerMTok * k,
      cacheWritePerMTok: price.cacheWritePerMTok * k,
      cacheReadPerMTok: price.cacheReadPerMTok * k,
    },
    basis: "cli",
  };
}

function costAt(price: ModelPrice, tokens: TokenCounts): number {
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
